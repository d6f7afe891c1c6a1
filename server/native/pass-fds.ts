import { nativeAddon } from './addon.js';

interface Addon {
  socketPair(): [number, number];
  setSendBuffer(sock: number, bytes: number): number;
  sendWithFds(sock: number, data: Buffer, fds: number[], closeFds: boolean): Promise<void>;
  recvWithFds(sock: number, buffer: Buffer, offset: number, length: number): Promise<[number, number[]]>;
  sendFdSync(sock: number, fd: number): void;
  takeFd(sock: number): number;
}

const addon = nativeAddon<Addon>('socketPair', 'sendWithFds', 'recvWithFds');
const buffers = nativeAddon<Pick<Addon, 'setSendBuffer'>>('setSendBuffer');
const channel = nativeAddon<Pick<Addon, 'sendFdSync' | 'takeFd'>>('sendFdSync', 'takeFd');

/** At most this many descriptors go with one send. */
export const MAX_FDS_PER_SEND = 250;

export const passFdsSupported = (): boolean => addon !== null;

/** A connected pair of Unix stream sockets, both close-on-exec (native/pass-fds.c). */
export function socketPair(): [number, number] {
  if (!addon) throw new Error('the native addon is not built');
  return addon.socketPair();
}

/**
 * Sets the send buffer of the socket `sock` to `bytes` (beyond the system's limit where the
 * process may, as root); answers what the kernel set (twice what it is given).
 */
export function setSendBuffer(sock: number, bytes: number): number {
  if (!buffers) throw new Error('the native addon is not built');
  return buffers.setSendBuffer(sock, bytes);
}

/**
 * Sends all of `data` over the socket `sock` on a pool thread, with the descriptors `fds`
 * attached to its first byte (SCM_RIGHTS); with `closeFds` they are closed once sent.
 */
export function sendWithFds(sock: number, data: Buffer, fds: number[], closeFds: boolean): Promise<void> {
  if (!addon) throw new Error('the native addon is not built');
  return addon.sendWithFds(sock, data, fds, closeFds);
}

/**
 * One receive from `sock` into `buffer` at `offset` (at most `length` bytes): how many bytes
 * came (0: the other end closed) and the descriptors that came with them, each checked to be
 * a regular file (anything else is closed and the receive fails).
 */
export function recvWithFds(sock: number, buffer: Buffer, offset: number, length: number): Promise<[number, number[]]> {
  if (!addon) throw new Error('the native addon is not built');
  return addon.recvWithFds(sock, buffer, offset, length);
}

/** Whether the backup's descriptor channel (sendFdSync, takeFd) is available. */
export const descriptorChannelSupported = (): boolean => addon !== null && channel !== null;

/**
 * Sends one descriptor over `sock` (a byte with it attached), blocking until the socket takes
 * it. Throws the errno's error (ETOOMANYREFS: the sender has too many descriptors in flight).
 */
export function sendFdSync(sock: number, fd: number): void {
  if (!channel) throw new Error('the native addon is not built');
  channel.sendFdSync(sock, fd);
}

/**
 * The next descriptor sent over `sock` by sendFdSync, without waiting: EAGAIN when none is
 * there, EPIPE when the other end closed, EBADF (all received closed) unless exactly one
 * came and it is a regular file. The caller owns the descriptor returned (close-on-exec).
 */
export function takeFd(sock: number): number {
  if (!channel) throw new Error('the native addon is not built');
  return channel.takeFd(sock);
}
