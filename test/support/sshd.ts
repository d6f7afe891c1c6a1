/**
 * A private OpenSSH server for the tests: its own sshd_config, host key, authorized keys, pid
 * file and log in a temporary directory, listening on a free port of 127.0.0.1 only, for one
 * dedicated Linux user created for it (and deleted by stop()). The machine's own sshd, its
 * /etc/ssh configuration and host keys, and port 22 are never used or touched.
 *
 * Needs root and the openssh-server package (/usr/sbin/sshd, ssh-keygen).
 */
import { runCommand, type RunResult } from './run-command.js';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import crypto from 'node:crypto';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';

export interface TestSshServer {
  host: '127.0.0.1';
  port: number;
  /** A dedicated Linux user created for this server, with a home. */
  user: string;
  /** That user's password (password login enabled). */
  password: string;
  /** OpenSSH-format private key (ed25519, no passphrase) authorized for the user. */
  privateKey: string;
  /** A second authorized key, protected by `passphrase`. */
  encryptedPrivateKey: string;
  passphrase: string;
  /** SHA256 fingerprint of the current host key, base64 without padding, as `ssh-keygen -lf` prints after "SHA256:". */
  hostKeyFingerprint: string;
  /** The current host public key, as in the .pub file: `ssh-ed25519 AAAA... comment`. */
  hostPublicKey: string;
  /** An existing directory owned by the user, inside its home, for destinations. */
  remoteRoot: string;
  /** The user's home directory. */
  home: string;
  /** The temporary directory (config, keys, log, the user's home). */
  dir: string;
  /** sshd's log (LogLevel VERBOSE). */
  logFile: string;
  /** The last lines of the log, for assertion messages. */
  logTail(lines?: number): string;
  /** Stops sshd, deletes the user and all temporary files. Idempotent. */
  stop(): Promise<void>;
  /** Stops the daemon (and its sessions) and starts it again on the same port with the same keys. */
  restart(): Promise<void>;
  /** Stops the daemon abruptly: SIGKILL the listener and its session children, nothing else cleaned. */
  kill(): Promise<void>;
  /** Replaces the host key, restarts, returns the new fingerprint (also set on hostKeyFingerprint). */
  rotateHostKey(): Promise<string>;
  /** Changes the user's password on the server (chpasswd); also sets `password`. */
  setPassword(password: string): Promise<void>;
}

const SSHD = '/usr/sbin/sshd';
const START_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 5_000;
const HOST = '127.0.0.1';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const run = (cmd: string, args: string[], input?: string): Promise<RunResult> => runCommand(cmd, args, { ...(input !== undefined ? { input } : {}) });

/** Runs a shadow-utils command, retrying while another process holds the /etc/passwd lock. */
async function runLocked(cmd: string, args: string[], input?: string): Promise<RunResult> {
  for (let attempt = 0; ; attempt++) {
    const r = await run(cmd, args, input);
    if (r.code === 0 || attempt >= 50 || !/lock|try again/i.test(r.stderr)) return r;
    await sleep(50 + Math.random() * 100);
  }
}

async function must(cmd: string, args: string[], input?: string): Promise<string> {
  const r = await runLocked(cmd, args, input);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.code}): ${(r.stderr || r.stdout).trim()}`);
  return r.stdout;
}

function tailFile(file: string, lines = 30): string {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no sshd log)';
  }
}

/** A base directory that the test user can traverse (its home lives inside). */
function baseDir(): string {
  const traversable = (dir: string): boolean => {
    for (let d = path.resolve(dir); ; d = path.dirname(d)) {
      try { if ((fs.statSync(d).mode & 0o001) === 0) return false; } catch { return false; }
      if (d === path.dirname(d)) return true;
    }
  };
  const tmp = os.tmpdir();
  return traversable(tmp) ? tmp : '/tmp';
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, HOST, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => (port ? resolve(port) : reject(new Error('could not find a free port'))));
    });
  });
}

/** Connects and reads the server's identification line; resolves true on `SSH-2.0-`. */
function readBanner(port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    let buf = '';
    let done = false;
    const sock = net.connect({ host: HOST, port });
    const finish = (ok: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    sock.on('data', (d) => {
      buf += d.toString('latin1');
      if (buf.includes('SSH-2.0-')) {
        // Say who we are before leaving, so that the log shows a probe rather than garbage.
        sock.write('SSH-2.0-tidemark_probe\r\n', () => finish(true));
      }
    });
    sock.on('error', () => finish(false));
    sock.on('close', () => finish(buf.includes('SSH-2.0-')));
  });
}

// ---------------------------------------------------------------------------------------------
// Processes, from /proc: a PID is identified by (pid, start time) so that a reused PID is never
// signalled.

interface ProcInfo { pid: number; ppid: number; start: string; zombie: boolean }

function procStat(pid: number): ProcInfo | null {
  try {
    const line = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = line.slice(line.lastIndexOf(')') + 2).split(' ');
    // fields[0] is the state (field 3); ppid is field 4, starttime field 22.
    return { pid, ppid: Number(fields[1]), start: fields[19] ?? '', zombie: fields[0] === 'Z' || fields[0] === 'X' };
  } catch {
    return null;
  }
}

function allProcs(): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const p = procStat(Number(name));
    if (p) out.push(p);
  }
  return out;
}

/** The process and all its descendants. */
function processTree(root: number): ProcInfo[] {
  const rootInfo = procStat(root);
  if (!rootInfo) return [];
  const procs = allProcs();
  const found = new Map<number, ProcInfo>([[root, rootInfo]]);
  for (let grew = true; grew;) {
    grew = false;
    for (const p of procs) {
      if (!found.has(p.pid) && found.has(p.ppid)) { found.set(p.pid, p); grew = true; }
    }
  }
  return [...found.values()];
}

function uidProcs(uid: number): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const status = fs.readFileSync(`/proc/${name}/status`, 'utf8');
      const m = /^Uid:\s+(\d+)\s+(\d+)/m.exec(status);
      if (m && (Number(m[1]) === uid || Number(m[2]) === uid)) {
        const p = procStat(Number(name));
        if (p && !p.zombie) out.push(p);
      }
    } catch { /* gone */ }
  }
  return out;
}

function signal(p: ProcInfo, sig: NodeJS.Signals): void {
  const now = procStat(p.pid);
  if (!now || now.start !== p.start || now.zombie) return; // gone, or the PID was reused
  try { process.kill(p.pid, sig); } catch { /* gone */ }
}

/** Still running: zombies (dead, waiting for their parent or init to reap them) do not count. */
function alive(p: ProcInfo): boolean {
  const now = procStat(p.pid);
  return !!now && now.start === p.start && !now.zombie;
}

/** SIGKILLs a process tree: freeze it first (no new children), then kill everything found. */
function killTree(root: number): ProcInfo[] {
  const first = processTree(root);
  for (const p of first) signal(p, 'SIGSTOP');
  const seen = new Map(first.map((p) => [p.pid, p]));
  for (const p of processTree(root)) {
    if (!seen.has(p.pid)) { signal(p, 'SIGSTOP'); seen.set(p.pid, p); }
  }
  for (const p of seen.values()) signal(p, 'SIGKILL');
  return [...seen.values()];
}

async function waitGone(procs: ProcInfo[], timeoutMs = STOP_TIMEOUT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (procs.some(alive) && Date.now() < deadline) await sleep(10);
}

// ---------------------------------------------------------------------------------------------

// Started with the temporary directory's pid file, the user, its uid and the directory. When the
// test process dies (however it dies), its end of the pipe closes, `read` sees end-of-file, and
// the watchdog kills the daemon with its sessions and every process of the user, then deletes
// the user and the directory.
const WATCHDOG = `read _ignored
pidfile=$1; user=$2; uid=$3; dir=$4
procs() {
  for s in /proc/[0-9]*/stat; do
    l=$(cat "$s" 2>/dev/null) || continue
    p=\${s#/proc/}; p=\${p%/stat}
    r=\${l##*) }
    set -f; set -- $r; set +f
    echo "$p $2"
  done
}
tree() {
  list=" $1 "
  table=$(procs)
  grew=1
  while [ "$grew" = 1 ]; do
    grew=0
    for pp in $(echo "$table" | while read -r c pa; do case "$list" in *" $pa "*) case "$list" in *" $c "*) ;; *) echo "$c";; esac;; esac; done); do
      list="$list$pp "; grew=1
    done
  done
  echo $list
}
pid=$(cat "$pidfile" 2>/dev/null)
if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
  kill -STOP "$pid" 2>/dev/null
  t=$(tree "$pid")
  kill -STOP $t 2>/dev/null
  kill -KILL $t 2>/dev/null
fi
for d in /proc/[0-9]*; do
  while read -r k a b _rest; do
    if [ "$k" = Uid: ]; then
      if [ "$a" = "$uid" ] || [ "$b" = "$uid" ]; then kill -KILL "\${d#/proc/}" 2>/dev/null; fi
      break
    fi
  done < "$d/status"
done 2>/dev/null
i=0
while [ "$i" -lt 100 ]; do
  userdel --force --remove "$user" >/dev/null 2>&1
  id "$user" >/dev/null 2>&1 || break
  sleep 0.1; i=$((i+1))
done
groupdel "$user" >/dev/null 2>&1
rm -rf -- "$dir"
`;

function sshdVersion(): [number, number] {
  const r = spawnSync(SSHD, ['-V'], { encoding: 'utf8' });
  const m = /OpenSSH_(\d+)\.(\d+)/.exec(`${r.stderr ?? ''}${r.stdout ?? ''}`);
  return m ? [Number(m[1]), Number(m[2])] : [0, 0];
}

function sshdConfig(o: {
  port: number; hostKey: string; pidFile: string; authorizedKeys: string; user: string; allowCommands: boolean;
}): string {
  const [major, minor] = sshdVersion();
  const lines = [
    '# Generated by test/support/sshd.ts for one test server. Nothing from /etc/ssh is used.',
    `Port ${o.port}`,
    'AddressFamily inet',
    `ListenAddress ${HOST}`,
    `HostKey ${o.hostKey}`,
    `PidFile ${o.pidFile}`,
    `AuthorizedKeysFile ${o.authorizedKeys}`,
    // The authorized keys file is under /tmp (mode 1777), which StrictModes would refuse.
    'StrictModes no',
    'PubkeyAuthentication yes',
    'PasswordAuthentication yes',
    'PermitEmptyPasswords no',
    'KbdInteractiveAuthentication no',
    'HostbasedAuthentication no',
    'GSSAPIAuthentication no',
    // Passwords are checked by sshd against /etc/shadow (set with chpasswd), no PAM stack involved.
    'UsePAM no',
    'PermitRootLogin no',
    `AllowUsers ${o.user}`,
    'UseDNS no',
    'PrintMotd no',
    'PrintLastLog no',
    'X11Forwarding no',
    'AllowAgentForwarding no',
    'PermitUserEnvironment no',
    'LoginGraceTime 30',
    'MaxAuthTries 6',
    // Tests open many connections and channels at once.
    'MaxStartups 100',
    'MaxSessions 100',
    'LogLevel VERBOSE',
    'Subsystem sftp internal-sftp',
  ];
  // OpenSSH 9.8+ penalises addresses with failed or incomplete logins; fault tests make many.
  if (major > 9 || (major === 9 && minor >= 8)) lines.push('PerSourcePenalties no');
  if (!o.allowCommands) lines.push('ForceCommand internal-sftp');
  return `${lines.join('\n')}\n`;
}

async function fingerprint(pubFile: string): Promise<string> {
  const out = await must('ssh-keygen', ['-lf', pubFile]);
  const m = /SHA256:([A-Za-z0-9+/]+)/.exec(out);
  if (!m?.[1]) throw new Error(`unexpected ssh-keygen -lf output: ${out}`);
  return m[1];
}

export async function startTestSshServer(opts: { allowCommands?: boolean } = {}): Promise<TestSshServer> {
  const allowCommands = opts.allowCommands ?? false;
  if (process.getuid?.() !== 0) throw new Error('the SSH tests need root (they create a Linux user and run sshd)');
  try { fs.accessSync(SSHD, fs.constants.X_OK); } catch {
    throw new Error(`the SSH tests need ${SSHD}: apt-get install -y openssh-server openssh-client`);
  }

  const started = Date.now();
  const dir = fs.mkdtempSync(path.join(baseDir(), 'tidemark-sshd-'));
  fs.chmodSync(dir, 0o755);
  const homes = path.join(dir, 'home');
  fs.mkdirSync(homes, { mode: 0o755 });
  fs.chmodSync(homes, 0o755);
  const config = path.join(dir, 'sshd_config');
  const hostKey = path.join(dir, 'ssh_host_ed25519_key');
  const pidFile = path.join(dir, 'sshd.pid');
  const logFile = path.join(dir, 'sshd.log');
  const authorizedKeys = path.join(dir, 'authorized_keys');
  const keyFile = path.join(dir, 'id');
  const encKeyFile = path.join(dir, 'id2');

  let user = '';
  let uid = -1;
  let userCreated = false;
  let child: ChildProcess | undefined;
  let exitPromise: Promise<void> = Promise.resolve();
  let watchdog: ChildProcess | undefined;
  let stopped = false;

  const running = (): boolean => !!child && child.exitCode === null && child.signalCode === null;

  // The test process exits without stop(): kill the daemon and the user's processes, delete the
  // user and the directory, synchronously (the watchdog covers deaths by signal).
  const onExit = (): void => {
    if (child?.pid) { try { killTree(child.pid); } catch { /* best effort */ } }
    if (userCreated) {
      for (const p of uidProcs(uid)) signal(p, 'SIGKILL');
      spawnSync('userdel', ['--force', '--remove', user], { stdio: 'ignore' });
      spawnSync('groupdel', [user], { stdio: 'ignore' });
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  process.on('exit', onExit);

  /** Stops the daemon; `abrupt`: SIGKILL everything at once, else SIGTERM first. */
  const stopDaemon = async (abrupt: boolean): Promise<void> => {
    const proc = child;
    if (proc?.pid && running()) {
      proc.ref();
      if (abrupt) {
        await waitGone(killTree(proc.pid));
      } else {
        const tree = processTree(proc.pid);
        for (const p of tree) signal(p, 'SIGTERM');
        const deadline = Date.now() + STOP_TIMEOUT_MS;
        while (tree.some(alive) && Date.now() < deadline) await sleep(20);
        const rest = running() ? killTree(proc.pid) : [];
        for (const p of tree) signal(p, 'SIGKILL');
        await waitGone([...tree, ...rest]);
      }
      await exitPromise;
    }
    if (!abrupt) {
      // Sessions left behind (an earlier kill()) and anything the user started in the background.
      const left = uidProcs(uid);
      for (const p of left) signal(p, 'SIGKILL');
      await waitGone(left);
      fs.rmSync(pidFile, { force: true });
    }
  };

  const startDaemon = async (port: number): Promise<void> => {
    const t = await run(SSHD, ['-t', '-f', config]);
    if (t.code !== 0) {
      throw new Error(`sshd -t -f ${config} rejected the test configuration (exit ${t.code}):\n${(t.stderr + t.stdout).trim()}\n--- ${config} ---\n${fs.readFileSync(config, 'utf8')}`);
    }
    fs.rmSync(pidFile, { force: true });
    const proc = spawn(SSHD, ['-D', '-f', config, '-E', logFile], { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
    child = proc;
    let stderr = '';
    let exited: string | null = null;
    proc.stderr?.on('data', (d) => { stderr += d; });
    (proc.stderr as Socket | null)?.unref();
    exitPromise = new Promise<void>((resolve) => {
      proc.on('exit', (code, sig) => { exited = code !== null ? `exit code ${code}` : `signal ${sig}`; proc.unref(); resolve(); });
      proc.on('error', (e) => { exited = e.message; resolve(); });
    });
    proc.unref();

    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      if (exited) {
        throw new Error(`sshd stopped while starting (${exited})${stderr ? `: ${stderr.trim()}` : ''}; log:\n${tailFile(logFile)}`);
      }
      if (await readBanner(port)) return;
      if (Date.now() > deadline) {
        throw new Error(`the test sshd did not answer with an SSH-2.0- banner on ${HOST}:${port} within ${START_TIMEOUT_MS / 1000} s; log:\n${tailFile(logFile)}`);
      }
      await sleep(25);
    }
  };

  const cleanup = async (): Promise<void> => {
    process.off('exit', onExit);
    await stopDaemon(false);
    if (userCreated) {
      for (const p of uidProcs(uid)) signal(p, 'SIGKILL');
      const r = await runLocked('userdel', ['--force', '--remove', user]);
      // 6: no such user.
      if (r.code !== 0 && r.code !== 6 && r.code !== 12) {
        throw new Error(`userdel ${user} failed (exit ${r.code}): ${r.stderr.trim()}`);
      }
      await runLocked('groupdel', [user]); // usually removed with the user
      userCreated = false;
    }
    if (watchdog?.pid && watchdog.exitCode === null) { try { watchdog.kill('SIGKILL'); } catch { /* gone */ } }
    fs.rmSync(dir, { recursive: true, force: true });
  };

  try {
    // Privilege separation directory (the package normally creates it at boot).
    fs.mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });

    // The user.
    for (let attempt = 0; ; attempt++) {
      user = `tmssh${crypto.randomBytes(3).toString('hex')}`;
      if (spawnSync('id', [user], { stdio: 'ignore' }).status !== 0) break;
      if (attempt > 20) throw new Error('could not find an unused user name');
    }
    const home = path.join(homes, user);
    const r = await runLocked('useradd', ['--create-home', '--home-dir', home, '--shell', '/bin/sh', '--user-group', user]);
    if (r.code !== 0) throw new Error(`useradd ${user} failed (exit ${r.code}): ${r.stderr.trim()}`);
    userCreated = true;
    uid = Number((await must('id', ['-u', user])).trim());
    const gid = Number((await must('id', ['-g', user])).trim());

    watchdog = spawn('/bin/sh', ['-c', WATCHDOG, 'tidemark-sshd-watchdog', pidFile, user, String(uid), dir], {
      stdio: ['pipe', 'ignore', 'ignore'], detached: true,
    });
    watchdog.on('error', () => { /* no watchdog: the exit hook still helps */ });
    watchdog.unref();
    (watchdog.stdin as Socket | null)?.unref();

    const password = crypto.randomBytes(12).toString('hex');
    await must('chpasswd', [], `${user}:${password}\n`);
    fs.chownSync(home, uid, gid);
    fs.chmodSync(home, 0o755);
    const remoteRoot = path.join(home, 'backups');
    fs.mkdirSync(remoteRoot, { mode: 0o755 });
    fs.chownSync(remoteRoot, uid, gid);

    // Keys.
    const passphrase = crypto.randomBytes(12).toString('hex');
    await Promise.all([
      must('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'tidemark-test-host', '-f', hostKey]),
      must('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'tidemark-test', '-f', keyFile]),
      must('ssh-keygen', ['-q', '-t', 'ed25519', '-N', passphrase, '-C', 'tidemark-test-encrypted', '-f', encKeyFile]),
    ]);
    fs.writeFileSync(authorizedKeys, fs.readFileSync(`${keyFile}.pub`, 'utf8') + fs.readFileSync(`${encKeyFile}.pub`, 'utf8'), { mode: 0o644 });
    fs.chmodSync(authorizedKeys, 0o644);

    // Config and daemon. The free port may be taken between probe and bind: try a few.
    let port = 0;
    for (let attempt = 0; ; attempt++) {
      port = await freePort();
      fs.writeFileSync(config, sshdConfig({ port, hostKey, pidFile, authorizedKeys, user, allowCommands }), { mode: 0o644 });
      try {
        await startDaemon(port);
        break;
      } catch (err) {
        if (attempt < 3 && /Address already in use/i.test(tailFile(logFile))) { await stopDaemon(true); continue; }
        throw err;
      }
    }

    const server: TestSshServer = {
      host: HOST,
      port,
      user,
      password,
      privateKey: fs.readFileSync(keyFile, 'utf8'),
      encryptedPrivateKey: fs.readFileSync(encKeyFile, 'utf8'),
      passphrase,
      hostKeyFingerprint: await fingerprint(`${hostKey}.pub`),
      hostPublicKey: fs.readFileSync(`${hostKey}.pub`, 'utf8').trim(),
      remoteRoot,
      home,
      dir,
      logFile,
      logTail: (lines = 30) => tailFile(logFile, lines),
      async stop(): Promise<void> {
        if (stopped) return;
        stopped = true;
        await cleanup();
      },
      async restart(): Promise<void> {
        if (stopped) throw new Error('the test sshd was stopped');
        await stopDaemon(false);
        await startDaemon(port);
      },
      async kill(): Promise<void> {
        if (stopped) return;
        await stopDaemon(true);
      },
      async rotateHostKey(): Promise<string> {
        if (stopped) throw new Error('the test sshd was stopped');
        await stopDaemon(false);
        fs.rmSync(hostKey, { force: true });
        fs.rmSync(`${hostKey}.pub`, { force: true });
        await must('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'tidemark-test-host', '-f', hostKey]);
        server.hostKeyFingerprint = await fingerprint(`${hostKey}.pub`);
        server.hostPublicKey = fs.readFileSync(`${hostKey}.pub`, 'utf8').trim();
        await startDaemon(port);
        return server.hostKeyFingerprint;
      },
      async setPassword(password: string): Promise<void> {
        if (stopped) throw new Error('the test sshd was stopped');
        await must('chpasswd', [], `${user}:${password}\n`);
        server.password = password;
      },
    };
    if (process.env.TIDEMARK_TEST_VERBOSE) {
      console.error(`test sshd ready on ${HOST}:${port} for ${user} in ${Date.now() - started} ms (${dir})`);
    }
    return server;
  } catch (err) {
    stopped = true;
    try { await cleanup(); } catch { /* report the first error */ }
    throw err;
  }
}
