import { FORMAT_VERSION } from '../destinations/local.js';
import { DestinationError, type Destination } from '../destinations/types.js';

export const MARKER_FILE = 'tidemark.json';

/** `<root>/tidemark.json`: says the folder holds Tidemark snapshots, in which format, made by which destination. */
export interface DestinationMarker {
  format: 'tidemark';
  version: number;
  serverId: string;
}

/**
 * Reads the destination's marker without creating it (a driver's `open()` would write a
 * fresh one). Missing: null. Unreadable, not JSON, another format or version: an
 * `invalid` DestinationError that says which.
 */
export async function readMarker(driver: Destination): Promise<DestinationMarker | null> {
  let raw: Buffer;
  try {
    raw = await driver.readFile(MARKER_FILE);
  } catch (err) {
    if (err instanceof DestinationError && err.code === 'not-found') return null;
    throw err;
  }
  let doc: unknown;
  try {
    doc = JSON.parse(raw.toString('utf8'));
  } catch {
    throw new DestinationError(`${MARKER_FILE} at the root of the destination is not valid JSON`, 'invalid');
  }
  const m = (doc ?? {}) as Partial<DestinationMarker>;
  if (typeof m !== 'object' || m.format !== 'tidemark') throw new DestinationError(`${MARKER_FILE} at the root of the destination is not Tidemark's`, 'invalid');
  if (m.version !== FORMAT_VERSION) {
    throw new DestinationError(`${MARKER_FILE} says format version ${JSON.stringify(m.version)}; this Tidemark reads version ${FORMAT_VERSION}`, 'invalid');
  }
  if (typeof m.serverId !== 'string' || m.serverId === '') throw new DestinationError(`${MARKER_FILE} at the root of the destination has no serverId`, 'invalid');
  return { format: 'tidemark', version: m.version, serverId: m.serverId };
}
