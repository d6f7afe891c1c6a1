import { createRequire } from 'node:module';

interface Addon {
  writeNewFile(path: string, parts: Buffer[], mode: number, hash: boolean): Promise<Buffer | undefined>;
  hashSupported(): boolean;
}

let addon: Addon | null = null;
try {
  // Built by scripts/build-native.mjs beside this module (dist/server/native/tidemark.node).
  const loaded = createRequire(import.meta.url)('./tidemark.node') as Partial<Addon>;
  if (typeof loaded.writeNewFile === 'function' && typeof loaded.hashSupported === 'function') addon = loaded as Addon;
} catch {
  addon = null;
}

const hashes = addon?.hashSupported() ?? false;

/**
 * Creates or truncates `path` (never through a symlink at it: ELOOP), writes `parts` in full
 * and closes it, as one job on libuv's pool; with `hash`, resolves with the SHA-256 of what
 * was written. null when the addon is not built (or, with `hash`, has no SHA-256): the caller
 * writes the file itself.
 */
export function writeNewFileOffLoop(path: string, parts: Buffer[], mode: number, hash: boolean): Promise<Buffer | undefined> | null {
  if (!addon || (hash && !hashes)) return null;
  return addon.writeNewFile(path, parts, mode, hash);
}
