import { nativeAddon } from './addon.js';

interface Addon { mallocPolicy(threshold: number, trim?: number): number }

/**
 * glibc's default mmap threshold (128 KiB), fixed for the process (native/malloc-policy.c):
 * glibc otherwise raises it to the size of each mapped block that is freed, and Node's 1-4 MiB
 * Buffers then stay in its heaps after they are freed. Measured at 200,000 files: the account
 * worker's peak 98 -> 87 MiB in a second incremental, with no CPU difference seen.
 */
export const MMAP_THRESHOLD = 128 << 10;

/**
 * Applies the allocation policy above to this process, as early as possible (before large
 * Buffers are freed). Returns the threshold set, or 0 where it could not be (no addon, not
 * glibc): the process then runs with glibc's defaults, as before.
 */
export function applyMallocPolicy(): number {
  const addon = nativeAddon<Addon>('mallocPolicy');
  return addon ? addon.mallocPolicy(MMAP_THRESHOLD) : 0;
}

/** Blocks below this come from glibc's heap while large Buffers are reused (reuseLargeBuffers). */
export const REUSE_THRESHOLD = 8 << 20;
/** Free memory glibc keeps at the top of its heap then, rather than hand back at once. */
export const REUSE_TRIM = 16 << 20;

/**
 * For a phase that frees and allocates 1-2 MiB Buffers at a high rate (a compressed restore's
 * members, read and inflated): they come from glibc's heap, whose freed blocks are taken again,
 * instead of each being a new mapping. A new mapping's every page faults on its first touch,
 * which on a virtual machine costs more than the copy into it (measured: 1 MiB buffers
 * filled fresh 120-560 MB/s, reused 11 GB/s). Returns the threshold set, or 0.
 */
export function reuseLargeBuffers(): number {
  const addon = nativeAddon<Addon>('mallocPolicy');
  return addon ? addon.mallocPolicy(REUSE_THRESHOLD, REUSE_TRIM) : 0;
}

/** Whether a hold of holdLargeBufferReuse is taken now (for tests). */
export const largeBufferReuseHeld = (): boolean => reuseHolds > 0;

/** glibc's default trim threshold, put back when the last hold below is released. */
const DEFAULT_TRIM = 128 << 10;
let reuseHolds = 0;

/**
 * reuseLargeBuffers for as long as a phase runs (a backup whose worker hands root descriptors:
 * root reads each file of 64 KiB to 1 MiB into a Buffer of its own, and fresh mappings for them
 * faulted 50,000 pages more per 20,000-file backup than the socket's reused chunks; a restore from
 * a remote destination, whose root takes in every byte as 64 KiB socket reads and SSH packets
 * and frees them as fast, in glibc's heap whose top it otherwise handed back and faulted in
 * again and again); the policy
 * of applyMallocPolicy is back once every hold is released. Releasing twice is harmless.
 */
export function holdLargeBufferReuse(): () => void {
  const addon = nativeAddon<Addon>('mallocPolicy');
  if (!addon) return () => undefined;
  if (reuseHolds++ === 0) addon.mallocPolicy(REUSE_THRESHOLD, REUSE_TRIM);
  let released = false;
  return () => {
    if (released) return;
    released = true;
    if (--reuseHolds === 0) addon.mallocPolicy(MMAP_THRESHOLD, DEFAULT_TRIM);
  };
}
