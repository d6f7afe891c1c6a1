import path from 'node:path';
import type { ZodError } from 'zod';
import { LocalDestination } from '../destinations/local.js';
import { SshDestination, type SshSettings } from '../destinations/ssh.js';
import type { Destination } from '../destinations/types.js';
import type { DestinationRecord } from '../store/destinations.js';
import { isSealed, MASK, SecretBox } from '../util/secrets.js';
import { UserError, type Context } from './context.js';

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
    z.object({ ...common, type: z.literal('local'), path: absolute('path') }),
    z.object({
      ...common,
      type: z.literal('ssh'),
      host: z.string().min(1, 'host is required').max(253).regex(/^[A-Za-z0-9.:_-]+$/, 'host is a name or an address'),
      port: z.number({ message: 'port must be a number' }).int('port must be a whole number').min(1, 'port must be 1-65535').max(65535, 'port must be 1-65535').default(22),
      username: z.string({ message: 'user is required' }).min(1, 'user is required').max(64).regex(/^[A-Za-z0-9._-]+$/, 'user has invalid characters'),
      password: z.string().min(1).optional(),
      privateKey: z.string().min(1).optional(),
      passphrase: z.string().min(1).optional(),
      path: absolute('remote path'),
      timeoutMs: z.number().int().min(1000).max(300000).default(20000),
      hostKeyFingerprint: z.string().regex(/^[A-Za-z0-9+/]{43}$/, 'host key is a SHA256 fingerprint as ssh-keygen -l prints it').optional(),
    }).refine((d) => d.password !== undefined || d.privateKey !== undefined, { message: 'give a password or a private key', path: ['password'] }),
  ], { message: 'type must be one of: local, ssh' });
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
}

export function validationMessage(err: ZodError): string {
  return err.issues.map((i) => `${i.path.join('.') || 'input'}: ${i.message}`).join('; ');
}

const SECRET_FIELDS = ['password', 'privateKey', 'passphrase'] as const;

/** The driver for a stored destination; secrets are decrypted only here, in memory. */
export function driverFor(ctx: Pick<Context, 'dataDir'>, record: Pick<DestinationRecord, 'type' | 'settings'>): Destination {
  if (record.type === 'local') return new LocalDestination(String(record.settings.path));
  if (record.type === 'ssh') {
    const box = new SecretBox(ctx.dataDir);
    const settings = { ...record.settings };
    for (const f of SECRET_FIELDS) if (isSealed(settings[f])) settings[f] = box.open(settings[f] as string);
    return new SshDestination(settings as unknown as SshSettings);
  }
  throw new UserError(`unknown destination type ${String(record.type)}`);
}

/** Runs `fn` with the destination's driver and always closes it (an SSH connection keeps the process alive). */
export async function withDriver<T>(ctx: Pick<Context, 'dataDir'>, record: Pick<DestinationRecord, 'type' | 'settings'>, fn: (d: Destination) => Promise<T>): Promise<T> {
  const d = driverFor(ctx, record);
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

export async function addDestination(ctx: Context, input: AddDestinationInput): Promise<DestinationRecord> {
  const parsed = (await addSchema()).safeParse(input);
  if (!parsed.success) throw new UserError(validationMessage(parsed.error));
  const d = parsed.data;
  if (ctx.store.destinations.byName(d.name)) throw new UserError(`a destination named "${d.name}" exists already`);
  let settings: Record<string, unknown>;
  if (d.type === 'local') {
    settings = { path: path.resolve(d.path) };
  } else {
    const { name: _n, type: _t, hidden: _h, freeSpaceLimitMb: _f, ...ssh } = d;
    settings = { ...ssh };
  }
  const driver = driverFor(ctx, { type: d.type, settings });
  try {
    await driver.open();
    // Trust on first use: the key seen now is pinned; a different key later is refused.
    if (driver instanceof SshDestination && !settings.hostKeyFingerprint) settings.hostKeyFingerprint = driver.seenFingerprint;
  } catch (err) {
    throw new UserError(`destination "${d.name}" is not usable: ${(err as Error).message}`);
  } finally {
    await driver.close();
  }
  const box = new SecretBox(ctx.dataDir);
  for (const f of SECRET_FIELDS) if (typeof settings[f] === 'string') settings[f] = box.seal(settings[f] as string);
  return ctx.store.destinations.insert({
    name: d.name, type: d.type, settings, owner: 'root', enabled: true, snapshotsVisible: !d.hidden, readOnly: false,
    freeSpaceLimitMb: d.freeSpaceLimitMb,
  });
}

export function getDestination(ctx: Context, name: string): DestinationRecord {
  const d = ctx.store.destinations.byName(name);
  if (!d) throw new UserError(`no destination named "${name}"`);
  return d;
}

export async function describeDestination(ctx: Context, d: DestinationRecord): Promise<Record<string, unknown>> {
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
    snapshots: ctx.store.snapshots.countByDestination(d.id), reachable, problem, space,
  };
}

export function removeDestination(ctx: Context, name: string): DestinationRecord {
  const d = getDestination(ctx, name);
  const jobs = ctx.store.jobs.usingDestination(d.id);
  if (jobs.length > 0) throw new UserError(`destination "${name}" is used by job(s): ${jobs.map((j) => j.name).join(', ')}; remove or change them first`);
  // The catalog entries go; the snapshots on the destination itself are never deleted here.
  ctx.store.db.prepare('DELETE FROM snapshots WHERE destination_id = ?').run(d.id);
  ctx.store.destinations.remove(d.id);
  return d;
}
