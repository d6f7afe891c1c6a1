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
