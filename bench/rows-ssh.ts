/**
 * The rows over SSH: a private OpenSSH server on loopback (test/support/sshd.ts, never the
 * machine's own sshd), reached through a proxy in a worker thread of this process that counts
 * the bytes sent to it. rsync goes through OpenSSH's client, Tidemark through its own SSH
 * destination; both write to the same server, on the same filesystem, flushed the same way.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { startTestSshServer, type TestSshServer } from '../test/support/sshd.js';
import { discard, interleaved, mib, newDataIn, sh, timed, type Contender, type Measure } from './measure.js';
import { STRUCTURES, type LocalSetup } from './rows-local.js';
import { dropSnapshots, snapshotIds } from './setup.js';

interface CountingProxy { port: number; sent: () => number; close: () => Promise<void> }

// In a worker thread: the benchmark's own synchronous calls must not stall the traffic.
const PROXY_SOURCE = `
const net = require('node:net');
const { workerData, parentPort } = require('node:worker_threads');
const counter = new BigInt64Array(workerData.counter);
const server = net.createServer((client) => {
  const upstream = net.connect({ host: '127.0.0.1', port: workerData.target, noDelay: true });
  client.setNoDelay(true);
  const end = () => { client.destroy(); upstream.destroy(); };
  for (const sock of [client, upstream]) { sock.on('error', end); sock.on('close', end); }
  client.on('data', (d) => { Atomics.add(counter, 0, BigInt(d.length)); });
  client.pipe(upstream);
  upstream.pipe(client);
});
server.listen(0, '127.0.0.1', () => parentPort.postMessage(server.address().port));
`;

function countingProxy(targetPort: number): Promise<CountingProxy> {
  const shared = new SharedArrayBuffer(8);
  const counter = new BigInt64Array(shared);
  const worker = new Worker(PROXY_SOURCE, { eval: true, workerData: { target: targetPort, counter: shared } });
  return new Promise((resolve, reject) => {
    worker.once('error', reject);
    worker.once('message', (port: number) => resolve({
      port,
      sent: () => Number(Atomics.load(counter, 0)),
      close: async () => { await worker.terminate(); },
    }));
  });
}

export interface SshSide {
  server: TestSshServer;
  proxy: CountingProxy;
  /** The ssh command line for rsync -e. */
  sshCmd: string;
  login: string;
  remoteDir(name: string): string;
  close(): Promise<void>;
}

export async function startSsh(s: LocalSetup): Promise<SshSide> {
  const server = await startTestSshServer({ allowCommands: true });
  const proxy = await countingProxy(server.port);
  const keyFile = path.join(s.world.work, 'ssh-key');
  fs.writeFileSync(keyFile, server.privateKey, { mode: 0o600 });
  const remoteDir = (name: string): string => path.join(server.remoteRoot, name);
  for (const st of STRUCTURES) {
    fs.mkdirSync(remoteDir(`tm-${st}`));
    sh(`chown ${server.user}:${server.user} ${remoteDir(`tm-${st}`)}`);
    s.world.tm('destination', 'add', '--name', `ssh-${st}`, '--type', 'ssh', '--host', '127.0.0.1', '--port', String(proxy.port), '--user', server.user, '--key-file', keyFile, '--path', remoteDir(`tm-${st}`));
    s.world.tm('job', 'add', '--name', `ssh-${st}`, '--destination', `ssh-${st}`, '--structure', st, '--accounts', s.account.user, '--items', 'files');
  }
  return {
    server, proxy, remoteDir,
    sshCmd: `ssh -p ${proxy.port} -i ${keyFile} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o BatchMode=yes`,
    login: `${server.user}@127.0.0.1`,
    async close() {
      await proxy.close();
      await server.stop().catch((err: unknown) => process.stderr.write(`bench: stopping the test sshd: ${(err as Error).message}\n`));
    },
  };
}

/** Wraps a contender's run so that the bytes sent meanwhile are added to `sent[name]`. */
function counting(ssh: SshSide, sent: Map<string, number[]>, c: Contender): Contender {
  return {
    ...c,
    run: async (): Promise<Measure> => {
      const before = ssh.proxy.sent();
      const m = await c.run();
      sent.set(c.name, [...(sent.get(c.name) ?? []), ssh.proxy.sent() - before]);
      return m;
    },
  };
}

const tmAccountDir = (s: LocalSetup, ssh: SshSide, st: string): string => path.join(ssh.remoteDir(`tm-${st}`), s.account.user);

function reportSent(s: LocalSetup, what: string, sent: Map<string, number[]>): void {
  const facts = (s.results.facts.sentOverSshMiB ??= {}) as Record<string, Record<string, string>>;
  facts[what] = Object.fromEntries([...sent].map(([k, v]) => [k, mib(Math.min(...v))]));
}

export async function sshFirst(s: LocalSetup, ssh: SshSide): Promise<void> {
  const sent = new Map<string, number[]>();
  const r1 = ssh.remoteDir('rsync-1');
  const m = await interleaved(s.runs, [
    { name: 'rsync -a -e ssh', prepare: () => discard(r1), run: () => timed('rsync', ['-a', '-e', ssh.sshCmd, `${s.account.home}/`, `${ssh.login}:${r1}/`]) },
    { name: 'tidemark incremental over ssh (first)', prepare: () => dropSnapshots(s.world, 'ssh-incremental', tmAccountDir(s, ssh, 'incremental')), run: () => s.world.tmTimed('backup', '--job', 'ssh-incremental', '--wait') },
  ].map((c) => counting(ssh, sent, c)));
  s.results.addAll('first backup over ssh', m, 'rsync -a -e ssh');
  reportSent(s, 'first backup', sent);
  s.results.checkRatio('first incremental over ssh ≤ 1.2x rsync -a -e ssh', 'tidemark incremental over ssh (first)', 'rsync -a -e ssh', 1.2);
}

export async function sshSecond(s: LocalSetup, ssh: SshSide): Promise<void> {
  const sent = new Map<string, number[]>();
  const r1 = ssh.remoteDir('rsync-1');
  const r2 = ssh.remoteDir('rsync-2');
  const first = snapshotIds(s.world, 'ssh-incremental').at(-1)!;
  const m = await interleaved(s.runs, [
    { name: 'rsync -a --link-dest -e ssh', prepare: () => discard(r2), run: () => timed('rsync', ['-a', `--link-dest=${r1}`, '-e', ssh.sshCmd, `${s.account.home}/`, `${ssh.login}:${r2}/`]) },
    { name: 'tidemark incremental over ssh (1 % changed)', prepare: () => dropSnapshots(s.world, 'ssh-incremental', tmAccountDir(s, ssh, 'incremental'), [first]), run: () => s.world.tmTimed('backup', '--job', 'ssh-incremental', '--wait') },
  ].map((c) => counting(ssh, sent, c)));
  s.results.addAll('second backup over ssh, 1 % changed', m, 'rsync -a --link-dest -e ssh');
  reportSent(s, 'second backup', sent);
  const second = snapshotIds(s.world, 'ssh-incremental')[0]!;
  s.results.facts.newDataSecondSnapshotOverSsh = { tidemark: newDataIn(path.join(tmAccountDir(s, ssh, 'incremental'), second, 'files')), rsync: newDataIn(r2) };
  s.results.checkRatio('second incremental over ssh ≤ 0.7x rsync --link-dest -e ssh', 'tidemark incremental over ssh (1 % changed)', 'rsync -a --link-dest -e ssh', 0.7);
}

/** Whole copies over SSH: the archive and compressed structures against tar (| gzip) | ssh cat. */
export async function sshArchives(s: LocalSetup, ssh: SshSide): Promise<void> {
  const home = s.account.home;
  const t = ssh.remoteDir('gnu.tar');
  const g = ssh.remoteDir('gnu.tar.gz');
  const m = await interleaved(s.runs, [
    { name: 'tar cf - | ssh cat', prepare: () => discard(t), run: () => timed(`tar cf - -C ${home} . | ${ssh.sshCmd} ${ssh.login} 'cat > ${t}'`, [], { shell: true }), after: () => discard(t) },
    { name: 'tidemark archive over ssh', prepare: () => dropSnapshots(s.world, 'ssh-archive', tmAccountDir(s, ssh, 'archive')), run: () => s.world.tmTimed('backup', '--job', 'ssh-archive', '--wait') },
  ]);
  s.results.addAll('archive over ssh', m, 'tar cf - | ssh cat');
  const mz = await interleaved(1, [
    { name: 'tar | gzip -6 | ssh cat', prepare: () => discard(g), run: () => timed(`tar cf - -C ${home} . | gzip -6 | ${ssh.sshCmd} ${ssh.login} 'cat > ${g}'`, [], { shell: true }), after: () => discard(g) },
    { name: 'tidemark compressed over ssh', prepare: () => dropSnapshots(s.world, 'ssh-compressed', tmAccountDir(s, ssh, 'compressed')), run: () => s.world.tmTimed('backup', '--job', 'ssh-compressed', '--wait') },
  ]);
  s.results.addAll('compressed archive over ssh', mz, 'tar | gzip -6 | ssh cat');
}

/** A full restore from the SSH destination into a new folder against rsync -a back over ssh into an empty folder. */
export async function sshRestore(s: LocalSetup, ssh: SshSide): Promise<void> {
  const a = s.account;
  const id = snapshotIds(s.world, 'ssh-incremental')[0]!;
  const back = path.join(a.home, 'bench-rsync-back');
  const dropRestoreFolders = (): void => { for (const n of fs.readdirSync(a.home)) if (n.startsWith('tidemark-restore-')) discard(path.join(a.home, n)); };
  const m = await interleaved(s.runs, [
    {
      name: 'rsync -a -e ssh back into a new folder',
      prepare: () => discard(back),
      run: () => timed('rsync', ['-a', '-e', ssh.sshCmd, `${ssh.login}:${ssh.remoteDir('rsync-2')}/`, `${back}/`]),
      after: () => discard(back),
    },
    { name: 'tidemark restore from ssh into a new folder', prepare: dropRestoreFolders, run: () => s.world.tmTimed('restore', id, '--destination', 'ssh-incremental', '--into-folder', '--wait'), after: dropRestoreFolders },
  ]);
  s.results.addAll('full restore from ssh', m, 'rsync -a -e ssh back into a new folder');
  s.results.checkRatio('restore from ssh ≤ 1.2x rsync -a back over ssh', 'tidemark restore from ssh into a new folder', 'rsync -a -e ssh back into a new folder', 1.2);
}
