import fs from 'node:fs';
import zlib from 'node:zlib';
import { parseEntryStream, type Entry } from '../../server/engine/format/entry.js';

/** The entries of a snapshot's index file (`index.bin.gz`) as stored, read without any check. */
export async function readIndexFile(file: string): Promise<Entry[]> {
  const out: Entry[] = [];
  const raw = zlib.gunzipSync(fs.readFileSync(file));
  for await (const ev of parseEntryStream((async function* () { yield raw; })())) if (ev.type === 'entry') out.push(ev.entry);
  return out;
}

/** Damages a stored file the way a bad disk or a hostile destination would: one byte at `at` changed in place. */
export function flipByte(file: string, at: number): void {
  const fd = fs.openSync(file, 'r+');
  try {
    const b = Buffer.alloc(1);
    fs.readSync(fd, b, 0, 1, at);
    b[0] = b[0]! ^ 0x20;
    fs.writeSync(fd, b, 0, 1, at);
  } finally {
    fs.closeSync(fd);
  }
}
