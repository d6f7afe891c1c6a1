import path from 'node:path';
import type { ZodError } from 'zod';
import { LocalDestination } from '../destinations/local.js';
import type { ConnectGuard, SshDestination, SshSettings } from '../destinations/ssh.js';
import { s3Shape, s3SettingsOf, S3_FIELDS } from './s3-destination-settings.js';
import { chainProblems, describeProblems, homeProblems, NEVER_ACCEPTED, pathSyntaxProblem, type PathProblem } from '../destinations/local-path-security.js';
import crypto from 'node:crypto';
import type { Destination, DirEntry } from '../destinations/types.js';
import type { DestinationRecord } from '../store/destinations.js';
import { isSealed, MASK, SecretBox } from '../util/secrets.js';
import { UserError, type Context } from './context.js';
import { isDeepStrictEqual } from 'node:util';
import { DestinationError } from '../destinations/types.js';
import { layout } from '../engine/snapshot-layout.js';
import type { SnapshotRecord } from '../store/snapshots.js';
import { isAccountOwned, mayManageDestination, ownerOf, pickOwned, ROOT, type Actor } from './actor.js';
import { readMarker } from './destination-marker.js';
import { absolutePathProblem } from '../util/input-checks.js';
import { checkMay } from './permissions.js';
import { runAsTask } from '../queue/run-task.js';
import { PRIORITIES } from '../queue/priority.js';
import { refuseWhileBusy } from './busy.js';
import type { TaskRecord } from '../store/tasks.js';
import { plainIssues } from '../util/plain-issues.js';

export const NAME = /^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$/;

/** Validation schemas are built on first use: loading zod costs every command otherwise. */
async function addSchema() {
  const { z } = await import('zod');
  const absolute = (what: string) => z.string().min(1, `${what} is required`).refine((p) => path.isAbsolute(p), `${what} must be absolute`);
  const common = {
    name: z.string().regex(NAME, 'a name is 1-64 letters, digits, spaces, dots, dashes or underscores'),
    hidden: z.boolean().default(false),
    freeSpaceLimitMb: z.number().int().nonnegative().default(0),
  };
  return z.discriminatedUnion('type', [
    z.object({
      ...common, type: z.literal('local'),
      // Checked as typed, before anything resolves it: `/x/../../etc` is refused, never stored as `/etc`.
      path: absolute('path').superRefine((p, c) => {
        const problem = path.isAbsolute(p) ? pathSyntaxProblem(p) : null;
        if (problem) c.addIssue({ code: 'custom', message: problem });
      }),
    }),
    z.object({
      ...common,
      type: z.literal('ssh'),
      host: z.string().min(1, 'host is required').max(253).regex(/^[A-Za-z0-9.:_-]+$/, 'host is a name or an address'),
      port: z.number({ message: 'port must be a number' }).int('port must be a whole number').min(1, 'port must be 1-65535').max(65535, 'port must be 1-65535').default(22),
      username: z.string({ message: 'user is required' }).min(1, 'user is required').max(64).regex(/^[A-Za-z0-9._-]+$/, 'user has invalid characters'),
      password: z.string().min(1).optional(),
      privateKey: z.string().min(1).optional(),
      passphrase: z.string().min(1).optional(),
      // Checked as typed, like a local path: `/x/../../etc` is refused, never joined into `/etc`.
      path: absolute('remote path').superRefine((p, c) => {
        const problem = path.isAbsolute(p) ? absolutePathProblem(p) : null;
        if (problem) c.addIssue({ code: 'custom', message: problem });
      }),
      timeoutMs: z.number().int().min(1000).max(300000).default(20000),
      hostKeyFingerprint: z.string().regex(/^[A-Za-z0-9+/]{43}$/, 'host key is a SHA256 fingerprint as ssh-keygen -l prints it').optional(),
      parallelTransfers: z.number({ message: 'parallel transfers must be a number' }).int().min(1, 'parallel transfers must be 1-64').max(64, 'parallel transfers must be 1-64').default(8),
    }).refine((d) => d.password !== undefined || d.privateKey !== undefined, { message: 'give a password or a private key', path: ['password'] }),
    z.object({ ...common, type: z.literal('s3'), ...s3Shape(z) }),
  ], { message: 'type must be one of: local, ssh, s3' });
}

export interface AddDestinationInput {
  name: string;
  type: string;
  path: string;
  hidden?: boolean;
  freeSpaceLimitMb?: number;
  host?: string;
  port?: number;
  username?: string;
  password?: string;
  privateKey?: string;
  passphrase?: string;
  timeoutMs?: number;
  hostKeyFingerprint?: string;
  parallelTransfers?: number;
  /** local: accept a path that fails the security rule (local-path-security.ts); the problems are kept as a warning. */
  forceInsecurePath?: boolean;
  // s3 (see s3-destination-settings.ts)
  endpoint?: string;
  region?: string;
  bucket?: string;
  prefix?: string;
  serverFolder?: string;
  accessKeyId?: string;
  secretAccessKey?: string;
  addressing?: string;
  storageClass?: string;
  maxAttempts?: number;
  partSizeMb?: number;
  quotaGb?: number;
}

export function validationMessage(err: ZodError): string {
  return err.issues.map((i) => `${i.path.join('.') || 'input'}: ${i.message}`).join('; ');
}

const SECRET_FIELDS = ['password', 'privateKey', 'passphrase', 'secretAccessKey'] as const;

type DriverContext = Pick<Context, 'dataDir'> & Partial<Pick<Context, 'config' | 'store'>>;
type DriverRecord = Pick<DestinationRecord, 'type' | 'settings'> & Partial<Pick<DestinationRecord, 'owner' | 'name'>>;

/**
 * The driver for a stored destination; secrets are decrypted only here, in memory. A Local
 * destination checks its path's security at first use; an account's SSH destination connects
 * only where the provider's accountDestinations rules allow.
 *
 * The SSH and S3 drivers (about 75 KB of code with their helpers) are loaded here, for the
 * first destination of their type: every CLI command that names a destination loaded both,
 * and a backup to a Local destination (the fixed cost of every backup) uses neither.
 */
export async function driverFor(ctx: DriverContext, record: DriverRecord): Promise<Destination> {
  if (record.type === 'local') return new LocalDestination(String(record.settings.path), { acceptedRisks: acceptedRisksOf(record.settings) });
  if (record.type === 'ssh') {
    const box = new SecretBox(ctx.dataDir);
    const settings = { ...record.settings };
    for (const f of SECRET_FIELDS) if (isSealed(settings[f])) settings[f] = box.open(settings[f] as string);
    const guard = record.owner !== undefined && isAccountOwned({ owner: record.owner }) ? await accountConnectGuard(ctx, record) : null;
    const { SshDestination } = await import('../destinations/ssh.js');
    return new SshDestination(settings as unknown as SshSettings, guard);
  }
  if (record.type === 's3') {
    const settings = { ...record.settings };
    if (isSealed(settings.secretAccessKey)) settings.secretAccessKey = new SecretBox(ctx.dataDir).open(settings.secretAccessKey);
    const { S3Destination } = await import('../destinations/s3.js');
    return new S3Destination(s3SettingsOf(settings));
  }
  throw new UserError(`unknown destination type ${String(record.type)}`);
}

/** The driver as the SSH driver it is, for a destination of type ssh (driverFor made it), else null. */
const sshDriver = (type: string, driver: Destination): SshDestination | null => (type === 'ssh' ? driver as SshDestination : null);

const acceptedRisksOf = (settings: Record<string, unknown>): string[] =>
  (Array.isArray(settings.acceptedRisks) ? settings.acceptedRisks.filter((k): k is string => typeof k === 'string') : []);

/** Where an account's destination may connect; why a connection failed goes to the provider's activity log only. */
async function accountConnectGuard(ctx: DriverContext, record: DriverRecord): Promise<ConnectGuard> {
  const rules = ctx.config?.accountDestinations ?? { allowHosts: [], denyHosts: [], onlyAllowedHosts: false, allowPorts: [] };
  const { AddressPolicy } = await import('../destinations/address-policy.js');
  const policy = new AddressPolicy(rules);
  return {
    resolve: (host, port) => policy.resolve(host, port),
    // Actor "tidemark" (role admin): never one of an account's own entries, so only the provider sees it.
    report: (detail) => ctx.store?.activity.record({ actor: 'tidemark', role: 'admin', action: 'destination.connect-failed',
      target: `${String(record.owner)}/${String(record.name ?? '')}`, result: 'failed', detail }),
  };
}

/** The homes a Local destination must stay out of: every account's, and (standalone) the folders where homes are made. */
async function homesToAvoid(ctx: Context): Promise<{ homes: string[]; homeRoots: string[] }> {
  try {
    const adapter = ctx.panel(false);
    const homes = (await adapter.listAccounts()).map((a) => a.home);
    return { homes, homeRoots: adapter.name === 'standalone' ? ctx.config.homeRoots : [] };
  } catch (err) {
    throw new UserError(`cannot list the accounts to check that the path is outside their homes: ${(err as Error).message}`);
  }
}

/** Every problem of a Local destination's path (local-path-security.ts), homes included. */
async function localPathProblems(ctx: Context, root: string): Promise<PathProblem[]> {
  const { homes, homeRoots } = await homesToAvoid(ctx);
  return [...chainProblems(root), ...homeProblems(root, homes, homeRoots)];
}

/**
 * The settings of a Local destination at `given` (a path without `.` or `..`): refused when
 * the path is not secure, unless forced, and then the problems accepted are kept with a warning.
 * A path that does not exist is left for open() to report.
 */
async function localSettings(ctx: Context, given: string, force: boolean): Promise<Record<string, unknown>> {
  const root = path.resolve(given);
  const problems = (await localPathProblems(ctx, root)).filter((p) => p.issue !== 'missing');
  if (problems.length === 0) return { path: root };
  const never = problems.filter((p) => NEVER_ACCEPTED.includes(p.issue));
  if (never.length > 0) throw new UserError(`path: ${describeProblems(root, never)}`);
  if (!force) {
    throw new UserError(`path: ${describeProblems(root, problems)}. A non-root user could redirect root's writes or read and replace every `
      + 'account\'s snapshots there: use a directory whose every parent is a real directory owned by root and writable only by root, '
      + 'outside every home, or pass --force-insecure-path to accept the risk');
  }
  return { path: root, acceptedRisks: problems.map((p) => p.key), warning: `accepted with --force-insecure-path: ${describeProblems(root, problems)}` };
}

/** Runs `fn` with the destination's driver and always closes it (an SSH connection keeps the process alive). */
export async function withDriver<T>(ctx: DriverContext, record: DriverRecord, fn: (d: Destination) => Promise<T>): Promise<T> {
  const d = await driverFor(ctx, record);
  try {
    return await fn(d);
  } finally {
    await d.close();
  }
}

/** Settings as shown to people and in JSON: secrets masked, never printed back. */
export function publicSettings(record: Pick<DestinationRecord, 'settings'>): Record<string, unknown> {
  const out = { ...record.settings };
  for (const f of SECRET_FIELDS) if (out[f] !== undefined) out[f] = MASK;
  return out;
}

/**
 * What an account holder (or reseller) must meet to add a destination of its own. Only SSH:
 * a local path would have root write wherever the account chooses.
 */
function checkMayAddOwnDestination(ctx: Context, actor: Actor, type: string): void {
  if (actor.role === 'admin') return;
  if (actor.role !== 'user') throw new UserError('only the provider and account holders add destinations');
  if (!ctx.config.accountDestinations.enabled) throw new UserError('the provider does not allow account-level destinations');
  checkMay(ctx, actor, 'ownDestinations', actor.name);
  if (type !== 'ssh') {
    throw new UserError(type === 'local'
      ? 'an account holder cannot add a local destination: a local path would make the server write wherever the account chooses; add an ssh destination'
      : 'an account holder can add ssh destinations only');
  }
  const max = ctx.config.accountDestinations.maxPerAccount;
  if (ctx.store.destinations.countByOwner(ownerOf(actor)) >= max) throw new UserError(`an account may have at most ${max} destination(s) of its own`);
}

export async function addDestination(ctx: Context, input: AddDestinationInput, actor: Actor = ROOT): Promise<DestinationRecord> {
  checkMayAddOwnDestination(ctx, actor, input.type);
  const parsed = (await addSchema()).safeParse(input, plainIssues);
  if (!parsed.success) throw new UserError(validationMessage(parsed.error), 'invalid-input');
  const d = parsed.data;
  const owner = ownerOf(actor);
  if (ctx.store.destinations.byName(d.name, owner)) throw new UserError(`a destination named "${d.name}" exists already`);
  let settings: Record<string, unknown>;
  if (d.type === 'local') {
    settings = await localSettings(ctx, d.path, Boolean(input.forceInsecurePath));
  } else {
    if (input.forceInsecurePath) throw new UserError('--force-insecure-path applies to local destinations only', 'invalid-input');
    const { name: _n, type: _t, hidden: _h, freeSpaceLimitMb: _f, ...remote } = d;
    settings = { ...remote };
  }
  checkFreeSpaceLimitKnowable(d.type, settings, d.freeSpaceLimitMb);
  const driver = await driverFor(ctx, { type: d.type, settings, owner, name: d.name });
  try {
    await driver.open();
    // Trust on first use: the key seen now is pinned; a different key later is refused.
    const ssh = sshDriver(d.type, driver);
    if (ssh && !settings.hostKeyFingerprint) settings.hostKeyFingerprint = ssh.seenFingerprint;
  } catch (err) {
    throw new UserError(`destination "${d.name}" is not usable: ${(err as Error).message}`);
  } finally {
    await driver.close();
  }
  const box = new SecretBox(ctx.dataDir);
  for (const f of SECRET_FIELDS) if (typeof settings[f] === 'string') settings[f] = box.seal(settings[f] as string);
  // Checked again in one write transaction: another command may have added one meanwhile.
  const record = ctx.store.db.transaction(() => {
    if (ctx.store.destinations.byName(d.name, owner)) throw new UserError(`a destination named "${d.name}" exists already`);
    checkMayAddOwnDestination(ctx, actor, d.type);
    return ctx.store.destinations.insert({
      name: d.name, type: d.type, settings, owner, enabled: true, snapshotsVisible: !d.hidden, readOnly: false,
      freeSpaceLimitMb: d.freeSpaceLimitMb,
    });
  }).immediate();
  ctx.store.activity.record({ actor: actor.name, role: actor.role, action: 'destination.add', target: d.name, result: 'ok', detail: `owner ${owner}` });
  return record;
}

/** An s3 endpoint reached over plain http: the credentials are signed, never sent, but the data travels in clear. */
function s3Warning(d: Pick<DestinationRecord, 'type' | 'settings'>): string | null {
  return d.type === 's3' && String(d.settings.endpoint).startsWith('http:')
    ? 'the endpoint is reached over plain http: snapshots travel unencrypted (use https unless the network between is private)' : null;
}

/** A free-space limit needs a free space: an object store tells none unless its quota is stated. */
function checkFreeSpaceLimitKnowable(type: string, settings: Record<string, unknown>, limitMb: number): void {
  if (type === 's3' && limitMb > 0 && !settings.quotaGb) {
    throw new UserError('freeSpaceLimitMb: an S3 bucket reports no free space; state its quota (quotaGb, --quota) to use a free-space limit');
  }
}

/** Free space as shown: an object store without a stated quota has none to show (null, with spaceKnown false). */
export function shownSpace(space: { totalBytes: number; freeBytes: number } | null): { totalBytes: number; freeBytes: number } | null {
  return space && Number.isFinite(space.totalBytes) && Number.isFinite(space.freeBytes) ? space : null;
}

/**
 * The destination `actor` means by `name` (see pickOwned): an account holder finds only its
 * own, and another owner's is "not found", never "forbidden", so that names do not leak.
 */
export function getDestination(ctx: Context, name: string, actor: Actor = ROOT, owner?: string): DestinationRecord {
  const d = pickOwned(ctx.store.destinations.allNamed(name), actor, owner, 'destination', name);
  if (!d) throw new UserError(`no destination named "${name}"`);
  return d;
}

/** The destinations `actor` sees and manages: all for the provider, its own for an account. */
export function listDestinations(ctx: Context, actor: Actor = ROOT): DestinationRecord[] {
  return actor.role === 'admin' ? ctx.store.destinations.list() : ctx.store.destinations.listByOwner(ownerOf(actor));
}

/** An account's destination takes new backups (and jobs) only while the provider allows them. */
export function checkAccountDestinationsAllowed(ctx: Context, d: DestinationRecord): void {
  if (isAccountOwned(d) && !ctx.config.accountDestinations.enabled) {
    throw new UserError(`destination "${d.name}" of account ${d.owner} takes no new backups: the provider has turned off account-level destinations (its snapshots stay restorable)`);
  }
}

/** Whether new backups may go to `d` now. */
export function checkTakesBackups(ctx: Context, d: DestinationRecord): void {
  if (!d.enabled) throw new UserError(`destination "${d.name}" is disabled`);
  checkAccountDestinationsAllowed(ctx, d);
}

export async function describeDestination(ctx: Context, d: DestinationRecord, actor: Actor = ROOT): Promise<Record<string, unknown>> {
  if (!mayManageDestination(actor, d)) throw new UserError(`no destination named "${d.name}"`);
  const jobs = ctx.store.jobs.usingDestination(d.id).map((j) => j.name);
  let space: { totalBytes: number; freeBytes: number } | null = null;
  let reachable = true;
  let problem: string | null = null;
  try {
    space = await withDriver(ctx, d, (driver) => driver.space());
  } catch (err) {
    reachable = false;
    problem = (err as Error).message;
  }
  return {
    name: d.name, type: d.type, settings: publicSettings(d), owner: d.owner, enabled: d.enabled, snapshotsVisible: d.snapshotsVisible,
    readOnly: d.readOnly, freeSpaceLimitMb: d.freeSpaceLimitMb, createdAt: d.createdAt, jobs,
    snapshots: ctx.store.snapshots.countByDestination(d.id), reachable, problem, space: shownSpace(space), spaceKnown: reachable && shownSpace(space) !== null,
    warning: typeof d.settings.warning === 'string' ? d.settings.warning : s3Warning(d),
  };
}

/**
 * Forgets a destination. Refused while a job uses it. The snapshots on it are deleted
 * only when asked (`deleteData`), and then only the snapshot folders Tidemark made.
 */
export async function removeDestination(ctx: Context, name: string, opts: { deleteData?: boolean } = {}, actor: Actor = ROOT, owner?: string): Promise<{ record: DestinationRecord; deletedSnapshots: number }> {
  const d = getDestination(ctx, name, actor, owner);
  const jobs = ctx.store.jobs.usingDestination(d.id);
  if (jobs.length > 0) throw new UserError(`destination "${name}" is used by job(s): ${jobs.map((j) => j.name).join(', ')}; remove or change them first`);
  const inUse = (t: TaskRecord): boolean => t.destinationId === d.id;
  refuseWhileBusy(ctx, `destination "${d.name}"`, inUse);
  let deletedSnapshots = 0;
  if (opts.deleteData) {
    const snapshots = ctx.store.snapshots.list({ destinationId: d.id });
    await withDriver(ctx, d, async (driver) => {
      for (const s of snapshots) {
        await driver.remove(`${s.account}/${s.id}`);
        deletedSnapshots++;
      }
    });
  }
  ctx.store.db.transaction(() => {
    refuseWhileBusy(ctx, `destination "${d.name}"`, inUse);
    ctx.store.db.prepare('DELETE FROM snapshots WHERE destination_id = ?').run(d.id);
    ctx.store.destinations.remove(d.id);
  }).immediate();
  ctx.store.activity.record({ actor: actor.name, role: actor.role, action: 'destination.remove', target: d.name, result: 'ok',
    detail: `owner ${d.owner}${opts.deleteData ? `, ${deletedSnapshots} snapshots deleted` : ''}` });
  return { record: d, deletedSnapshots };
}

export function setEnabled(ctx: Context, name: string, enabled: boolean, actor: Actor = ROOT, owner?: string): DestinationRecord {
  return ctx.store.destinations.update(getDestination(ctx, name, actor, owner).id, { enabled });
}

/** Hidden snapshots stay restorable by the provider; account holders do not see them. */
export function setSnapshotsVisible(ctx: Context, name: string, visible: boolean, actor: Actor = ROOT, owner?: string): DestinationRecord {
  const d = getDestination(ctx, name, actor, owner);
  // An account always sees the snapshots on its own destinations: the setting is the provider's.
  if (actor.role !== 'admin') throw new UserError('only the provider hides or shows snapshots');
  return ctx.store.destinations.update(d.id, { snapshotsVisible: visible });
}

export interface ValidationReport {
  ok: boolean;
  error: string | null;
  latencyMs: number | null;
  writeReadMs: number | null;
  space: { totalBytes: number; freeBytes: number } | null;
  hostKeyFingerprint: string | null;
}

/**
 * Connects, writes a probe file, reads it back, deletes it, and reports free space and
 * latency. An SSH destination added without a known host key gets it pinned here.
 */
export async function validateDestination(ctx: Context, name: string, actor: Actor = ROOT, owner?: string): Promise<ValidationReport> {
  const d = getDestination(ctx, name, actor, owner);
  const report: ValidationReport = { ok: false, error: null, latencyMs: null, writeReadMs: null, space: null, hostKeyFingerprint: null };
  const probe = `.tidemark-probe-${crypto.randomBytes(6).toString('hex')}`;
  await runAsTask(ctx, { type: 'validate', account: null, destinationId: d.id, priority: PRIORITIES.high, params: { requestedBy: actor.name } },
    () => probeDestination(ctx, d, probe, report),
    { summary: (r) => ({ ...r }), problem: (r) => r.error });
  ctx.store.activity.record({ actor: actor.name, role: actor.role, action: 'destination.validate', target: name, result: report.ok ? 'ok' : 'failed', detail: report.error ?? '' });
  return report;
}

/** Connects, writes, reads back and deletes a probe, and measures; what fails is in the report. */
async function probeDestination(ctx: Context, d: DestinationRecord, probe: string, report: ValidationReport): Promise<ValidationReport> {
  try {
    if (d.type === 'local') {
      // The driver checks the chain of folders at every use; the homes are checked here too.
      const accepted = new Set(acceptedRisksOf(d.settings));
      const root = String(d.settings.path);
      const problems = (await localPathProblems(ctx, root)).filter((p) => p.issue !== 'missing' && !accepted.has(p.key));
      if (problems.length > 0) throw new Error(describeProblems(root, problems));
    }
    await withDriver(ctx, d, async (driver) => {
      await driver.open();
      let t = performance.now();
      await driver.exists('tidemark.json');
      report.latencyMs = Math.round((performance.now() - t) * 10) / 10;
      const data = crypto.randomBytes(64 * 1024);
      t = performance.now();
      await driver.writeFile(probe, data);
      const back = await driver.readFile(probe);
      await driver.remove(probe);
      report.writeReadMs = Math.round((performance.now() - t) * 10) / 10;
      if (!back.equals(data)) throw new Error('the probe file read back differs from what was written');
      report.space = shownSpace(await driver.space());
      const ssh = sshDriver(d.type, driver);
      if (ssh) {
        report.hostKeyFingerprint = ssh.seenFingerprint;
        if (!d.settings.hostKeyFingerprint && ssh.seenFingerprint) {
          ctx.store.destinations.update(d.id, { settings: { ...d.settings, hostKeyFingerprint: ssh.seenFingerprint } });
        }
      }
    });
    report.ok = true;
  } catch (err) {
    report.error = (err as Error).message;
  }
  return report;
}

/** One folder of the destination, as Tidemark sees it (names are Tidemark's own). */
export async function browseDestination(ctx: Context, name: string, rel: string, actor: Actor = ROOT, owner?: string): Promise<DirEntry[]> {
  const d = getDestination(ctx, name, actor, owner);
  const clean = rel.split('/').filter((p) => p && p !== '.').join('/');
  if (clean.split('/').includes('..')) throw new UserError('a path on the destination may not contain ".."', 'invalid-input');
  try {
    return await withDriver(ctx, d, (driver) => driver.list(clean));
  } catch (err) {
    // A folder asked for that is not there (or is a file) is the asker's mistake, not a failure of
    // the destination: 404, not a 500 logged as a crash. The destination's own root stays a failure.
    if (clean !== '' && err instanceof DestinationError && (err.code === 'not-found' || err.message.startsWith('not a directory on the destination'))) {
      throw new UserError(err.message, 'not-found');
    }
    throw err;
  }
}

// ---------------------------------------------------------------------------------------
// Manage: change the settings of an existing destination.

export interface EditDestinationInput extends Partial<AddDestinationInput> {
  /** Only accepted when equal to the current type: a destination's type never changes. */
  type?: string;
  /** Drop from the catalog the snapshots the new location does not hold (their data is never deleted). */
  forgetSnapshots?: boolean;
}

export interface EditOutcome {
  record: DestinationRecord;
  /** Names of the settings that changed (never their values). */
  changed: string[];
  forgottenSnapshots: number;
}

const SSH_ONLY = ['host', 'port', 'username', 'password', 'privateKey', 'passphrase', 'hostKeyFingerprint'] as const;
/** Settings of each type (beyond name, hidden, freeSpaceLimitMb): any other is refused by `edit`. */
const SETTINGS_OF: Record<DestinationRecord['type'], readonly string[]> = {
  local: ['path'],
  ssh: [...SSH_ONLY, 'path', 'timeoutMs', 'parallelTransfers'],
  s3: S3_FIELDS,
};
/** Settings that say where the snapshots live: changing one may leave cataloged snapshots behind. */
const LOCATION: Record<DestinationRecord['type'], readonly string[]> = {
  local: ['path'], ssh: ['host', 'port', 'username', 'path'], s3: ['endpoint', 'bucket', 'prefix', 'serverFolder', 'addressing'],
};
/** Settings whose change needs a connection test before it is saved. */
const CONNECTION = ['host', 'port', 'username', 'path', 'password', 'privateKey', 'passphrase', 'hostKeyFingerprint',
  'endpoint', 'region', 'bucket', 'prefix', 'serverFolder', 'accessKeyId', 'secretAccessKey', 'addressing'];

const whereOf = (type: string, s: Record<string, unknown>): string =>
  type === 'ssh' ? `${String(s.username)}@${String(s.host)}:${String(s.port)}:${String(s.path)}`
    : type === 's3' ? `s3://${String(s.bucket)}/${[s.prefix, s.serverFolder].filter(Boolean).join('/')} at ${String(s.endpoint)}` : String(s.path);

/**
 * Changes a destination's settings. The result is validated with the rules of `add`; a
 * new connection is tried before anything is saved; snapshots the catalog knows are never
 * silently left behind at the old location.
 */
export async function editDestination(ctx: Context, name: string, changes: EditDestinationInput, actor: Actor = ROOT, owner?: string): Promise<EditOutcome> {
  const d = getDestination(ctx, name, actor, owner);
  if (!mayManageDestination(actor, d)) throw new UserError(`no destination named "${name}"`);
  const given = (Object.keys(changes) as (keyof EditDestinationInput)[]).filter((k) => k !== 'forgetSnapshots' && changes[k] !== undefined);
  const activity = (result: string, detail: string): void =>
    ctx.store.activity.record({ actor: actor.name, role: actor.role, action: 'destination.edit', target: d.name, result, detail });
  try {
    const outcome = await applyDestinationEdit(ctx, d, changes, given, actor);
    activity('ok', `changed: ${outcome.changed.join(', ') || 'nothing'}${outcome.forgottenSnapshots ? `; ${outcome.forgottenSnapshots} snapshots forgotten` : ''}`);
    return outcome;
  } catch (err) {
    // The message names fields and places, never a secret's value.
    activity('refused', `asked: ${given.join(', ')}; ${(err as Error).message}`);
    throw err;
  }
}

async function applyDestinationEdit(ctx: Context, d: DestinationRecord, changes: EditDestinationInput, given: string[], actor: Actor): Promise<EditOutcome> {
  if (given.length === 0) throw new UserError('nothing to change: give at least one setting (see tidemark destination edit --help)', 'invalid-input');
  if (changes.type !== undefined && changes.type !== d.type) {
    throw new UserError(`type: the type of a destination cannot change (destination "${d.name}" is ${d.type}); add a new destination instead`);
  }
  const allTypes = Object.keys(SETTINGS_OF) as DestinationRecord['type'][];
  for (const f of new Set(allTypes.flatMap((t) => SETTINGS_OF[t]))) {
    if ((changes as Record<string, unknown>)[f] !== undefined && !SETTINGS_OF[d.type].includes(f)) {
      throw new UserError(`${f}: only ${allTypes.filter((t) => SETTINGS_OF[t].includes(f)).join(' and ')} destinations have this setting`, 'invalid-input');
    }
  }
  if (d.type === 'local') {
    if ((changes.path !== undefined || changes.forceInsecurePath) && actor.role !== 'admin') throw new UserError('path: only an administrator can move a local destination');
  } else if (changes.forceInsecurePath) {
    throw new UserError('--force-insecure-path applies to local destinations only', 'invalid-input');
  }

  const merged: Record<string, unknown> = { ...d.settings, name: d.name, type: d.type, hidden: !d.snapshotsVisible, freeSpaceLimitMb: d.freeSpaceLimitMb };
  for (const k of ['name', 'path', 'hidden', 'freeSpaceLimitMb', 'host', 'port', 'username', 'timeoutMs', 'hostKeyFingerprint', 'parallelTransfers', ...S3_FIELDS] as const) {
    const v = (changes as Record<string, unknown>)[k];
    if (v !== undefined && !(SECRET_FIELDS as readonly string[]).includes(k)) merged[k] = v;
  }
  // A new password or key replaces the way of logging in; a passphrase alone goes with the stored key.
  if (changes.password !== undefined || changes.privateKey !== undefined) for (const f of ['password', 'privateKey', 'passphrase']) delete merged[f];
  for (const f of SECRET_FIELDS) if (changes[f] !== undefined) merged[f] = changes[f];
  // The schema checks the secret as typed; a stored one is sealed, and checked when it was stored.
  const sealedSecrets: Record<string, unknown> = {};
  for (const f of SECRET_FIELDS) if (isSealed(merged[f])) { sealedSecrets[f] = merged[f]; merged[f] = 'sealed'; }
  if (changes.passphrase !== undefined && merged.privateKey === undefined) throw new UserError('passphrase: a passphrase goes with a private key (--key-file)', 'invalid-input');
  const hostMoved = (changes.host !== undefined && changes.host !== d.settings.host) || (changes.port !== undefined && changes.port !== d.settings.port);
  // A new server has its own host key: pin the one seen at the test connection, unless given.
  if (hostMoved && changes.hostKeyFingerprint === undefined) delete merged.hostKeyFingerprint;

  const parsed = (await addSchema()).safeParse(merged, plainIssues);
  if (!parsed.success) throw new UserError(validationMessage(parsed.error), 'invalid-input');
  const p = parsed.data;
  if (p.name !== d.name && ctx.store.destinations.byName(p.name, d.owner)) throw new UserError(`name: a destination named "${p.name}" exists already`);
  let settings: Record<string, unknown>;
  if (p.type === 'local') {
    const moved = path.resolve(p.path) !== d.settings.path;
    // The security rule is checked again for a new path, and when asked to accept the path's problems anew.
    settings = moved || changes.forceInsecurePath
      ? await localSettings(ctx, p.path, Boolean(changes.forceInsecurePath))
      : Object.fromEntries(Object.entries(d.settings).filter(([k]) => ['path', 'acceptedRisks', 'warning'].includes(k)));
  } else {
    const { name: _n, type: _t, hidden: _h, freeSpaceLimitMb: _f, ...remote } = p;
    settings = { ...remote, ...sealedSecrets };
  }
  checkFreeSpaceLimitKnowable(p.type, settings, p.freeSpaceLimitMb);

  const settingsChanged = (): string[] => [...new Set([...Object.keys(d.settings), ...Object.keys(settings)])].filter((k) =>
    (SECRET_FIELDS as readonly string[]).includes(k)
      ? changes[k as (typeof SECRET_FIELDS)[number]] !== undefined || (settings[k] === undefined) !== (d.settings[k] === undefined)
      : !isDeepStrictEqual(settings[k], d.settings[k]));
  const beforeTest = settingsChanged();
  let orphaned: SnapshotRecord[] = [];
  if (beforeTest.some((k) => CONNECTION.includes(k))) {
    const moves = beforeTest.some((k) => LOCATION[d.type].includes(k));
    if (moves) refuseWhileTasksRun(ctx, d);
    orphaned = await tryNewSettings(ctx, d, settings, moves, Boolean(changes.forgetSnapshots));
  }
  const changed = settingsChanged();
  if (p.name !== d.name) changed.unshift('name');
  if (p.hidden === d.snapshotsVisible) changed.push('snapshotsVisible');
  if (p.freeSpaceLimitMb !== d.freeSpaceLimitMb) changed.push('freeSpaceLimitMb');
  if (changed.length === 0) return { record: d, changed, forgottenSnapshots: 0 };

  const box = new SecretBox(ctx.dataDir);
  for (const f of SECRET_FIELDS) if (changes[f] !== undefined && typeof settings[f] === 'string') settings[f] = box.seal(settings[f] as string);
  const record = ctx.store.db.transaction(() => {
    for (const s of orphaned) ctx.store.snapshots.remove(d.id, s.account, s.id);
    return ctx.store.destinations.applyEdit(d.id, { name: p.name, settings, snapshotsVisible: !p.hidden, freeSpaceLimitMb: p.freeSpaceLimitMb });
  })();
  return { record, changed, forgottenSnapshots: orphaned.length };
}

/** A backup running to the old location would catalog a snapshot the new location does not hold. */
function refuseWhileTasksRun(ctx: Context, d: DestinationRecord): void {
  const busy = ctx.store.db.prepare(`SELECT id, type, account FROM tasks WHERE destination_id = ? AND status IN ('queued', 'running') ORDER BY id LIMIT 1`)
    .get(d.id) as { id: number; type: string; account: string | null } | undefined;
  if (busy) throw new UserError(`destination "${d.name}" is in use (${busy.type} task ${busy.id}${busy.account ? ` of ${busy.account}` : ''}); change its location when that is done`);
}

/**
 * Connects with the new settings (secrets still in the clear where they are new), checks
 * that the cataloged snapshots are at the new location, then opens it (which writes
 * tidemark.json where none is) and pins the host key seen. Returns the cataloged snapshots
 * the new location lacks, which the caller forgets; refuses when they are not to be forgotten.
 */
async function tryNewSettings(ctx: Context, d: DestinationRecord, settings: Record<string, unknown>, moves: boolean, forget: boolean): Promise<SnapshotRecord[]> {
  const usable = async <T>(fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      throw new UserError(`destination "${d.name}" is not usable with these settings: ${(err as Error).message}`);
    }
  };
  const driver = await driverFor(ctx, { type: d.type, settings, owner: d.owner, name: d.name });
  try {
    const cataloged = moves ? ctx.store.snapshots.list({ destinationId: d.id }) : [];
    let orphaned: SnapshotRecord[] = [];
    if (cataloged.length > 0) {
      // open() would report a missing root best, but it also writes tidemark.json: only when the root is missing.
      await usable(async () => { if (!(await driver.exists(''))) await driver.open(); });
      orphaned = await usable(() => snapshotsMissingAt(ctx, d, driver, cataloged));
      if (orphaned.length > 0 && !forget) {
        throw new UserError(`${orphaned.length} of the ${cataloged.length} snapshots cataloged on destination "${d.name}" are not at ${whereOf(d.type, settings)}: `
          + `saving this change would orphan them. Move the data there first (copy the whole destination folder, tidemark.json included), `
          + `or pass --forget-snapshots to drop them from the catalog (their data at ${whereOf(d.type, d.settings)} is not deleted).`);
      }
    }
    await usable(() => driver.open());
    const ssh = sshDriver(d.type, driver);
    if (ssh && !settings.hostKeyFingerprint && ssh.seenFingerprint) settings.hostKeyFingerprint = ssh.seenFingerprint;
    return orphaned;
  } finally {
    await driver.close();
  }
}

/**
 * The cataloged snapshots the new location does not hold. The same tidemark.json serverId
 * at both places means the data was moved as a whole; otherwise (different marker, or the
 * old place unreachable) each snapshot's manifest is looked for.
 */
async function snapshotsMissingAt(ctx: Context, d: DestinationRecord, driver: Destination, cataloged: SnapshotRecord[]): Promise<SnapshotRecord[]> {
  const markerOrNull = (err: unknown): null => {
    if (err instanceof DestinationError && err.code === 'invalid') return null;
    throw err;
  };
  const newMarker = await readMarker(driver).catch(markerOrNull);
  if (newMarker) {
    const oldMarker = await withDriver(ctx, d, (old) => readMarker(old)).catch(() => null);
    if (oldMarker?.serverId === newMarker.serverId) return [];
  }
  const missing: SnapshotRecord[] = [];
  for (const s of cataloged) if (!(await driver.exists(`${layout.snapshotDir(s.account, s.id)}/${layout.manifest}`))) missing.push(s);
  return missing;
}
