import crypto from 'node:crypto';
import { nativeAddon } from './addon.js';

interface Addon {
  sha256Open(): unknown;
  sha256Update(handle: unknown, chunk: Buffer): Promise<void>;
  sha256Digest(handle: unknown): Buffer;
  hashSupported(): boolean;
}

const candidate = nativeAddon<Addon>('sha256Open', 'sha256Update', 'sha256Digest', 'hashSupported');
const addon: Addon | null = candidate && candidate.hashSupported() ? candidate : null;

/** Bytes handed to the hash and not hashed yet beyond which `update` asks its caller to wait. */
const MAX_WAITING = 8 << 20;

/** A SHA-256 of a long stream; `update` keeps the chunk until it is hashed. */
export interface StreamHash {
  /** null: go on; a promise: wait for it before handing more (too much is waiting to be hashed). */
  update(chunk: Buffer): Promise<void> | null;
  digest(): Promise<Buffer>;
}

/**
 * SHA-256 whose work runs on libuv's pool (native/sha256-stream.c), one update after the other
 * in the order given; on the event loop with Node's crypto when the addon is not built.
 */
export function streamHash(): StreamHash {
  if (!addon) {
    const h = crypto.createHash('sha256');
    return { update: (chunk) => { h.update(chunk); return null; }, digest: async () => h.digest() };
  }
  const native = addon;
  const handle = native.sha256Open();
  let chain: Promise<void> = Promise.resolve();
  let waiting = 0;
  return {
    update(chunk) {
      waiting += chunk.length;
      chain = chain.then(() => native.sha256Update(handle, chunk)).then(() => { waiting -= chunk.length; });
      // A failure is thrown by digest(), and to whoever waits.
      chain.catch(() => undefined);
      return waiting > MAX_WAITING ? chain : null;
    },
    async digest() {
      await chain;
      return native.sha256Digest(handle);
    },
  };
}
