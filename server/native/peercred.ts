import net from 'node:net';
import { createRequire } from 'node:module';

/** What the kernel recorded about the process at the other end of a Unix socket when it connected. */
export interface PeerCred { pid: number; uid: number; gid: number }

interface Addon { getPeerCred(fd: number): PeerCred }

let addon: Addon | null = null;
let loadError: string | null = null;
try {
  // Built by scripts/build-native.mjs beside this module (dist/server/native/tidemark.node).
  addon = createRequire(import.meta.url)('./tidemark.node') as Addon;
} catch (err) {
  loadError = (err as Error).message;
}

/** Why the addon could not be loaded, or null when it is there. */
export const peerCredUnavailable = (): string | null => loadError;

/**
 * The credentials of the peer of an accepted Unix socket (SO_PEERCRED), or null when they
 * cannot be known (no addon, not a Unix socket, closed): a caller then refuses.
 */
export function peerCredOf(socket: net.Socket): PeerCred | null {
  if (!addon) return null;
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) return null;
  try {
    const c = addon.getPeerCred(fd);
    return Number.isInteger(c.uid) && Number.isInteger(c.gid) ? c : null;
  } catch {
    return null;
  }
}
