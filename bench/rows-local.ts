/**
 * The rows on this machine's disk: first and second backups (Tidemark's incremental
 * structure, rsync, restic, borg), archives (tar, gzip, pigz), full restores of every
 * structure, and the fixed cost of one backup of an empty account.
 */
import fs from 'node:fs';
import path from 'node:path';
import { discard, diskBytes, interleaved, newDataIn, sh, timed, type Contender } from './measure.js';
import type { Peer } from './peers.js';
import type { Results } from './report.js';
import { CLI, dropSnapshots, snapshotIds, type Account, type World } from './setup.js';

export interface LocalSetup {
  world: World;
  account: Account;
  runs: number;
  peers: Peer[];
  results: Results;
}

export const STRUCTURES = ['incremental', 'archive', 'compressed'] as const;

/** Destinations and jobs, one per structure, named after it. */
export function addLocalJobs(s: LocalSetup): void {
  for (const st of STRUCTURES) s.world.addLocalJob(st, st, [s.account.user]);
}

const destDir = (s: LocalSetup, name: string): string => path.join(s.world.out, name);
const accountDir = (s: LocalSetup, name: string): string => path.join(destDir(s, name), s.account.user);

export async function firstBackups(s: LocalSetup): Promise<void> {
  const rsync1 = path.join(s.world.out, 'rsync-1');
  const contenders: Contender[] = [
    { name: 'rsync -a', prepare: () => discard(rsync1), run: () => timed('rsync', ['-a', `${s.account.home}/`, `${rsync1}/`]) },
    {
      name: 'tidemark incremental (first)',
      prepare: () => dropSnapshots(s.world, 'incremental', accountDir(s, 'incremental')),
      run: () => s.world.tmTimed('backup', '--job', 'incremental', '--wait'),
    },
    ...s.peers.map((p): Contender => ({ name: `${p.name} backup (first)`, prepare: () => p.init(), run: () => p.backup() })),
  ];
  s.results.addAll('first backup', await interleaved(s.runs, contenders), 'rsync -a');
  for (const p of s.peers) p.saveState('first');
  s.results.checkRatio('first incremental ≤ 1.1x rsync -a', 'tidemark incremental (first)', 'rsync -a', 1.1);
}

export async function secondBackups(s: LocalSetup): Promise<void> {
  const rsync1 = path.join(s.world.out, 'rsync-1');
  const rsync2 = path.join(s.world.out, 'rsync-2');
  const first = snapshotIds(s.world, 'incremental').at(-1)!;
  const contenders: Contender[] = [
    { name: 'rsync -a --link-dest', prepare: () => discard(rsync2), run: () => timed('rsync', ['-a', `--link-dest=${rsync1}`, `${s.account.home}/`, `${rsync2}/`]) },
    {
      name: 'tidemark incremental (1 % changed)',
      prepare: () => dropSnapshots(s.world, 'incremental', accountDir(s, 'incremental'), [first]),
      run: () => s.world.tmTimed('backup', '--job', 'incremental', '--wait'),
    },
    ...s.peers.map((p): Contender => ({ name: `${p.name} backup (1 % changed)`, prepare: () => p.loadState('first'), run: () => p.backup() })),
  ];
  s.results.addAll('second backup, 1 % changed', await interleaved(s.runs, contenders), 'rsync -a --link-dest');
  const second = snapshotIds(s.world, 'incremental')[0]!;
  s.results.facts.newDataSecondSnapshot = { tidemark: newDataIn(path.join(accountDir(s, 'incremental'), second, 'files')), rsync: newDataIn(rsync2) };
  const sizes: Record<string, number> = {
    'tidemark incremental destination (2 snapshots)': diskBytes(destDir(s, 'incremental')),
    // One du over both: the files linked from the second copy are counted once.
    'rsync -a + --link-dest copies': Number(sh(`du -scb ${rsync1} ${rsync2} | tail -1`).split('\t')[0]),
  };
  for (const p of s.peers) sizes[`${p.name} repository (2 backups)`] = diskBytes(p.repo);
  s.results.facts.repositoryBytes = sizes;
  s.results.checkRatio('second incremental ≤ 0.7x rsync --link-dest', 'tidemark incremental (1 % changed)', 'rsync -a --link-dest', 0.7);
  for (const p of s.peers) s.results.checkRatio(`second incremental faster than ${p.name}`, 'tidemark incremental (1 % changed)', `${p.name} backup (1 % changed)`, 1);
}

/** tar cf vs the archive structure; tar | gzip -6 and tar | pigz -6 vs the compressed one. Leaves gnu.tar for the restores. */
export async function archives(s: LocalSetup, gzipRuns: number): Promise<string> {
  const home = s.account.home;
  const tarOut = path.join(s.world.out, 'gnu.tar');
  const archive = await interleaved(s.runs, [
    { name: 'tar cf', prepare: () => discard(tarOut), run: () => timed('tar', ['cf', tarOut, '-C', home, '.']) },
    { name: 'tidemark archive', prepare: () => dropSnapshots(s.world, 'archive', accountDir(s, 'archive')), run: () => s.world.tmTimed('backup', '--job', 'archive', '--wait') },
  ]);
  s.results.addAll('archive', archive, 'tar cf');
  fs.chmodSync(tarOut, 0o644);
  s.results.find('tar cf')!.size = fs.statSync(tarOut).size;
  s.results.checkRatio('archive ≤ 1.15x tar cf', 'tidemark archive', 'tar cf', 1.15);

  const gz = path.join(s.world.out, 'gnu.tar.gz');
  const pz = path.join(s.world.out, 'pigz.tar.gz');
  // gzip -6 is slow and steady: fewer runs of it.
  const gzipOnly = await interleaved(Math.min(gzipRuns, s.runs), [
    { name: 'tar | gzip -6', prepare: () => discard(gz), run: () => timed(`tar cf - -C ${home} . | gzip -6 > ${gz}`, [], { shell: true }) },
  ]);
  const rest = await interleaved(s.runs, [
    { name: 'tar | pigz -6', prepare: () => discard(pz), run: () => timed(`tar cf - -C ${home} . | pigz -6 > ${pz}`, [], { shell: true }) },
    { name: 'tidemark compressed', prepare: () => dropSnapshots(s.world, 'compressed', accountDir(s, 'compressed')), run: () => s.world.tmTimed('backup', '--job', 'compressed', '--wait') },
  ]);
  s.results.addAll('compressed archive', gzipOnly);
  s.results.addAll('compressed archive', rest, 'tar | gzip -6');
  s.results.find('tar | gzip -6')!.size = fs.statSync(gz).size;
  s.results.find('tar | pigz -6')!.size = fs.statSync(pz).size;
  const tmGz = sh(`find ${destDir(s, 'compressed')} -name files.tar.gz | head -1`).trim();
  if (tmGz) s.results.find('tidemark compressed')!.size = fs.statSync(tmGz).size;
  discard(gz);
  discard(pz);
  s.results.checkRatio('compressed ≥ 2.5x faster than tar | gzip -6', 'tidemark compressed', 'tar | gzip -6', 0.4);
  s.results.checkRatio('compressed faster than tar | pigz -6', 'tidemark compressed', 'tar | pigz -6', 1);
  return tarOut;
}

/** --restores-only: one backup of each structure and a tar of the home, untimed, for restores(). */
export function restoreSetup(s: LocalSetup): string {
  for (const st of STRUCTURES) s.world.tm('backup', '--job', st, '--wait');
  const tarOut = path.join(s.world.out, 'gnu.tar');
  sh(`tar cf ${tarOut} -C ${s.account.home} .`);
  fs.chmodSync(tarOut, 0o644);
  return tarOut;
}

/**
 * Full restores of the latest snapshot of each structure, in place (over the home as it is)
 * and into a new folder, as root and as the account holder (`--as-account`), against
 * `tar xf` of a tar of the same home, run the same way (as root, or as the account's uid).
 * restic and borg restore into a new folder, as root.
 */
export async function restores(s: LocalSetup, tarFile: string): Promise<void> {
  const a = s.account;
  const ids = Object.fromEntries(STRUCTURES.map((st) => [st, snapshotIds(s.world, st)[0]!]));
  const asUser = { uid: a.uid, gid: a.gid };
  const newDir = path.join(a.home, 'bench-tar-restore');
  const dropRestoreFolders = (): void => { for (const n of fs.readdirSync(a.home)) if (n.startsWith('tidemark-restore-')) discard(path.join(a.home, n)); };
  const peerDir = (p: Peer): string => path.join(s.world.work, `restore-${p.name}`);

  for (const who of ['root', 'account'] as const) {
    for (const where of ['in place', 'new folder'] as const) {
      const tarName = `tar xf${who === 'account' ? ' (as the account)' : ''}${where === 'new folder' ? ' into a new folder' : ''}`;
      const asAccount = who === 'account' ? ['--as-account', a.user] : [];
      const contenders: Contender[] = [
        where === 'in place'
          ? { name: tarName, run: () => timed('tar', ['xf', tarFile, '-C', a.home], who === 'account' ? asUser : {}) }
          : {
            name: tarName,
            prepare: () => { discard(newDir); fs.mkdirSync(newDir); fs.chownSync(newDir, a.uid, a.gid); },
            run: () => timed('tar', ['xf', tarFile, '-C', newDir], who === 'account' ? asUser : {}),
            after: () => discard(newDir),
          },
        ...STRUCTURES.map((st): Contender => ({
          name: `tidemark restore ${st}${who === 'account' ? ' (as the account)' : ''}${where === 'new folder' ? ' into a new folder' : ''}`,
          prepare: dropRestoreFolders,
          run: () => s.world.tmTimed(...asAccount, 'restore', ids[st]!, '--destination', st, where === 'in place' ? '--in-place' : '--into-folder', '--wait'),
          after: dropRestoreFolders,
        })),
        ...(who === 'root' && where === 'new folder' ? s.peers.map((p): Contender => ({
          name: `${p.name} restore into a new folder`,
          prepare: () => { discard(peerDir(p)); fs.mkdirSync(peerDir(p)); },
          run: () => p.restore(peerDir(p)),
          after: () => discard(peerDir(p)),
        })) : []),
      ];
      const group = `full restore ${where === 'in place' ? 'in place' : 'into a new folder'}, as ${who === 'root' ? 'root' : 'the account'}`;
      s.results.addAll(group, await interleaved(s.runs, contenders), tarName);
      for (const st of STRUCTURES) {
        const name = contenders.find((c) => c.name.startsWith(`tidemark restore ${st}`))!.name;
        s.results.checkRatio(`restore ${st} ${where}, as ${who === 'root' ? 'root' : 'the account'} ≤ 1.1x ${tarName}`, name, tarName, 1.1);
        if (who === 'root' && where === 'new folder') {
          for (const p of s.peers) s.results.checkRatio(`restore ${st} into a new folder faster than ${p.name}`, name, `${p.name} restore into a new folder`, 1);
        }
      }
    }
  }
  dropRestoreFolders();
}

/** One CLI backup of an account with an empty home: start-up, state store, worker, flush. */
export async function fixedCost(s: LocalSetup, runs: number): Promise<void> {
  const empty = s.world.addAccount(`tmbe${process.pid % 100000}`);
  s.world.addLocalJob('empty', 'incremental', [empty.user]);
  const contenders: Contender[] = [
    { name: 'node -e 0 (start-up of node alone)', run: () => timed(process.execPath, ['-e', '0']) },
    { name: 'tidemark backup of an empty account', run: () => s.world.tmTimed('backup', '--job', 'empty', '--wait') },
  ];
  // Node reads and parses the file NODE_EXTRA_CA_CERTS names at every start, before any of
  // Tidemark's code runs (about 35 ms of CPU for the bundle of this project's machine, where
  // `node -e 0` took 20 ms without it): where the bench's environment sets it, both are also
  // timed without it, as a provider's cron or panel hook would run them. The goal is checked
  // on the environment as it is.
  const extraCa = process.env.NODE_EXTRA_CA_CERTS;
  s.results.facts['NODE_EXTRA_CA_CERTS set'] = Boolean(extraCa);
  if (extraCa) {
    const env = { ...process.env };
    delete env.NODE_EXTRA_CA_CERTS;
    contenders.push(
      { name: 'node -e 0, without NODE_EXTRA_CA_CERTS', run: () => timed(process.execPath, ['-e', '0'], { env }) },
      { name: 'tidemark backup of an empty account, without NODE_EXTRA_CA_CERTS', run: () => timed(process.execPath, [CLI, '--data-dir', s.world.dataDir, 'backup', '--job', 'empty', '--wait'], { env }) },
    );
  }
  const m = await interleaved(runs, contenders);
  s.results.addAll('fixed cost', m);
  s.results.check('fixed cost of one CLI backup of an empty account', m.get('tidemark backup of an empty account')!.seconds, 0.3, 's');
}
