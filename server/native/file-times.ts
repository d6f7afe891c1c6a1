import fs from 'node:fs';
import { nativeAddon } from './addon.js';

interface Addon {
  setTimes(path: Buffer, sec: number, nsec: number, noFollow: boolean): void;
  setFdTimes(fd: number, sec: number, nsec: number): void;
}

const addon = nativeAddon<Addon>('setTimes', 'setFdTimes');

/** Node's calls take a double and libuv keeps microseconds: aim at the middle of the microsecond. */
const asDouble = (sec: number, nsec: number): number => sec + (Math.floor(nsec / 1000) * 1000 + 500) / 1e9;

/** Sets the access and modification times of an open file, to the nanosecond where the addon is built. */
export function setFdTimes(fd: number, sec: number, nsec: number): void {
  if (addon) addon.setFdTimes(fd, sec, nsec);
  else fs.futimesSync(fd, asDouble(sec, nsec), asDouble(sec, nsec));
}

/** The same for a path; `noFollow` sets a symlink's own times. */
export function setPathTimes(path: Buffer, sec: number, nsec: number, noFollow: boolean): void {
  if (addon) addon.setTimes(path, sec, nsec, noFollow);
  else if (noFollow) fs.lutimesSync(path, asDouble(sec, nsec), asDouble(sec, nsec));
  else fs.utimesSync(path, asDouble(sec, nsec), asDouble(sec, nsec));
}

/** True when times are set to the nanosecond (the addon is there). */
export const nanosecondTimes = (): boolean => addon !== null;
