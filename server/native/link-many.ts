import os from 'node:os';
import { nativeAddon } from './addon.js';

interface Addon { linkMany(joined: string, count: number): Promise<Int32Array>; linkBlobs(from: string, to: string, blobs: Uint32Array): Promise<Int32Array> }

const addon = nativeAddon<Addon>('linkMany');

/** Whether linkManyOffLoop can run (the addon is built). */
export const canLinkOffLoop = (): boolean => addon !== null;

const errnoNames = new Map<number, string>(Object.entries(os.constants.errno).map(([name, n]) => [n, name]));

/** An Error as Node's fs gives it for a failed link(2): `code` is the errno's name. */
export function linkError(errno: number, from: string, to: string): NodeJS.ErrnoException {
  const code = errnoNames.get(errno) ?? 'EIO';
  return Object.assign(new Error(`${code}: link '${from}' -> '${to}'`), { code, errno: -errno, syscall: 'link' });
}

/**
 * link(2) of each pair (`existing[i]` to `created[i]`), in order, as one job on libuv's pool;
 * resolves with 0 or the errno of each. null when the addon is not built: link them in place.
 */
export function linkManyOffLoop(existing: string[], created: string[]): Promise<Int32Array> | null {
  if (!addon) return null;
  if (existing.length !== created.length) throw new TypeError('linkManyOffLoop: as many links as targets');
  const joined = existing.map((e, i) => `${e}\0${created[i]!}`).join('\0');
  return addon.linkMany(joined, existing.length);
}

/**
 * link(2) of each blob of the incremental layout (snapshot-layout.ts: `XXXX/NNNNNNNN` in hex)
 * from the folder `from` to the folder `to`, as one job on libuv's pool; resolves with 0 or
 * the errno of each. null when the addon is not built.
 */
export function linkBlobsOffLoop(from: string, to: string, blobs: Uint32Array): Promise<Int32Array> | null {
  return addon ? addon.linkBlobs(from, to, blobs) : null;
}
