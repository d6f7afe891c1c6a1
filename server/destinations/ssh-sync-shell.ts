/**
 * The write-outs and flushes of an SSH destination (`sync -f` of some folders' filesystems)
 * through one remote shell for the whole connection instead of one command each: a backup
 * ran about 20 of them, and each command costs sshd a session (a process, its environment,
 * a channel) on the server and about as much again here. The shell reads one request at a
 * time on its stdin: the folders to sync, one a line, then an empty line; it runs `sync -f`
 * for each, as the commands did, and answers one line with the status. Nothing it reads is
 * run as a command: a line is a folder's name, given to `sync -f` as an argument.
 */
import type { ClientChannel } from 'ssh2';

/**
 * Each line: `m` and a folder that must be synced (a failure fails the request), or `o` and
 * one skipped when it no longer exists. A line of any other form ends the shell.
 */
export const SYNC_SHELL_COMMAND = `rc=0; while IFS= read -r l; do case $l in `
  + `m/*) sync -f -- "\${l#m}" || rc=1;; `
  + `o/*) p=\${l#o}; [ ! -e "$p" ] || sync -f -- "$p" || rc=1;; `
  + `'') echo "tidemark-synced $rc"; rc=0;; `
  + `*) exit 2;; esac; done`;

/** The answer's line; anything longer is not the shell's answer. */
const MAX_ANSWER = 64;
const MAX_STDERR = 4096;

export interface SyncTarget { path: string; mustExist: boolean }

/** Whether every folder can go on a line of its own (absolute, no newline). */
export const fitsSyncShell = (targets: readonly SyncTarget[]): boolean =>
  targets.length > 0 && targets.every((t) => t.path.startsWith('/') && !t.path.includes('\n') && !t.path.includes('\0'));

/**
 * One remote shell that syncs on request. `sync` resolves with the status and what the syncs
 * said on stderr, one request at a time (they queue); it rejects once the shell is gone
 * (exited, its channel closed, or it answered something else than its answer), or when no
 * answer came within `timeoutMs`: the shell is closed then and the caller starts another.
 */
export class SyncShell {
  private stdout = '';
  private stderr = '';
  private waiting: { resolve: (r: { code: number; stderr: string }) => void; reject: (e: Error) => void; timer: NodeJS.Timeout } | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private failure: Error | null = null;

  constructor(private readonly channel: ClientChannel, private readonly timeoutMs: number) {
    channel.on('data', (d: Buffer) => this.onData(d));
    channel.stderr.on('data', (d: Buffer) => { if (this.stderr.length < MAX_STDERR) this.stderr += d.toString('utf8'); });
    channel.on('close', () => this.fail(new Error('the remote sync shell ended')));
    channel.on('error', (err: Error) => this.fail(new Error(`the remote sync shell failed: ${err.message}`)));
  }

  get usable(): boolean {
    return this.failure === null;
  }

  sync(targets: readonly SyncTarget[]): Promise<{ code: number; stderr: string }> {
    const run = this.queue.then(() => this.send(targets));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private send(targets: readonly SyncTarget[]): Promise<{ code: number; stderr: string }> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.fail(new Error('the remote sync shell did not answer in time')), this.timeoutMs);
      this.waiting = { resolve, reject, timer };
      this.stderr = '';
      this.channel.write(`${targets.map((t) => `${t.mustExist ? 'm' : 'o'}${t.path}\n`).join('')}\n`);
    });
  }

  private onData(d: Buffer): void {
    this.stdout += d.toString('latin1');
    const nl = this.stdout.indexOf('\n');
    if (nl < 0) {
      if (this.stdout.length > MAX_ANSWER) this.fail(new Error('the remote sync shell answered something else'));
      return;
    }
    const line = this.stdout.slice(0, nl);
    this.stdout = this.stdout.slice(nl + 1);
    const m = /^tidemark-synced ([01])$/.exec(line);
    const w = this.waiting;
    if (!m || !w || this.stdout !== '') { this.fail(new Error('the remote sync shell answered something else')); return; }
    this.waiting = null;
    clearTimeout(w.timer);
    w.resolve({ code: Number(m[1]), stderr: this.stderr });
  }

  private fail(err: Error): void {
    this.failure ??= err;
    const w = this.waiting;
    this.waiting = null;
    if (w) { clearTimeout(w.timer); w.reject(this.failure); }
    this.channel.close();
  }

  /** Ends the shell (its stdin): it exits after the request it runs. */
  close(): void {
    this.failure ??= new Error('the remote sync shell was closed');
    this.channel.end();
  }
}
