import { DestinationError, type Destination } from '../destinations/types.js';

/**
 * A destination is untrusted input: whoever controls it (an account with a destination of
 * its own, anyone who can write into a provider's folder, a hostile storage host) can put
 * anything there. What Tidemark reads back is bounded and validated before use, and a
 * refusal names the snapshot and the file.
 */
export class SnapshotInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SnapshotInputError';
  }
}

/** A stored copy that ends before the file's size does: damage (a plain Error, as every damage is). */
export function shortContentError(path: string): Error {
  return new Error(`snapshot content is short for ${JSON.stringify(path)}: the destination copy is damaged`);
}

const envNumber = (name: string, fallback: number): number => {
  const v = Number(process.env[name]);
  return Number.isSafeInteger(v) && v > 0 ? v : fallback;
};

/**
 * Upper bounds for what is read back. Far above what a real snapshot holds, far below
 * what exhausts the daemon's memory. The environment may lower or raise them (tests use
 * small values; a server with tens of millions of files per account raises the index ones).
 */
export const limits = {
  /** manifest.json: the skipped list is capped at 500 when written, so a real one is a few hundred KiB. */
  get manifestBytes(): number { return envNumber('TIDEMARK_MAX_MANIFEST_BYTES', 16 << 20); },
  /** files.members.json: one small record per gzip member. */
  get membersBytes(): number { return envNumber('TIDEMARK_MAX_MEMBERS_BYTES', 64 << 20); },
  get accountMetaBytes(): number { return envNumber('TIDEMARK_MAX_ACCOUNT_META_BYTES', 1 << 20); },
  get grantsBytes(): number { return envNumber('TIDEMARK_MAX_GRANTS_BYTES', 64 << 20); },
  /**
   * Entries of one index. A restore or download holds its entries in memory while it
   * selects (about 250 bytes each with their checks), so the default stays well inside
   * Node's default heap of about 4 GiB.
   */
  get indexEntries(): number { return envNumber('TIDEMARK_MAX_INDEX_ENTRIES', 8_000_000); },
  /** Inflated bytes of one index: stops a gzip bomb (and very long paths) long before memory runs out. */
  get indexBytes(): number { return envNumber('TIDEMARK_MAX_INDEX_BYTES', 1536 * 1024 ** 2); },
};

const notFound = (err: unknown): boolean =>
  (err instanceof DestinationError && err.code === 'not-found') || (err as NodeJS.ErrnoException)?.code === 'ENOENT';

/**
 * The type and size of `name` in folder `dir` of the destination, from a listing (lstat):
 * a symlink, fifo or device planted in place of a snapshot's file is refused before it is
 * opened, so a read never blocks on a fifo nor goes where a link points.
 */
export async function requireRegularFile(dest: Destination, dir: string, name: string, what: string): Promise<number> {
  let entries;
  try {
    entries = await dest.list(dir);
  } catch (err) {
    if (notFound(err)) throw new DestinationError(`${what}: not found on the destination`, 'not-found');
    throw err;
  }
  const e = entries.find((x) => x.name === name);
  if (!e) throw new DestinationError(`${what}: not found on the destination`, 'not-found');
  if (e.type !== 'file') throw new SnapshotInputError(`${what} is not a regular file on the destination (${e.type}): refused`);
  return e.size;
}

/**
 * Reads a small file of a snapshot whole, refusing it when it is not a regular file or
 * holds more than `limit` bytes (counted while reading too: the listing may be stale).
 */
export async function readBounded(dest: Destination, rel: string, limit: number, what: string): Promise<Buffer> {
  const slash = rel.lastIndexOf('/');
  const dir = slash < 0 ? '' : rel.slice(0, slash);
  const size = await requireRegularFile(dest, dir, rel.slice(slash + 1), what);
  const tooBig = (): SnapshotInputError => new SnapshotInputError(`${what} is larger than ${limit} bytes: refused as damaged or hostile`);
  if (size > limit) throw tooBig();
  const chunks: Buffer[] = [];
  let got = 0;
  const stream = dest.createReadStream(rel, { start: 0, end: limit + 1 });
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      got += chunk.length;
      if (got > limit) throw tooBig();
      chunks.push(chunk);
    }
  } catch (err) {
    if (notFound(err)) throw new DestinationError(`${what}: not found on the destination`, 'not-found');
    throw err;
  } finally {
    stream.destroy();
  }
  return Buffer.concat(chunks, got);
}

/** JSON.parse with an error that names the file instead of a position in it. */
export function parseJson(raw: Buffer, what: string): unknown {
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch {
    throw new SnapshotInputError(`${what} is not valid JSON`);
  }
}

/** Linux limits: one name 255 bytes, one path 4096. */
export const MAX_PATH_BYTES = 4096;
const MAX_NAME_BYTES = 255;

/** A relative, normalised path: no leading '/', no empty, '.' or '..' part, no NUL, within Linux limits. */
export function isSafeRelative(p: string): boolean {
  if (p === '' || p.length > MAX_PATH_BYTES || p.includes('\0')) return false;
  // One pass over the parts (every index entry is checked: no array of parts per path).
  let start = 0;
  for (;;) {
    let end = p.indexOf('/', start);
    if (end < 0) end = p.length;
    const len = end - start;
    if (len === 0 || len > MAX_NAME_BYTES || (p.charCodeAt(start) === 46 /* . */ && (len === 1 || (len === 2 && p.charCodeAt(start + 1) === 46)))) return false;
    if (end === p.length) return true;
    start = end + 1;
  }
}
