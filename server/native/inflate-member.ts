import { nativeAddon } from './addon.js';

const addon = nativeAddon<{ inflateMember(fd: number, offset: number, length: number, out: Buffer, crc: boolean): Promise<number> }>('inflateMember');

/**
 * Reads the `length` bytes at `offset` of `fd` (one entry of a compressed snapshot's member
 * list: one or more gzip members) and inflates them into `out` in one job on libuv's pool
 * (libdeflate; the pool thread's own buffer holds the compressed bytes). Resolves with the
 * bytes written into `out`, which stays untouched by anything else until then. Rejects with
 * `stage` "read" (an errno), or "damaged" with `damage` "short" (the file ends first), "data"
 * (not gzip, a CRC or length that does not match) or "long" (more than `out` holds). null
 * when the addon was built without libdeflate. `crc` false: the members' CRC-32 is not computed
 * (only their length is checked), for a caller that checks every byte it uses against a SHA-256.
 */
export function inflateMemberOffLoop(fd: number, offset: number, length: number, out: Buffer, crc = true): Promise<number> | null {
  return addon ? addon.inflateMember(fd, offset, length, out, crc) : null;
}

export const inflateMemberSupported = (): boolean => addon !== null;
