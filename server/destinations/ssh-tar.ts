/**
 * Small files of a backup over one SSH exec channel instead of three SFTP requests each: a
 * remote GNU `tar -x` reads a stream of ustar members written here. (Restores read their
 * small files the other way, through one remote `tar -c` per folder: ssh-tar-read.ts.)
 */
import type { ClientChannel } from 'ssh2';
import { DestinationError } from './types.js';

const BLOCK = 512;
/** Small pieces gathered before they go to the channel: one SSH packet carries many small files. */
const COALESCE_BYTES = 256 << 10;
/**
 * A piece at least this long goes to the channel as it is (ssh2 copies it into its packets
 * anyway): gathering it into a larger buffer first was a second copy of nearly every byte,
 * into a fresh allocation each time. Shorter pieces (headers, padding, small files) are
 * gathered, so that they do not each cost a packet.
 */
const DIRECT_BYTES = 16 << 10;
/** Enough of the remote tar's complaints to say what failed. */
const MAX_STDERR = 4096;
/** How long a stopped tar is waited for before its folder is removed anyway. */
const ABORT_WAIT_MS = 5000;

/**
 * The remote tar's record: 256 blocks (128 KiB) instead of GNU tar's 20 (10 KiB), so that it
 * reads the pipe from sshd in reads as large as the pipe allows, not several per SSH packet.
 * Measured on a 316 MB stream of small files fed in 32 KiB writes: 0.94-1.15 → 0.74-0.86
 * CPU seconds. Reading its standard input, GNU tar takes a short last record (-B is implied).
 */
const RECORD_BLOCKS = 256;

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
  `cd -- ${shellQuote(dir)} && exec ${tar} -x -f - -b ${RECORD_BLOCKS} -m --no-same-owner --no-same-permissions --no-overwrite-dir`;

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
  for (let i = 0; i < BLOCK; i++) sum += h[i]!;
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
  /** What goes to the channel next, in order: pieces as they are, and gathered short pieces. */
  private ready: Buffer[] = [];
  /** Short pieces being gathered (they follow every piece of `ready`). */
  private gathering: Buffer[] = [];
  private gatheredBytes = 0;
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

  /**
   * Adds a file named `name` (relative to the extraction's folder) with the content `parts`,
   * which are held (not copied) until the channel has taken them; false when the name cannot
   * be a ustar name.
   */
  async append(name: string, parts: Buffer | readonly Buffer[]): Promise<boolean> {
    if (this.failure) throw this.failure;
    if (this.ending) throw new Error('append after finish');
    const pieces = Buffer.isBuffer(parts) ? [parts] : parts;
    let size = 0;
    for (const p of pieces) size += p.length;
    const header = ustarHeader(name, size);
    if (!header) return false;
    this.add(header);
    for (const p of pieces) if (p.length > 0) this.add(p);
    const pad = padding(size);
    if (pad > 0) this.add(ZEROS.subarray(0, pad));
    if (this.pendingBytes >= COALESCE_BYTES) this.writeOut();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => { this.scheduled = false; this.writeOut(); });
    }
    if (this.drained) await this.drained;
    if (this.failure) throw this.failure;
    return true;
  }

  private add(piece: Buffer): void {
    this.pendingBytes += piece.length;
    if (piece.length >= DIRECT_BYTES) {
      this.closeGathering();
      this.ready.push(piece);
      return;
    }
    this.gathering.push(piece);
    this.gatheredBytes += piece.length;
    if (this.gatheredBytes >= COALESCE_BYTES) this.closeGathering();
  }

  private closeGathering(): void {
    if (this.gatheredBytes === 0) return;
    this.ready.push(this.gathering.length === 1 ? this.gathering[0]! : Buffer.concat(this.gathering, this.gatheredBytes));
    this.gathering = [];
    this.gatheredBytes = 0;
  }

  private writeOut(): void {
    if (this.pendingBytes === 0 || this.failure) return;
    this.closeGathering();
    const out = this.ready;
    this.ready = [];
    this.pendingBytes = 0;
    let room = true;
    for (const b of out) room = this.channel.write(b);
    if (!room && !this.drained) {
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

