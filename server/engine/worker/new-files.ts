import crypto from 'node:crypto';
import type { Entry } from '../format/entry.js';
import { toDisplay, type BytePath } from '../../util/byte-path.js';
import { restoreFileFromOffLoop, restoreFilesFromOffLoop, restoreNewFileChecks, restoreNewFileOffLoop, restoreNewFilesOffLoop, restoreNewFileSupported, type FileFrom, type FileOutcome, type NewFile, type OwnerOutcome, MAX_FILES_FROM } from '../../native/restore-file.js';
import { closeQuietly } from '../../util/close-fd.js';
import { GatherArenas, type Arena } from './gather-arenas.js';

/** Files up to this size are gathered whole and written by pool jobs (in batches). */
export const GATHER_MAX = 4 << 20;
/** submitFrom: bytes queued or being written at most, what the writer may be ahead of the disk. */
const MAX_BYTES = 48 << 20;
/** submitFrom: files queued or being written at most (each holds a descriptor). */
const MAX_QUEUED = 128;
/** submitFrom: a batch goes to the pool at once while fewer than this many run, else once it has this many files or bytes. */
const BATCH_RUNNING = 2;
const BATCH_FILES = 32;
const BATCH_BYTES = 2 << 20;
/** submit: gathered files queued or being written at most, and their bytes (views that keep inflated members alive). */
const MAX_GATHERED = 48;
const MAX_GATHERED_BYTES = 8 << 20;

interface QueuedFile { e: Entry; fd: number; offset: number; owned: boolean; held: number }
/** A gathered file waiting for its batch (submit): its content, whether the job checks it, and the arena its content is in (copyChunks). */
interface QueuedParts { e: Entry; parts: Buffer[]; check: boolean; arena: Arena | null }

/** One gathered file by restoreNewFileOffLoop, its outcome as a batch's: a call refused outright counts as a create that failed. */
function oneNewFile(f: NewFile): Promise<FileOutcome> {
  try {
    return restoreNewFileOffLoop(f.path, f.parts, f.mode, f.uid, f.gid, f.sec, f.nsec, f.hash)!.catch((err: FileOutcome) => err);
  } catch (err) {
    return Promise.resolve(Object.assign(err as Error, { stage: 'open' }));
  }
}

/** One file by restoreFileFromOffLoop, its outcome as a batch's: a call refused outright counts as a create that failed. */
function oneFileFrom(f: FileFrom): Promise<FileOutcome> {
  try {
    return restoreFileFromOffLoop(f.path, f.fd, f.offset, f.size, f.hash, f.mode, f.uid, f.gid, f.sec, f.nsec, f.closeFd)!.catch((err: FileOutcome) => err);
  } catch (err) {
    return Promise.resolve(Object.assign(err as Error, { stage: 'open' }));
  }
}

export interface NewFilesHooks {
  abs: (rel: BytePath) => Buffer;
  /** The owner to set, or null when the file keeps the writer's own. */
  owner: (e: Entry) => { uid: number; gid: number } | null;
  /** A file is complete at its name. */
  done: (e: Entry) => void;
  warn: (rel: BytePath, message: string) => void;
  ownerWarning: (e: Entry, outcome: OwnerOutcome) => void;
  /** Something is at the name after all (EEXIST, ELOOP): write the file some other way (synchronously). */
  taken: (e: Entry, parts: Buffer[]) => void;
  /** The same for a file whose content is at `offset` of the descriptor `fd` (restoreFrom). */
  takenFrom: (e: Entry, fd: number, offset: number) => void;
  /** Check the content against the entry's hash before writing it (root did not). */
  checkHash: boolean;
  /**
   * The chunks given to add() are only lent (a compressed snapshot's inflated members, which
   * are reused once read past): each file's content is copied into reused arenas (GatherArenas).
   */
  copyChunks?: boolean;
}

/**
 * The files of a restore into a new folder: each gathered whole from the stream (or from a
 * compressed snapshot's inflated members), then created, written, given owner, mode and times
 * and closed on libuv's pool (restoreNewFiles: batches of files, one after the other in a job,
 * as the account like the writer itself). A file is
 * created only once all its bytes are here (so a stream that breaks off leaves no part of
 * it), with O_EXCL|O_NOFOLLOW at its real name; a job that fails removes what it created.
 * Files of one folder may complete in any order: the caller waits (drain) before anything
 * that depends on one (a hard link to it, another entry at its path or below it, the
 * folders' modes at the end).
 */
export class NewFiles {
  private entry: Entry | null = null;
  private parts: Buffer[] = [];
  /** copyChunks: the slot the gathered file's content is copied into, how much of it is filled, and its arena. */
  private slot: Buffer | null = null;
  private filled = 0;
  private arena: Arena | null = null;
  private readonly arenas: GatherArenas | null;
  private hash: crypto.Hash | null = null;
  /** The gathered file's content is checked by its job (restoreNewFile with a hash), off the event loop. */
  private checkInJob = false;
  private readonly nativeCheck = restoreNewFileChecks();
  private readonly inFlight = new Map<BytePath, number>();
  private jobs = 0;
  private bytes = 0;
  private wake: (() => void) | null = null;
  /** Files of submitFrom not yet handed to a job, and their bytes; pool jobs of those under way. */
  private queued: QueuedFile[] = [];
  private queuedBytes = 0;
  /** Gathered files (submit) not yet handed to a job. */
  private gathered: QueuedParts[] = [];
  private running = 0;
  private failed: Error | null = null;
  private abandoned = false;

  private constructor(private readonly hooks: NewFilesHooks) {
    this.arenas = hooks.copyChunks ? new GatherArenas() : null;
  }

  /** null when the addon is not built: the writer writes every file itself. */
  static create(hooks: NewFilesHooks): NewFiles | null {
    return restoreNewFileSupported() ? new NewFiles(hooks) : null;
  }

  /** Starts gathering `e` when it is a file this class writes; false: the caller writes it. */
  takes(e: Entry, hasData: boolean): boolean {
    if (e.kind !== 'f' || e.size > GATHER_MAX) return false;
    if (this.entry) this.arenas?.release(this.takeGathered().arena);
    this.entry = e;
    this.parts = [];
    if (this.arenas) {
      const { slot, arena } = this.arenas.reserve(e.size);
      this.slot = slot;
      this.arena = arena;
      this.filled = 0;
    }
    const check = this.hooks.checkHash && e.hash !== undefined && hasData;
    this.checkInJob = check && this.nativeCheck;
    this.hash = check && !this.nativeCheck ? crypto.createHash('sha256') : null;
    return true;
  }

  gathering(): boolean { return this.entry !== null; }

  add(chunk: Buffer): void {
    this.hash?.update(chunk);
    if (!this.slot) { this.parts.push(chunk); return; }
    // More than the entry's size (damage: its check fails) goes after the slot, copied too.
    const fits = Math.min(chunk.length, this.slot.length - this.filled);
    chunk.copy(this.slot, this.filled, 0, fits);
    this.filled += fits;
    if (fits < chunk.length) this.parts.push(Buffer.from(chunk.subarray(fits)));
  }

  /** The gathered file's content (copyChunks: its slot, as far as it is filled, then any excess) and its arena; gathering ends. */
  private takeGathered(): { parts: Buffer[]; arena: Arena | null } {
    const parts = this.slot ? [this.slot.subarray(0, this.filled), ...this.parts] : this.parts;
    const arena = this.arena;
    this.parts = [];
    this.slot = null;
    this.arena = null;
    this.filled = 0;
    return { parts, arena };
  }

  /**
   * The gathered file is complete: checked (when asked), then handed to a job; waits while
   * too many are under way. Files are queued and handed to the pool in batches, as
   * submitFrom's are (restoreNewFiles: each file checked before it is created, each with its
   * own outcome).
   */
  submit(): Promise<void> | undefined {
    const e = this.entry!;
    const { parts, arena } = this.takeGathered();
    const hash = this.hash;
    const check = this.checkInJob;
    this.entry = null;
    this.hash = null;
    this.checkInJob = false;
    if (hash && !hash.digest().equals(e.hash!)) {
      this.arenas?.release(arena);
      throw streamDamagedError(e);
    }
    const item: QueuedParts = { e, parts, check, arena };
    // A promise only when the writer must wait: most files are queued at once.
    if (this.jobs >= MAX_GATHERED || (this.bytes >= MAX_GATHERED_BYTES && this.jobs > 0)) return this.queueGatheredLater(item);
    try {
      this.throwIfFailed();
    } catch (err) {
      this.arenas?.release(arena);
      throw err;
    }
    this.queueGathered(item);
    return undefined;
  }

  /** submit() once fewer files are under way. */
  private async queueGatheredLater(item: QueuedParts): Promise<void> {
    try {
      while (this.jobs >= MAX_GATHERED || (this.bytes >= MAX_GATHERED_BYTES && this.jobs > 0)) {
        if (this.running < BATCH_RUNNING) this.flushGathered();
        await new Promise<void>((r) => { this.wake = r; });
      }
      this.throwIfFailed();
    } catch (err) {
      this.arenas?.release(item.arena);
      throw err;
    }
    this.queueGathered(item);
  }

  private queueGathered(item: QueuedParts): void {
    this.gathered.push(item);
    this.started(item.e, item.e.size);
    // At most BATCH_RUNNING batches create files at a time (the machine's cores, not the
    // pool's four threads): creates in the same folders contend in the kernel (the parent's
    // lock, the inode bitmap), and the pool's other threads stay free to inflate. What
    // arrives meanwhile goes as one batch when one finishes.
    if (this.running < BATCH_RUNNING) this.flushGathered();
  }

  /** Hands the gathered files queued to one pool job (a batch refused as a whole: each file alone). */
  private flushGathered(): void {
    if (this.gathered.length === 0) return;
    const batch = this.gathered.splice(0, MAX_FILES_FROM);
    this.running++;
    const files = batch.map(({ e, parts, check }): NewFile => {
      const owner = this.hooks.owner(e);
      return { path: this.hooks.abs(e.path), parts, hash: check ? e.hash! : null, mode: e.mode, uid: owner?.uid ?? -1, gid: owner?.gid ?? -1, sec: e.mtimeSec, nsec: e.mtimeNsec };
    });
    let job: Promise<FileOutcome[]> | null = null;
    try {
      job = restoreNewFilesOffLoop(files);
    } catch {
      // Refused as a whole (a path too long for the kernel): each file alone, so only that one fails.
    }
    job ??= Promise.all(files.map(oneNewFile));
    void job.then((results) => {
      batch.forEach(({ e, parts }, i) => {
        const result = results[i]!;
        if (typeof result === 'number') {
          this.hooks.ownerWarning(e, result);
          this.hooks.done(e);
        } else {
          this.failedJob(e, parts, result);
        }
      });
    }, (err: Error) => {
      // The job did not run at all: nothing of the batch was created.
      this.failed ??= err;
    }).finally(() => {
      this.running--;
      for (const { e, arena } of batch) {
        this.arenas?.release(arena);
        this.finished(e, e.size);
      }
      if (this.running < BATCH_RUNNING) this.flush();
    });
  }

  /**
   * A file whose content a job reads from `fd` at `offset` (a descriptor root handed over:
   * restore-descriptors.ts), checks against the entry's hash and writes; with `owned` the
   * descriptor is closed once the job no longer needs it (else it stays the caller's). A
   * damaged copy ends the restore (it is never left under the name). Files are queued and
   * handed to the pool in batches (one job writes a batch's files one after the other): a
   * batch goes as soon as fewer than BATCH_RUNNING are running, else once it is full, so the
   * pool never waits for a batch to fill while the event loop pays one call, one wake-up and
   * one promise per batch rather than per file.
   */
  submitFrom(e: Entry, fd: number, offset: number, owned: boolean): Promise<void> | undefined {
    // A promise only when the writer must wait: most files are queued at once.
    if (this.jobs >= MAX_QUEUED || (this.bytes >= MAX_BYTES && this.jobs > 0)) return this.queueFromLater(e, fd, offset, owned);
    this.queueFrom(e, fd, offset, owned);
    return undefined;
  }

  /** submitFrom() once fewer files are under way. */
  private async queueFromLater(e: Entry, fd: number, offset: number, owned: boolean): Promise<void> {
    while (this.jobs >= MAX_QUEUED || (this.bytes >= MAX_BYTES && this.jobs > 0)) {
      this.flush();
      await new Promise<void>((r) => { this.wake = r; });
    }
    this.queueFrom(e, fd, offset, owned);
  }

  private queueFrom(e: Entry, fd: number, offset: number, owned: boolean): void {
    try {
      this.throwIfFailed();
    } catch (err) {
      if (owned) closeQuietly(fd);
      throw err;
    }
    const held = Math.min(e.size, GATHER_MAX);
    this.queued.push({ e, fd, offset, owned, held });
    this.queuedBytes += held;
    this.started(e, held);
    if (this.running < BATCH_RUNNING || this.queued.length >= BATCH_FILES || this.queuedBytes >= BATCH_BYTES) this.flush();
  }

  /** Hands the queued files (both kinds) to pool jobs. */
  private flush(): void {
    this.flushGathered();
    this.flushFrom();
  }

  /** Hands the files of submitFrom queued to one pool job. */
  private flushFrom(): void {
    if (this.queued.length === 0) return;
    const batch = this.queued;
    this.queued = [];
    this.queuedBytes = 0;
    this.running++;
    const files = batch.map(({ e, fd, offset, owned }): FileFrom => {
      const owner = this.hooks.owner(e);
      return { path: this.hooks.abs(e.path), fd, offset, size: e.size, hash: e.hash ?? null, mode: e.mode, uid: owner?.uid ?? -1, gid: owner?.gid ?? -1, sec: e.mtimeSec, nsec: e.mtimeNsec, closeFd: owned };
    });
    let job: Promise<FileOutcome[]> | null = null;
    try {
      job = restoreFilesFromOffLoop(files);
    } catch {
      // Refused as a whole (a path too long for the kernel): each file alone, so only that one fails.
    }
    job ??= Promise.all(files.map(oneFileFrom));
    void job.then((results) => {
      batch.forEach((item, i) => this.fromOutcome(item, results[i]!));
    }, (err: Error) => {
      // The job did not run at all: nothing of the batch was created; its descriptors are released.
      this.failed ??= err;
      for (const item of batch) if (item.owned) closeQuietly(item.fd);
    }).finally(() => {
      this.running--;
      for (const item of batch) this.finished(item.e, item.held);
      if (this.running < BATCH_RUNNING) this.flush();
    });
  }

  /** What one file of a batch came to: done, or written another way, or the restore's failure. */
  private fromOutcome(item: QueuedFile, result: FileOutcome): void {
    const { e, fd, offset, owned } = item;
    if (typeof result === 'number') {
      this.hooks.ownerWarning(e, result);
      this.hooks.done(e);
      return;
    }
    const err = result;
    if (err.stage !== 'open') {
      if (!this.abandoned) this.failed ??= err.stage === 'damaged' ? damagedError(e, err.damage === 'short') : err;
      return;
    }
    // The job left the descriptor open: written here, then released.
    try {
      if (this.abandoned) return;
      if (err.code === 'EEXIST' || err.code === 'ELOOP') {
        try {
          this.hooks.takenFrom(e, fd, offset);
        } catch (again) {
          if (again instanceof DamagedContentError) this.failed ??= again;
          else this.hooks.warn(e.path, `not restored: ${(again as NodeJS.ErrnoException).code ?? (again as Error).message}`);
        }
      } else {
        this.hooks.warn(e.path, `not restored: ${err.code ?? err.message}`);
      }
    } finally {
      if (owned) closeQuietly(fd);
    }
  }

  private started(e: Entry, held: number): void {
    this.jobs++;
    this.bytes += held;
    this.inFlight.set(e.path, (this.inFlight.get(e.path) ?? 0) + 1);
  }

  private finished(e: Entry, held: number): void {
    this.jobs--;
    this.bytes -= held;
    const n = this.inFlight.get(e.path)! - 1;
    if (n === 0) this.inFlight.delete(e.path); else this.inFlight.set(e.path, n);
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }

  /**
   * Where the file could not be created: something at its name is written over the way a
   * restore in place does it, another reason is a warning (the writer's JS path does the
   * same). A failure after the create (a write, the mode, the times) ends the restore.
   */
  private failedJob(e: Entry, parts: Buffer[], err: NodeJS.ErrnoException & { stage?: string }): void {
    if (this.abandoned) return;
    // Checked in the job (checkInJob): nothing was created; the restore stops on it.
    if (err.stage === 'damaged') { this.failed ??= damagedError(e, false); return; }
    if (err.stage === 'open') {
      if (err.code === 'EEXIST' || err.code === 'ELOOP') {
        try {
          this.hooks.taken(e, parts);
        } catch (again) {
          this.hooks.warn(e.path, `not restored: ${(again as NodeJS.ErrnoException).code ?? (again as Error).message}`);
        }
      } else {
        this.hooks.warn(e.path, `not restored: ${err.code ?? err.message}`);
      }
      return;
    }
    this.failed ??= err;
  }

  /** Whether a job is writing the file at `rel`. */
  writing(rel: BytePath): boolean { return this.inFlight.has(rel); }

  idle(): boolean { return this.jobs === 0; }

  /** Waits until every job is done. */
  async drain(): Promise<void> {
    this.flush();
    while (this.jobs > 0) await new Promise<void>((r) => { this.wake = r; });
  }

  /** The first failure of a job after its create, thrown once it is known. */
  throwIfFailed(): void {
    if (this.failed) throw this.failed;
  }

  /**
   * The restore stopped: the file being gathered is dropped (it was never created); the
   * gathered files queued for a batch, each whole and before the stop in the stream, go to
   * the pool as they did one by one before batches (a restore that stops keeps what came
   * before); jobs under way still finish.
   */
  abandon(): void {
    while (this.gathered.length > 0) this.flushGathered();
    this.abandoned = true;
    if (this.entry) this.arenas?.release(this.takeGathered().arena);
    this.entry = null;
    this.parts = [];
    const queued = this.queued;
    this.queued = [];
    this.queuedBytes = 0;
    for (const item of queued) {
      if (item.owned) closeQuietly(item.fd);
      this.finished(item.e, item.held);
    }
    const gathered = this.gathered;
    this.gathered = [];
    for (const { e, arena } of gathered) {
      this.arenas?.release(arena);
      this.finished(e, e.size);
    }
  }
}

/** A stored copy that is short or does not match its hash: the restore stops there (a warning would hide the damage). */
export class DamagedContentError extends Error {}

/** The error of a file whose stored copy is damaged (the same words as root's check, snapshot-content.ts). */
export function damagedError(e: Entry, short: boolean): Error {
  return new DamagedContentError(short
    ? `snapshot content is short for ${JSON.stringify(toDisplay(e.path))}: the destination copy is damaged; that file was not restored and the restore stopped there`
    : `the content of ${JSON.stringify(toDisplay(e.path))} in the snapshot does not match its hash: the destination copy is damaged; that file was not restored and the restore stopped there`);
}

/**
 * The error of a file whose content, as it came in the stream, does not match the hash its
 * record gave: root passes content on unchecked only as it read it from the destination (a
 * remote one, or a compressed snapshot's inflated members), so that copy is what is damaged.
 */
export function streamDamagedError(e: Entry): Error {
  return new DamagedContentError(`the content of ${JSON.stringify(toDisplay(e.path))} in the snapshot does not match its hash: the destination copy is damaged; that file was not restored and the restore stopped there`);
}
