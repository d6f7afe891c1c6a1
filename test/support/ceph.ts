/**
 * A throwaway single-node Ceph cluster with an S3 gateway (radosgw), for the S3 destination
 * tests: one monitor, one OSD on memstore (data in RAM), one radosgw on a free port of
 * 127.0.0.1, cephx with one keyring made here, and an S3 user made with radosgw-admin. Everything
 * lives in a temporary directory (its own ceph.conf, keyring, mon store, logs); nothing in
 * /etc/ceph or /var/lib/ceph is used, and no systemd unit is started.
 *
 * Needs the Debian packages ceph-mon, ceph-osd, radosgw and ceph-common (.ci/run installs them).
 *
 * One cluster per `node --test` run: sharedCeph() starts it the first time a test file asks, in a
 * keeper process (ceph-keeper.ts) that owns the daemons and stops them when the test runner exits;
 * later files find it and reuse it. Tests use a bucket of their own (newBucket).
 */
import { runCommand, type RunResult } from './run-command.js';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freePort } from './free-port.js';

export interface CephCluster {
  /** http://127.0.0.1:PORT, path-style addressing. */
  endpoint: string;
  region: 'us-east-1';
  accessKey: string;
  secretKey: string;
  /** The cluster's temporary directory (ceph.conf, keyring, logs). */
  dir: string;
  conf: string;
  /** Runs radosgw-admin against this cluster, returns its standard output. */
  admin(args: string[]): Promise<string>;
  /** Creates a fresh, empty bucket owned by the S3 user and returns its name. */
  newBucket(hint?: string): Promise<string>;
  /** Runs the gateway's garbage collection now (memstore keeps deleted data in RAM until then). */
  gc(): Promise<void>;
  /** The last lines of the gateway's log, for assertion messages. */
  logTail(lines?: number): string;
  /** Stops the daemons and removes the directory (sharedCeph: only the keeper does). Idempotent. */
  stop(): Promise<void>;
}

interface ClusterInfo { endpoint: string; accessKey: string; secretKey: string; dir: string; conf: string }

const START_TIMEOUT_MS = 60_000;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const run = (cmd: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs = 30_000): Promise<RunResult> => runCommand(cmd, args, { env, timeoutMs });

/** The environment every Ceph command gets: a stale CEPH_CONF or CEPH_ARGS would point at another cluster. */
function cephEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.CEPH_CONF;
  delete env.CEPH_ARGS;
  return env;
}

function tail(file: string, lines = 20): string {
  try { return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n'); } catch { return '(no log)'; }
}

function cephConf(dir: string, fsid: string, monV2: number, monV1: number, rgwPort: number): string {
  // $cluster, $name and $id are Ceph's own metavariables.
  return `[global]
fsid = ${fsid}
mon host = [v2:127.0.0.1:${monV2},v1:127.0.0.1:${monV1}]
mon initial members = a
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind ipv6 = false
# radosgw (16.2) never authenticates to a monitor with auth = none: cephx, one keyring for all
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = ${dir}/keyring
run dir = ${dir}/run
admin socket = ${dir}/run/$cluster-$name.asok
pid file = ${dir}/run/$cluster-$name.pid
log file = ${dir}/log/$cluster-$name.log
crash dir = ${dir}/crash
log to stderr = false
err to stderr = true
# one replica and few placement groups: the default 32 per pool would exceed what one OSD may hold
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon max pg per osd = 1000
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon warn on insecure global id reclaim allowed = false
mon data avail warn = 1
mon data avail crit = 0
# each monitor commit otherwise waits 1 s, and the gateway's first start makes about ten
paxos propose interval = 0.05
[mon]
mon data = ${dir}/mon/$cluster-$id
mon cluster log file = ${dir}/log/$cluster.log
[osd]
osd data = ${dir}/osd/$id
osd objectstore = memstore
memstore device bytes = 2147483648
osd memory target = 939524096
osd crush update on start = true
[client.rgw.a]
rgw data = ${dir}/rgw
rgw frontends = beast endpoint=127.0.0.1:${rgwPort}
rgw thread pool size = 64
rgw enable usage log = false
rgw dns name = 127.0.0.1
`;
}

/**
 * Starts a cluster in `dir` (created, must be empty or missing) as children of this process.
 * Takes about 4 s with the packages installed.
 */
export async function startCeph(dirArg?: string): Promise<CephCluster> {
  const dir = dirArg ?? fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-ceph-'));
  for (const sub of ['run', 'log', 'mon', 'osd/0', 'rgw', 'crash']) fs.mkdirSync(path.join(dir, sub), { recursive: true });
  const conf = path.join(dir, 'ceph.conf');
  const keyring = path.join(dir, 'keyring');
  const env = cephEnv();
  const daemons: ChildProcess[] = [];
  const exited = new Map<ChildProcess, Promise<void>>();
  let stopped = false;

  const must = async (cmd: string, args: string[], timeoutMs?: number): Promise<string> => {
    const r = await run(cmd, args, env, timeoutMs);
    if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.code}): ${(r.stderr || r.stdout).trim().slice(-2000)}`);
    return r.stdout;
  };
  const daemon = (name: string, cmd: string, args: string[]): ChildProcess => {
    const out = fs.openSync(path.join(dir, 'log', `${name}.out`), 'a');
    const child = spawn(cmd, ['-c', conf, ...args, '-f'], { stdio: ['ignore', out, out], env });
    fs.closeSync(out);
    daemons.push(child);
    exited.set(child, new Promise((r) => child.once('exit', () => r())));
    child.once('error', () => { /* reported by waitFor: the daemon is not running */ });
    return child;
  };
  const waitFor = async (what: string, child: ChildProcess, check: () => Promise<boolean>): Promise<void> => {
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${what}: the daemon exited`);
      if (await check()) return;
      if (Date.now() > deadline) throw new Error(`${what}: timed out`);
      await sleep(100);
    }
  };
  const ceph = (args: string[]): Promise<RunResult> => run('ceph', ['-c', conf, '--connect-timeout', '10', ...args], env, 15_000);

  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    // A throwaway cluster: no clean shutdown (SIGTERM takes seconds per daemon while the others
    // keep calling a monitor that is leaving). Reaped by wait(), so no zombie is left behind.
    for (const d of daemons) if (d.exitCode === null && d.signalCode === null) d.kill('SIGKILL');
    await Promise.all([...exited.values()]);
    fs.rmSync(dir, { recursive: true, force: true });
  };

  try {
    const [monV2, monV1, rgwPort] = [await freePort(), await freePort(), await freePort()];
    const fsid = crypto.randomUUID();
    fs.writeFileSync(conf, cephConf(dir, fsid, monV2, monV1, rgwPort));
    // ceph-mon --mkfs imports every entry of this keyring, with its caps, into the auth database.
    await must('ceph-authtool', ['--create-keyring', keyring, '--gen-key', '-n', 'mon.', '--cap', 'mon', 'allow *']);
    await must('ceph-authtool', [keyring, '--gen-key', '-n', 'client.admin', '--cap', 'mon', 'allow *', '--cap', 'osd', 'allow *', '--cap', 'mgr', 'allow *']);
    await must('ceph-authtool', [keyring, '--gen-key', '-n', 'osd.0', '--cap', 'mon', 'allow profile osd', '--cap', 'osd', 'allow *']);
    await must('ceph-authtool', [keyring, '--gen-key', '-n', 'client.rgw.a', '--cap', 'mon', 'allow rw', '--cap', 'osd', 'allow rwx']);
    const monmap = path.join(dir, 'monmap');
    await must('monmaptool', ['--create', '--fsid', fsid, '--addv', 'a', `[v2:127.0.0.1:${monV2},v1:127.0.0.1:${monV1}]`, monmap]);
    await must('ceph-mon', ['-c', conf, '-i', 'a', '--mkfs', '--monmap', monmap, '--keyring', keyring]);
    const mon = daemon('mon.a', 'ceph-mon', ['-i', 'a']);
    await waitFor('ceph-mon quorum', mon, async () => (await ceph(['mon', 'stat'])).code === 0);

    const osdUuid = crypto.randomUUID();
    const osdId = (await must('ceph', ['-c', conf, 'osd', 'new', osdUuid])).trim();
    if (osdId !== '0') throw new Error(`unexpected OSD id ${osdId}`);
    await must('ceph-osd', ['-c', conf, '-i', '0', '--mkfs', '--osd-uuid', osdUuid]);
    const osd = daemon('osd.0', 'ceph-osd', ['-i', '0']);
    await waitFor('ceph-osd up', osd, async () => /^osd\.0 up/m.test((await ceph(['osd', 'dump'])).stdout));

    const rgw = daemon('rgw.a', 'radosgw', ['-n', 'client.rgw.a']);
    const endpoint = `http://127.0.0.1:${rgwPort}`;
    await waitFor('radosgw answering', rgw, async () => {
      try { return (await fetch(endpoint, { signal: AbortSignal.timeout(2000) })).status < 500; } catch { return false; }
    });
    const accessKey = crypto.randomBytes(10).toString('hex').toUpperCase();
    const secretKey = crypto.randomBytes(30).toString('base64url');
    await must('radosgw-admin', ['-c', conf, '-n', 'client.admin', 'user', 'create', '--uid', 'tidemark-test',
      '--display-name', 'tidemark test', '--access-key', accessKey, '--secret', secretKey]);
    return clusterHandle({ endpoint, accessKey, secretKey, dir, conf }, stop);
  } catch (err) {
    const logs = ['mon.a.out', 'osd.0.out', 'rgw.a.out', 'ceph-client.rgw.a.log']
      .map((f) => `== ${f}\n${tail(path.join(dir, 'log', f), 8)}`).join('\n');
    await stop();
    throw new Error(`could not start the test Ceph cluster: ${(err as Error).message}\n${logs}`);
  }
}

function clusterHandle(info: ClusterInfo, stop: () => Promise<void>): CephCluster {
  const env = cephEnv();
  const admin = async (args: string[]): Promise<string> => {
    const r = await run('radosgw-admin', ['-c', info.conf, '-n', 'client.admin', ...args], env, 60_000);
    if (r.code !== 0) throw new Error(`radosgw-admin ${args.join(' ')} failed (exit ${r.code}): ${(r.stderr || r.stdout).trim().slice(-2000)}`);
    return r.stdout;
  };
  return {
    ...info,
    region: 'us-east-1',
    admin,
    async newBucket(hint = 'test') {
      const name = `${hint.toLowerCase().replace(/[^a-z0-9-]/g, '-').slice(0, 30)}-${crypto.randomBytes(4).toString('hex')}`;
      const { S3Client, CreateBucketCommand } = await import('@aws-sdk/client-s3');
      const client = new S3Client({
        endpoint: info.endpoint, region: 'us-east-1', forcePathStyle: true,
        credentials: { accessKeyId: info.accessKey, secretAccessKey: info.secretKey },
      });
      try { await client.send(new CreateBucketCommand({ Bucket: name })); } finally { client.destroy(); }
      return name;
    },
    async gc() { await admin(['gc', 'process', '--include-all']); },
    logTail(lines = 30) { return tail(path.join(info.dir, 'log', 'ceph-client.rgw.a.log'), lines); },
    stop,
  };
}

// ---------------------------------------------------------------------------------------------
// One cluster per test run.

/**
 * The process whose life bounds the shared cluster: the `node --test` runner when this file
 * runs under it (each test file is its child), else this process.
 */
function ownerPid(): number {
  return process.env.NODE_TEST_CONTEXT ? process.ppid : process.pid;
}

function procStart(pid: number): string | null {
  try {
    const line = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return line.slice(line.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch { return null; }
}

/** The directory shared by the files of one run: named after the owner's pid and start time (pids are reused). */
function runDir(owner: number): string {
  return path.join(os.tmpdir(), `tidemark-ceph-run-${owner}-${procStart(owner) ?? '0'}`);
}

let shared: Promise<CephCluster> | null = null;

/** The run's cluster: started by the first test file that asks (in a keeper process), reused by the others. */
export function sharedCeph(): Promise<CephCluster> {
  shared ??= attachOrStart();
  return shared;
}

async function attachOrStart(): Promise<CephCluster> {
  const owner = ownerPid();
  const dir = runDir(owner);
  let first = false;
  try { fs.mkdirSync(dir, { mode: 0o700 }); first = true; } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  if (first) {
    const keeper = path.join(path.dirname(fileURLToPath(import.meta.url)), 'ceph-keeper.js');
    const log = fs.openSync(path.join(dir, 'keeper.log'), 'a');
    const child = spawn(process.execPath, [keeper, dir, String(owner), procStart(owner) ?? '0'], { detached: true, stdio: ['ignore', log, log] });
    fs.closeSync(log);
    child.unref();
  }
  const ready = path.join(dir, 'cluster.json');
  const failed = path.join(dir, 'failed.txt');
  const deadline = Date.now() + START_TIMEOUT_MS * 2;
  for (;;) {
    if (fs.existsSync(failed)) throw new Error(fs.readFileSync(failed, 'utf8'));
    if (fs.existsSync(ready)) break;
    if (Date.now() > deadline) throw new Error(`the shared Ceph cluster did not start; see ${path.join(dir, 'keeper.log')}`);
    await sleep(100);
  }
  const info = JSON.parse(fs.readFileSync(ready, 'utf8')) as ClusterInfo;
  // The keeper stops the cluster when the run ends; a test file only lets go of it.
  return clusterHandle(info, async () => {});
}

/** Used by ceph-keeper.ts: starts the cluster in `dir`/cluster and publishes how to reach it. */
export async function keepShared(dir: string): Promise<CephCluster> {
  try {
    const cluster = await startCeph(path.join(dir, 'cluster'));
    const info: ClusterInfo = { endpoint: cluster.endpoint, accessKey: cluster.accessKey, secretKey: cluster.secretKey, dir: cluster.dir, conf: cluster.conf };
    fs.writeFileSync(path.join(dir, 'cluster.json.tmp'), JSON.stringify(info), { mode: 0o600 });
    fs.renameSync(path.join(dir, 'cluster.json.tmp'), path.join(dir, 'cluster.json'));
    return cluster;
  } catch (err) {
    fs.writeFileSync(path.join(dir, 'failed.txt'), (err as Error).message);
    throw err;
  }
}

export { procStart };
