import { nativeAddon } from './addon.js';

const addon = nativeAddon<{ pageAlignedBuffer(size: number): Buffer }>('pageAlignedBuffer');

/**
 * `size` bytes (not cleared) that start on a page boundary (native/aligned-buffer.c), for
 * memory reused to hold content a pool job writes to files: the kernel's copy of a write from
 * a source 16 bytes into a page (where Node's large Buffers start) ran about ten times slower
 * on this VM's AMD processor. Without the addon, an ordinary Buffer.
 */
export function pageAlignedBuffer(size: number): Buffer {
  return addon ? addon.pageAlignedBuffer(size) : Buffer.allocUnsafeSlow(size);
}
