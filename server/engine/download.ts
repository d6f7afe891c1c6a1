import type { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { Destination } from '../destinations/types.js';
import type { BytePath } from '../util/byte-path.js';
import { StreamWriter } from '../util/stream-writer.js';
import { makeEntry } from './format/entry.js';
import { tarHeaders, tarPadding, TAR_END } from './format/tar.js';
import { createParallelGzip } from './format/parallel-gzip.js';
import { layout } from './snapshot-layout.js';
import { readIndex } from './snapshot-index.js';
import { selectEntries } from './selection.js';
import { snapshotContent } from './snapshot-content.js';
import { readManifest } from './restore.js';

export interface DownloadRequest {
  destination: Destination;
  account: string;
  snapshotId: string;
  paths: BytePath[];
  /** With no paths and no databases, everything is downloaded. */
  databases: string[];
  out: Writable;
}

/**
 * Streams a .tar.gz of chosen paths (under `files/`) and database dumps (under
 * `databases/`, as the stored .sql.gz) to `out`. Names keep their exact bytes.
 */
export async function downloadSnapshot(req: DownloadRequest): Promise<{ files: number; bytes: number }> {
  const { destination: dest } = req;
  const dir = layout.snapshotDir(req.account, req.snapshotId);
  const manifest = await readManifest(dest, req.account, req.snapshotId);
  const everything = req.paths.length === 0 && req.databases.length === 0;
  for (const db of req.databases) {
    if (!manifest.databases.some((d) => d.name === db)) throw new Error(`database ${db} is not in snapshot ${req.snapshotId}`);
  }
  const gz = createParallelGzip();
  gz.pipe(req.out);
  const outDone = finished(req.out);
  outDone.catch(() => undefined);
  const w = new StreamWriter(gz);
  let files = 0;
  let bytes = 0;
  const mtimeSec = Math.floor(Date.parse(manifest.finishedAt) / 1000);
  const dirEntry = (path: string) => makeEntry({ kind: 'd', path, mode: 0o755, mtimeSec });

  if ((everything || req.paths.length > 0) && manifest.items.includes('files')) {
    const index = await readIndex(dest, dir);
    const selected = selectEntries(index, req.paths);
    await w.write(tarHeaders(dirEntry('files')));
    let pad = 0;
    for await (const ev of snapshotContent(dest, dir, manifest.structure, selected)) {
      if (ev.type === 'entry') {
        const e = ev.sel.entry;
        const path = e.path === '' ? 'files' : `files/${e.path}`;
        const link = e.kind === 'h' ? `files/${e.link}` : e.link;
        if (e.path !== '') await w.write(tarHeaders({ ...e, path, link }));
        if (e.kind === 'f') { files++; bytes += e.size; pad = tarPadding(e.size); }
      } else if (ev.type === 'data') {
        await w.write(ev.chunk);
      } else if (pad > 0) {
        await w.write(Buffer.alloc(pad));
        pad = 0;
      }
    }
  }
  const dbs = everything ? manifest.databases.map((d) => d.name) : req.databases;
  if (dbs.length > 0) {
    await w.write(tarHeaders(dirEntry('databases')));
    for (const name of dbs) {
      const item = manifest.databases.find((d) => d.name === name)!;
      const size = item.bytes;
      await w.write(tarHeaders(makeEntry({ kind: 'f', path: item.file, mode: 0o600, size, mtimeSec })));
      let got = 0;
      for await (const chunk of dest.createReadStream(`${dir}/${item.file}`) as AsyncIterable<Buffer>) {
        got += chunk.length;
        await w.write(chunk);
      }
      if (got !== size) throw new Error(`the stored dump of ${name} has ${got} bytes, the manifest says ${size}`);
      await w.write(Buffer.alloc(tarPadding(size)));
      files++;
      bytes += size;
    }
  }
  await w.write(TAR_END);
  await w.end();
  await outDone;
  return { files, bytes };
}
