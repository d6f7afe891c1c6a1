import express from 'express';
import { UserError } from '../../services/context.js';
import {
  addDestination, browseDestination, editDestination, publicSettings, removeDestination, setEnabled, setSnapshotsVisible, shownSpace,
  validateDestination, withDriver, type AddDestinationInput, type EditDestinationInput,
} from '../../services/destinations.js';
import { reindexDestination } from '../../services/reindex.js';
import type { DestinationRecord } from '../../store/destinations.js';
import { HttpError, notFound } from '../http-error.js';
import { refusalOf } from '../web-errors.js';
import { actorOf } from '../session.js';
import { field, formErrors, noErrors, numberField, type FormErrors, type MessageRules } from './form-errors.js';
import { adminOnly, destinationOf, record, type ProviderState } from './state.js';

/** The s3 fields of the form (the secret apart), each with the name of its setting. */
const S3_FORM = ['endpoint', 'region', 'bucket', 'prefix', 'serverFolder', 'accessKeyId', 'addressing', 'storageClass', 's3Parallel', 's3Timeout',
  'attempts', 'partSize', 'quota'] as const;
const FIELDS = ['name', 'type', 'path', 'freeSpaceLimitMb', 'host', 'port', 'username', 'password', 'privateKey', 'passphrase',
  'timeout', 'hostKey', 'parallel', 'hidden', 'forgetSnapshots', 'forceInsecurePath', ...S3_FORM, 'secretAccessKey'] as const;
/** What is put back into a refused form: everything typed except secrets, which are used and forgotten. */
const KEPT = ['name', 'type', 'path', 'freeSpaceLimitMb', 'host', 'port', 'username', 'timeout', 'hostKey', 'parallel', 'hidden', 'forgetSnapshots', 'forceInsecurePath',
  ...S3_FORM];
const SECRETS = ['password', 'privateKey', 'passphrase', 'secretAccessKey'];

/** The s3 settings of the form (texts as typed, numbers parsed; empty fields left out). */
function s3Input(kept: Record<string, string>, body: Record<string, unknown>): Partial<AddDestinationInput> {
  const text = (k: string): string | undefined => (kept[k] ? kept[k] : undefined);
  const num = (k: string): number | undefined => (kept[k] ? numberField(kept[k]!) : undefined);
  const timeout = kept.s3Timeout ? secondsToMs(kept.s3Timeout) : undefined;
  const out: Partial<AddDestinationInput> = {
    endpoint: kept.endpoint ?? '', region: text('region'), bucket: kept.bucket ?? '', prefix: kept.prefix ?? '', serverFolder: text('serverFolder'),
    accessKeyId: kept.accessKeyId ?? '', secretAccessKey: secretOf(body, 'secretAccessKey'), addressing: text('addressing'), storageClass: text('storageClass'),
    parallelTransfers: num('s3Parallel'), timeoutMs: timeout, maxAttempts: num('attempts'), partSizeMb: num('partSize'), quotaGb: num('quota'),
  };
  return Object.fromEntries(Object.entries(out).filter(([, v]) => v !== undefined));
}

const rulesFor = (type: string): MessageRules => [
  [/is not usable/, type === 'ssh' ? 'host' : type === 's3' ? 'endpoint' : 'path'],
  [/is not secure/, 'path'],
  [/exists already/, 'name'],
  [/snapshots cataloged on destination/, 'forgetSnapshots'],
  [/^type must be one of/, 'type'],
];

const secretOf = (body: Record<string, unknown>, k: string): string | undefined =>
  (typeof body[k] === 'string' && body[k] !== '' ? (body[k] as string).replace(/\r\n/g, '\n') : undefined);

const keptValues = (body: Record<string, unknown>): Record<string, string> => Object.fromEntries(KEPT.map((k) => [k, field(body, k)]));

const secondsToMs = (v: string): number | undefined => {
  const n = numberField(v);
  return n === undefined ? undefined : Math.round(n * 1000);
};

const fingerprintOf = (v: string): string | undefined => (v === '' ? undefined : v.replace(/^SHA256:/, ''));

/** The form's values of a stored destination (secrets never: their fields stay empty and mean "keep"). */
function valuesOf(d: DestinationRecord): Record<string, string> {
  const s = d.settings;
  const str = (v: unknown): string => (v === undefined || v === null ? '' : String(v));
  return {
    name: d.name, type: d.type, path: str(s.path), freeSpaceLimitMb: String(d.freeSpaceLimitMb), hidden: d.snapshotsVisible ? '' : '1',
    host: str(s.host), port: str(s.port ?? 22), username: str(s.username), timeout: s.timeoutMs ? String(Number(s.timeoutMs) / 1000) : '20',
    hostKey: s.hostKeyFingerprint ? `SHA256:${str(s.hostKeyFingerprint)}` : '', parallel: str(s.parallelTransfers ?? 8), forgetSnapshots: '',
    forceInsecurePath: '',
    endpoint: str(s.endpoint), region: str(s.region), bucket: str(s.bucket), prefix: str(s.prefix), serverFolder: str(s.serverFolder),
    accessKeyId: str(s.accessKeyId), addressing: str(s.addressing), storageClass: str(s.storageClass), s3Parallel: str(s.parallelTransfers),
    s3Timeout: d.type === 's3' && s.timeoutMs ? String(Number(s.timeoutMs) / 1000) : '', attempts: str(s.maxAttempts), partSize: str(s.partSizeMb),
    quota: str(s.quotaGb),
  };
}

/** Only what differs from what is stored: an unchanged field is no change (and a pinned host key stays pinned). */
function changesOf(d: DestinationRecord, kept: Record<string, string>, body: Record<string, unknown>): EditDestinationInput {
  const was = valuesOf(d);
  const c: EditDestinationInput = {};
  if (kept.name !== was.name) c.name = kept.name!;
  if (kept.path !== was.path) c.path = kept.path!;
  if ((kept.hidden === '1') !== (was.hidden === '1')) c.hidden = kept.hidden === '1';
  if (kept.freeSpaceLimitMb !== was.freeSpaceLimitMb) c.freeSpaceLimitMb = numberField(kept.freeSpaceLimitMb!) ?? 0;
  if (d.type === 'ssh') {
    if (kept.host !== was.host) c.host = kept.host!;
    if (kept.port !== was.port) c.port = numberField(kept.port!) ?? 22;
    if (kept.username !== was.username) c.username = kept.username!;
    if (kept.timeout !== was.timeout) c.timeoutMs = secondsToMs(kept.timeout!) ?? 20000;
    if (kept.parallel !== was.parallel) c.parallelTransfers = numberField(kept.parallel!) ?? 8;
    if (kept.hostKey !== was.hostKey && kept.hostKey !== '') c.hostKeyFingerprint = fingerprintOf(kept.hostKey!)!;
    for (const k of ['password', 'privateKey', 'passphrase'] as const) {
      const v = secretOf(body, k);
      if (v !== undefined) c[k] = v;
    }
  }
  if (d.type === 's3') {
    const now = s3Input(kept, body);
    const before = s3Input(was, {});
    for (const [k, v] of Object.entries(now) as [keyof AddDestinationInput, unknown][]) {
      if (k === 'secretAccessKey' || v !== before[k]) (c as Record<string, unknown>)[k] = v;
    }
  }
  if (kept.forgetSnapshots === '1') c.forgetSnapshots = true;
  if (d.type === 'local' && kept.forceInsecurePath === '1') c.forceInsecurePath = true;
  return c;
}

/** Destinations: list, add, manage, browse, validate, reindex, enable/disable, visibility, remove. Admins only. */
export function destinationRoutes(st: ProviderState): express.Router {
  const { ctx } = st;
  const r = express.Router();
  r.use(adminOnly);

  r.get('/', (_req, res) => {
    res.render('admin/destinations', {
      destinations: ctx.store.destinations.list().map((d) => ({
        ...d, settings: publicSettings(d), snapshots: ctx.store.snapshots.countByDestination(d.id),
        jobs: ctx.store.jobs.usingDestination(d.id).map((j) => ({ id: j.id, name: j.name })),
        storedBytes: storedBytesOf(st, d.id),
      })),
    });
  });

  const newForm = (res: express.Response, values: Record<string, string>, errors: FormErrors, status = 200): void => {
    res.status(status).render('admin/destination-new', { values, errors });
  };
  r.get('/new', (_req, res) => {
    newForm(res, { type: 'local', port: '22', timeout: '20', parallel: '8', region: 'us-east-1', s3Parallel: '8', s3Timeout: '60', attempts: '5', partSize: '8' }, noErrors());
  });

  r.post('/', async (req, res) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const kept = keptValues(body);
    const type = kept.type!;
    const input: AddDestinationInput = {
      name: kept.name!, type, path: kept.path!, hidden: kept.hidden === '1', freeSpaceLimitMb: numberField(kept.freeSpaceLimitMb!) ?? 0,
      ...(type === 'local' && kept.forceInsecurePath === '1' ? { forceInsecurePath: true } : {}),
    };
    if (type === 'ssh') {
      const timeoutMs = secondsToMs(kept.timeout!);
      const hostKeyFingerprint = fingerprintOf(kept.hostKey!);
      const parallelTransfers = numberField(kept.parallel!);
      Object.assign(input, {
        host: kept.host, port: numberField(kept.port!) ?? 22, username: kept.username,
        password: secretOf(body, 'password'), privateKey: secretOf(body, 'privateKey'), passphrase: secretOf(body, 'passphrase'),
        ...(timeoutMs !== undefined ? { timeoutMs } : {}), ...(hostKeyFingerprint ? { hostKeyFingerprint } : {}),
        ...(parallelTransfers !== undefined ? { parallelTransfers } : {}),
      });
    }
    if (type === 's3') Object.assign(input, s3Input(kept, body));
    try {
      const d = await addDestination(ctx, input, actorOf(res));
      res.redirect(303, `/admin/destinations/${d.id}`);
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      newForm(res, kept, formErrors(err.message, FIELDS, rulesFor(type)), 400);
    }
  });

  r.get('/:id', (req, res) => {
    const d = destinationOf(st, req.params.id);
    res.render('admin/destination', {
      d, settings: publicSettings(d), snapshots: ctx.store.snapshots.countByDestination(d.id), storedBytes: storedBytesOf(st, d.id),
      jobs: ctx.store.jobs.usingDestination(d.id).map((j) => ({ id: j.id, name: j.name })),
      validation: st.validations.get(String(d.id)), reindex: st.reindexes.get(String(d.id)),
    });
  });

  /** Free space needs the destination itself (a network round trip for SSH): asked for by the page after it is shown. */
  r.get('/:id/space', async (req, res) => {
    const d = destinationOf(st, req.params.id);
    try {
      res.json({ ok: true, space: shownSpace(await withDriver(ctx, d, (driver) => driver.space())) });
    } catch (err) {
      res.json({ ok: false, error: (err as Error).message });
    }
  });

  const editForm = (res: express.Response, d: DestinationRecord, values: Record<string, string>, errors: FormErrors, status = 200): void => {
    res.status(status).render('admin/destination-edit', { d, values, errors, secrets: Object.keys(publicSettings(d)).filter((k) => d.settings[k] !== undefined && SECRETS.includes(k)) });
  };
  r.get('/:id/edit', (req, res) => {
    const d = destinationOf(st, req.params.id);
    editForm(res, d, valuesOf(d), noErrors());
  });

  r.post('/:id/edit', async (req, res) => {
    const d = destinationOf(st, req.params.id);
    const body = (req.body ?? {}) as Record<string, unknown>;
    const kept = { ...keptValues(body), type: d.type };
    const changes = changesOf(d, kept, body);
    const { forgetSnapshots: _f, ...asked } = changes;
    if (Object.keys(asked).length === 0) { res.redirect(303, `/admin/destinations/${d.id}`); return; }
    try {
      await editDestination(ctx, d.name, changes, actorOf(res), d.owner);
      res.redirect(303, `/admin/destinations/${d.id}`);
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      editForm(res, d, kept, formErrors(err.message, FIELDS, rulesFor(d.type)), 400);
    }
  });

  r.get('/:id/browse', async (req, res) => {
    const d = destinationOf(st, req.params.id);
    const rel = typeof req.query.p === 'string' ? req.query.p : '';
    const clean = rel.split('/').filter((p) => p && p !== '.').join('/');
    if (clean.split('/').includes('..')) throw new HttpError(403, 'error.badPath');
    let entries;
    try {
      entries = await browseDestination(ctx, d.name, clean, actorOf(res), d.owner);
    } catch (err) {
      throw new HttpError(404, 'error.notFound', (err as Error).message);
    }
    const link = (p: string): string => `/admin/destinations/${d.id}/browse${p ? `?p=${encodeURIComponent(p)}` : ''}`;
    const parts = clean ? clean.split('/') : [];
    res.render('admin/destination-browse', {
      d, dir: clean, parentUrl: parts.length ? link(parts.slice(0, -1).join('/')) : null,
      crumbs: parts.map((name, i) => ({ name, url: link(parts.slice(0, i + 1).join('/')) })),
      entries: entries.sort((a, b) => (a.type === 'dir') === (b.type === 'dir') ? (a.name < b.name ? -1 : 1) : a.type === 'dir' ? -1 : 1)
        .map((e) => ({ ...e, url: e.type === 'dir' ? link(clean ? `${clean}/${e.name}` : e.name) : null })),
    });
  });

  r.post('/:id/enabled', (req, res) => {
    const d = destinationOf(st, req.params.id);
    const enabled = field(req.body as Record<string, unknown>, 'enabled') === '1';
    setEnabled(ctx, d.name, enabled, actorOf(res), d.owner);
    record(st, res, enabled ? 'destination.enable' : 'destination.disable', d.name, 'ok');
    res.redirect(303, `/admin/destinations/${d.id}`);
  });

  r.post('/:id/visibility', (req, res) => {
    const d = destinationOf(st, req.params.id);
    const visible = field(req.body as Record<string, unknown>, 'visible') === '1';
    setSnapshotsVisible(ctx, d.name, visible, actorOf(res), d.owner);
    record(st, res, 'destination.visibility', d.name, 'ok', visible ? 'visible' : 'hidden');
    res.redirect(303, `/admin/destinations/${d.id}`);
  });

  r.post('/:id/validate', (req, res) => {
    const d = destinationOf(st, req.params.id);
    const actor = actorOf(res);
    st.validations.start(String(d.id), () => validateDestination(ctx, d.name, actor, d.owner));
    res.redirect(303, `/admin/destinations/${d.id}`);
  });

  r.get('/:id/validation', (req, res) => {
    const v = st.validations.get(String(destinationOf(st, req.params.id).id));
    res.json({ running: v?.running ?? false, finished: v !== null && !v.running });
  });

  r.post('/:id/reindex', (req, res) => {
    const d = destinationOf(st, req.params.id);
    const actor = actorOf(res);
    st.reindexes.start(String(d.id), () => reindexDestination(ctx, d.name, {}, actor, d.owner));
    res.redirect(303, `/admin/destinations/${d.id}`);
  });

  r.get('/:id/reindex', (req, res) => {
    const v = st.reindexes.get(String(destinationOf(st, req.params.id).id));
    res.json({ running: v?.running ?? false, finished: v !== null && !v.running, result: v?.result ?? null, error: v?.error ?? null });
  });

  r.post('/:id/remove', async (req, res) => {
    const d = destinationOf(st, req.params.id);
    const deleteData = field(req.body as Record<string, unknown>, 'deleteData') === '1';
    try {
      await removeDestination(ctx, d.name, { deleteData }, actorOf(res), d.owner);
      res.redirect(303, '/admin/destinations');
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      throw refusalOf(err);
    }
  });

  r.use('/:id', (_req, _res, next) => { next(notFound()); });
  return r;
}

/** What the snapshots on a destination take there (hard-linked files counted once per snapshot that added them). */
export function storedBytesOf(st: ProviderState, destinationId: number): number {
  const row = st.ctx.store.db.prepare('SELECT COALESCE(SUM(stored_bytes), 0) AS n FROM snapshots WHERE destination_id = ?').get(destinationId) as { n: number };
  return row.n;
}
