/**
 * Small files of a restore in one remote `tar -c` per batch of thousands (their names on its
 * standard input) instead of three SFTP requests each; the reader's flow (ReadFlow) holds the
 * stream back while its window is full. The output is untrusted input: it is parsed by the
 * project's tar parser, and every member must be the next file asked for (in order; tar skips
 * the ones it cannot read) and a regular file. The caller reads whatever tar did not send over
 * SFTP instead.
 */
import type { ClientChannel } from 'ssh2';
import { parseTar } from '../engine/format/tar.js';
import { DestinationError, type ReadFlow } from './types.js';
import { shellQuote } from './ssh-tar.js';
import { widenWindow } from './ssh-window.js';

/** Enough of the remote tar's complaints to say what failed. */
const MAX_STDERR = 4096;
/** How long the server is given to confirm the channel's close (a lost connection never does). */
const CLOSE_WAIT_MS = 5000;

/**
 * The command that writes the files whose names it reads from its standard input (each ended
 * by a NUL byte) as one tar stream: links as links (never followed; -h is not given), hard
 * links as their content (--hard-dereference: blobs of incremental snapshots are hard links
 * of each other), no directory recursion, and no sparse-file encoding (GNU tar writes sparse
 * members only with -S). The names go on standard input, not the command line, so that one
 * stream serves any number of files (a command line holds 128 KiB at most). They are read as
 * names, never as options: the caller sends none that starts with '-'. Records of 128 KiB
 * (-b 256) instead of tar's 10 KiB: sshd sends what one read of the pipe gave it, so with
 * 10 KiB writes most SSH packets carried 8-16 KiB; with these nearly all carry 32 KiB, half
 * the packets to encrypt, decrypt and hand on, each with its own work in root's JavaScript.
 */
export const listCommand = (tar: string, dir: string): string =>
  `cd -- ${shellQuote(dir)} && exec ${tar} -c -f - -b 256 --format=gnu --no-recursion --hard-dereference --null -T -`;

/** The standard input of listCommand for `names`, or null when one of them cannot be sent that way (read it another way). */
export function nameList(names: readonly string[]): Buffer | null {
  const parts: Buffer[] = [];
  for (const n of names) {
    if (n === '' || n.startsWith('-') || n.includes('\0')) return null;
    parts.push(Buffer.from(`${n}\0`, 'utf8'));
  }
  return Buffer.concat(parts);
}

/** Chunks held before the channel is paused (each at most one SSH packet, 32 KiB). */
const QUEUED_CHUNKS = 64;
/**
 * The tar's channel window (what a paused channel may hold: 4 MiB more than ssh2's own), topped
 * up per 4 MiB taken in instead of ssh2's 1 MiB (ssh-window.ts): a quarter of the window adjusts.
 */
const TAR_WINDOW = 6 << 20;
const TAR_WINDOW_STEP = 4 << 20;

/**
 * The chunks of `channel` one by one, as they came. (A stream's own async iterator reads
 * all it holds at once, which joins the packets into a new buffer each time: a copy of
 * every byte more.)
 */
/** The remote tar sent nothing for a while: what it did not send is read another way. */
class Stalled extends Error {}

async function* packetsOf(channel: ClientChannel, idleMs: number): AsyncGenerator<Buffer> {
  const queue: Buffer[] = [];
  let head = 0;
  let ended = false;
  let failed: Error | null = null;
  let wake: (() => void) | null = null;
  const poke = (): void => { const w = wake; wake = null; w?.(); };
  const window = widenWindow(channel, TAR_WINDOW, TAR_WINDOW_STEP);
  const onData = (c: Buffer): void => {
    queue.push(c);
    if (queue.length - head >= QUEUED_CHUNKS) channel.pause(); else window.topUp();
    poke();
  };
  const onEnd = (): void => { ended = true; poke(); };
  const onError = (err: Error): void => { failed = err; poke(); };
  channel.on('data', onData);
  channel.on('end', onEnd);
  channel.on('close', onEnd);
  channel.on('error', onError);
  try {
    for (;;) {
      if (head < queue.length) {
        const c = queue[head]!;
        queue[head++] = EMPTY;
        if (head === queue.length) { queue.length = 0; head = 0; channel.resume(); window.topUp(); }
        yield c;
        continue;
      }
      if (failed) throw failed;
      if (ended) return;
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        wake = resolve;
        timer = setTimeout(() => { failed ??= new Stalled(); poke(); }, idleMs);
      });
      clearTimeout(timer);
    }
  } finally {
    channel.off('data', onData);
    channel.off('end', onEnd);
    channel.off('close', onEnd);
    channel.off('error', onError);
  }
}
const EMPTY = Buffer.alloc(0);

/** One file asked of a remote `tar -c`: its name there and how many of its first bytes. */
export interface WantedFile {
  name: string;
  size: number;
}

/**
 * A file below this size is handed on as one copy of its bytes, so that it does not keep
 * the packets it came in alive; a larger one as the pieces it came in (views of those
 * packets, no copy: a per-file join cost a restore over SSH 0.4 s of copying and as many
 * bytes again of new memory, which the collector then had to reclaim). A larger file covers
 * most of the packets it lies in, and the reader holds only a few MiB of files at a time
 * (ReadFlow), so what its pieces keep alive is about what they hold.
 */
const COPY_BELOW = 8 << 10;

/**
 * Reads the output of a remote `tar -c` of `wanted` (createCommand). `deliver(i, …)` is
 * called once a file's member is complete (its first `size` bytes: all of them when it is
 * shorter: its pieces, in order), or with the reason it is refused (not a regular file; output that is not a tar
 * archive of the files asked for: every file not delivered yet is then refused). Resolves with
 * the files not delivered, which the caller reads another way: those tar skipped (missing,
 * unreadable) and, from the first member longer than asked on, the rest (reading on would
 * mean taking in all of a file of any size), or after the tar sent nothing for `idleMs`. The
 * channel is closed once the archive ends or is given up.
 */
export async function readRemoteArchive(channel: ClientChannel, where: string, wanted: readonly WantedFile[], deliver: (i: number, result: Buffer[] | Error) => void,
  idleMs: number, flow?: ReadFlow): Promise<number[]> {
  const delivered = new Uint8Array(wanted.length);
  const give = (i: number, result: Buffer[] | Error): void => {
    if (delivered[i]) return;
    delivered[i] = 1;
    deliver(i, result);
  };
  let stderr = '';
  channel.stderr.on('data', (d: Buffer) => { if (stderr.length < MAX_STDERR) stderr += d.toString('utf8'); });
  const closed = new Promise<void>((resolve) => channel.once('close', () => resolve()));
  // The tar parser's names are byte strings (one char per byte).
  const names = wanted.map((w) => Buffer.from(w.name, 'utf8').toString('latin1'));
  let next = 0;
  let broken: DestinationError | null = null;
  let current: { i: number; parts: Buffer[]; got: number } | null = null;
  const refuse = (why: string): DestinationError => new DestinationError(`the remote tar reading ${where} sent ${why}: refused`, 'invalid');
  try {
    for await (const ev of parseTar(packetsOf(channel, idleMs))) {
      if (ev.type === 'data') {
        current!.parts.push(ev.chunk);
        current!.got += ev.chunk.length;
        continue;
      }
      if (ev.type === 'data-end') {
        const c = current!;
        current = null;
        give(c.i, c.got < COPY_BELOW ? [Buffer.concat(c.parts, c.got)] : c.parts);
        continue;
      }
      // Before the next file: the reader may not have room for it yet (the channel stays
      // paused meanwhile, so the remote tar waits too; that wait is not idleness).
      const wait = flow?.room();
      if (wait) await wait;
      const e = ev.entry;
      const at = names.indexOf(e.path, next);
      if (at < 0) { broken = refuse(`an entry that was not asked for (${JSON.stringify(e.path)})`); break; }
      next = at + 1;
      if (e.kind !== 'f') {
        const what = e.kind === 'l' ? 'a symbolic link' : e.kind === 'h' ? 'a hard link entry' : e.kind === 'p' ? 'a fifo' : 'a folder';
        give(at, new DestinationError(`${where}: ${wanted[at]!.name} is not a regular file on the destination (${what}): refused`, 'invalid'));
        continue;
      }
      if (e.size > wanted[at]!.size) break;
      current = { i: at, parts: [], got: 0 };
    }
  } catch (err) {
    if (!(err instanceof Stalled)) broken = refuse(`output that is not a tar archive of the files asked for (${(err as Error).message})`);
  }
  // Done reading: whatever tar still sends is not wanted (a hostile one may send forever).
  channel.close();
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([closed, new Promise<void>((resolve) => { timer = setTimeout(resolve, CLOSE_WAIT_MS); })]);
  clearTimeout(timer);
  if (broken) {
    if (stderr.trim()) broken.message += `; it said: ${stderr.trim().split('\n').slice(-2).join('; ')}`;
    for (let i = 0; i < wanted.length; i++) give(i, broken);
    return [];
  }
  const left: number[] = [];
  for (let i = 0; i < wanted.length; i++) if (!delivered[i]) left.push(i);
  return left;
}
