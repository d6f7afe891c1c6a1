import type express from 'express';
import type { Context } from '../services/context.js';
import type { Actor } from '../services/actor.js';
import { prepareDownload } from '../services/snapshots.js';
import type { SnapshotRecord } from '../store/snapshots.js';
import type { BytePath } from '../util/byte-path.js';
import { HttpError } from './http-error.js';

/**
 * Streams a .tar.gz of the chosen paths and database dumps straight to the browser, so
 * the first bytes leave at once whatever the size (the service's `download` writes a
 * file on the server instead). The service's checks (permissions, pre-download hooks)
 * come first and throw before any header is sent. A failure after the headers went out
 * cuts the response, which the browser reports as a failed download rather than a short archive.
 */
export async function streamDownload(ctx: Context, actor: Actor, s: SnapshotRecord, paths: BytePath[], databases: string[], res: express.Response): Promise<void> {
  const write = await prepareDownload(ctx, s, { paths, databases }, actor);
  res.status(200).set({
    'Content-Type': 'application/gzip',
    'Content-Disposition': `attachment; filename="${s.account}-${s.id}.tar.gz"`,
    'Cache-Control': 'no-store',
  });
  try {
    await write(res);
  } catch (err) {
    if (res.headersSent) { res.destroy(err as Error); return; }
    // Nothing sent yet (the destination could not be read): an error page, not a broken file.
    for (const h of ['Content-Type', 'Content-Disposition']) res.removeHeader(h);
    throw new HttpError(502, 'error.downloadFailed', (err as Error).message);
  }
}
