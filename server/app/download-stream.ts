import type express from 'express';
import type { Context } from '../services/context.js';
import type { Actor } from '../services/actor.js';
import { prepareDownload } from '../services/snapshots.js';
import type { SnapshotRecord } from '../store/snapshots.js';
import type { BytePath } from '../util/byte-path.js';
import { HttpError } from './http-error.js';
import { contentDisposition } from './content-disposition.js';

/** What is sent: a .tar.gz of the choice (named `archiveName`), or one file as itself. */
export type DownloadShape = { archiveName: BytePath } | { file: { name: BytePath; size: number } };

/**
 * Streams the chosen paths and database dumps straight to the browser, so the first bytes
 * leave at once whatever the size (the service's `download` writes a file on the server
 * instead): one regular file as itself, with its name and length; anything else as one
 * .tar.gz. The service's checks (permissions, pre-download hooks) come first and throw
 * before any header is sent. A failure after the headers went out cuts the response, which
 * the browser reports as a failed download rather than a short file.
 */
export async function streamDownload(ctx: Context, actor: Actor, s: SnapshotRecord, paths: BytePath[], databases: string[], res: express.Response, shape?: DownloadShape): Promise<void> {
  const single = shape && 'file' in shape ? shape.file : null;
  const write = await prepareDownload(ctx, s, { paths, databases, ...(single ? { single: {} } : {}) }, actor);
  res.status(200).set(single
    ? { 'Content-Type': 'application/octet-stream', 'Content-Length': String(single.size), 'Content-Disposition': contentDisposition(single.name) }
    : { 'Content-Type': 'application/gzip', 'Content-Disposition': contentDisposition(shape && 'archiveName' in shape ? shape.archiveName : `${s.account}-${s.id}.tar.gz`) });
  res.set({ 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' });
  try {
    await write(res);
  } catch (err) {
    if (res.headersSent) { res.destroy(err as Error); return; }
    // Nothing sent yet (the destination could not be read): an error page, not a broken file.
    for (const h of ['Content-Type', 'Content-Disposition', 'Content-Length']) res.removeHeader(h);
    throw new HttpError(502, 'error.downloadFailed', (err as Error).message);
  }
}
