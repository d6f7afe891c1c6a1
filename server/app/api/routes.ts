import express from 'express';
import type { Context } from '../../services/context.js';
import { ROOT, type Actor } from '../../services/actor.js';
import {
  addDestination, browseDestination, describeDestination, editDestination, getDestination, listDestinations, removeDestination, setEnabled,
  setSnapshotsVisible, validateDestination, type AddDestinationInput, type EditDestinationInput,
} from '../../services/destinations.js';
import { reindexDestination } from '../../services/reindex.js';
import { verifyDestination, verifySnapshot } from '../../services/verify.js';
import { addJob, describeJob, getJob, listJobs, removeJob } from '../../services/jobs.js';
import { runBackup } from '../../services/backups.js';
import {
  describeEntry, describeSnapshot, findSnapshot, listSnapshots, prepareDownload, restore, snapshotFiles, snapshotManifest,
} from '../../services/snapshots.js';
import { fromUtf8, type BytePath } from '../../util/byte-path.js';
import { clipLongRuns, decodeBase64Path, quoteInput } from '../../util/input-checks.js';
import type { TaskRecord } from '../../store/tasks.js';
import { cancelTask, getTask, listTasks } from '../../services/tasks.js';
import { isPriorityName, PRIORITIES, priorityName } from '../../queue/priority.js';
import { ApiError, sendGzip, statusOf } from './errors.js';
import {
  binlogStatus, databaseWindow, parseMoment, previewDatabaseAt, restoreDatabaseAtMoment, shipBinlogsNow, type AtInput,
} from '../../services/point-in-time.js';
import { stillSameAccount } from '../session.js';
import { historyApiRoutes } from './history-routes.js';
import { siteApiRoutes } from './site-routes.js';

export type Body = Record<string, unknown>;
type Handler = (req: express.Request, res: express.Response, actor: Actor) => Promise<void>;

const actorOf = (res: express.Response): Actor => res.locals.apiActor as Actor;

/** Wraps a handler: its errors become `{error}` with the CLI's message and a status that fits. */
export const handle = (fn: Handler) => (req: express.Request, res: express.Response): void => {
  fn(req, res, actorOf(res)).catch((err: unknown) => {
    const status = statusOf(err);
    if (status === 500) process.stderr.write(`tidemark api: ${(err as Error)?.stack ?? String(err)}\n`);
    if (res.headersSent) { res.destroy(); return; }
    // A refused value is never answered back whole (see util/input-checks.ts).
    res.status(status).json({ error: status === 500 ? 'internal error' : clipLongRuns((err as Error).message) });
  });
};

export const bad = (message: string): ApiError => new ApiError(400, message);

function taskId(req: express.Request): number {
  const id = Number(param(req, 'id'));
  if (!Number.isSafeInteger(id)) throw new ApiError(404, `no task ${param(req, 'id')}`);
  return id;
}

export function body(req: express.Request): Body {
  const b: unknown = req.body;
  if (b === undefined || b === null) return {};
  if (typeof b !== 'object' || Array.isArray(b)) throw bad('the request body must be a JSON object');
  return b as Body;
}

/**
 * The body, refused (400) when it holds a field the endpoint does not know: a typo such as
 * `path` for `paths` would otherwise be dropped, and a restore without paths is the whole home.
 */
export function fields(b: Body, known: readonly string[]): Body {
  for (const k of Object.keys(b)) if (!known.includes(k)) throw bad(`${quoteInput(k)}: not a field of this request (known: ${known.join(', ')})`);
  return b;
}

export function optString(b: Body, key: string): string | undefined {
  const v = b[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw bad(`${key}: a string is expected`);
  return v;
}
function optNumber(b: Body, key: string): number | undefined {
  const v = b[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw bad(`${key}: a number is expected`);
  return v;
}
export function optBoolean(b: Body, key: string): boolean | undefined {
  const v = b[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw bad(`${key}: true or false is expected`);
  return v;
}
function stringList(b: Body, key: string): string[] {
  const v = b[key];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw bad(`${key}: a list of strings is expected`);
  return v as string[];
}
const param = (req: express.Request, key: string): string => String(req.params[key] ?? '');
/** A query parameter given at most once: a repeated one (`?path=a&path=b`) is refused, never read as absent. */
export function query(req: express.Request, key: string): string | undefined {
  const v = req.query[key];
  if (v === undefined || typeof v === 'string') return v;
  throw bad(`${key}: one value is expected`);
}

/** Paths as UTF-8 text (`paths`) or as base64 of their bytes (`pathsBase64`), as in the CLI. */
const pathsOf = (b: Body): BytePath[] => [...stringList(b, 'paths').map(fromUtf8), ...stringList(b, 'pathsBase64').map((p) => base64Path('pathsBase64', p))];

/** Strict base64 (see util/input-checks.ts): a value with other characters is refused, not decoded in part. */
function base64Path(key: string, value: string): BytePath {
  const p = decodeBase64Path(value);
  if (p === null) throw bad(`${key}: base64 (A-Z a-z 0-9 + /, padded with =) is expected`);
  return p;
}

/** The settings of `destination add` / `edit`, under the names of the services (see docs/api.md). */
const DESTINATION_FIELDS = {
  string: ['name', 'type', 'path', 'host', 'username', 'password', 'privateKey', 'passphrase', 'hostKeyFingerprint',
    'endpoint', 'region', 'bucket', 'prefix', 'serverFolder', 'accessKeyId', 'secretAccessKey', 'addressing', 'storageClass'],
  number: ['port', 'freeSpaceLimitMb', 'timeoutMs', 'parallelTransfers', 'maxAttempts', 'partSizeMb', 'quotaGb'],
  boolean: ['hidden', 'forgetSnapshots', 'forceInsecurePath'],
} as const;

function destinationFields(b: Body): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const known = new Set<string>([...DESTINATION_FIELDS.string, ...DESTINATION_FIELDS.number, ...DESTINATION_FIELDS.boolean]);
  for (const k of Object.keys(b)) if (!known.has(k)) throw bad(`${k}: not a setting of a destination`);
  for (const k of DESTINATION_FIELDS.string) { const v = optString(b, k); if (v !== undefined) out[k] = v; }
  for (const k of DESTINATION_FIELDS.number) { const v = optNumber(b, k); if (v !== undefined) out[k] = v; }
  for (const k of DESTINATION_FIELDS.boolean) { const v = optBoolean(b, k); if (v !== undefined) out[k] = v; }
  if (typeof out.hostKeyFingerprint === 'string') out.hostKeyFingerprint = out.hostKeyFingerprint.replace(/^SHA256:/, '');
  return out;
}

function describeTask(ctx: Context, t: TaskRecord, actor: Actor): Record<string, unknown> {
  return {
    id: t.id, type: t.type, status: t.status, finished: !['queued', 'running'].includes(t.status), priority: priorityName(t.priority), account: t.account,
    job: t.jobId === null ? null : ctx.store.jobs.byId(t.jobId)?.name ?? null,
    destination: t.destinationId === null ? null : ctx.store.destinations.byId(t.destinationId)?.name ?? null,
    snapshot: t.snapshotId ?? (typeof t.result.snapshot === 'string' ? t.result.snapshot : null),
    createdAt: t.createdAt, startedAt: t.startedAt, finishedAt: t.finishedAt, progress: t.progress, result: t.result, error: t.error,
    cancelRequestedBy: t.cancelRequestedBy,
    log: ctx.store.tasks.logs(t.id, { provider: actor.role === 'admin' }).slice(-200),
  };
}

/**
 * Starts long work in the daemon and answers as soon as its task ids are known; the work
 * goes on after the answer, and its outcome is in the tasks. An error before any task
 * exists is the answer instead.
 */
export function startInBackground(work: (onTasks: (ids: number[]) => void) => Promise<unknown>): Promise<number[]> {
  return new Promise((resolve, reject) => {
    let answered = false;
    work((ids) => { answered = true; resolve(ids); }).then(
      () => { if (!answered) resolve([]); },
      (err: unknown) => { if (!answered) reject(err); },
    );
  });
}

/**
 * The JSON API under /api/v1: the CLI's commands and JSON documents over HTTP, with the
 * same services, rules and messages. Every request carries `Authorization: Bearer
 * <token>`; on the root-only socket a request without one acts as root, as the CLI does.
 */
export function apiRoutes(ctx: Context, trusted: boolean): express.Router {
  const r = express.Router();

  r.use((req, res, next) => {
    res.set('Cache-Control', 'no-store');
    const header = req.get('authorization');
    if (header === undefined && trusted) { res.locals.apiActor = ROOT; next(); return; }
    const m = /^Bearer ([A-Za-z0-9_-]{1,200})$/.exec(header ?? '');
    const token = m ? ctx.store.apiTokens.authenticate(m[1]!) : null;
    const refuse = (): void => {
      res.status(401).set('WWW-Authenticate', 'Bearer realm="tidemark"').json({ error: 'a valid API token is required (Authorization: Bearer <token>)' });
    };
    if (!token) { refuse(); return; }
    // A token made for an account that has since been removed speaks for nobody, even when a
    // new account has the same name.
    stillSameAccount(ctx, token.actor, token.accountId).then((same) => {
      if (!same) { refuse(); return; }
      res.locals.apiActor = token.actor;
      next();
    }, next);
  });
  r.use(express.json({ limit: '1mb', strict: false }));

  const ownerOpt = (req: express.Request): string | undefined => query(req, 'owner');

  // Destinations
  r.get('/destinations', handle(async (_req, res, actor) => {
    res.json(await Promise.all(listDestinations(ctx, actor).map((d) => describeDestination(ctx, d, actor))));
  }));
  r.post('/destinations', handle(async (req, res, actor) => {
    const f = destinationFields(body(req));
    if (f.forgetSnapshots !== undefined) throw bad('forgetSnapshots: only for edit');
    const d = await addDestination(ctx, { path: '', ...f } as unknown as AddDestinationInput, actor);
    res.status(201).json(await describeDestination(ctx, d, actor));
  }));
  r.get('/destinations/:name', handle(async (req, res, actor) => {
    res.json(await describeDestination(ctx, getDestination(ctx, param(req, 'name'), actor, ownerOpt(req)), actor));
  }));
  r.patch('/destinations/:name', handle(async (req, res, actor) => {
    const o = await editDestination(ctx, param(req, 'name'), destinationFields(body(req)) as EditDestinationInput, actor, ownerOpt(req));
    res.json({ ...(await describeDestination(ctx, o.record, actor)), changed: o.changed, forgottenSnapshots: o.forgottenSnapshots });
  }));
  r.delete('/destinations/:name', handle(async (req, res, actor) => {
    const deleteData = ['1', 'true'].includes(query(req, 'deleteData') ?? '');
    const o = await removeDestination(ctx, param(req, 'name'), { deleteData }, actor, ownerOpt(req));
    res.json({ removed: o.record.name, deletedSnapshots: o.deletedSnapshots });
  }));
  for (const [verb, enabled] of [['enable', true], ['disable', false]] as const) {
    r.post(`/destinations/:name/${verb}`, handle(async (req, res, actor) => {
      res.json(await describeDestination(ctx, setEnabled(ctx, param(req, 'name'), enabled, actor, ownerOpt(req)), actor));
    }));
  }
  r.post('/destinations/:name/visibility', handle(async (req, res, actor) => {
    const b = body(req);
    const visible = optBoolean(fields(b, ['visible']), 'visible');
    if (visible === undefined) throw bad('visible: true or false is expected');
    res.json(await describeDestination(ctx, setSnapshotsVisible(ctx, param(req, 'name'), visible, actor, ownerOpt(req)), actor));
  }));
  r.post('/destinations/:name/validate', handle(async (req, res, actor) => {
    res.json(await validateDestination(ctx, param(req, 'name'), actor, ownerOpt(req)));
  }));
  r.post('/destinations/:name/reindex', handle(async (req, res, actor) => {
    const account = optString(fields(body(req), ['account']), 'account');
    res.json(await reindexDestination(ctx, param(req, 'name'), account !== undefined ? { account } : {}, actor, ownerOpt(req)));
  }));
  r.post('/destinations/:name/verify', handle(async (req, res, actor) => {
    const b = fields(body(req), ['account', 'samplePercent']);
    const account = optString(b, 'account');
    const samplePercent = optNumber(b, 'samplePercent');
    if (samplePercent !== undefined && !(samplePercent > 0 && samplePercent <= 100)) throw bad('samplePercent: a number above 0 and at most 100 is expected');
    res.json(await verifyDestination(ctx, param(req, 'name'), { ...(account !== undefined ? { account } : {}), ...(samplePercent !== undefined ? { samplePercent } : {}) }, actor, ownerOpt(req)));
  }));
  r.get('/destinations/:name/browse', handle(async (req, res, actor) => {
    res.json(await browseDestination(ctx, param(req, 'name'), query(req, 'path') ?? '', actor, ownerOpt(req)));
  }));

  // Jobs
  r.get('/jobs', handle(async (_req, res, actor) => { res.json(listJobs(ctx, actor).map((j) => describeJob(ctx, j))); }));
  r.get('/jobs/:name', handle(async (req, res, actor) => { res.json(describeJob(ctx, getJob(ctx, param(req, 'name'), actor, ownerOpt(req)))); }));
  r.post('/jobs', handle(async (req, res, actor) => {
    const b = fields(body(req), ['name', 'destination', 'structure', 'accounts', 'all', 'items', 'excludes']);
    const accounts = b.accounts === undefined ? undefined : stringList(b, 'accounts');
    const items = b.items === undefined ? undefined : stringList(b, 'items');
    const j = await addJob(ctx, {
      name: optString(b, 'name') ?? '', destination: optString(b, 'destination') ?? '', structure: optString(b, 'structure') ?? '',
      all: optBoolean(b, 'all') ?? false, excludes: stringList(b, 'excludes'),
      ...(accounts !== undefined ? { accounts } : {}), ...(items !== undefined ? { items } : {}),
    }, actor, ownerOpt(req));
    res.status(201).json(describeJob(ctx, j));
  }));
  r.delete('/jobs/:name', handle(async (req, res, actor) => {
    res.json({ removed: removeJob(ctx, param(req, 'name'), actor, ownerOpt(req)).name });
  }));

  // Backups: started here, polled at /tasks/:id (or, with "wait": true, answered when done).
  r.post('/backups', handle(async (req, res, actor) => {
    const b = fields(body(req), ['job', 'account', 'owner', 'priority', 'wait']);
    const job = optString(b, 'job');
    if (job === undefined) throw bad('job: the name of the job to run is required');
    const account = optString(b, 'account');
    const owner = optString(b, 'owner');
    const level = optString(b, 'priority') ?? 'normal';
    if (!isPriorityName(level)) throw bad(`priority: one of ${Object.keys(PRIORITIES).join(', ')}`);
    const priority = PRIORITIES[level];
    if (optBoolean(b, 'wait')) {
      const results = await runBackup(ctx, job, account, actor, owner, { priority });
      res.json({ snapshots: results.filter((x) => x.snapshot).map((x) => x.snapshot), results });
      return;
    }
    const tasks = await startInBackground((onTasks) => runBackup(ctx, job, account, actor, owner, { onTasks, priority }));
    res.status(202).json({ tasks });
  }));
  r.get('/tasks', handle(async (req, res, actor) => {
    const active = ['1', 'true'].includes(query(req, 'active') ?? '');
    res.json((await listTasks(ctx, actor, { activeOnly: active, limit: 200 })).map((t) => describeTask(ctx, t, actor)));
  }));
  r.post('/tasks/:id/cancel', handle(async (req, res, actor) => {
    const id = taskId(req);
    const outcome = await cancelTask(ctx, id, actor);
    res.json({ task: id, outcome, status: ctx.store.tasks.byId(id)!.status });
  }));
  r.get('/tasks/:id', handle(async (req, res, actor) => {
    res.json(describeTask(ctx, await getTask(ctx, taskId(req), actor), actor));
  }));

  // Snapshots
  r.get('/snapshots', handle(async (req, res, actor) => {
    const account = query(req, 'account');
    const destination = query(req, 'destination');
    const owner = ownerOpt(req);
    const list = await listSnapshots(ctx, {
      ...(account !== undefined ? { account } : {}), ...(destination !== undefined ? { destination } : {}), ...(owner !== undefined ? { owner } : {}),
    }, actor);
    res.json(list.map((s) => describeSnapshot(ctx, s)));
  }));
  const snapshotOf = (req: express.Request, actor: Actor, destination = query(req, 'destination')) =>
    findSnapshot(ctx, param(req, 'id'), destination, actor, ownerOpt(req));
  r.get('/snapshots/:id', handle(async (req, res, actor) => {
    const s = await snapshotOf(req, actor);
    res.json({ ...describeSnapshot(ctx, s), manifest: await snapshotManifest(ctx, s, actor) });
  }));
  r.get('/snapshots/:id/files', handle(async (req, res, actor) => {
    const s = await snapshotOf(req, actor);
    const b64 = query(req, 'pathBase64');
    const dir = b64 !== undefined ? base64Path('pathBase64', b64) : fromUtf8(query(req, 'path') ?? '');
    res.json((await snapshotFiles(ctx, s, dir, actor)).map(describeEntry));
  }));
  r.post('/snapshots/:id/verify', handle(async (req, res, actor) => {
    const s = await snapshotOf(req, actor, optString(fields(body(req), ['destination']), 'destination') ?? query(req, 'destination'));
    res.json(await verifySnapshot(ctx, s, actor));
  }));
  r.post('/snapshots/:id/restore', handle(async (req, res, actor) => {
    const b = fields(body(req), ['paths', 'pathsBase64', 'databases', 'intoFolder', 'destination', 'wait']);
    const s = await snapshotOf(req, actor, optString(b, 'destination') ?? query(req, 'destination'));
    const raw = b.databases ?? [];
    if (!Array.isArray(raw)) throw bad('databases: a list is expected');
    const databases = raw.map((d: unknown) => {
      if (typeof d === 'string') return { name: d };
      if (d && typeof d === 'object' && typeof (d as Body).name === 'string' && ['string', 'undefined'].includes(typeof (d as Body).as)) {
        const { name, as } = d as { name: string; as?: string };
        return as === undefined ? { name } : { name, as };
      }
      throw bad('databases: each is a name, or {"name": ..., "as": ...}');
    });
    const input = { paths: pathsOf(b), databases, intoFolder: optBoolean(b, 'intoFolder') ?? false };
    if (optBoolean(b, 'wait')) { res.json(await restore(ctx, s, input, actor)); return; }
    const [task] = await startInBackground((onTasks) => restore(ctx, s, input, actor, { onTask: (id) => onTasks([id]) }));
    res.status(202).json({ task });
  }));
  r.post('/snapshots/:id/download', handle(async (req, res, actor) => {
    const b = fields(body(req), ['paths', 'pathsBase64', 'databases', 'destination']);
    const s = await snapshotOf(req, actor, optString(b, 'destination') ?? query(req, 'destination'));
    const write = await prepareDownload(ctx, s, { paths: pathsOf(b), databases: stringList(b, 'databases') }, actor);
    await sendGzip(res, `${s.account}-${s.id}.tar.gz`, write);
  }));

  r.use(historyApiRoutes(ctx));
  r.use(siteApiRoutes(ctx));
  // Point in time (services/point-in-time.ts): the same documents as `tidemark database …` and `tidemark binlog …`.
  const atInput = (req: express.Request, b: Body): AtInput => {
    const account = optString(b, 'account') ?? query(req, 'account');
    if (!account) throw bad('account is required');
    const at = optString(b, 'at') ?? query(req, 'at');
    if (!at) throw bad('at is required (an ISO date and time)');
    const tables = b.tables === undefined ? undefined : stringList(b, 'tables');
    const into = optString(b, 'as');
    return { account, database: param(req, 'database'), at: parseMoment(at), ...(tables ? { tables } : {}), ...(into ? { into } : {}), asNewTables: optBoolean(b, 'asNewTables') ?? false };
  };
  r.get('/databases/:database/window', handle(async (req, res, actor) => {
    const account = query(req, 'account');
    if (!account) throw bad('account is required');
    res.json(await databaseWindow(ctx, actor, account, param(req, 'database')));
  }));
  r.post('/databases/:database/preview', handle(async (req, res, actor) => {
    res.json(await previewDatabaseAt(ctx, actor, atInput(req, fields(body(req), ['account', 'at', 'tables']))));
  }));
  r.post('/databases/:database/restore', handle(async (req, res, actor) => {
    const b = fields(body(req), ['account', 'at', 'tables', 'as', 'asNewTables', 'wait']);
    const input = atInput(req, b);
    if (optBoolean(b, 'wait')) { res.json(await restoreDatabaseAtMoment(ctx, actor, input)); return; }
    const [task] = await startInBackground((onTasks) => restoreDatabaseAtMoment(ctx, actor, input, (id) => onTasks([id])));
    res.status(202).json({ task });
  }));
  r.get('/binlogs', handle(async (_req, res, actor) => {
    if (actor.role !== 'admin') throw new ApiError(403, 'only the provider sees the binary logs');
    res.json(await binlogStatus(ctx));
  }));
  r.post('/binlogs/ship', handle(async (_req, res, actor) => {
    if (actor.role !== 'admin') throw new ApiError(403, 'only the provider ships the binary logs');
    res.json(await shipBinlogsNow(ctx));
  }));

  r.use((_req, res) => { res.status(404).json({ error: 'no such API endpoint' }); });
  // Errors of the body parser: malformed JSON, too large.
  r.use((err: unknown, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
    const status = (err as { status?: unknown } | null)?.status;
    if (status === 413) { res.status(413).json({ error: 'the request body is larger than 1 MB' }); return; }
    res.status(400).json({ error: 'the request body is not valid JSON' });
  });
  return r;
}
