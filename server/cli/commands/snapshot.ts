import type { Command } from 'commander';
import { UserError } from '../../services/context.js';
import { setSnapshotLocked } from '../../services/retention.js';
import { deleteSnapshot, describeEntry, describeSnapshot, findSnapshot, listSnapshots, setSnapshotNote, snapshotFiles, snapshotManifest } from '../../services/snapshots.js';
import { verifySnapshot } from '../../services/verify.js';
import { ACCOUNT_NAME } from '../../engine/snapshot-layout.js';
import { humanBytes, printJson, printRecord, printTable } from '../output.js';
import { folderBase64, folderPath, wholeNumber } from '../option-values.js';
import { action, actionAs, printVerifyReport } from '../common.js';
import { registerHistory } from './snapshot-history.js';

/** snapshot: points in time (list, browse, verify, lock, note, delete, hand over). */
export function register(program: Command): void {
  const snapshot = program.command('snapshot').description('points in time');
  registerHistory(snapshot);
  snapshot.command('list')
    .option('--account <user>')
    .option('--destination <name>')
    .action(actionAs(async (ctx, json, who, opts: { account?: string; destination?: string }) => {
      const snapshots = await listSnapshots(ctx, { ...opts, ...(who.owner !== undefined ? { owner: who.owner } : {}) }, who.actor);
      const docs = snapshots.map((s) => describeSnapshot(ctx, s));
      if (json) printJson(docs);
      else printTable(docs.map((d) => ({ ...d, size: humanBytes(d.bytes as number) })), ['id', 'account', 'destination', 'structure', 'status', 'files', 'size', 'finishedAt']);
    }));
  snapshot.command('show').argument('<id>').option('--destination <name>').action(actionAs(async (ctx, json, who, id: string, opts: { destination?: string }) => {
    const s = await findSnapshot(ctx, id, opts.destination, who.actor, who.owner);
    const doc = { ...describeSnapshot(ctx, s), manifest: await snapshotManifest(ctx, s, who.actor) };
    if (json) printJson(doc); else printRecord(doc);
  }));
  snapshot.command('files').argument('<id>').argument('[path]', 'directory inside the home', folderPath, '')
    .option('--path-base64 <b64>', 'the directory as base64 bytes (for names that are not UTF-8)', folderBase64)
    .option('--destination <name>')
    .action(actionAs(async (ctx, json, who, id: string, dir: string, opts: { pathBase64?: string; destination?: string }) => {
      const s = await findSnapshot(ctx, id, opts.destination, who.actor, who.owner);
      const path = opts.pathBase64 !== undefined ? opts.pathBase64 : dir;
      const docs = (await snapshotFiles(ctx, s, path, who.actor)).map(describeEntry);
      if (json) printJson(docs); else printTable(docs, ['type', 'mode', 'size', 'mtime', 'name']);
    }));

  snapshot.command('verify').argument('<id>').option('--destination <name>')
    .description('re-read what the snapshot stores and compare it with its hashes; a damaged one is marked and named (exit 1)')
    .action(actionAs(async (ctx, json, who, id: string, opts: { destination?: string }) => {
      const r = await verifySnapshot(ctx, await findSnapshot(ctx, id, opts.destination, who.actor, who.owner), who.actor);
      if (json) printJson(r); else printVerifyReport(r);
      if (r.result === 'damaged') process.exitCode = 1;
    }));

  for (const [verb, locked] of [['lock', true], ['unlock', false]] as const) {
    snapshot.command(verb).argument('<id>').option('--destination <name>')
      .description(locked ? 'keep this snapshot: retention never removes it' : 'let retention handle this snapshot again')
      .action(actionAs(async (ctx, json, who, id: string, opts: { destination?: string }) => {
        const s = setSnapshotLocked(ctx, await findSnapshot(ctx, id, opts.destination, who.actor, who.owner), locked, who.actor);
        if (json) printJson(describeSnapshot(ctx, s)); else process.stdout.write(`snapshot ${s.id} ${verb}ed\n`);
      }));
  }

  snapshot.command('note').argument('<id>').requiredOption('--text <text>', 'the note (empty: none)').option('--destination <name>')
    .action(actionAs(async (ctx, json, who, id: string, opts: { text: string; destination?: string }) => {
      const s = await setSnapshotNote(ctx, await findSnapshot(ctx, id, opts.destination, who.actor, who.owner), opts.text, who.actor);
      if (json) printJson(describeSnapshot(ctx, s)); else process.stdout.write(`snapshot ${s.id}: note ${s.note ? 'set' : 'removed'}\n`);
    }));
  snapshot.command('delete').argument('<id>').option('--destination <name>').option('--yes', 'really delete it (nothing is deleted without)')
    .description('delete one snapshot from its destination (refused while locked, or while a backup or restore holds its account)')
    .action(actionAs(async (ctx, json, who, id: string, opts: { destination?: string; yes?: boolean }) => {
      const found = await findSnapshot(ctx, id, opts.destination, who.actor, who.owner);
      const doc = describeSnapshot(ctx, found);
      if (!opts.yes) throw new UserError(`would delete snapshot ${found.id} of ${found.account} on ${String(doc.destination)}: add --yes`, 'invalid-input');
      const done = await deleteSnapshot(ctx, found, who.actor);
      const objects = done.objects ? { objects: { removed: done.objects.removed, removedBytes: done.objects.removedBytes, deferred: done.objects.deferred } } : {};
      if (json) printJson({ deleted: doc, ...objects });
      else {
        process.stdout.write(`snapshot ${found.id} of ${found.account} deleted from ${String(doc.destination)}\n`);
        if (done.objects) {
          process.stdout.write(done.objects.deferred ? `unused objects kept for now: ${done.objects.deferred}\n`
            : `${done.objects.removed} unused content objects deleted (${done.objects.removedBytes} bytes)\n`);
        }
      }
    }));

  snapshot.command('assign').argument('[id]', 'one snapshot')
    .description("hand snapshots of a removed account (the provider's since) to the account that now has its name")
    .option('--destination <name>', 'the destination of the snapshot, when its id is on several')
    .option('--from-identity <id>', 'every snapshot of this removed account identity (see account identities)', wholeNumber(1, Number.MAX_SAFE_INTEGER))
    .requiredOption('--to <account>', 'the account now of the name the snapshots were taken under')
    .action(action(async (ctx, json, id: string | undefined, opts: { destination?: string; fromIdentity?: number; to: string }) => {
      if (opts.fromIdentity !== undefined && !Number.isSafeInteger(opts.fromIdentity)) throw new UserError('--from-identity is the number of an account identity', 'invalid-input');
      if (!ACCOUNT_NAME.test(opts.to)) throw new UserError(`--to: "${opts.to}" is not an account name`, 'invalid-input');
      const { handOverSnapshots } = await import('../../services/snapshot-handover.js');
      const r = await handOverSnapshots(ctx, { ...(id !== undefined ? { id } : {}), ...opts });
      if (json) printJson(r);
      else process.stdout.write(`${r.assigned.length} snapshot(s) handed to ${opts.to}\n`);
    }));
}
