/**
 * Batches of small files over one SSH exec channel instead of three SFTP requests each: a
 * remote GNU `tar -x` reads a stream of ustar members written here (backups), and a remote
 * `tar -c` sends a batch of named files back (restores, parsed as untrusted input).
 */
import type { ClientChannel } from 'ssh2';
import { DestinationError } from './types.js';

const BLOCK = 512;
/** Members gathered before they go to the channel: one SSH packet carries many small files. */
const COALESCE_BYTES = 256 << 10;
/** Enough of the remote tar's complaints to say what failed. */
const MAX_STDERR = 4096;
/** How long a stopped tar is waited for before its folder is removed anyway. */
const ABORT_WAIT_MS = 5000;

/** Single-quotes a word for a POSIX shell. */
export const shellQuote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * The command that extracts the members written into its stdin under `dir`: regular files
 * only, created with the mode of the header less the umask (as SFTP's open does), the time of
 * extraction as mtime (as a file written over SFTP), never owned by anyone else, never
 * replacing the metadata of a folder that exists. GNU tar without -P strips a leading `/` and
 * refuses `..`.
 */
export const extractCommand = (tar: string, dir: string): string =>
  `cd -- ${shellQuote(dir)} && exec ${tar} -x -f - -m --no-same-owner --no-same-permissions --no-overwrite-dir`;

/** The command that writes the regular files `names` (relative to `dir`) as one ustar stream. */
export const createCommand = (tar: string, dir: string, names: string[]): string =>
  `cd -- ${shellQuote(dir)} && exec ${tar} -c -f - --format=ustar --no-recursion --hard-dereference -- ${names.map(shellQuote).join(' ')}`;

function octal(header: Buffer, offset: number, width: number, value: number): void {
  header.write(value.toString(8).padStart(width - 1, '0'), offset, width - 1, 'ascii');
  header[offset + width - 1] = 0;
}

/**
 * A ustar header of a regular file of mode 0600 (owner and time are not used by the
 * extraction, see extractCommand), or null when the name does not fit one (the caller writes
 * that file another way).
 */
export function ustarHeader(name: string, size: number): Buffer | null {
  const bytes = Buffer.from(name, 'utf8');
  if (bytes.length === 0 || bytes.includes(0) || size < 0 || size >= 8 ** 11) return null;
  let prefix = Buffer.alloc(0);
  let base = bytes;
  if (bytes.length > 100) {
    const cut = bytes.lastIndexOf(0x2f, 155);
    if (cut <= 0 || bytes.length - cut - 1 > 100 || bytes.length - cut - 1 === 0) return null;
    prefix = bytes.subarray(0, cut);
    base = bytes.subarray(cut + 1);
  }
  const h = Buffer.alloc(BLOCK);
  base.copy(h, 0);
  octal(h, 100, 8, 0o600);
  octal(h, 108, 8, 0);
  octal(h, 116, 8, 0);
  octal(h, 124, 12, size);
  octal(h, 136, 12, 0);
  h.fill(0x20, 148, 156);
  h[156] = 0x30; // '0': a regular file
  h.write('ustar\u000000', 257, 8, 'latin1');
  prefix.copy(h, 345);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0'), 148, 6, 'ascii');
  h[154] = 0;
  h[155] = 0x20;
  return h;
}

const padding = (size: number): number => (BLOCK - (size % BLOCK)) % BLOCK;
const ZEROS = Buffer.alloc(2 * BLOCK);

/** What a remote tar's failure means: a full disk is named as such. */
function tarFailure(where: string, stderr: string, code: number | null, signal: string | null): DestinationError {
  const said = stderr.trim().split('\n').slice(-3).join('; ');
  const how = signal ? `was killed (${signal})` : `exited ${code}`;
  if (/no space left|quota exceeded/i.test(stderr)) return new DestinationError(`no space left on the destination (${where}): ${said}`, 'no-space');
  return new DestinationError(`the remote tar writing ${where} ${how}${said ? `: ${said}` : ''}`, 'io');
}

/**
 * One remote `tar -x` fed with files as they come. `append` resolves once the channel has
 * taken the member (its content is not on the server yet); `finish` ends the archive and
 * resolves only when tar exited 0, which is when every member is written. A tar that exits or
 * dies early fails every later `append` and `finish`.
 */
export class RemoteExtraction {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private scheduled = false;
  private drained: Promise<void> | null = null;
  private stderr = '';
  private failure: DestinationError | null = null;
  private ending = false;
  private readonly exited: Promise<void>;

  constructor(private readonly channel: ClientChannel, private readonly where: string) {
    let code: number | null = null;
    let signal: string | null = null;
    channel.on('data', () => undefined);
    channel.stderr.on('data', (d: Buffer) => { if (this.stderr.length < MAX_STDERR) this.stderr += d.toString('utf8'); });
    channel.on('exit', (c: number | null, s?: string) => { code = c; signal = s ?? null; });
    this.exited = new Promise<void>((resolve) => {
      channel.on('close', () => {
        if (code !== 0 || !this.ending) this.failure ??= code === 0 ? new DestinationError(`the remote tar writing ${this.where} stopped before the end of its input`, 'io') : tarFailure(this.where, this.stderr, code, signal);
        resolve();
      });
    });
    channel.on('error', (err: Error) => { this.failure ??= new DestinationError(`the remote tar writing ${this.where} failed: ${err.message}`, 'io'); });
  }

  /** Adds a file named `name` (relative to the extraction's folder); false when the name cannot be a ustar name. */
  async append(name: string, data: Buffer): Promise<boolean> {
    if (this.failure) throw this.failure;
    if (this.ending) throw new Error('append after finish');
    const header = ustarHeader(name, data.length);
    if (!header) return false;
    this.pending.push(header, data);
    const pad = padding(data.length);
    if (pad > 0) this.pending.push(ZEROS.subarray(0, pad));
    this.pendingBytes += BLOCK + data.length + pad;
    if (this.pendingBytes >= COALESCE_BYTES) this.writeOut();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => { this.scheduled = false; this.writeOut(); });
    }
    if (this.drained) await this.drained;
    if (this.failure) throw this.failure;
    return true;
  }

  private writeOut(): void {
    if (this.pendingBytes === 0 || this.failure) return;
    const out = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    if (!this.channel.write(out) && !this.drained) {
      this.drained = new Promise<void>((resolve) => {
        const done = (): void => { this.channel.off('drain', done); this.channel.off('close', done); this.drained = null; resolve(); };
        this.channel.on('drain', done);
        this.channel.on('close', done);
      });
    }
  }

  /** Ends the archive; resolves once tar exited 0 (every member written), else throws why not. */
  async finish(): Promise<void> {
    if (!this.ending) {
      this.ending = true;
      this.writeOut();
      if (!this.failure) this.channel.end(ZEROS);
    }
    await this.exited;
    if (this.failure) throw this.failure;
  }

  /** Stops tar where it is (what it wrote stays; the caller removes it) and waits for it to go. */
  async abort(): Promise<void> {
    if (!this.ending) {
      this.ending = true;
      this.failure ??= new DestinationError(`the remote tar writing ${this.where} was stopped`, 'io');
      // OpenSSH closes a session once its command has exited: one that ignores its input is killed.
      this.channel.signal('KILL');
      this.channel.close();
    }
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.exited, new Promise<void>((resolve) => { timer = setTimeout(resolve, ABORT_WAIT_MS); })]);
    clearTimeout(timer);
  }
}

/** One file asked of a remote `tar -c`: its name there and how many of its first bytes. */
export interface WantedFile {
  name: string;
  size: number;
  resolve(data: Buffer): void;
  reject(err: Error): void;
}

const field = (h: Buffer, offset: number, width: number): string => {
  const end = h.indexOf(0, offset);
  return h.toString('utf8', offset, end < 0 || end > offset + width ? offset + width : end);
};

/** A header's size, or null where it is not plain octal (base-256 sizes are far beyond what is asked). */
function headerSize(h: Buffer): number | null {
  const s = field(h, 124, 12).trim();
  return /^[0-7]{1,11}$/.test(s) ? parseInt(s, 8) : null;
}

function checksumOk(h: Buffer): boolean {
  const stored = field(h, 148, 8).trim();
  if (!/^[0-7]{1,7}$/.test(stored)) return false;
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!;
  return sum === parseInt(stored, 8);
}

/**
 * Reads the output of a remote `tar -c` of `wanted` (createCommand) as untrusted input: each
 * member must be the next file asked for (tar skips the ones it cannot read), a regular file,
 * with a valid header; of each, the first `size` bytes asked are kept and the rest skipped.
 * A file is handed over as soon as its member is complete; the ones never sent, and all of
 * them after anything unexpected, are refused when the channel closes.
 */
export function readRemoteArchive(channel: ClientChannel, where: string, wanted: WantedFile[]): Promise<void> {
  let next = 0;
  let header = Buffer.alloc(0);
  let current: { file: WantedFile; left: number; pad: number; parts: Buffer[]; kept: number } | null = null;
  let broken: DestinationError | null = null;
  let ended = false;
  let stderr = '';
  const settled = new Set<WantedFile>();
  const give = (file: WantedFile, result: Error | Buffer): void => {
    if (settled.has(file)) return;
    settled.add(file);
    if (Buffer.isBuffer(result)) file.resolve(result); else file.reject(result);
  };
  const fail = (why: string): void => { broken ??= new DestinationError(`the remote tar reading ${where} sent ${why}: refused`, 'invalid'); };
  const onHeader = (h: Buffer): void => {
    if (h.every((b) => b === 0)) { ended = true; return; }
    if (!checksumOk(h)) { fail('a damaged header'); return; }
    const prefix = field(h, 345, 155);
    const name = prefix ? `${prefix}/${field(h, 0, 100)}` : field(h, 0, 100);
    const size = headerSize(h);
    const at = wanted.findIndex((w, i) => i >= next && w.name === name);
    if (at < 0 || size === null) { fail(at < 0 ? `an entry that was not asked for (${JSON.stringify(name)})` : `an invalid size for ${name}`); return; }
    // Files tar skipped (its stderr says why) are refused at the end.
    next = at + 1;
    const type = String.fromCharCode(h[156]!);
    const file = wanted[at]!;
    if (type !== '0' && type !== '\0') {
      // Its data (none, for a link) is skipped; give() ignores the file from now on.
      give(file, new DestinationError(`${where}: ${name} is not a regular file on the destination (tar type ${JSON.stringify(type)}): refused`, 'invalid'));
    }
    current = { file, left: size, pad: padding(size), parts: [], kept: 0 };
    if (current.left === 0 && current.pad === 0) { give(current.file, Buffer.alloc(0)); current = null; }
  };
  const onData = (chunk: Buffer): void => {
    let off = 0;
    while (off < chunk.length && !broken && !ended) {
      if (!current) {
        const need = BLOCK - header.length;
        header = Buffer.concat([header, chunk.subarray(off, off + need)]);
        off += Math.min(need, chunk.length - off);
        if (header.length === BLOCK) { const h = header; header = Buffer.alloc(0); onHeader(h); }
        continue;
      }
      const c = current;
      if (c.left > 0) {
        const n = Math.min(c.left, chunk.length - off);
        const keep = Math.min(n, c.file.size - c.kept);
        if (keep > 0) { c.parts.push(Buffer.from(chunk.subarray(off, off + keep))); c.kept += keep; }
        c.left -= n;
        off += n;
      } else {
        const n = Math.min(c.pad, chunk.length - off);
        c.pad -= n;
        off += n;
      }
      if (c.left === 0 && c.pad === 0) { give(c.file, c.parts.length === 1 ? c.parts[0]! : Buffer.concat(c.parts)); current = null; }
    }
    if (broken || ended) channel.removeListener('data', onData);
  };
  channel.on('data', onData);
  channel.stderr.on('data', (d: Buffer) => { if (stderr.length < MAX_STDERR) stderr += d.toString('utf8'); });
  return new Promise<void>((resolve) => {
    channel.on('close', () => {
      if (current && !broken) give(current.file, new DestinationError(`the remote tar reading ${where} stopped in the middle of ${current.file.name}`, 'io'));
      const said = stderr.trim().split('\n').slice(-2).join('; ');
      for (const w of wanted) {
        if (broken) give(w, broken);
        else if (/No such file/i.test(stderr) && stderr.includes(w.name)) give(w, new DestinationError(`not found on the destination: ${w.name}`, 'not-found'));
        else give(w, new DestinationError(`the remote tar reading ${where} did not send ${w.name}${said ? `: ${said}` : ''}`, 'io'));
      }
      resolve();
    });
  });
}
