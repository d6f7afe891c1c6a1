import crypto from 'node:crypto';
import net from 'node:net';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Client, ClientChannel, ConnectConfig, SFTPWrapper, FileEntryWithStats } from 'ssh2';
import { DestinationError, type DirEntry, type Destination, type SpaceInfo, type HardLinks, type ReadFlow } from './types.js';
import { FORMAT_VERSION } from './local.js';
import { InFlight } from '../util/in-flight.js';
import { RemoteExtraction, extractCommand, shellQuote } from './ssh-tar.js';
import { listCommand, nameList, readRemoteArchive } from './ssh-tar-read.js';
import { coalesceWrites, readsIntoSlabs, slabCollector } from './ssh-socket.js';
import { poolClientPadding } from './ssh-padding.js';
import { fitsSyncShell, SYNC_SHELL_COMMAND, SyncShell, type SyncTarget } from './ssh-sync-shell.js';

export interface SshSettings {
  host: string;
  port: number;
  username: string;
  password?: string;
  privateKey?: string;
  passphrase?: string;
  /** Absolute directory on the server that holds the snapshots. */
  path: string;
  timeoutMs: number;
  /** SHA256 fingerprint (base64, as ssh-keygen prints it) pinned on first validation. */
  hostKeyFingerprint?: string;
  /** Files in transfer at once: their SFTP requests share the connection instead of waiting in turn. */
  parallelTransfers?: number;
}

/**
 * For a destination an account holder added: where the server may connect (the address
 * returned is the one connected to), and where the reason of a failed connection goes (the
 * provider's log). The account sees only ACCOUNT_CONNECT_FAILED, whatever failed, so that it
 * cannot use the server to map a network.
 */
export interface ConnectGuard {
  resolve(host: string, port: number): Promise<string>;
  report(detail: string): void;
}

export const ACCOUNT_CONNECT_FAILED = 'could not connect to the SSH destination (the address is not allowed, or the server did not answer or refused the login); the provider\'s log has the reason';

export const DEFAULT_PARALLEL_TRANSFERS = 8;
/** SFTP requests that carry no data (links, removals) cost a round trip each: keep many going. */
const SMALL_REQUESTS_IN_FLIGHT = 64;
/** Small files in transfer at once (writeSmallFile: at most 1 MiB each, so 32 MiB held at most). */
const SMALL_FILES_IN_FLIGHT = 32;
const COMMAND_PROBE = 'tidemark-commands-ok';
/** A file read by createReadStream: SFTP reads in flight at once, and bytes asked for ahead of the reader. */
const READS_IN_FLIGHT = 16;
const READ_AHEAD_BYTES = 4 << 20;
/** A remote `tar -c` silent for this many connection timeouts is given up (its files are read over SFTP). */
const TAR_READ_IDLE_TIMEOUTS = 6;

/**
 * Makes an ssh2 write stream flush the file on the server (fsync@openssh.com) once every
 * write is acknowledged and before the handle is closed, when the server offers it. A failed
 * fsync fails the stream: the file may not be on the disk.
 */
const offersFsync = (sftp: SFTPWrapper): boolean => (sftp as unknown as { _extensions?: Record<string, string> })._extensions?.['fsync@openssh.com'] === '1';

/**
 * The values of requests sent back to back, once every one is answered (none is left running
 * behind a failure); the first failure otherwise.
 */
async function allAnswered<T>(answers: Promise<T>[]): Promise<T[]> {
  const settled = await Promise.allSettled(answers);
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  return settled.map((r) => (r as PromiseFulfilledResult<T>).value);
}

/** The account folder a destination path is in ('' for a file at the root). */
const topFolder = (rel: string): string => (rel.includes('/') ? rel.slice(0, rel.indexOf('/')) : '');

function flushBeforeClose(sftp: SFTPWrapper, remote: Writable & { handle?: Buffer | null }): void {
  if (!offersFsync(sftp)) return;
  // ssh2 calls _final after the last write's answer; its own _final only closes the handle.
  const closeHandle = (remote as unknown as { _final: (cb: (err?: Error | null) => void) => void })._final.bind(remote);
  (remote as unknown as { _final: (cb: (err?: Error | null) => void) => void })._final = (cb) => {
    const fsync = (): void => {
      sftp.ext_openssh_fsync(remote.handle as Buffer, (err: Error | null | undefined) => {
        if (err) { cb(err); remote.destroy(); return; }
        closeHandle(cb);
      });
    };
    if (Buffer.isBuffer(remote.handle)) fsync(); else remote.once('open', fsync);
  };
}

const SFTP_NO_SUCH_FILE = 2;
const SFTP_PERMISSION_DENIED = 3;
const SFTP_FAILURE = 4;
/** Below this much free space, a write that failed for no stated reason failed for want of space. */
const NEARLY_FULL_BYTES = 1 << 20;

const CONNECT_ERRORS: Record<string, string> = {
  ECONNREFUSED: 'connection refused, is the SSH server running on that port?',
  EHOSTUNREACH: 'no route to host',
  ENETUNREACH: 'network unreachable',
  ENOTFOUND: 'unknown host name',
  EAI_AGAIN: 'host name lookup failed',
  ECONNRESET: 'connection reset by the server',
};

/** The fingerprint `ssh-keygen -l` prints for a host key: base64 of its SHA-256, unpadded. */
export const fingerprintOf = (key: Buffer): string => crypto.createHash('sha256').update(key).digest('base64').replace(/=+$/, '');

const code = (err: unknown): number | undefined => (err as { code?: number }).code;

/**
 * A directory on another server, reached over SSH and written with SFTP only (the
 * account on the remote side needs no shell). Hard links use OpenSSH's
 * hardlink@openssh.com extension, free space statvfs@openssh.com, atomic replaces
 * posix-rename@openssh.com.
 *
 * Durability: where the user may run commands and `sync -f` works (asked once per
 * connection, before the first file is written), `flush` runs `sync -f` on the filesystem of
 * the folders it is given and of every account folder written to since the last flush: one
 * syncfs(2) on the server flushes the files' content and every folder entry (new names,
 * renames, links) at once, as Local's flush does; `flushAhead` runs such a `sync -f` while the
 * backup goes on, so that the server's disk writes during the run. Elsewhere (ForceCommand internal-sftp)
 * every file is flushed on the server before it is closed, with fsync@openssh.com when the
 * server offers it (OpenSSH does since 6.5), and folder entries are committed by the
 * server's filesystem on its own schedule (ext4: within 5 s by default): a snapshot whose
 * folder entries were lost is then missing or `.partial-`, never listed with empty files,
 * because each file's content is flushed before the manifest is written. A server that
 * offers neither gives no guarantee at all. A per-file fsync costs the server a journal
 * commit per file: 20,000 small files took 3.6x `rsync -e ssh` with it.
 */
export class SshDestination implements Destination, HardLinks {
  /** Both capabilities live on the driver itself. */
  readonly hardLinks: HardLinks = this;
  readonly type = 'ssh';
  private client: Client | null = null;
  private sftp: SFTPWrapper | null = null;
  private readonly dirs = new Set<string>();
  private readonly dirsBeingMade = new Map<string, Promise<void>>();
  /** The host key seen at the last connection (to pin on first validation). */
  seenFingerprint: string | null = null;
  private failure: Error | null = null;
  /** Streams in use: a lost connection must fail them, not leave them waiting forever. */
  private readonly live = new Set<Readable | Writable>();
  /** Whether the server runs commands for this user (null: not asked yet on this connection). */
  private commands: Promise<boolean> | null = null;
  readonly parallelism: number;
  readonly smallFileParallelism: number;
  private socket: net.Socket | null = null;
  private sentOnClosedSockets = 0;
  /** Whether `sync -f` runs on the server (null: not asked yet on this connection). */
  private syncCommand: Promise<boolean> | null = null;
  /** What the server runs for this user: asked once per connection, in one command. */
  private probe: Promise<{ commands: boolean; syncF: boolean; gnuTar: boolean }> | null = null;
  /** The remote tar program (tests put a hostile or missing one here). */
  private tarProgram = 'tar';
  /**
   * Small files of a backup go into one remote `tar -x` per folder of their first two
   * components (a snapshot's folder), where commands and `sync -f` run and tar is GNU tar.
   */
  private readonly extractions = new Map<string, Promise<RemoteExtraction>>();
  /**
   * The account folders (first component; '' for the root) of files written without an
   * fsync of their own since the last flush: `flush` syncs their filesystems too, in case
   * one is a mount of its own.
   */
  private readonly unsynced = new Set<string>();
  /** The write-out flushAhead started, while it runs. */
  private aheadRunning: Promise<void> | null = null;
  /** The first error a write-out by flushAhead met: the next flush throws it (see flushAhead). */
  private aheadFailure: Error | null = null;
  /** The connection's remote shell for `sync -f` (ssh-sync-shell.ts), started at the first write-out. */
  private syncShell: Promise<SyncShell | null> | null = null;

  constructor(private readonly settings: SshSettings, private readonly guard: ConnectGuard | null = null) {
    if (!path.posix.isAbsolute(settings.path)) throw new DestinationError(`the remote path must be absolute: ${settings.path}`, 'invalid');
    this.parallelism = settings.parallelTransfers ?? DEFAULT_PARALLEL_TRANSFERS;
    // Measured on loopback (3,000 files of 6 KB): 8 at once 7.0 s, 32 at once 3.3 s.
    this.smallFileParallelism = Math.max(this.parallelism, SMALL_FILES_IN_FLIGHT);
  }

  private get where(): string {
    return `${this.settings.username}@${this.settings.host}:${this.settings.port}`;
  }

  private abs(rel: string): string {
    if (rel.startsWith('/') || rel.split('/').some((p) => p === '..')) throw new DestinationError(`invalid path on destination: ${rel}`, 'invalid');
    return rel === '' ? this.settings.path : path.posix.join(this.settings.path, rel);
  }

  private connect(): Promise<SFTPWrapper> {
    if (this.sftp) return Promise.resolve(this.sftp);
    if (!this.guard) return this.connectTo(this.settings.host);
    const guard = this.guard;
    return guard.resolve(this.settings.host, this.settings.port).then(
      (address) => this.connectTo(address),
      (err: Error) => { throw this.describe(err, null); },
    );
  }

  /** Connects to `address` (the host as given, or the address the guard checked). */
  private async connectTo(address: string): Promise<SFTPWrapper> {
    const s = this.settings;
    // Loaded at the first connection: a command that never uses SSH does not pay for ssh2.
    const { Client: SshClient } = await import('ssh2');
    return new Promise<SFTPWrapper>((resolve, reject) => {
      const client = new SshClient();
      let mismatch: string | null = null;
      // Our own socket, to count the bytes that go over the wire.
      const sock: net.Socket = net.connect({ host: address, port: s.port, onread: readsIntoSlabs(() => sock, slabCollector()) });
      // SFTP waits for an answer to every request: Nagle's algorithm would hold each small
      // packet back for a delayed ACK (tens of ms a write).
      sock.setNoDelay(true);
      coalesceWrites(sock);
      this.socket = sock;
      sock.once('close', () => {
        this.sentOnClosedSockets += sock.bytesWritten;
        if (this.socket === sock) this.socket = null;
      });
      const config: ConnectConfig = {
        sock, host: s.host, port: s.port, username: s.username, readyTimeout: s.timeoutMs,
        keepaliveInterval: 10000, keepaliveCountMax: 3,
        hostVerifier: (key: Buffer) => {
          const fp = fingerprintOf(key);
          this.seenFingerprint = fp;
          if (s.hostKeyFingerprint && s.hostKeyFingerprint !== fp) {
            mismatch = fp;
            return false;
          }
          return true;
        },
      };
      if (s.password !== undefined) config.password = s.password;
      if (s.privateKey !== undefined) config.privateKey = s.privateKey;
      if (s.passphrase !== undefined) config.passphrase = s.passphrase;
      let settled = false;
      const fail = (err: Error): void => {
        if (settled) return;
        settled = true;
        client.end();
        reject(this.describe(err, mismatch));
      };
      client.on('error', fail);
      client.on('close', () => {
        this.sftp = null;
        this.client = null;
        this.syncShell = null;
        this.commands = null;
        this.syncCommand = null;
        this.probe = null;
        const lost = new DestinationError(`the connection to ${this.where} was closed`, 'unreachable');
        this.failure ??= lost;
        // A stream nobody reads yet (opened ahead of its consumer) ends without an error event:
        // an error with no listener would crash the process; its reader still sees it cut short.
        for (const stream of [...this.live]) stream.destroy(stream.listenerCount('error') > 0 ? lost : undefined);
        this.live.clear();
        fail(new Error('connection closed'));
      });
      client.on('ready', () => {
        poolClientPadding(client);
        client.sftp((err, sftp) => {
          if (err) { fail(err); return; }
          settled = true;
          this.client = client;
          this.sftp = sftp;
          this.failure = null;
          resolve(sftp);
        });
      });
      try {
        client.connect(config);
      } catch (err) {
        fail(err as Error);
      }
    });
  }

  private describe(err: Error, mismatch: string | null): DestinationError {
    const detailed = this.describeInDetail(err, mismatch);
    if (!this.guard) return detailed;
    this.guard.report(`${this.where}: ${detailed.message}`);
    return new DestinationError(ACCOUNT_CONNECT_FAILED, 'unreachable');
  }

  private describeInDetail(err: Error, mismatch: string | null): DestinationError {
    if ((err as Error).name === 'AddressDeniedError') return new DestinationError(`connection to ${this.where} not allowed: ${err.message}`, 'unreachable');
    if (mismatch) {
      return new DestinationError(`the host key of ${this.settings.host}:${this.settings.port} has changed (expected SHA256:${this.settings.hostKeyFingerprint}, got SHA256:${mismatch}); if the server was reinstalled, validate the destination again to accept the new key`, 'unreachable');
    }
    const level = (err as { level?: string }).level;
    if (level === 'client-authentication') return new DestinationError(`authentication failed for ${this.where} (wrong password or key)`, 'unreachable');
    if (level === 'client-timeout' || /timed out/i.test(err.message)) return new DestinationError(`${this.where} did not answer within ${this.settings.timeoutMs} ms`, 'unreachable');
    const sys = (err as NodeJS.ErrnoException).code;
    if (sys !== undefined && CONNECT_ERRORS[sys]) return new DestinationError(`cannot reach ${this.where}: ${CONNECT_ERRORS[sys]} (${sys})`, 'unreachable');
    return new DestinationError(`SSH connection to ${this.where} failed: ${err.message}`, 'unreachable');
  }

  /** Runs one SFTP call, turning its error into a DestinationError that names the path. */
  private async call<T>(rel: string, fn: (sftp: SFTPWrapper, done: (err: Error | null | undefined, value?: T) => void) => void): Promise<T> {
    const sftp = await this.connect();
    return this.request<T>(rel, (done) => fn(sftp, done));
  }

  /**
   * Sends one SFTP request at once (on a session already connected), so that several go out
   * back to back without waiting for each other's answers; its error names the path.
   */
  private request<T>(rel: string, send: (done: (err: Error | null | undefined, value?: T) => void) => void): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      send((err, value) => {
        if (err) void this.sftpError(err, rel).then(reject);
        else resolve(value as T);
      });
    });
  }

  /**
   * Turns an SFTP error into a DestinationError. OpenSSH's sftp-server answers a full disk
   * (ENOSPC) with the generic "Failure", so after a generic failure the free space is asked
   * for: (nearly) none left means that was the cause.
   */
  private async sftpError(err: Error, rel: string): Promise<DestinationError> {
    if (this.failure) return this.failure as DestinationError;
    if (code(err) === SFTP_NO_SUCH_FILE) return new DestinationError(`not found on the destination: ${rel}`, 'not-found');
    if (code(err) === SFTP_PERMISSION_DENIED) return new DestinationError(`the destination is not writable (permission denied) at ${rel}`, 'not-writable');
    const noSpace = (): DestinationError => new DestinationError(`no space left on the destination (${this.settings.path} on ${this.settings.host}) while writing ${rel}`, 'no-space');
    if (/no space|quota/i.test(err.message)) return noSpace();
    if (code(err) === SFTP_FAILURE && this.sftp) {
      const sftp = this.sftp;
      const full = await new Promise<boolean>((resolve) => {
        sftp.ext_openssh_statvfs(this.settings.path, (e, v: { f_frsize: number; f_bavail: number; f_favail: number } | undefined) => {
          resolve(!e && !!v && (Number(v.f_bavail) * Number(v.f_frsize) < NEARLY_FULL_BYTES || Number(v.f_favail) === 0));
        });
      }).catch(() => false);
      if (this.failure) return this.failure as DestinationError;
      if (full) return noSpace();
    }
    return new DestinationError(`destination I/O error at ${rel}: ${err.message}`, 'io');
  }

  async open(): Promise<void> {
    const st = await this.call<{ isDirectory(): boolean }>('', (s, done) => s.stat(this.settings.path, done)).catch((err: DestinationError) => {
      if (err.code === 'not-found') throw new DestinationError(`the remote path ${this.settings.path} does not exist on ${this.settings.host}`, 'unreachable');
      throw err;
    });
    if (!st.isDirectory()) throw new DestinationError(`the remote path ${this.settings.path} is not a directory`, 'invalid');
    if (!(await this.exists('tidemark.json'))) {
      const meta = { format: 'tidemark', version: FORMAT_VERSION, serverId: crypto.randomUUID(), createdAt: new Date().toISOString() };
      await this.writeFile('tidemark.json', JSON.stringify(meta, null, 2) + '\n');
    }
  }

  async close(): Promise<void> {
    await this.settleExtractions('', 'abort');
    const ahead = this.aheadRunning;
    const client = this.client;
    void this.syncShell?.then((shell) => shell?.close());
    this.syncShell = null;
    this.client = null;
    this.sftp = null;
    this.failure = null;
    this.commands = null;
    this.syncCommand = null;
    this.probe = null;
    client?.end();
    // Not waited for before the end: a write-out stuck on the server would hold a cancelled
    // run. Its command's channel closes with the connection; what it met is nobody's now.
    await ahead;
    this.aheadFailure = null;
  }

  async mkdir(rel: string): Promise<void> {
    const parts = rel.split('/').filter(Boolean);
    let cur = '';
    for (const part of parts) {
      cur = cur ? `${cur}/${part}` : part;
      if (this.dirs.has(cur)) continue;
      // Writers into one new folder at once share one mkdir (a second would fail: it exists).
      let made = this.dirsBeingMade.get(cur);
      if (!made) {
        const dir = cur;
        made = (async () => {
          if (!(await this.exists(dir))) {
            await this.call<void>(dir, (s, done) => s.mkdir(this.abs(dir), { mode: 0o700 }, (err) => done(err && !/exist/i.test(err.message) ? err : null)));
          }
          this.dirs.add(dir);
        })().finally(() => this.dirsBeingMade.delete(dir));
        this.dirsBeingMade.set(dir, made);
      }
      await made;
    }
  }

  private parentOf(rel: string): string {
    const i = rel.lastIndexOf('/');
    return i < 0 ? '' : rel.slice(0, i);
  }

  async writeFile(rel: string, data: Buffer | string): Promise<void> {
    await this.mkdir(this.parentOf(rel));
    const tmp = `${rel}.tmp-${crypto.randomBytes(4).toString('hex')}`;
    try {
      await pipeline(Readable.from([Buffer.from(data)]), this.createWriteStream(tmp));
      await this.rename(tmp, rel);
    } catch (err) {
      await this.remove(tmp).catch(() => undefined);
      throw err;
    }
  }

  /** A stream that finishes only once the remote file is closed. */
  createWriteStream(rel: string): Writable {
    const opened = (async () => {
      await this.mkdir(this.parentOf(rel));
      const sftp = await this.connect();
      // A deep buffer lets ssh2 send the buffered chunks as concurrent write requests
      // (its _writev) instead of one request per round trip: 2.5x the throughput on loopback.
      const byCommand = await this.syncsByCommand();
      const remote = sftp.createWriteStream(this.abs(rel), { mode: 0o600, highWaterMark: 1 << 20 });
      if (byCommand) this.unsynced.add(topFolder(rel));
      else flushBeforeClose(sftp, remote);
      return remote;
    })();
    opened.catch(() => undefined);
    const self = this;
    let failed: Promise<DestinationError> | null = null;
    const fail = (err: Error): void => {
      if (failed) return;
      failed = self.sftpError(err, rel);
      void failed.then((e) => stream.destroy(e));
    };
    const stream: Writable = new Writable({
      highWaterMark: 1 << 20,
      write(chunk: Buffer, _enc, cb) {
        opened.then((remote) => {
          if (!remote.write(chunk)) remote.once('drain', () => cb()); else cb();
        }, (err: Error) => cb(err));
      },
      final(cb) {
        opened.then((remote) => {
          // A failure destroys the stream with its mapped error; finishing would say "complete".
          remote.once('close', () => { if (!failed) cb(self.failure ?? null); });
          remote.end();
        }, (err: Error) => cb(err));
      },
      destroy(err, cb) {
        self.live.delete(stream);
        opened.then((remote) => remote.destroy(), () => undefined);
        cb(err);
      },
    });
    this.live.add(stream);
    opened.then((remote) => {
      remote.on('error', fail);
      // ssh2's write stream closes itself when a write fails, and then its 'error' is never emitted.
      remote.on('close', () => { if (remote.errored) fail(remote.errored); });
    }, () => undefined);
    stream.on('close', () => this.live.delete(stream));
    return stream;
  }

  /**
   * A small file in one exchange: the open is answered, then its writes (each at most the
   * server's largest), the fsync where `flush` cannot sync by command, and the close are sent
   * together. OpenSSH's sftp-server answers requests in order, so the close comes after the
   * writes; every answer is still checked. Where the server has GNU tar (and flushes by
   * command), the file goes into the remote `tar -x` of its snapshot's folder instead
   * (ssh-tar.ts): it is written once `flush` (or a rename of that folder) has resolved, which
   * throws when tar did not write everything.
   */
  async writeSmallFile(rel: string, parts: Buffer[]): Promise<Buffer> {
    await this.mkdir(this.parentOf(rel));
    // At most 1 MiB: hashed here in well under a millisecond, cheaper than a pool job's wake-ups.
    const hash = crypto.createHash('sha256');
    for (const p of parts) hash.update(p);
    const digest = hash.digest();
    const byCommand = await this.syncsByCommand();
    const extraction = byCommand ? await this.extractionFor(rel) : null;
    if (extraction && (await extraction.tar.append(extraction.name, parts))) {
      this.unsynced.add(topFolder(rel));
      return digest;
    }
    const handle = await this.call<Buffer>(rel, (s, done) => s.open(this.abs(rel), 'w', { mode: 0o600 }, done));
    if (byCommand) this.unsynced.add(topFolder(rel));
    const sftp = await this.connect();
    // Sent one after the other from here, without waiting in between.
    const data = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
    const max = (sftp as unknown as { _maxWriteLen?: number })._maxWriteLen ?? 32 << 10;
    const answers: Promise<void>[] = [];
    for (let off = 0; off < data.length; off += max) {
      const len = Math.min(max, data.length - off);
      answers.push(this.request<void>(rel, (done) => sftp.write(handle, data, off, len, off, (err) => done(err))));
    }
    if (!byCommand && offersFsync(sftp)) answers.push(this.request<void>(rel, (done) => sftp.ext_openssh_fsync(handle, (err) => done(err))));
    answers.push(this.request<void>(rel, (done) => sftp.close(handle, (err) => done(err))));
    await allAnswered(answers);
    return digest;
  }

  /**
   * The remote `tar -x` that writes `rel` (started at the first file of its folder), and the
   * member name there; null where tar is not GNU tar or `rel` is not in a snapshot's folder.
   */
  private async extractionFor(rel: string): Promise<{ tar: RemoteExtraction; name: string } | null> {
    const parts = rel.split('/');
    if (parts.length < 3 || !this.probe || !(await this.probe).gnuTar) return null;
    const key = `${parts[0]}/${parts[1]}`;
    let tar = this.extractions.get(key);
    if (!tar) {
      tar = this.exec(extractCommand(this.tarProgram, this.abs(key))).then((channel) => new RemoteExtraction(channel, `${this.where}:${this.abs(key)}`));
      tar.catch(() => undefined);
      this.extractions.set(key, tar);
    }
    return { tar: await tar, name: parts.slice(2).join('/') };
  }

  /**
   * Ends the remote extractions into `rel` (or into a folder that holds it, or that it holds),
   * once every member is written: `finish` throws what failed; otherwise they are stopped where
   * they are (their folder is being removed).
   */
  private async settleExtractions(rel: string, how: 'finish' | 'abort'): Promise<void> {
    const within = (a: string, b: string): boolean => b === '' || a === b || a.startsWith(`${b}/`);
    const settling: Promise<void>[] = [];
    for (const [key, tar] of [...this.extractions]) {
      if (!within(key, rel) && !within(rel, key)) continue;
      this.extractions.delete(key);
      settling.push(tar.then((t) => (how === 'finish' ? t.finish() : t.abort())));
    }
    if (how === 'finish') await allAnswered(settling);
    else await Promise.allSettled(settling);
  }

  /** Opens an exec channel running `command` (stdin open: the caller writes it). */
  private async exec(command: string): Promise<ClientChannel> {
    await this.connect();
    const client = this.client!;
    return new Promise((resolve, reject) => {
      client.exec(command, (err, channel) => (err ? reject(new DestinationError(`could not run a command on ${this.where}: ${err.message}`, 'io')) : resolve(channel)));
    });
  }

  /**
   * The first `size` bytes of a file (fewer when it is shorter) in one exchange: the open is
   * answered, then its reads (each at most the server's largest) and the close are sent
   * together. No stream per file: a restore reads thousands of small files.
   */
  async readSmallFile(rel: string, size: number): Promise<Buffer> {
    const handle = await this.call<Buffer>(rel, (s, done) => s.open(this.abs(rel), 'r', done));
    const sftp = await this.connect();
    const buf = Buffer.allocUnsafe(size);
    const max = (sftp as unknown as { _maxReadLen?: number })._maxReadLen ?? 32 << 10;
    const reads: Promise<number>[] = [];
    for (let off = 0; off < size; off += max) {
      const len = Math.min(max, size - off);
      // At the end of the file the server answers EOF, which ssh2 reports as 0 bytes read.
      reads.push(this.request<number>(rel, (done) => sftp.read(handle, buf, off, len, off, (err, n) => done(err, n))));
    }
    const closed = this.request<void>(rel, (done) => sftp.close(handle, (err) => done(err)));
    const counts = (await allAnswered<number | void>([...reads, closed])).slice(0, reads.length) as number[];
    // The bytes up to the first read that came back short.
    let got = 0;
    for (const [i, n] of counts.entries()) {
      got = i * max + n;
      if (n < Math.min(max, size - i * max)) break;
    }
    return buf.subarray(0, got);
  }

  /**
   * Where the server runs commands and has GNU tar, the files of one folder (their first two
   * components: a snapshot's, or an account's objects) come from one remote `tar -c`
   * (ssh-tar-read.ts); the files it does not send, and every file elsewhere, are read with
   * readSmallFile, several at once.
   */
  readSmallFiles(files: readonly { rel: string; size: number }[], flow?: ReadFlow): Promise<Buffer | Buffer[]>[] {
    const settle: ({ resolve: (b: Buffer | Buffer[]) => void; reject: (e: Error) => void } | null)[] = [];
    const out = files.map(() => new Promise<Buffer | Buffer[]>((resolve, reject) => { settle.push({ resolve, reject }); }));
    // Each file's resolvers are let go once used: they hold its promise, and so its content,
    // for as long as the batch's stream runs (thousands of files).
    const deliver = (i: number, r: Buffer | Buffer[] | Error): void => {
      const s = settle[i];
      if (!s) return;
      settle[i] = null;
      if (r instanceof Error) s.reject(r); else s.resolve(r);
    };
    const bySftp = async (which: number[]): Promise<void> => {
      let at = 0;
      const worker = async (): Promise<void> => {
        while (at < which.length) {
          const wait = flow?.room();
          if (wait) await wait;
          if (at >= which.length) break;
          const i = which[at++]!;
          await this.readSmallFile(files[i]!.rel, files[i]!.size).then((b) => deliver(i, b), (e: Error) => deliver(i, e));
        }
      };
      await Promise.all(Array.from({ length: Math.min(this.smallFileParallelism, which.length) }, worker));
    };
    void (async () => {
      const groups = new Map<string, number[]>();
      const elsewhere: number[] = [];
      const byTar = (await this.cloneIsServerSide()) && this.probe !== null && (await this.probe).gnuTar;
      for (const [i, f] of files.entries()) {
        const parts = f.rel.split('/');
        if (!byTar || parts.length < 3 || files.length === 1) { elsewhere.push(i); continue; }
        const key = `${parts[0]}/${parts[1]}`;
        const g = groups.get(key);
        if (g) g.push(i); else groups.set(key, [i]);
      }
      const work: Promise<void>[] = [bySftp(elsewhere)];
      for (const [key, idx] of groups) {
        const wanted = idx.map((i) => ({ name: files[i]!.rel.slice(key.length + 1), size: files[i]!.size }));
        // The names go on the tar's standard input: one stream for the whole group, however large.
        const input = nameList(wanted.map((w) => w.name));
        if (!input) { work.push(bySftp(idx)); continue; }
        work.push(this.exec(listCommand(this.tarProgram, this.abs(key)))
          .then((channel) => {
            channel.end(input);
            return readRemoteArchive(channel, `${this.where}:${this.abs(key)}`, wanted, (k, r) => deliver(idx[k]!, r), this.settings.timeoutMs * TAR_READ_IDLE_TIMEOUTS, flow);
          })
          .then((left) => bySftp(left.map((k) => idx[k]!)), () => bySftp(idx)));
      }
      await Promise.all(work);
    })().catch((err: Error) => { for (const i of files.keys()) deliver(i, err); });
    return out;
  }

  async readFile(rel: string): Promise<Buffer> {
    return this.call<Buffer>(rel, (s, done) => s.readFile(this.abs(rel), done));
  }

  /**
   * A file (or the bytes [start, end) of it) read with several SFTP reads in flight (ssh2's own
   * read stream waits for each read's answer before it sends the next: one round trip per
   * 255 KiB), handed on in order. A read answered short is asked again for the rest; an
   * answer of no bytes is the end of the file. At most READ_AHEAD_BYTES are asked for and
   * not yet taken by the reader.
   */
  createReadStream(rel: string, range?: { start: number; end?: number }): Readable {
    if (range?.end !== undefined && range.end <= range.start) return Readable.from([]);
    const limit = range?.end ?? Infinity;
    let next = range?.start ?? 0;
    let handle: Buffer | null = null;
    let sftp: SFTPWrapper | null = null;
    let eof = false;
    let wanted = false;
    let fullReads = 0;
    const slots: { offset: number; len: number; answer: Promise<{ buf: Buffer; n: number }> }[] = [];
    const self = this;
    const ask = (offset: number, len: number): { offset: number; len: number; answer: Promise<{ buf: Buffer; n: number }> } => {
      const buf = Buffer.allocUnsafe(len);
      const answer = this.request<number>(rel, (done) => sftp!.read(handle!, buf, 0, len, offset, (err, n) => done(err, n))).then((n) => ({ buf, n }));
      answer.catch(() => undefined);
      return { offset, len, answer };
    };
    const fill = (): void => {
      const max = (sftp as unknown as { _maxReadLen?: number })._maxReadLen ?? 32 << 10;
      // Two reads at first, one more for each full one answered: a small file costs no more than two.
      const most = Math.max(1, Math.min(READS_IN_FLIGHT, 2 + fullReads, Math.floor(READ_AHEAD_BYTES / max)));
      while (!eof && next < limit && slots.length < most) {
        const len = Math.min(max, limit - next);
        slots.push(ask(next, len));
        next += len;
      }
    };
    let pumping = false;
    const pump = async (): Promise<void> => {
      if (pumping) return;
      pumping = true;
      try {
        while (wanted && !out.destroyed) {
          fill();
          const head = slots[0];
          if (!head) { out.push(null); return; }
          const { buf, n } = await head.answer;
          if (out.destroyed) return;
          if (n === 0) {
            // The end of the file: the reads behind this one are answered EOF too.
            eof = true;
            slots.length = 0;
            continue;
          }
          if (n < head.len) slots[0] = ask(head.offset + n, head.len - n); else { slots.shift(); fullReads++; }
          wanted = out.push(n === buf.length ? buf : buf.subarray(0, n));
        }
      } catch (err) {
        out.destroy(err as Error);
      } finally {
        pumping = false;
      }
    };
    // The default high-water mark: one answer is buffered at a time, so a read() of the
    // stream hands it on as it is (two or more would be joined into a new buffer: a copy).
    const out = new Readable({
      read() {
        wanted = true;
        if (handle) void pump();
      },
      destroy(err, cb) {
        self.live.delete(out);
        slots.length = 0;
        if (handle && sftp && self.sftp === sftp) sftp.close(handle, () => undefined);
        handle = null;
        cb(err);
      },
    });
    this.live.add(out);
    const opened = this.call<Buffer>(rel, (s, done) => { sftp = s; s.open(this.abs(rel), 'r', done); });
    opened.then((h) => {
      if (out.destroyed) { sftp!.close(h, () => undefined); return; }
      handle = h;
      out.once('end', () => { if (handle && sftp && self.sftp === sftp) sftp.close(handle, () => undefined); handle = null; self.live.delete(out); });
      if (wanted) void pump();
    }, (err: Error) => out.destroy(err));
    return out;
  }

  async exists(rel: string): Promise<boolean> {
    try {
      await this.call(rel, (s, done) => s.lstat(this.abs(rel), done));
      return true;
    } catch (err) {
      if ((err as DestinationError).code === 'not-found') return false;
      throw err;
    }
  }

  async list(rel: string): Promise<DirEntry[]> {
    const entries = await this.call<FileEntryWithStats[]>(rel, (s, done) => s.readdir(this.abs(rel), done));
    return entries
      .filter((e) => e.filename !== '.' && e.filename !== '..')
      .map((e) => ({
        name: e.filename,
        type: e.attrs.isDirectory() ? 'dir' as const : e.attrs.isFile() ? 'file' as const : e.attrs.isSymbolicLink() ? 'link' as const : 'other' as const,
        size: e.attrs.size,
        mtimeMs: e.attrs.mtime * 1000,
      }))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async link(existing: string, created: string): Promise<void> {
    await this.call<void>(created, (s, done) => s.ext_openssh_hardlink(this.abs(existing), this.abs(created), done));
  }

  async rename(from: string, to: string): Promise<void> {
    await this.settleExtractions(from, 'finish');
    await this.call<void>(to, (s, done) => s.ext_openssh_rename(this.abs(from), this.abs(to), done));
  }

  async remove(rel: string): Promise<void> {
    if (rel === '') throw new DestinationError('refusing to remove the destination root', 'invalid');
    let st: { isDirectory(): boolean };
    try {
      st = await this.call(rel, (s, done) => s.lstat(this.abs(rel), done));
    } catch (err) {
      if ((err as DestinationError).code === 'not-found') return;
      throw err;
    }
    if (st.isDirectory()) {
      await this.settleExtractions(rel, 'abort');
      for (const d of [...this.dirs]) if (d === rel || d.startsWith(`${rel}/`)) this.dirs.delete(d);
      if (this.commands && (await this.commands)) {
        const r = await this.run(`rm -rf -- ${shellQuote(this.abs(rel))}`).catch(() => null);
        if (r?.code === 0) return;
      }
      const unlinks = new InFlight(SMALL_REQUESTS_IN_FLIGHT);
      for (const e of await this.list(rel)) {
        if (e.type === 'dir') await this.remove(`${rel}/${e.name}`);
        else await unlinks.add(this.call<void>(`${rel}/${e.name}`, (s, done) => s.unlink(this.abs(`${rel}/${e.name}`), done)));
      }
      await unlinks.drain();
      await this.call<void>(rel, (s, done) => s.rmdir(this.abs(rel), done));
    } else {
      await this.call<void>(rel, (s, done) => s.unlink(this.abs(rel), done));
    }
  }

  async space(): Promise<SpaceInfo> {
    const v = await this.call<{ f_frsize: number; f_blocks: number; f_bavail: number }>('', (s, done) => s.ext_openssh_statvfs(this.settings.path, done));
    return { totalBytes: Number(v.f_blocks) * Number(v.f_frsize), freeBytes: Number(v.f_bavail) * Number(v.f_frsize) };
  }

  /**
   * Where `sync -f` works: one `sync -f` of the folders' filesystems and of every account
   * folder written to since the last flush (see the class comment). Elsewhere files were
   * flushed as they were closed (fsync@openssh.com) and folders cannot be flushed over SFTP.
   */
  async flush(dirs: string[]): Promise<void> {
    if (this.failure) throw this.failure;
    if (this.aheadRunning) await this.aheadRunning;
    if (this.aheadFailure) {
      const failed = this.aheadFailure;
      this.aheadFailure = null;
      throw failed;
    }
    // Every file written before a flush is durable after it (the contract): tar must be done.
    await this.settleExtractions('', 'finish');
    if (!(await this.syncsByCommand())) {
      if (this.unsynced.size > 0) {
        throw new DestinationError(`files written to ${this.where} cannot be flushed: the server no longer runs sync -f for this user`, 'io');
      }
      return;
    }
    const written = [...this.unsynced];
    // The folders of one flush are in one snapshot: the first one's filesystem is theirs.
    const named = [dirs[0] ?? ''];
    // An account folder that holds the named folder is on its filesystem.
    const more = written.filter((top) => !named.some((d) => d === top || (top !== '' && d.startsWith(`${top}/`))));
    // A written account folder that is gone (removed since) has nothing left to flush.
    const r = await this.syncFolders([...named.map((d) => ({ path: this.abs(d), mustExist: true })), ...more.map((d) => ({ path: this.abs(d), mustExist: false }))])
      .catch((err: Error) => {
        throw new DestinationError(`could not flush the destination on ${this.where}: ${err.message}`, 'io');
      });
    if (r.code !== 0) throw new DestinationError(`the destination on ${this.where} reported an error while flushing ${named[0] || 'its root'}: ${r.stderr.trim() || `sync exited ${r.code}`}`, 'io');
    for (const top of written) this.unsynced.delete(top);
  }

  /**
   * Where `flush` syncs by command and something was written since the last flush: a `sync -f`
   * of the filesystems of the account folders written to, run on the server while the caller
   * goes on, so that the server's disk writes during the run instead of all at the commit.
   * It makes nothing durable (only `flush` does; it is not awaited by a write). Each `sync -f`
   * is a process of its own, and syncfs(2) reports only the write errors met since its caller
   * opened the folder: an error this write-out met would be missed by the next flush's own
   * `sync -f`, so that flush throws it.
   */
  flushAhead(): void {
    if (this.aheadRunning || this.unsynced.size === 0 || !this.client || this.failure) return;
    // Only filled where flush syncs by command (createWriteStream, writeSmallFile).
    const tops = [...this.unsynced];
    this.aheadRunning = this.syncFolders(tops.map((d) => ({ path: this.abs(d), mustExist: false })))
      .then((r) => {
        if (r.code !== 0) throw new DestinationError(`the destination on ${this.where} reported an error while writing out: ${r.stderr.trim() || `sync exited ${r.code}`}`, 'io');
      })
      .catch((err: Error) => { this.aheadFailure ??= err instanceof DestinationError ? err : new DestinationError(`could not write out the destination on ${this.where}: ${err.message}`, 'io'); })
      .finally(() => { this.aheadRunning = null; });
  }

  /**
   * `sync -f` of each folder's filesystem (one that need not exist is skipped when it does
   * not), through the connection's sync shell, or as a command of its own where the folders
   * do not fit the shell's lines or it cannot be started.
   */
  private async syncFolders(targets: SyncTarget[]): Promise<{ code: number | null; stderr: string }> {
    if (fitsSyncShell(targets)) {
      this.syncShell ??= this.exec(SYNC_SHELL_COMMAND).then((channel) => new SyncShell(channel, this.settings.timeoutMs * 30), () => null);
      const shell = await this.syncShell;
      if (shell?.usable) {
        try {
          return await shell.sync(targets);
        } catch (err) {
          // Not used again: the next sync starts another.
          this.syncShell = null;
          throw err;
        }
      }
      this.syncShell = null;
    }
    return this.run(targets.map((t) => (t.mustExist ? `sync -f -- ${shellQuote(t.path)}` : `{ [ ! -e ${shellQuote(t.path)} ] || sync -f -- ${shellQuote(t.path)}; }`)).join(' && '));
  }

  /**
   * Whether `flush` syncs by command (asked once per connection with the other commands, by
   * `sync -f /dev/null`, which flushes nothing): then files are not flushed one by one. A
   * `sync` without -f (coreutils before 8.24) or none at all answers no.
   */
  private syncsByCommand(): Promise<boolean> {
    this.syncCommand ??= this.cloneIsServerSide().then(async (commands) => commands && this.probe !== null && (await this.probe).syncF);
    return this.syncCommand;
  }

  /** Bytes sent to the server so far (SSH framing and encryption included). */
  bytesSent(): number {
    return this.sentOnClosedSockets + (this.socket?.bytesWritten ?? 0);
  }

  /**
   * Runs a command on the server. Its stdin is closed at once, so a server that forces
   * SFTP for every session (ForceCommand internal-sftp) ends it instead of waiting.
   */
  private async run(command: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
    await this.connect();
    const client = this.client!;
    return new Promise((resolve, reject) => {
      client.exec(command, (err, channel) => {
        if (err) { reject(err); return; }
        let stdout = '';
        let stderr = '';
        const timer = setTimeout(() => channel.close(), this.settings.timeoutMs * 30);
        channel.on('data', (d: Buffer) => { stdout += d.toString('utf8'); });
        channel.stderr.on('data', (d: Buffer) => { stderr += d.toString('utf8'); });
        channel.on('close', (code: number | null) => {
          clearTimeout(timer);
          resolve({ code: code ?? null, stdout, stderr });
        });
        channel.end();
      });
    });
  }

  /** Whether this user may run commands (a shell with `cp`): asked once per connection. */
  async cloneIsServerSide(): Promise<boolean> {
    // GNU tar is told by its first line: another tar (busybox, bsdtar) lacks options extractCommand uses.
    this.probe ??= this.run(`printf %s ${COMMAND_PROBE} && cp --version >/dev/null 2>&1 && printf %s -cp && { ! sync -f -- /dev/null >/dev/null 2>&1 || printf %s -sync; }`
      + ` && { ! ${this.tarProgram} --version 2>/dev/null | head -n 1 | grep -q '^tar (GNU tar) ' || printf %s -gnutar; }`)
      .then((r) => {
        const ok = r.code === 0 && r.stdout.startsWith(`${COMMAND_PROBE}-cp`);
        const said = r.stdout.slice(`${COMMAND_PROBE}-cp`.length);
        return { commands: ok, syncF: ok && (said === '-sync' || said === '-sync-gnutar'), gnuTar: ok && said === '-sync-gnutar' };
      }, () => ({ commands: false, syncF: false, gnuTar: false }));
    this.commands ??= this.probe.then((p) => p.commands);
    return this.commands;
  }

  async cloneTree(from: string, to: string): Promise<void> {
    if (await this.exists(to)) throw new DestinationError(`cannot clone into ${to}: it exists`, 'invalid');
    await this.mkdir(this.parentOf(to));
    if (await this.cloneIsServerSide()) {
      const r = await this.run(`cp -al -- ${shellQuote(this.abs(from))} ${shellQuote(this.abs(to))}`).catch(() => null);
      if (r?.code === 0) return;
      // A cp without -l (or a failure half-way): forget commands, clone over SFTP instead.
      this.commands = Promise.resolve(false);
      await this.remove(to);
    }
    const links = new InFlight(SMALL_REQUESTS_IN_FLIGHT);
    const walk = async (src: string, dst: string): Promise<void> => {
      await this.call<void>(dst, (s, done) => s.mkdir(this.abs(dst), { mode: 0o700 }, done));
      this.dirs.add(dst);
      for (const e of await this.list(src)) {
        if (e.type === 'dir') await walk(`${src}/${e.name}`, `${dst}/${e.name}`);
        else if (e.type === 'file') await links.add(this.link(`${src}/${e.name}`, `${dst}/${e.name}`));
      }
    };
    await walk(from, to);
    await links.drain();
  }

  /** SFTP attributes have no link count; OpenSSH's `ls -l`-style long name does. */
  async linkCount(rel: string): Promise<number> {
    const parent = this.parentOf(rel);
    const name = rel.slice(rel.lastIndexOf('/') + 1);
    const entries = await this.call<FileEntryWithStats[]>(parent, (s, done) => s.readdir(this.abs(parent), done));
    const e = entries.find((x) => x.filename === name);
    if (!e) throw new DestinationError(`not found on the destination: ${rel}`, 'not-found');
    const n = Number(e.longname.split(/\s+/)[1]);
    if (!Number.isInteger(n)) throw new DestinationError(`the server does not report link counts for ${rel}`, 'io');
    return n;
  }
}
