import express from 'express';
import type { Config } from '../../config-schema.js';
import { UserError } from '../../services/context.js';
import { ACTIONS } from '../../services/permissions.js';
import { changeSettings, readConfigFile, SettingsError, type SettingsKey } from '../../services/settings.js';
import { maskedUrl } from '../../notify/webhook.js';
import { actorOf } from '../session.js';
import { notFound } from '../http-error.js';
import { noErrors, type FormErrors } from './form-errors.js';
import { adminOnly, record, type ProviderState } from './state.js';

export const SECTIONS = ['permissions', 'notifications', 'queue', 'sessions', 'accountDestinations'] as const;
type Section = typeof SECTIONS[number];
type Body = Record<string, unknown>;
/** Form fields are named by their place in config.json ("queue.maxBackups"); what was typed, as typed. */
type Values = Record<string, string>;

const str = (b: Body, k: string): string => (typeof b[k] === 'string' ? (b[k] as string).trim() : '');
const on = (b: Body, k: string): boolean => b[k] === 'on' || b[k] === '1';
/** Empty: the default; a number; anything else stays text, so the schema names the field. */
const num = (v: string): unknown => (v === '' ? undefined : /^-?\d+$/.test(v) ? Number(v) : v);
const lines = (v: string): string[] => v.split(/[\r\n,]+/).map((x) => x.trim()).filter(Boolean);
const tri = (v: string): boolean | undefined => (v === 'yes' ? true : v === 'no' ? false : undefined);
const triOf = (v: boolean | undefined): string => (v === true ? 'yes' : v === false ? 'no' : '');
const prune = <T extends Record<string, unknown>>(o: T): T => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined && v !== '')) as T;

const USER_ACTIONS = ACTIONS.filter((a) => a !== 'ownDestinations');
const MAX_OVERRIDE_ROWS = 200;

/** What the page shows: the settings in force, as form values. */
function valuesOf(c: Config): Values {
  const v: Values = {};
  for (const role of ['user', 'reseller'] as const) for (const a of ACTIONS) v[`permissions.${role}.${a}`] = triOf((c.permissions[role] as Record<string, boolean | undefined>)[a]);
  v['permissions.backupNowPerDay'] = String(c.permissions.backupNowPerDay);
  Object.entries(c.permissions.accounts).forEach(([name, p], i) => {
    v[`override.${i}.name`] = name;
    for (const a of ACTIONS) v[`override.${i}.${a}`] = triOf((p as Record<string, boolean | undefined>)[a]);
  });
  const n = c.notifications;
  v['email.to'] = n?.email?.to.join(', ') ?? '';
  v['email.from'] = n?.email?.from ?? '';
  v['email.via'] = n?.email?.via ?? 'sendmail';
  v['email.sendmailPath'] = n?.email?.sendmailPath ?? '';
  v['smtp.host'] = n?.email?.smtp?.host ?? '';
  v['smtp.port'] = n?.email?.smtp ? String(n.email.smtp.port) : '';
  v['smtp.secure'] = n?.email?.smtp?.secure ? 'on' : '';
  v['smtp.user'] = n?.email?.smtp?.user ?? '';
  v['notifications.on'] = n?.on ?? 'second-failure';
  v['notifications.success'] = n?.success ? 'on' : '';
  v['notifications.dailySummary'] = n?.dailySummary?.at ?? '';
  v['notifications.accountRestores'] = n?.accountRestores ?? 'opt-in';
  for (const k of ['maxBackups', 'maxTasksPerDestination', 'nice', 'ioClass', 'ioPriority'] as const) v[`queue.${k}`] = String(c.queue[k]);
  v.sessionIdleMinutes = String(c.sessionIdleMinutes);
  v.sessionMaxHours = String(c.sessionMaxHours);
  const ad = c.accountDestinations;
  v['accountDestinations.enabled'] = ad.enabled ? 'on' : '';
  v['accountDestinations.maxPerAccount'] = String(ad.maxPerAccount);
  v['accountDestinations.allowHosts'] = ad.allowHosts.join('\n');
  v['accountDestinations.denyHosts'] = ad.denyHosts.join('\n');
  v['accountDestinations.onlyAllowedHosts'] = ad.onlyAllowedHosts ? 'on' : '';
  v['accountDestinations.allowPorts'] = ad.allowPorts.join(', ');
  return v;
}

/** The typed form back as values (for a refused form), and as the settings it asks for. */
function parseSection(section: Section, b: Body, current: Config, raw: Record<string, unknown>): { values: Values; patch: Partial<Record<SettingsKey, unknown>> } {
  const values: Values = {};
  for (const [k, x] of Object.entries(b)) if (typeof x === 'string' && k !== '_csrf' && !k.endsWith('password') && k !== 'webhook.url') values[k] = x.trim();
  for (const k of ['smtp.secure', 'notifications.success', 'accountDestinations.enabled', 'accountDestinations.onlyAllowedHosts']) values[k] = on(b, k) ? 'on' : '';
  switch (section) {
    case 'permissions': {
      const role = (r: 'user' | 'reseller'): Record<string, unknown> =>
        prune(Object.fromEntries((r === 'user' ? USER_ACTIONS : ACTIONS).map((a) => [a, tri(str(b, `permissions.${r}.${a}`))])));
      const accounts: Record<string, unknown> = {};
      for (let i = 0; i < MAX_OVERRIDE_ROWS; i++) {
        const name = str(b, `override.${i}.name`);
        if (name === '') continue;
        const p = prune(Object.fromEntries(ACTIONS.map((a) => [a, tri(str(b, `override.${i}.${a}`))])));
        if (Object.keys(p).length) accounts[name] = p;
      }
      return { values, patch: { permissions: { user: role('user'), reseller: role('reseller'), accounts, ...prune({ backupNowPerDay: num(str(b, 'permissions.backupNowPerDay')) }) } } };
    }
    case 'notifications': {
      const old = current.notifications;
      const to = lines(str(b, 'email.to'));
      const via = str(b, 'email.via') || 'sendmail';
      const smtpHost = str(b, 'smtp.host');
      // A secret is never sent to the browser: an empty field keeps it, "remove" drops it.
      const password = on(b, 'smtp.clearPassword') ? undefined : str(b, 'smtp.password') || old?.email?.smtp?.password;
      const webhookTyped = str(b, 'webhook.url');
      const webhook = on(b, 'webhook.remove') ? undefined : webhookTyped || old?.webhook?.url;
      const email = to.length || str(b, 'email.from') || smtpHost
        ? prune({
          to, from: str(b, 'email.from'), via, sendmailPath: str(b, 'email.sendmailPath') || undefined,
          smtp: smtpHost || via === 'smtp' ? prune({ host: smtpHost, port: num(str(b, 'smtp.port')), secure: on(b, 'smtp.secure'), user: str(b, 'smtp.user') || undefined, password }) : undefined,
        })
        : undefined;
      const rawN = raw.notifications as Record<string, unknown> | undefined;
      const daily = str(b, 'notifications.dailySummary');
      const notifications = email || webhook
        ? prune({
          ...(rawN ?? {}), email, webhook: webhook ? { url: webhook } : undefined,
          on: str(b, 'notifications.on') || undefined, success: on(b, 'notifications.success'),
          dailySummary: daily ? { at: daily } : null, accountRestores: str(b, 'notifications.accountRestores') || undefined,
        })
        : undefined;
      return { values, patch: { notifications } };
    }
    case 'queue':
      return { values, patch: { queue: prune({
        maxBackups: num(str(b, 'queue.maxBackups')), maxTasksPerDestination: num(str(b, 'queue.maxTasksPerDestination')), nice: num(str(b, 'queue.nice')),
        ioClass: str(b, 'queue.ioClass') || undefined, ioPriority: num(str(b, 'queue.ioPriority')),
      }) } };
    case 'sessions':
      return { values, patch: { sessionIdleMinutes: num(str(b, 'sessionIdleMinutes')), sessionMaxHours: num(str(b, 'sessionMaxHours')) } };
    case 'accountDestinations': {
      const ports = lines(str(b, 'accountDestinations.allowPorts')).map(num);
      return { values, patch: { accountDestinations: prune({
        enabled: on(b, 'accountDestinations.enabled'), maxPerAccount: num(str(b, 'accountDestinations.maxPerAccount')),
        allowHosts: lines(str(b, 'accountDestinations.allowHosts')), denyHosts: lines(str(b, 'accountDestinations.denyHosts')),
        onlyAllowedHosts: on(b, 'accountDestinations.onlyAllowedHosts'), allowPorts: ports,
      }) } };
    }
  }
}

/** A schema path → the form field that holds it. */
function fieldOf(path: string): string {
  const p = path.replace(/\.\d+$/, '');
  const m = /^notifications\.email\.smtp\.(\w+)$/.exec(p) ?? /^notifications\.email\.(\w+)$/.exec(p);
  if (m) return path.includes('.smtp.') ? `smtp.${m[1]}` : `email.${m[1]}`;
  if (p === 'notifications.webhook.url' || p === 'notifications.webhook') return 'webhook.url';
  if (p === 'notifications.dailySummary.at') return 'notifications.dailySummary';
  return p;
}

function errorsOf(err: SettingsError): FormErrors {
  const out = noErrors();
  for (const i of err.issues) {
    const f = fieldOf(i.path);
    if (i.path.startsWith('permissions.accounts') || f === '') out.general.push(`${i.path}: ${i.message}`);
    else out.fields[f] = out.fields[f] ? `${out.fields[f]}; ${i.message}` : i.message;
  }
  return out;
}

/**
 * Settings of config.json (admins only; to a reseller these pages do not exist): permissions
 * with per-account overrides, notifications with a test of each channel, queue limits,
 * session lifetimes, account destinations and their allow-list. Saved through
 * services/settings.ts: validated like the file, written atomically, in force at once.
 */
export function settingsRoutes(st: ProviderState): express.Router {
  const { ctx } = st;
  const r = express.Router();
  r.use(adminOnly);

  const page = (res: express.Response, opts: { section?: Section; values?: Values; errors?: FormErrors; status?: number; saved?: string; tested?: { channel: string; error: string | null } } = {}): void => {
    const values = { ...valuesOf(ctx.config), ...(opts.values ?? {}) };
    const overrides = Object.keys(values).filter((k) => /^override\.\d+\.name$/.test(k)).length;
    res.status(opts.status ?? 200).render('admin/settings', {
      values, errors: opts.errors ?? noErrors(), failedSection: opts.section ?? null, saved: opts.saved ?? null, tested: opts.tested ?? null,
      actions: ACTIONS, userActions: USER_ACTIONS, overrideRows: overrides + 1,
      smtpPasswordSet: Boolean(ctx.config.notifications?.email?.smtp?.password),
      webhookMasked: ctx.config.notifications?.webhook ? maskedUrl(ctx.config.notifications.webhook.url) : null,
    });
  };

  r.get('/', (req, res) => {
    const saved = typeof req.query.saved === 'string' && (SECTIONS as readonly string[]).includes(req.query.saved) ? req.query.saved : undefined;
    page(res, saved ? { saved } : {});
  });

  /** Sends a test message on one channel, with the settings in force. */
  r.post('/test/:channel', async (req, res) => {
    const channel = req.params.channel;
    if (channel !== 'email' && channel !== 'webhook') throw notFound();
    const n = ctx.config.notifications;
    const subject = '[Tidemark] test message';
    const body = 'This is a test message from Tidemark\'s settings page.\n';
    let error: string | null = null;
    try {
      if (channel === 'email') {
        if (!n?.email) throw new Error('no mail is set up');
        const { sendMail } = await import('../../notify/deliver.js');
        await sendMail(n.email, { from: n.email.from, to: n.email.to, subject, body });
      } else {
        if (!n?.webhook) throw new Error('no webhook is set up');
        const { sendWebhook } = await import('../../notify/webhook.js');
        await sendWebhook(n.webhook.url, { text: `${subject}\n${body}`, tidemark: { event: 'test' } });
      }
    } catch (err) {
      error = (err as Error).message;
    }
    record(st, res, 'settings.test', channel, error === null ? 'ok' : 'failed', error ?? '');
    page(res, { tested: { channel, error }, status: error === null ? 200 : 502 });
  });

  r.post('/:section', (req, res) => {
    const section = req.params.section as Section;
    if (!(SECTIONS as readonly string[]).includes(section)) throw notFound();
    const { values, patch } = parseSection(section, (req.body ?? {}) as Body, ctx.config, readConfigFile(ctx.dataDir));
    try {
      changeSettings(ctx, actorOf(res), section, patch);
    } catch (err) {
      if (err instanceof SettingsError) { page(res, { section, values, errors: errorsOf(err), status: 400 }); return; }
      if (err instanceof UserError) { page(res, { section, values, errors: { fields: {}, general: [err.message] }, status: 400 }); return; }
      throw err;
    }
    res.redirect(303, `/admin/settings?saved=${section}`);
  });

  return r;
}
