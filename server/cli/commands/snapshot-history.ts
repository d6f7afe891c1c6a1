import type { Command } from 'commander';
import { pathHistory, searchPaths, snapshotChanges, type Readiness } from '../../services/path-history.js';
import { humanBytes, printJson, printTable } from '../output.js';
import { folderBase64, folderPath, wholeNumber } from '../option-values.js';
import { actionAs } from '../common.js';
import type { BytePath } from '../../util/byte-path.js';

/** Drops the byte strings the services carry for the pages (JSON has `path` and `pathBase64`). */
const withoutBytes = <T extends { bytes?: BytePath }>(x: T): Omit<T, 'bytes'> => { const { bytes: _b, ...rest } = x; return rest; };

function warnUnreadable(r: Readiness): void {
  if (r.unreadable.length) process.stderr.write(`not searched (index refused as damaged): ${r.unreadable.join(', ')}\n`);
  if (r.unreachable.length) process.stderr.write(`could not be read, newest snapshots may be missing: ${r.unreachable.join(', ')}\n`);
}

/** snapshot search | versions | diff: finding things across snapshots (the account's path catalog). */
export function registerHistory(snapshot: Command): void {
  snapshot.command('search').argument('<query>', 'part of a name, or a glob (* ? [..]); with a "/" it is matched against the whole path')
    .description("find files by name or path in every snapshot of an account, newest version first")
    .option('--account <user>', 'the account (an account holder: its own)')
    .option('--in <folder>', 'only below this folder', folderPath)
    .option('--in-base64 <b64>', 'the folder as base64 bytes', folderBase64)
    .option('--from <day>', 'only snapshots taken on or after this day (YYYY-MM-DD)')
    .option('--to <day>', 'only snapshots taken on or before this day (YYYY-MM-DD)')
    .option('--modified-since <day>', 'only versions modified on or after this day (YYYY-MM-DD)')
    .option('--limit <n>', 'paths to show (1 to 1000, default 100)', wholeNumber(1, 1000))
    .option('--offset <n>', 'paths to skip', wholeNumber(0, 100_000_000))
    .action(actionAs(async (ctx, json, who, query: string, o: { account?: string; in?: string; inBase64?: string; from?: string; to?: string; modifiedSince?: string; limit?: number; offset?: number }) => {
      const r = await searchPaths(ctx, {
        query, ...(o.account !== undefined ? { account: o.account } : {}), folder: o.inBase64 ?? o.in ?? '',
        ...(o.from !== undefined ? { from: o.from } : {}), ...(o.to !== undefined ? { to: o.to } : {}),
        ...(o.modifiedSince !== undefined ? { modifiedSince: o.modifiedSince } : {}), ...(o.limit !== undefined ? { limit: o.limit } : {}), ...(o.offset !== undefined ? { offset: o.offset } : {}),
      }, who.actor);
      if (json) { printJson({ ...r, results: r.results.map(withoutBytes) }); return; }
      warnUnreadable(r);
      printTable(r.results.flatMap((p) => p.versions.map((v, i) => ({
        path: i === 0 ? JSON.stringify(p.path).slice(1, -1) : '', type: v.type, size: humanBytes(v.size), mtime: v.mtime,
        snapshot: v.snapshots[0]!.id, destination: v.snapshots[0]!.destination, held: String(v.snapshots.length),
      }))), ['path', 'type', 'size', 'mtime', 'snapshot', 'destination', 'held']);
      process.stdout.write(`${r.total} path${r.total === 1 ? '' : 's'} found\n`);
    }));

  snapshot.command('versions').argument('[path]', 'a file or folder inside the home (empty: the home)', folderPath, '')
    .description('every snapshot that holds a path, newest first, with its size and time and whether it changed')
    .option('--path-base64 <b64>', 'the path as base64 bytes', folderBase64)
    .option('--account <user>', 'the account (an account holder: its own)')
    .action(actionAs(async (ctx, json, who, p: string, o: { pathBase64?: string; account?: string }) => {
      const r = await pathHistory(ctx, { path: o.pathBase64 ?? p, ...(o.account !== undefined ? { account: o.account } : {}) }, who.actor);
      if (json) { printJson(r); return; }
      warnUnreadable(r);
      printTable(r.versions.map((v) => ({
        snapshot: v.snapshot.id, destination: v.snapshot.destination, taken: v.snapshot.finishedAt, type: v.type,
        size: v.contents ? humanBytes(v.contents.bytes) : humanBytes(v.size), mtime: v.mtime, change: v.change,
        ...(v.contents ? { changes: `+${v.contents.added} ~${v.contents.changed} -${v.contents.removed}` } : {}),
      })), ['snapshot', 'destination', 'taken', 'type', 'size', 'mtime', 'change', ...(r.versions.some((v) => v.contents) ? ['changes'] : [])]);
    }));

  snapshot.command('diff').argument('<id>', 'the snapshot')
    .description('what changed in a snapshot since the one before it (or since --against): added, changed, removed')
    .option('--against <id>', 'compare with this snapshot instead (same destination)')
    .option('--destination <name>')
    .option('--account <user>', 'the account (an account holder: its own)')
    .option('--in <folder>', 'only below this folder', folderPath)
    .option('--limit <n>', 'changes to list (1 to 10000, default 1000)', wholeNumber(1, 10000))
    .action(actionAs(async (ctx, json, who, id: string, o: { against?: string; destination?: string; account?: string; in?: string; limit?: number }) => {
      const account = o.account ?? (who.actor.role === 'user' ? who.actor.name : ctx.store.snapshots.byId(id)[0]?.account);
      const r = await snapshotChanges(ctx, {
        id, ...(account !== undefined ? { account } : {}), ...(o.against !== undefined ? { against: o.against } : {}),
        ...(o.destination !== undefined ? { destination: o.destination } : {}), folder: o.in ?? '', ...(o.limit !== undefined ? { limit: o.limit } : {}),
      }, who.actor);
      if (json) { printJson({ ...r, changes: r.changes.map(withoutBytes) }); return; }
      warnUnreadable(r);
      printTable(r.changes.map((c) => ({ change: c.change, type: c.type, size: humanBytes(c.size), before: c.sizeBefore === null ? '' : humanBytes(c.sizeBefore), path: JSON.stringify(c.path).slice(1, -1) })),
        ['change', 'type', 'size', 'before', 'path']);
      const n = r.counts;
      process.stdout.write(`${r.against ? `since ${r.against.id}` : 'first snapshot'}: ${n.added} added (${humanBytes(n.addedBytes)}), ${n.changed} changed, ${n.removed} removed (${humanBytes(n.removedBytes)})${r.truncated ? '; the list is cut short, see --limit' : ''}\n`);
    }));
}
