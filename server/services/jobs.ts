import { ITEMS, STRUCTURES, type JobRecord } from '../store/jobs.js';
import { UserError, type Context } from './context.js';
import { getDestination, NAME, validationMessage } from './destinations.js';
import { ACCOUNT_NAME } from '../engine/snapshot-layout.js';

async function addSchema() {
  const { z } = await import('zod');
  return z.object({
    name: z.string().regex(NAME, 'a name is 1-64 letters, digits, spaces, dots, dashes or underscores'),
    destination: z.string().min(1, 'destination is required'),
    structure: z.enum(STRUCTURES as [string, ...string[]], { message: `structure must be one of: ${STRUCTURES.join(', ')}` }),
    accounts: z.array(z.string().regex(ACCOUNT_NAME, 'invalid account name')).optional(),
    all: z.boolean().default(false),
    items: z.array(z.enum(ITEMS as [string, ...string[]], { message: `items are: ${ITEMS.join(', ')}` })).min(1).default([...ITEMS]),
    excludes: z.array(z.string().min(1)).default([]),
  });
}

export interface AddJobInput {
  name: string;
  destination: string;
  structure: string;
  accounts?: string[];
  all?: boolean;
  items?: string[];
  excludes?: string[];
}

export async function addJob(ctx: Context, input: AddJobInput): Promise<JobRecord> {
  const parsed = (await addSchema()).safeParse(input);
  if (!parsed.success) throw new UserError(validationMessage(parsed.error));
  const j = parsed.data;
  if (ctx.store.jobs.byName(j.name)) throw new UserError(`a job named "${j.name}" exists already`);
  if (j.all === (j.accounts !== undefined && j.accounts.length > 0)) throw new UserError('give either --all or --accounts');
  const dest = getDestination(ctx, j.destination);
  if (j.accounts) {
    const panel = ctx.panel(false);
    for (const a of j.accounts) if (!(await panel.getAccount(a))) throw new UserError(`unknown account "${a}"`);
  }
  return ctx.store.jobs.insert({
    name: j.name, destinationId: dest.id, structure: j.structure as JobRecord['structure'],
    accounts: j.all ? { all: true } : { list: j.accounts! }, items: j.items as JobRecord['items'], excludes: j.excludes, enabled: true,
  });
}

export function getJob(ctx: Context, name: string): JobRecord {
  const j = ctx.store.jobs.byName(name);
  if (!j) throw new UserError(`no job named "${name}"`);
  return j;
}

export function describeJob(ctx: Context, j: JobRecord): Record<string, unknown> {
  return {
    name: j.name, destination: ctx.store.destinations.byId(j.destinationId)?.name ?? null, structure: j.structure,
    accounts: 'all' in j.accounts ? 'all' : j.accounts.list, items: j.items, excludes: j.excludes, enabled: j.enabled, createdAt: j.createdAt,
  };
}

export function removeJob(ctx: Context, name: string): JobRecord {
  const j = getJob(ctx, name);
  ctx.store.jobs.remove(j.id);
  return j;
}
