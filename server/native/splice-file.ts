import { nativeAddon } from './addon.js';

interface Addon { spliceToPipe(fileFd: number, pipeFd: number, length: number): number }

const addon = nativeAddon<Addon>('spliceToPipe');

/**
 * Moves up to `length` bytes of the file open at `fileFd` (from its position) into the pipe
 * `pipeFd` with splice(2), blocking while the pipe is full; returns how many moved (fewer at
 * the end of the file, or before an error that the next call throws). null when the addon is not built: the caller reads and writes.
 */
export const spliceToPipe: ((fileFd: number, pipeFd: number, length: number) => number) | null = addon
  ? (fileFd, pipeFd, length) => addon.spliceToPipe(fileFd, pipeFd, length)
  : null;

const sendAddon = nativeAddon<{ sendFileTo(fileFd: number, outFd: number, length: number): number }>('sendFileTo');

/**
 * As spliceToPipe, with sendfile(2), for an output that is a socket (splice needs a pipe on
 * one side). null when the addon is not built.
 */
export const sendFileTo: ((fileFd: number, outFd: number, length: number) => number) | null = sendAddon
  ? (fileFd, outFd, length) => sendAddon.sendFileTo(fileFd, outFd, length)
  : null;
