import fs from 'node:fs';
import os from 'node:os';
import { nativeAddon } from './addon.js';

/**
 * What a walk needs of lstat or fstat, as plain numbers. The device and inode numbers are
 * 64-bit, so each is kept as two exact 32-bit halves (a double holds 53 bits: two inodes could
 * round to one number, and a file be taken for another).
 */
export interface StatFields {
  mode: number; uid: number; gid: number; size: number; mtimeSec: number; mtimeNsec: number; nlink: number;
  devHigh: number; devLow: number; inoHigh: number; inoLow: number;
}

/** A folder's entries, sorted by the bytes of their names: name i is names[start(i), start(i) + length(i)). */
export interface Listing {
  readonly count: number;
  readonly names: Buffer;
  readonly fields: Float64Array;
}

// The order of native/list-dir.c.
const F_NAME_START = 0, F_NAME_LENGTH = 1, F_ERRNO = 2, F_MODE = 3, F_UID = 4, F_GID = 5, F_SIZE = 6, F_MTIME_SEC = 7,
  F_MTIME_NSEC = 8, F_NLINK = 9, F_DEV_HIGH = 10, F_DEV_LOW = 11, F_INO_HIGH = 12, F_INO_LOW = 13, FIELDS = 14;

interface Addon {
  listDir(path: Buffer): [Buffer, Float64Array];
  fstatFields(fd: number): Float64Array;
  lstatFields(path: Buffer): Float64Array;
}

const addon = nativeAddon<Addon>('listDir', 'fstatFields', 'lstatFields');

/** Whether the addon does the listing (else Node's readdir and lstat do). */
export const listDirNative = (): boolean => addon !== null;

const fieldsAt = (f: Float64Array, at: number): StatFields => ({
  mode: f[at + F_MODE]!, uid: f[at + F_UID]!, gid: f[at + F_GID]!, size: f[at + F_SIZE]!,
  mtimeSec: f[at + F_MTIME_SEC]!, mtimeNsec: f[at + F_MTIME_NSEC]!, nlink: f[at + F_NLINK]!,
  devHigh: f[at + F_DEV_HIGH]!, devLow: f[at + F_DEV_LOW]!, inoHigh: f[at + F_INO_HIGH]!, inoLow: f[at + F_INO_LOW]!,
});

const HALF = 1n << 32n;
const half = (n: bigint, high: boolean): number => Number(high ? n / HALF : n % HALF);

const BILLION = 1_000_000_000n;

/** Seconds and nanoseconds as the kernel has them: before 1970 the seconds go down and the nanoseconds stay positive. */
function splitTime(ns: bigint): [number, number] {
  let sec = ns / BILLION;
  let nsec = ns % BILLION;
  if (nsec < 0n) { sec -= 1n; nsec += BILLION; }
  return [Number(sec), Number(nsec)];
}

/** Without the addon: the same fields from Node's BigIntStats. */
function fromBigInt(st: fs.BigIntStats): StatFields {
  const [mtimeSec, mtimeNsec] = splitTime(st.mtimeNs);
  return {
    mode: Number(st.mode), uid: Number(st.uid), gid: Number(st.gid), size: Number(st.size), mtimeSec, mtimeNsec, nlink: Number(st.nlink),
    devHigh: half(st.dev, true), devLow: half(st.dev, false), inoHigh: half(st.ino, true), inoLow: half(st.ino, false),
  };
}

function put(f: Float64Array, at: number, s: StatFields): void {
  f[at + F_MODE] = s.mode; f[at + F_UID] = s.uid; f[at + F_GID] = s.gid; f[at + F_SIZE] = s.size;
  f[at + F_MTIME_SEC] = s.mtimeSec; f[at + F_MTIME_NSEC] = s.mtimeNsec; f[at + F_NLINK] = s.nlink;
  f[at + F_DEV_HIGH] = s.devHigh; f[at + F_DEV_LOW] = s.devLow; f[at + F_INO_HIGH] = s.inoHigh; f[at + F_INO_LOW] = s.inoLow;
}

/** Without the addon: readdir, a sort by bytes and an lstat of each path (exported for the test of both). */
export function listDirWithoutAddon(path: Buffer): Listing {
  // Refused, as the addon's open with O_DIRECTORY | O_NOFOLLOW refuses it, when the folder is now a link.
  if (fs.lstatSync(path).isSymbolicLink()) throw Object.assign(new Error(`ENOTDIR: not a directory, scandir '${path.toString('latin1')}'`), { code: 'ENOTDIR' });
  const names = fs.readdirSync(path, { encoding: 'buffer' }).sort(Buffer.compare);
  const fields = new Float64Array(names.length * FIELDS);
  let start = 0;
  names.forEach((name, i) => {
    const at = i * FIELDS;
    fields[at + F_NAME_START] = start;
    fields[at + F_NAME_LENGTH] = name.length;
    start += name.length;
    try {
      put(fields, at, fromBigInt(fs.lstatSync(Buffer.concat([path, Buffer.from('/'), name]), { bigint: true })));
    } catch (err) {
      fields[at + F_ERRNO] = -((err as NodeJS.ErrnoException).errno ?? -os.constants.errno.EIO);
    }
  });
  return { count: names.length, names: Buffer.concat(names), fields };
}

/**
 * The entries of the folder at `path` (not followed if it is a symbolic link: ENOTDIR), sorted by
 * the bytes of their names, each with its lstat. Throws as fs does (`code` ENOENT, EACCES, ...).
 */
export function listDir(path: Buffer): Listing {
  if (!addon) return listDirWithoutAddon(path);
  const [names, fields] = addon.listDir(path);
  return { count: fields.length / FIELDS, names, fields };
}

/** Name i of a listing, one char per byte (latin1), as the walk keeps paths. */
export function nameAt(l: Listing, i: number): string {
  const start = l.fields[i * FIELDS + F_NAME_START]!;
  return l.names.toString('latin1', start, start + l.fields[i * FIELDS + F_NAME_LENGTH]!);
}

const errnoNames = new Map<number, string>(Object.entries(os.constants.errno).map(([name, n]) => [n, name]));

/** Entry i's lstat, or the name of the error (ENOENT, ...) that lstat of it gave. */
export function statAt(l: Listing, i: number): StatFields | string {
  const errno = l.fields[i * FIELDS + F_ERRNO]!;
  return errno !== 0 ? errnoNames.get(errno) ?? `errno ${errno}` : fieldsAt(l.fields, i * FIELDS);
}

export function lstatFields(path: Buffer): StatFields {
  return addon ? fieldsAt(addon.lstatFields(path), 0) : fromBigInt(fs.lstatSync(path, { bigint: true }));
}

export function fstatFields(fd: number): StatFields {
  return addon ? fieldsAt(addon.fstatFields(fd), 0) : fromBigInt(fs.fstatSync(fd, { bigint: true }));
}

export const sameDevice = (a: StatFields, b: StatFields): boolean => a.devHigh === b.devHigh && a.devLow === b.devLow;
export const sameInode = (a: StatFields, b: StatFields): boolean => sameDevice(a, b) && a.inoHigh === b.inoHigh && a.inoLow === b.inoLow;
/** A key of the inode, unique on the machine. */
export const inodeKeyOf = (s: StatFields): string => `${s.devHigh}:${s.devLow}:${s.inoHigh}:${s.inoLow}`;
