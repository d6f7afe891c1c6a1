import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import crypto from 'node:crypto';
import type { Readable, Writable } from 'node:stream';
import { DestinationError, type DirEntry, type Destination, type SpaceInfo } from './types.js';
import { describeFsError } from './errors.js';

export const FORMAT_VERSION = 1;

/**
 * A directory on this server (a mounted disk, NFS, …). Everything it writes is
 * root-only: ownership and modes of the backed-up files live in the index.
 */
export class LocalDestination implements Destination {
  readonly type = 'local';
  /** Local files open and close in microseconds; a few in flight keep the disk busy. */
  readonly parallelism = 8;
  private readonly root: string;

  constructor(root: string) {
    if (!path.isAbsolute(root)) throw new DestinationError(`the destination path must be absolute: ${root}`, 'invalid');
    this.root = path.resolve(root);
  }

  private abs(rel: string): string {
    if (rel.startsWith('/') || rel.split('/').some((p) => p === '..')) {
      throw new DestinationError(`invalid path on destination: ${rel}`, 'invalid');
    }
    return rel === '' ? this.root : path.join(this.root, rel);
  }

  /** The root must already exist: creating it would write backups onto the system disk when a mount is missing. */
  async open(): Promise<void> {
    let st: fs.Stats;
    try {
      st = await fsp.stat(this.root);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new DestinationError(`the destination path ${this.root} does not exist (create or mount it first)`, 'unreachable');
      }
      throw describeFsError(err, this.root);
    }
    if (!st.isDirectory()) throw new DestinationError(`the destination path ${this.root} is not a directory`, 'invalid');
    try {
      await fsp.access(this.root, fs.constants.W_OK);
    } catch (err) {
      throw describeFsError(err, this.root);
    }
    const marker = path.join(this.root, 'tidemark.json');
    if (!fs.existsSync(marker)) {
      const meta = { format: 'tidemark', version: FORMAT_VERSION, serverId: crypto.randomUUID(), createdAt: new Date().toISOString() };
      await this.writeFile('tidemark.json', JSON.stringify(meta, null, 2) + '\n');
    }
  }

  async close(): Promise<void> {}

  async mkdir(rel: string): Promise<void> {
    try {
      await fsp.mkdir(this.abs(rel), { recursive: true, mode: 0o700 });
    } catch (err) {
      throw describeFsError(err, rel);
    }
  }

  async writeFile(rel: string, data: Buffer | string): Promise<void> {
    const target = this.abs(rel);
    const tmp = `${target}.tmp-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
    try {
      await fsp.mkdir(path.dirname(target), { recursive: true, mode: 0o700 });
      const fh = await fsp.open(tmp, 'wx', 0o600);
      try {
        await fh.writeFile(data);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await fsp.rename(tmp, target);
    } catch (err) {
      await fsp.rm(tmp, { force: true }).catch(() => undefined);
      throw describeFsError(err, rel);
    }
  }

  createWriteStream(rel: string): Writable {
    const target = this.abs(rel);
    fs.mkdirSync(path.dirname(target), { recursive: true, mode: 0o700 });
    const stream = fs.createWriteStream(target, { flags: 'w', mode: 0o600, highWaterMark: 1 << 20 });
    return stream;
  }

  async openWriteFd(rel: string): Promise<number> {
    const target = this.abs(rel);
    try {
      await fsp.mkdir(path.dirname(target), { recursive: true, mode: 0o700 });
      return fs.openSync(target, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC | fs.constants.O_NOFOLLOW, 0o600);
    } catch (err) {
      throw describeFsError(err, rel);
    }
  }

  async readFile(rel: string): Promise<Buffer> {
    try {
      return await fsp.readFile(this.abs(rel));
    } catch (err) {
      throw describeFsError(err, rel);
    }
  }

  createReadStream(rel: string, range?: { start: number; end?: number }): Readable {
    const opts: { start?: number; end?: number; highWaterMark: number } = { highWaterMark: 1 << 20 };
    if (range) {
      opts.start = range.start;
      if (range.end !== undefined) opts.end = range.end - 1;
    }
    return fs.createReadStream(this.abs(rel), opts);
  }

  async exists(rel: string): Promise<boolean> {
    try {
      await fsp.lstat(this.abs(rel));
      return true;
    } catch {
      return false;
    }
  }

  async list(rel: string): Promise<DirEntry[]> {
    try {
      const dir = this.abs(rel);
      const names = await fsp.readdir(dir);
      const out: DirEntry[] = [];
      for (const name of names.sort()) {
        const st = await fsp.lstat(path.join(dir, name));
        const type = st.isDirectory() ? 'dir' : st.isFile() ? 'file' : st.isSymbolicLink() ? 'link' : 'other';
        out.push({ name, type, size: st.size, mtimeMs: st.mtimeMs });
      }
      return out;
    } catch (err) {
      throw describeFsError(err, rel);
    }
  }

  async link(existing: string, created: string): Promise<void> {
    // Synchronous on purpose: a local link(2) takes microseconds, less than the promise
    // round trip through the thread pool, and incremental runs make tens of thousands.
    try {
      fs.linkSync(this.abs(existing), this.abs(created));
    } catch (err) {
      throw describeFsError(err, created);
    }
  }

  async rename(from: string, to: string): Promise<void> {
    try {
      await fsp.rename(this.abs(from), this.abs(to));
    } catch (err) {
      throw describeFsError(err, to);
    }
  }

  async remove(rel: string): Promise<void> {
    if (rel === '') throw new DestinationError('refusing to remove the destination root', 'invalid');
    try {
      await fsp.rm(this.abs(rel), { recursive: true, force: true });
    } catch (err) {
      throw describeFsError(err, rel);
    }
  }

  async space(): Promise<SpaceInfo> {
    try {
      const s = await fsp.statfs(this.root);
      return { totalBytes: s.blocks * s.bsize, freeBytes: s.bavail * s.bsize };
    } catch (err) {
      throw describeFsError(err, this.root);
    }
  }

  async linkCount(rel: string): Promise<number> {
    try {
      return (await fsp.lstat(this.abs(rel))).nlink;
    } catch (err) {
      throw describeFsError(err, rel);
    }
  }

  async cloneTree(from: string, to: string): Promise<void> {
    const walk = async (src: string, dst: string): Promise<void> => {
      await fsp.mkdir(dst, { mode: 0o700 });
      for (const e of await fsp.readdir(src, { withFileTypes: true })) {
        const s = path.join(src, e.name);
        const d = path.join(dst, e.name);
        if (e.isDirectory()) await walk(s, d);
        else if (e.isFile()) fs.linkSync(s, d);
      }
    };
    try {
      await walk(this.abs(from), this.abs(to));
    } catch (err) {
      throw describeFsError(err, to);
    }
  }

  /** Linking file by file is as fast as any clone here, and needs no pruning afterwards. */
  async cloneIsServerSide(): Promise<boolean> {
    return false;
  }

  /** Local only: the absolute path, for tools that run on this server. */
  pathOf(rel: string): string {
    return this.abs(rel);
  }
}
