import zlib from 'node:zlib';
import { parseEntryStream, type Entry } from './format/entry.js';
import type { Destination } from '../destinations/types.js';
import { layout } from './snapshot-layout.js';

/** Reads a snapshot's whole index (entries in walk order). */
export async function readIndex(dest: Destination, snapshotDir: string): Promise<Entry[]> {
  const entries: Entry[] = [];
  const source = dest.createReadStream(`${snapshotDir}/${layout.index}`).pipe(zlib.createGunzip());
  for await (const ev of parseEntryStream(source)) {
    if (ev.type === 'entry') entries.push(ev.entry);
  }
  return entries;
}
