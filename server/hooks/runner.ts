import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import type { Config } from '../config.js';
import type { Actor } from '../services/actor.js';
import { UserError } from '../services/context.js';

export type HookEvent = 'preBackup' | 'postBackup' | 'preAccountBackup' | 'postAccountBackup' | 'preRestore' | 'postRestore' | 'preDownload' | 'postDownload';

/** The JSON document a hook script reads on stdin. */
export interface HookInput {
  job: string | null;
  account: string | null;
  destination: string | null;
  snapshot: string | null;
  actor: Actor;
  /** Post hooks: what happened (null when it failed). */
  result?: unknown;
  /** Post hooks: why it failed (null when it did not). */
  error?: string | null;
  /** Anything else the event knows (the paths of a restore, the accounts of a job). */
  [key: string]: unknown;
}

/**
 * Where a hook's output and warnings go: the task log, when there is a task. Every line
 * the runner writes is for the provider only (`audience` 'provider'): a script prints
 * whatever it likes (paths, host names, other accounts, secrets) and an account holder
 * who can see the task must never read it. The one thing that reaches whoever asked is a
 * refusing pre-hook's reason (the first line it wrote on stderr), as the error.
 */
export type HookLog = (level: 'info' | 'warn' | 'error', message: string, audience: 'provider') => void;

/** A pre-hook said no (non-zero exit, or no answer in time): the operation does not happen. */
export class HookRefusal extends UserError {
  /**
   * @param forHolders what an account holder may read of it: the script's own words, or a
   *   generic sentence; never the script's path, mode, owner or time limit (the provider's).
   */
  constructor(message: string, readonly forHolders: string = message) {
    super(message);
    this.name = 'HookRefusal';
  }
}

/**
 * An error's message as it may be kept where an account holder reads it: the error and the
 * log lines of its tasks, the activity entries of its snapshots, the mail about its restores.
 * A provider's own backup, restore or download is refused with the hook's detail (the provider
 * asked); what is kept for the account says only that the provider's hook stopped it.
 */
export function hookSafeMessage(err: unknown): string {
  return err instanceof HookRefusal ? err.forHolders : (err as Error).message;
}

/** Output kept per stream; a hook that prints more is cut there. */
const OUTPUT_LIMIT = 16 * 1024;

const isPre = (event: HookEvent): boolean => event.startsWith('pre');

/**
 * Hooks run as root, so a script anyone but root could change would hand root to them:
 * the file and every folder above it must be root's and not group- or world-writable (a
 * sticky folder such as /tmp is fine: nobody else can replace root's file in it).
 */
export function checkHookScript(script: string): void {
  if (!path.isAbsolute(script)) throw new Error(`hook ${script}: not an absolute path`);
  let real: string;
  try {
    real = fs.realpathSync(script);
  } catch (err) {
    throw new Error(`hook ${script}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
  const st = fs.statSync(real);
  if (!st.isFile()) throw new Error(`hook ${script}: not a regular file`);
  if (st.uid !== 0) throw new Error(`hook ${script}: refused, it runs as root so it must be owned by root (owner uid ${st.uid})`);
  if (st.mode & 0o022) throw new Error(`hook ${script}: refused, it runs as root so it must not be group- or world-writable (mode ${(st.mode & 0o7777).toString(8)})`);
  if (!(st.mode & 0o100)) throw new Error(`hook ${script}: not executable`);
  for (let dir = path.dirname(real); ; dir = path.dirname(dir)) {
    const d = fs.statSync(dir);
    const sticky = (d.mode & 0o1000) !== 0;
    if (d.uid !== 0 || ((d.mode & 0o022) && !sticky)) {
      throw new Error(`hook ${script}: refused, folder ${dir} could let someone other than root replace it`);
    }
    if (dir === '/') break;
  }
}

interface Outcome { code: number | null; timedOut: boolean; stdout: string; stderr: string; truncated: boolean }

function runOne(script: string, event: HookEvent, input: string, timeLimitMs: number): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(script, [], {
      stdio: ['pipe', 'pipe', 'pipe'],
      // Its own process group, so a time-out kills whatever the script started too.
      detached: true,
      env: { PATH: process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8', TIDEMARK_EVENT: event },
      cwd: '/',
    });
    const out = { stdout: '', stderr: '', truncated: false };
    for (const key of ['stdout', 'stderr'] as const) {
      child[key].setEncoding('utf8');
      child[key].on('data', (d: string) => {
        const room = OUTPUT_LIMIT - out[key].length;
        if (d.length > room) out.truncated = true;
        if (room > 0) out[key] += d.slice(0, room);
      });
    }
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* already gone */ }
    }, timeLimitMs);
    // A script that does not read its input must not fail the write.
    child.stdin.on('error', () => undefined);
    child.stdin.end(input);
    child.on('error', (err) => { clearTimeout(timer); reject(err); });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, timedOut, ...out });
    });
  });
}

const firstLine = (text: string): string => text.split('\n').map((l) => l.trim()).find((l) => l !== '') ?? '';

/**
 * Runs the provider's scripts for `event`, one after the other, each with one JSON
 * document on stdin. A pre-hook that fails (exit status not 0, a refused script, or no
 * end within the time limit) throws a HookRefusal carrying the first line it wrote on
 * stderr, and the later scripts do not run; a post-hook that fails is only a warning.
 */
export async function runHooks(config: Pick<Config, 'hooks'>, event: HookEvent, input: HookInput, log: HookLog = () => undefined): Promise<void> {
  const scripts = config.hooks[event];
  if (scripts.length === 0) return;
  const doc = JSON.stringify({ event, time: new Date().toISOString(), ...input }) + '\n';
  const limitMs = config.hooks.timeLimitSeconds * 1000;
  for (const script of scripts) {
    let failure: string | null = null;
    /** The failure is the script's own first stderr line: the one text meant for whoever asked. */
    let ownWords = false;
    try {
      checkHookScript(script);
      const r = await runOne(script, event, doc, limitMs);
      const cut = r.truncated ? ' (output truncated)' : '';
      if (r.stdout.trim()) log('info', `${event} hook ${script} printed${cut}: ${r.stdout.trimEnd()}`, 'provider');
      if (r.stderr.trim()) log(r.code === 0 ? 'info' : 'warn', `${event} hook ${script} wrote on stderr${cut}: ${r.stderr.trimEnd()}`, 'provider');
      if (r.timedOut) failure = `${event} hook ${script} did not finish within ${config.hooks.timeLimitSeconds} s and was stopped`;
      else if (r.code !== 0) {
        const said = firstLine(r.stderr);
        ownWords = said !== '';
        failure = said || `${event} hook ${script} failed with exit status ${r.code ?? 'unknown'}`;
      }
    } catch (err) {
      failure = (err as Error).message;
    }
    if (failure === null) continue;
    if (isPre(event)) {
      log('error', `${event} hook ${script}: ${failure}`, 'provider');
      // Anything but the script's own words names the provider's script (its path, mode, owner,
      // time limit): the provider's to read (the line above), never an account holder's or a reseller's.
      const generic = `the provider's ${event} hook stopped this (the provider's task log says why)`;
      throw new HookRefusal(ownWords || input.actor.role === 'admin' ? failure : generic, ownWords ? failure : generic);
    }
    log('warn', `${event} hook ${script} failed (the operation itself is not affected): ${failure}`, 'provider');
  }
}
