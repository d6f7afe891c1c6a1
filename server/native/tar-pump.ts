import { nativeAddon } from './addon.js';

interface Addon {
  tarPipe(): [number, number];
  tarPumpOpen(src: number, dst: number): unknown;
  tarPumpRead(handle: unknown, slot: number): Promise<number>;
  tarPumpProcess(handle: unknown, slot: number, length: number): Promise<Buffer>;
  tarPumpWrite(handle: unknown, slot: number, length: number): Promise<void>;
  tarPumpDigest(handle: unknown): Buffer;
  hashSupported(): boolean;
}

const candidate = nativeAddon<Addon>('tarPipe', 'tarPumpOpen', 'tarPumpRead', 'tarPumpProcess', 'tarPumpWrite', 'tarPumpDigest', 'hashSupported');
const addon: Addon | null = candidate && candidate.hashSupported() ? candidate : null;

/** Whether the native copy is there (else the caller keeps its stream pipeline). */
export const tarPumpAvailable = addon !== null;

/** A pipe, both ends close-on-exec: [read end, write end]. */
export function tarPipe(): [number, number] {
  return addon!.tarPipe();
}

export interface TarPump {
  /** The SHA-256 of the regular file whose headers start at `offset`, once its content has passed; forgotten once taken. */
  takeHash(offset: number): Buffer | undefined;
  /** Resolves when the source reached its end and everything was written: bytes copied and their tar digest (tarDigest in tar-hasher.ts). */
  done: Promise<{ bytes: number; tarDigest: Buffer }>;
}

/**
 * Copies the tar read from `src` (a pipe from the account worker) into `dst` in full, on
 * libuv's pool (native/tar-pump.c), with the same per-file hashes and tar digest as TarHasher.
 * While one slot is written and parsed the other is read.
 * `done` settles only once no job uses either descriptor: the caller may then close them.
 * A write that fails (ENOSPC, EROFS) rejects `done` with that error once the reading stopped,
 * so the caller must stop the writer when `onError` is called.
 */
export function pumpTar(src: number, dst: number, onError: (err: Error) => void): TarPump {
  const a = addon!;
  const handle = a.tarPumpOpen(src, dst);
  const hashes = new Map<number, Buffer>();
  const take = (records: Buffer): void => {
    // Offsets stay below 2^53: two 32-bit halves, no BigInt per file.
    for (let o = 0; o + 40 <= records.length; o += 40) hashes.set(records.readUInt32LE(o) + records.readUInt32LE(o + 4) * 0x1_0000_0000, records.subarray(o + 8, o + 40));
  };
  const run = async (): Promise<{ bytes: number; tarDigest: Buffer }> => {
    let bytes = 0;
    let slot = 0;
    let n = await a.tarPumpRead(handle, 0);
    while (n > 0) {
      const jobs = [a.tarPumpProcess(handle, slot, n), a.tarPumpWrite(handle, slot, n), a.tarPumpRead(handle, 1 - slot)] as const;
      // A failed write must stop the writer now (the read waits for its data or its end).
      jobs[0].catch((err: Error) => onError(err));
      jobs[1].catch((err: Error) => onError(err));
      // Every job settled before anything is thrown: none uses a descriptor the caller then closes.
      const [records, all, next] = await Promise.allSettled(jobs);
      for (const r of [records, all, next]) if (r.status === 'rejected') throw r.reason;
      take((records as PromiseFulfilledResult<Buffer>).value);
      bytes += n;
      slot = 1 - slot;
      n = (next as PromiseFulfilledResult<number>).value;
    }
    return { bytes, tarDigest: a.tarPumpDigest(handle) };
  };
  const done = run();
  done.catch((err: Error) => onError(err));
  return {
    takeHash(offset) {
      const h = hashes.get(offset);
      if (h) hashes.delete(offset);
      return h;
    },
    done,
  };
}

