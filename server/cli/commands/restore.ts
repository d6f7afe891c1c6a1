import { Option, type Command } from 'commander';
import { UserError } from '../../services/context.js';
import { download, findSnapshot, restore } from '../../services/snapshots.js';
import type { BytePath } from '../../util/byte-path.js';
import { humanBytes, printJson } from '../output.js';
import { homePath, homePathBase64, localFile } from '../option-values.js';
import { actionAs, collect } from '../common.js';

interface DbSpec { name: string; as?: string }
const databaseSpec = (v: string, prev: DbSpec[] = []): DbSpec[] => [...prev, { name: v }];
const asSpec = (v: string, prev: string[] = []): string[] => [...prev, v];

function pathsFrom(opts: { path: BytePath[]; pathBase64: BytePath[] }): BytePath[] {
  return [...opts.path, ...opts.pathBase64];
}

/** Pairs each --as with the --database written just before it (commander keeps them apart). */
function pairDatabases(argv: string[]): DbSpec[] {
  const out: DbSpec[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const [flag, inline] = a.startsWith('--') && a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = inline ?? argv[i + 1];
    if (flag === '--database' && value !== undefined) { out.push({ name: value }); if (inline === undefined) i++; }
    else if (flag === '--as' && value !== undefined) {
      const last = out[out.length - 1];
      if (!last || last.as !== undefined) throw new UserError('--as must follow a --database', 'invalid-input');
      last.as = value;
      if (inline === undefined) i++;
    }
  }
  return out;
}

/** restore and download: files and databases out of a snapshot. */
export function register(program: Command): void {
  program.command('restore').description('restore files, folders and databases of a snapshot, into place or into a new folder')
    .argument('<id>', 'snapshot id')
    .option('--path <path>', 'restore this file or folder (repeatable; default: the whole home)', homePath, [])
    .option('--path-base64 <b64>', 'a path given as base64 bytes (repeatable)', homePathBase64, [])
    .option('--database <db>', 'restore this database (repeatable)', databaseSpec, [])
    .option('--as <newdb>', 'restore the preceding --database under this name', asSpec, [])
    .addOption(new Option('--into-folder', 'restore files into a new folder inside the home').conflicts('inPlace'))
    .option('--in-place', 'overwrite what the snapshot holds, leave the rest (default)')
    .option('--destination <name>')
    .option('--wait', 'wait until it is done')
    .action(actionAs(async (ctx, json, who, id: string, opts: { path: BytePath[]; pathBase64: BytePath[]; intoFolder?: boolean; destination?: string }) => {
      const databases = pairDatabases(process.argv.slice(2));
      const s = await findSnapshot(ctx, id, opts.destination, who.actor, who.owner);
      const r = await restore(ctx, s, { paths: pathsFrom(opts), databases, intoFolder: Boolean(opts.intoFolder) }, who.actor);
      if (json) printJson(r);
      else {
        if (r.files) process.stdout.write(`restored ${r.files.files} files, ${r.files.directories} new folders, ${r.files.links} links${r.folder ? ` into ~/${r.folder}` : ''}\n`);
        for (const d of r.databases) process.stdout.write(`restored database ${d.name}${d.restoredAs !== d.name ? ` as ${d.restoredAs}` : ''}\n`);
        for (const w of r.files?.warnings ?? []) process.stderr.write(`warning: ${w.path}: ${w.message}\n`);
        for (const w of r.databaseWarnings) process.stderr.write(`warning: ${w}\n`);
      }
    }));

  program.command('download').description('write chosen files and database dumps of a snapshot as one .tar.gz')
    .argument('<id>', 'snapshot id')
    .option('--path <path>', 'include this file or folder (repeatable)', homePath, [])
    .option('--path-base64 <b64>', 'a path given as base64 bytes (repeatable)', homePathBase64, [])
    .option('--database <db>', 'include this database dump (repeatable)', collect, [])
    .requiredOption('--out <file>', 'where to write the .tar.gz', localFile)
    .option('--destination <name>')
    .action(actionAs(async (ctx, json, who, id: string, opts: { path: BytePath[]; pathBase64: BytePath[]; database: string[]; out: string; destination?: string }) => {
      const s = await findSnapshot(ctx, id, opts.destination, who.actor, who.owner);
      const r = await download(ctx, s, { paths: pathsFrom(opts), databases: opts.database, out: opts.out }, who.actor);
      if (json) printJson(r); else process.stdout.write(`wrote ${r.out}: ${r.files} files, ${humanBytes(r.bytes)}\n`);
    }));
}
