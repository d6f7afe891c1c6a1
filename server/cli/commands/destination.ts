import fs from 'node:fs';
import { Option, type Command } from 'commander';
import { UserError } from '../../services/context.js';
import {
  addDestination, browseDestination, describeDestination, editDestination, getDestination, listDestinations, removeDestination, setEnabled, setSnapshotsVisible,
  validateDestination, type AddDestinationInput, type EditDestinationInput,
} from '../../services/destinations.js';
import { reindexDestination } from '../../services/reindex.js';
import { verifyDestination } from '../../services/verify.js';
import { humanBytes, printJson, printRecord, printTable } from '../output.js';
import { seconds, wholeNumber } from '../option-values.js';
import { actionAs, printVerifyReport } from '../common.js';

/** --sample: a percentage; anything else is a malformed command line (exit 2). */
const toPercent = (v: string): number => {
  const n = /^\d+(\.\d+)?$/.test(v) ? Number(v) : Number.NaN;
  if (!(n > 0 && n <= 100)) throw new UserError(`--sample: "${v.slice(0, 40)}" is not a percentage above 0 and at most 100`, 'invalid-input');
  return n;
};


/** Secrets come from a file or stdin ('-'), never from the command line where `ps` shows them. */
function readSecret(file: string | undefined, what: string): string | undefined {
  if (file === undefined) return undefined;
  try {
    return fs.readFileSync(file === '-' ? 0 : file, 'utf8').replace(/\r?\n$/, '');
  } catch (err) {
    throw new UserError(`cannot read the ${what} from ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

const MB_MAX = 1_000_000_000;
const TYPES = ['local', 'ssh', 's3'];

/** The s3 options, shared by add and edit. */
function s3Options(cmd: Command, editing: boolean): Command {
  return cmd
    .option('--endpoint <url>', 's3: the service, https://host[:port]')
    .option('--region <region>', `s3: region${editing ? '' : ' (default us-east-1)'}`)
    .option('--bucket <name>', 's3: bucket (it must exist)')
    .option('--prefix <folders>', 's3: folder in the bucket shared by the servers (default: none)')
    .option('--server-folder <name>', `s3: this server's folder under the prefix${editing ? '' : " (default: this server's host name)"}`)
    .option('--access-key <id>', 's3: access key ID')
    .option('--secret-file <file>', "s3: file holding the secret access key ('-': stdin)")
    .addOption(new Option('--addressing <style>', `s3: path or virtual-host${editing ? '' : ' (default path)'}`).choices(['path', 'virtual-host']))
    .option('--storage-class <class>', 's3: storage class of the objects written (default: the bucket\'s)')
    .option('--attempts <n>', `s3: attempts per request, with backoff${editing ? '' : ' (default 5)'}`, wholeNumber(1, 10))
    .option('--part-size <mb>', `s3: multipart upload part size in MiB${editing ? '' : ' (default 8)'}`, wholeNumber(5, 512))
    .option('--quota <gb>', 's3: the quota of the bucket in GB, when known (enables the free-space limit)', wholeNumber(1, 1_000_000_000));
}

interface S3Opts {
  endpoint?: string; region?: string; bucket?: string; prefix?: string; serverFolder?: string; accessKey?: string; secretFile?: string;
  addressing?: string; storageClass?: string; attempts?: number; partSize?: number; quota?: number; timeout?: number; parallel?: number;
}

/** The s3 settings given on the command line (only those given). */
function s3Input(opts: S3Opts): Partial<AddDestinationInput> {
  const out: Partial<AddDestinationInput> = {
    endpoint: opts.endpoint, region: opts.region, bucket: opts.bucket, prefix: opts.prefix, serverFolder: opts.serverFolder,
    accessKeyId: opts.accessKey, secretAccessKey: readSecret(opts.secretFile, 'secret access key'), addressing: opts.addressing,
    storageClass: opts.storageClass, maxAttempts: opts.attempts, partSizeMb: opts.partSize, quotaGb: opts.quota,
    timeoutMs: opts.timeout !== undefined ? Math.round(opts.timeout * 1000) : undefined, parallelTransfers: opts.parallel,
  };
  return Object.fromEntries(Object.entries(out).filter(([, v]) => v !== undefined));
}

/** Where a destination's snapshots are, for the list. */
function whereShown(d: Record<string, unknown>): string | undefined {
  const s = d.settings as Record<string, unknown>;
  if (d.type === 's3') return `s3://${String(s.bucket)}/${[s.prefix, s.serverFolder].filter(Boolean).join('/')}`;
  return typeof s.path === 'string' ? s.path : undefined;
}

/** destination: places that store snapshots. */
export function register(program: Command): void {
  const destination = program.command('destination').description('places that store snapshots');
  const add = destination.command('add')
    .requiredOption('--name <name>', 'unique name')
    .addOption(new Option('--type <type>', 'local | ssh | s3').choices(TYPES).makeOptionMandatory())
    .option('--path <dir>', 'local: an existing directory; ssh: the remote directory')
    .option('--hidden', 'hide its snapshots from account holders')
    .option('--free-space-limit <mb>', 'do not start a backup below this many MB free', wholeNumber(0, MB_MAX))
    .option('--host <host>', 'ssh: server name or address')
    .option('--port <port>', 'ssh: port (default 22)', wholeNumber(1, 65535))
    .option('--user <name>', 'ssh: remote user')
    .option('--password-file <file>', "ssh: file holding the password ('-': stdin)")
    .option('--key-file <file>', 'ssh: private key file (OpenSSH format)')
    .option('--passphrase-file <file>', "ssh: file holding the key's passphrase")
    .option('--timeout <seconds>', 'ssh: connection timeout (default 20); s3: request timeout (default 60)', seconds(1, 600))
    .option('--host-key <fingerprint>', 'ssh: expected host key, SHA256:... (default: pinned at first connection)')
    .option('--parallel <n>', 'ssh, s3: files in transfer at once (default 8)', wholeNumber(1, 64))
    .option('--force-insecure-path', 'local: accept a path that a non-root user could change (not recommended; kept as a warning)');
  s3Options(add, false)
    .action(actionAs(async (ctx, json, who, opts: S3Opts & {
      name: string; type: string; path?: string; hidden?: boolean; freeSpaceLimit?: number; host?: string; port?: number; user?: string;
      passwordFile?: string; keyFile?: string; passphraseFile?: string; timeout?: number; hostKey?: string; parallel?: number; forceInsecurePath?: boolean;
    }) => {
      if (who.owner !== undefined) throw new UserError("--owner does not apply to destination add: an account's destination is added with --as-account", 'invalid-input');
      const input: AddDestinationInput = { name: opts.name, type: opts.type, path: opts.path ?? '', hidden: Boolean(opts.hidden), freeSpaceLimitMb: opts.freeSpaceLimit ?? 0,
        ...(opts.forceInsecurePath ? { forceInsecurePath: true } : {}) };
      if (opts.type === 'ssh') {
        Object.assign(input, {
          host: opts.host ?? '', username: opts.user, port: opts.port ?? 22,
          password: readSecret(opts.passwordFile, 'password'), privateKey: readSecret(opts.keyFile, 'private key'),
          passphrase: readSecret(opts.passphraseFile, 'passphrase'),
          ...(opts.timeout !== undefined ? { timeoutMs: Math.round(opts.timeout * 1000) } : {}),
          ...(opts.hostKey !== undefined ? { hostKeyFingerprint: opts.hostKey.replace(/^SHA256:/, '') } : {}),
          ...(opts.parallel !== undefined ? { parallelTransfers: opts.parallel } : {}),
        });
      }
      if (opts.type === 's3') Object.assign(input, s3Input(opts));
      const d = await addDestination(ctx, input, who.actor);
      const doc = await describeDestination(ctx, d, who.actor);
      if (json) printJson(doc);
      else process.stdout.write(`destination "${d.name}" added${d.type === 'ssh' ? ` (host key SHA256:${String(d.settings.hostKeyFingerprint)})` : ''}\n`);
      if (!json && doc.warning) process.stderr.write(`warning: ${String(doc.warning)}\n`);
    }));
  destination.command('list').action(actionAs(async (ctx, json, who) => {
    const docs = await Promise.all(listDestinations(ctx, who.actor).map((d) => describeDestination(ctx, d, who.actor)));
    if (json) printJson(docs);
    else printTable(docs.map((d) => ({ ...d, path: whereShown(d), free: d.space ? humanBytes((d.space as { freeBytes: number }).freeBytes) : d.reachable ? 'unknown' : d.problem, visible: d.snapshotsVisible })),
      ['name', 'owner', 'type', 'path', 'enabled', 'visible', 'snapshots', 'jobs', 'free']);
  }));
  destination.command('show').argument('<name>').action(actionAs(async (ctx, json, who, name: string) => {
    const doc = await describeDestination(ctx, getDestination(ctx, name, who.actor, who.owner), who.actor);
    if (json) printJson(doc); else printRecord(doc);
  }));
  destination.command('remove').argument('<name>')
    .description('forget a destination; its snapshots stay on it unless --delete-data')
    .option('--delete-data', 'also delete the snapshots Tidemark stored on it')
    .action(actionAs(async (ctx, json, who, name: string, opts: { deleteData?: boolean }) => {
      const r = await removeDestination(ctx, name, { deleteData: Boolean(opts.deleteData) }, who.actor, who.owner);
      if (json) printJson({ removed: r.record.name, deletedSnapshots: r.deletedSnapshots });
      else process.stdout.write(`destination "${r.record.name}" removed (${opts.deleteData ? `${r.deletedSnapshots} snapshots deleted from it` : 'data on it was not touched'})\n`);
    }));
  for (const [verb, enabled] of [['enable', true], ['disable', false]] as const) {
    destination.command(verb).argument('<name>').description(enabled ? 'take new backups again' : 'take no new backups (snapshots stay restorable)')
      .action(actionAs(async (ctx, json, who, name: string) => {
        const d = setEnabled(ctx, name, enabled, who.actor, who.owner);
        if (json) printJson(await describeDestination(ctx, d, who.actor)); else process.stdout.write(`destination "${d.name}" ${verb}d\n`);
      }));
  }
  destination.command('visibility').argument('<name>')
    .addOption(new Option('--hidden', 'hide its snapshots from account holders').conflicts('visible'))
    .option('--visible', 'show its snapshots to account holders')
    .action(actionAs(async (ctx, json, who, name: string, opts: { hidden?: boolean; visible?: boolean }) => {
      if (!opts.hidden && !opts.visible) throw new UserError('give --hidden or --visible', 'invalid-input');
      const d = setSnapshotsVisible(ctx, name, Boolean(opts.visible), who.actor, who.owner);
      if (json) printJson(await describeDestination(ctx, d)); else process.stdout.write(`snapshots on "${d.name}" are ${d.snapshotsVisible ? 'visible' : 'hidden'} to account holders\n`);
    }));
  destination.command('validate').argument('<name>').description('connect, write, read back and delete a probe; report free space and latency')
    .action(actionAs(async (ctx, json, who, name: string) => {
      const r = await validateDestination(ctx, name, who.actor, who.owner);
      if (json) printJson(r);
      else if (r.ok) process.stdout.write(`ok: ${r.space ? humanBytes(r.space.freeBytes) : 'unknown space'} free, latency ${r.latencyMs} ms, probe written and read back in ${r.writeReadMs} ms\n`);
      else process.stderr.write(`failed: ${r.error}\n`);
      if (!r.ok) process.exitCode = 1;
    }));
  destination.command('verify').argument('<name>')
    .description("re-read the destination's snapshots and compare them with their hashes; damaged ones are marked and named (exit 1)")
    .option('--account <user>', "only this account's snapshots")
    .option('--sample <percent>', 'only this share of them, chosen at random')
    .action(actionAs(async (ctx, json, who, name: string, opts: { account?: string; sample?: string }) => {
      const samplePercent = opts.sample !== undefined ? toPercent(opts.sample) : undefined;
      const r = await verifyDestination(ctx, name, { ...(opts.account !== undefined ? { account: opts.account } : {}), ...(samplePercent !== undefined ? { samplePercent } : {}) }, who.actor, who.owner);
      if (json) printJson(r);
      else {
        for (const s of r.reports) printVerifyReport(s);
        process.stdout.write(`${r.verified} of ${r.snapshots} snapshots verified on "${r.destination}": ${r.damaged} damaged\n`);
      }
      if (r.damaged > 0) process.exitCode = 1;
    }));
  destination.command('browse').argument('<name>').argument('[path]', 'folder on the destination', '')
    .action(actionAs(async (ctx, json, who, name: string, dir: string) => {
      const entries = await browseDestination(ctx, name, dir, who.actor, who.owner);
      if (json) printJson(entries); else printTable(entries.map((e) => ({ ...e, modified: new Date(e.mtimeMs).toISOString() })), ['type', 'size', 'modified', 'name']);
    }));

  const edit = destination.command('edit').argument('<name>')
    .description('change the settings of a destination (a new connection is tried before it is saved)')
    .option('--name <new>', 'rename it')
    .addOption(new Option('--type <type>', 'only accepted when it is the current type (a type never changes)').choices(TYPES))
    .option('--path <dir>', 'local: another directory; ssh: another remote directory (the snapshots must be there)')
    .addOption(new Option('--hidden', 'hide its snapshots from account holders').conflicts('visible'))
    .option('--visible', 'show its snapshots to account holders')
    .option('--free-space-limit <mb>', 'do not start a backup below this many MB free', wholeNumber(0, MB_MAX))
    .option('--host <host>', 'ssh: server name or address (the new host key is pinned unless --host-key)')
    .option('--port <port>', 'ssh: port', wholeNumber(1, 65535))
    .option('--user <name>', 'ssh: remote user')
    .option('--password-file <file>', "ssh: log in with this password instead ('-': stdin)")
    .option('--key-file <file>', 'ssh: log in with this private key instead')
    .option('--passphrase-file <file>', "ssh: the private key's passphrase")
    .option('--timeout <seconds>', 'ssh: connection timeout; s3: request timeout', seconds(1, 600))
    .option('--host-key <fingerprint>', 'ssh: expected host key, SHA256:...')
    .option('--parallel <n>', 'ssh, s3: files in transfer at once', wholeNumber(1, 64))
    .option('--forget-snapshots', 'drop from the catalog the snapshots the new location does not hold (their data is not deleted)')
    .option('--force-insecure-path', 'local: accept the (new) path although a non-root user could change it (not recommended; kept as a warning)');
  s3Options(edit, true)
    .action(actionAs(async (ctx, json, who, name: string, opts: S3Opts & {
      name?: string; type?: string; path?: string; hidden?: boolean; visible?: boolean; freeSpaceLimit?: number; host?: string; port?: number;
      user?: string; passwordFile?: string; keyFile?: string; passphraseFile?: string; timeout?: number; hostKey?: string; parallel?: number; forgetSnapshots?: boolean;
      forceInsecurePath?: boolean;
    }) => {
      const changes: EditDestinationInput = {
        type: opts.type, name: opts.name, path: opts.path, hidden: opts.hidden ? true : opts.visible ? false : undefined,
        freeSpaceLimitMb: opts.freeSpaceLimit, host: opts.host, port: opts.port, username: opts.user,
        password: readSecret(opts.passwordFile, 'password'), privateKey: readSecret(opts.keyFile, 'private key'),
        passphrase: readSecret(opts.passphraseFile, 'passphrase'),
        timeoutMs: opts.timeout !== undefined ? Math.round(opts.timeout * 1000) : undefined,
        hostKeyFingerprint: opts.hostKey?.replace(/^SHA256:/, ''), parallelTransfers: opts.parallel, forgetSnapshots: Boolean(opts.forgetSnapshots),
        forceInsecurePath: opts.forceInsecurePath ? true : undefined,
        ...s3Input({ ...opts, timeout: undefined, parallel: undefined }),
      };
      const r = await editDestination(ctx, name, changes, who.actor, who.owner);
      const doc = { ...(await describeDestination(ctx, r.record, who.actor)), changed: r.changed, forgottenSnapshots: r.forgottenSnapshots };
      if (json) printJson(doc);
      else {
        process.stdout.write(r.changed.length ? `destination "${r.record.name}" changed: ${r.changed.join(', ')}\n` : `destination "${r.record.name}" unchanged\n`);
        if (r.forgottenSnapshots) process.stdout.write(`${r.forgottenSnapshots} snapshots dropped from the catalog (their data stays at the old location)\n`);
        if (typeof r.record.settings.warning === 'string') process.stderr.write(`warning: ${r.record.settings.warning}\n`);
      }
    }));
  destination.command('reindex').argument('<name>')
    .description('rebuild the catalog of a destination from the snapshots it holds')
    .option('--account <user>', 'only this account')
    .action(actionAs(async (ctx, json, who, name: string, opts: { account?: string }) => {
      const r = await reindexDestination(ctx, name, opts.account !== undefined ? { account: opts.account } : {}, who.actor, who.owner);
      if (json) printJson(r);
      else {
        process.stdout.write(`${r.found} snapshots found in ${r.accounts.length} accounts: ${r.added} added, ${r.updated} updated, ${r.removed} removed from the catalog\n`);
        for (const p of r.problems) process.stderr.write(`problem: ${p.path}: ${p.error}\n`);
      }
    }));
}
