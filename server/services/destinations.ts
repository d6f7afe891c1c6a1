import path from 'node:path';
import type { ZodError } from 'zod';
import { LocalDestination } from '../destinations/local.js';
import type { Destination } from '../destinations/types.js';
import type { DestinationRecord } from '../store/destinations.js';
import { UserError, type Context } from './context.js';

export const NAME = /^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$/;

/** Validation schemas are built on first use: loading zod costs every command otherwise. */
async function addSchema() {
  const { z } = await import('zod');
  return z.object({
    name: z.string().regex(NAME, 'a name is 1-64 letters, digits, spaces, dots, dashes or underscores'),
    type: z.enum(['local'], { message: 'type must be one of: local' }),
    path: z.string().min(1, 'path is required').refine((p) => path.isAbsolute(p), 'path must be absolute'),
    hidden: z.boolean().default(false),
    freeSpaceLimitMb: z.number().int().nonnegative().default(0),
  });
}

export interface AddDestinationInput {
  name: string;
  type: string;
  path: string;
  hidden?: boolean;
  freeSpaceLimitMb?: number;
}

export function validationMessage(err: ZodError): string {
  return err.issues.map((i) => `${i.path.join('.') || 'input'}: ${i.message}`).join('; ');
}

export function driverFor(record: Pick<DestinationRecord, 'type' | 'settings'>): Destination {
  if (record.type === 'local') return new LocalDestination(String(record.settings.path));
  throw new UserError(`unknown destination type ${String(record.type)}`);
}

export async function addDestination(ctx: Context, input: AddDestinationInput): Promise<DestinationRecord> {
  const parsed = (await addSchema()).safeParse(input);
  if (!parsed.success) throw new UserError(validationMessage(parsed.error));
  const d = parsed.data;
  if (ctx.store.destinations.byName(d.name)) throw new UserError(`a destination named "${d.name}" exists already`);
  const settings = { path: path.resolve(d.path) };
  const driver = driverFor({ type: d.type, settings });
  try {
    await driver.open();
  } catch (err) {
    throw new UserError(`destination "${d.name}" is not usable: ${(err as Error).message}`);
  }
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
    space = await driverFor(d).space();
  } catch (err) {
    reachable = false;
    problem = (err as Error).message;
  }
  return {
    name: d.name, type: d.type, settings: d.settings, owner: d.owner, enabled: d.enabled, snapshotsVisible: d.snapshotsVisible,
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
