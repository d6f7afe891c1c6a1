import { createRequire } from 'node:module';

let loaded: Record<string, unknown> | null | undefined;

/**
 * The project's native addon (native/, built by scripts/build-native.mjs beside this module as
 * dist/server/native/tidemark.node, readable by every user: the account worker loads it too),
 * when it is built and has every function named; null otherwise, and the caller does without.
 */
export function nativeAddon<T>(...functions: (keyof T & string)[]): T | null {
  if (loaded === undefined) {
    try {
      loaded = createRequire(import.meta.url)('./tidemark.node') as Record<string, unknown>;
    } catch {
      loaded = null;
    }
  }
  if (!loaded || functions.some((f) => typeof loaded![f] !== 'function')) return null;
  return loaded as T;
}
