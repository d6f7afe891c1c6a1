import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
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
import { NotInSnapshotError, selectEntries } from './selection.js';
import { contentLayout, snapshotContent } from './snapshot-content.js';
import { readManifest, withoutPaths } from './restore.js';
import { requireRegularFile } from './untrusted-input.js';

export interface DownloadRequest {
  destination: Destination;
  account: string;
  snapshotId: string;
  paths: BytePath[];
  /** With no paths and no databases, everything is downloaded. */
  databases: string[];
  /** Left out with all they hold (another site nested in a site's folder). */
  excludePaths?: BytePath[];
  out: Writable;
  /** Files made for this download (a site's table dump, its description), added at the end: a local file read whole, or a small text. */
  extra?: { path: string; file?: string; text?: string }[];
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
    if (!manifest.databases.some((d) => d.name === db)) throw new NotInSnapshotError(`database ${db} is not in snapshot ${req.snapshotId}`);
  }
  // The index is read and checked before the first byte goes out: a refused snapshot is an
  // error answer, not an archive cut short.
  const withFiles = (everything || req.paths.length > 0) && manifest.items.includes('files');
  const selected = withFiles ? withoutPaths(selectEntries(await readIndex(dest, dir), req.paths), req.excludePaths ?? []) : [];
  const gz = createParallelGzip();
  gz.pipe(req.out);
  const outDone = finished(req.out);
  outDone.catch(() => undefined);
  const w = new StreamWriter(gz);
  let files = 0;
  let bytes = 0;
  const mtimeSec = Math.floor(Date.parse(manifest.finishedAt) / 1000);
  const dirEntry = (path: string) => makeEntry({ kind: 'd', path, mode: 0o755, mtimeSec });

  if (withFiles) {
    await w.write(tarHeaders(dirEntry('files')));
    let pad = 0;
    for await (const ev of snapshotContent(dest, dir, manifest.structure, selected, contentLayout(manifest))) {
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
      // The layout names the file (never the manifest), and no more than the header's size
      // is copied: a longer file on the destination cannot add entries to this archive.
      const file = layout.database(name);
      const size = item.bytes;
      if (!Number.isSafeInteger(size) || size < 0) throw new Error(`snapshot ${req.snapshotId}: the manifest gives no valid size for database ${name}`);
      await requireRegularFile(dest, `${dir}/databases`, file.slice('databases/'.length), `snapshot ${req.snapshotId}: ${file}`);
      await w.write(tarHeaders(makeEntry({ kind: 'f', path: file, mode: 0o600, size, mtimeSec })));
      let got = 0;
      const stream = dest.createReadStream(`${dir}/${file}`, { start: 0, end: size + 1 });
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        got += chunk.length;
        if (got > size) { stream.destroy(); break; }
        await w.write(chunk);
      }
      if (got !== size) throw new Error(`the stored dump of ${name} has ${got > size ? 'more' : got} bytes, the manifest says ${size}`);
      await w.write(Buffer.alloc(tarPadding(size)));
      files++;
      bytes += size;
    }
  }
  for (const x of req.extra ?? []) {
    const body = x.text !== undefined ? Buffer.from(x.text) : null;
    const size = body ? body.length : fs.statSync(x.file!).size;
    await w.write(tarHeaders(makeEntry({ kind: 'f', path: x.path, mode: 0o600, size, mtimeSec })));
    if (body) await w.write(body);
    else for await (const chunk of fs.createReadStream(x.file!) as AsyncIterable<Buffer>) await w.write(chunk);
    await w.write(Buffer.alloc(tarPadding(size)));
    files++;
    bytes += size;
  }
  await w.write(TAR_END);
  await w.end();
  await outDone;
  return { files, bytes };
}

export interface FileDownloadRequest {
  destination: Destination;
  account: string;
  snapshotId: string;
  /** A regular file or a hard link (its content is that of the file it shares). */
  path: BytePath;
  out: Writable;
  /** Stops after this many bytes (a preview); the whole file when absent. */
  maxBytes?: number;
}

/**
 * Streams one file's content as it is, no archive around it: a file downloaded "as itself".
 * The content is checked against its hash as it streams; a mismatch cuts the stream before
 * its end, so a damaged copy is never taken for the file.
 */
export async function downloadFile(req: FileDownloadRequest): Promise<{ files: number; bytes: number }> {
  const dir = layout.snapshotDir(req.account, req.snapshotId);
  const manifest = await readManifest(req.destination, req.account, req.snapshotId);
  if (!manifest.items.includes('files')) throw new Error(`snapshot ${req.snapshotId} holds no files`);
  const sel = selectEntries(await readIndex(req.destination, dir), [req.path]).find((x) => x.entry.path === req.path);
  if (!sel || sel.entry.kind !== 'f') throw new Error(`not a regular file in snapshot ${req.snapshotId}`);
  const limit = req.maxBytes ?? Infinity;
  const w = new StreamWriter(req.out);
  let bytes = 0;
  for await (const ev of snapshotContent(req.destination, dir, manifest.structure, [sel])) {
    if (ev.type !== 'data') continue;
    const chunk = bytes + ev.chunk.length > limit ? ev.chunk.subarray(0, limit - bytes) : ev.chunk;
    await w.write(chunk);
    bytes += chunk.length;
    if (bytes >= limit) break;
  }
  await w.end();
  return { files: 1, bytes };
}

/**
 * A file being written for `download --out`: a new temporary file beside `out`, with a
 * random name, created with O_EXCL|O_NOFOLLOW (a symlink or file planted at that name,
 * e.g. in /tmp, makes the open fail instead of being followed or truncated), then renamed
 * over `out` (rename replaces a symlink at `out`, never writes through it).
 */
export function openDownloadFile(out: string): { stream: Writable; commit: () => void; discard: () => void } {
  const dir = path.dirname(path.resolve(out));
  const tmp = path.join(dir, `.${path.basename(out)}.tidemark-${crypto.randomBytes(8).toString('hex')}.part`);
  const flags = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW;
  const fd = fs.openSync(tmp, flags, 0o600);
  const stream = fs.createWriteStream('', { fd, autoClose: true });
  return {
    stream,
    commit: () => fs.renameSync(tmp, out),
    discard: () => { stream.destroy(); fs.rmSync(tmp, { force: true }); },
  };
}
