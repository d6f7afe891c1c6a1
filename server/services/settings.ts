import fs from 'node:fs';
import path from 'node:path';
import { configSchema, type Config } from '../config-schema.js';
import { maskedUrl } from '../notify/webhook.js';
import { UserError, type Context } from './context.js';
import type { Actor } from './actor.js';
import { plainIssues } from '../util/plain-issues.js';

/** The parts of config.json the settings pages change; everything else in the file stays as it is. */
export const SETTINGS_KEYS = ['permissions', 'notifications', 'queue', 'sessionIdleMinutes', 'sessionMaxHours', 'accountDestinations'] as const;
export type SettingsKey = typeof SETTINGS_KEYS[number];

/** A change refused by the schema: every problem with the path of its field ("queue.maxBackups"). */
export class SettingsError extends UserError {
  constructor(readonly issues: { path: string; message: string }[]) {
    super(issues.map((i) => `${i.path || '(root)'}: ${i.message}`).join('; '));
    this.name = 'SettingsError';
  }
}

const configFile = (dataDir: string): string => path.join(dataDir, 'config.json');

/** config.json as written (missing: empty), never the defaults filled in. */
export function readConfigFile(dataDir: string): Record<string, unknown> {
  const file = configFile(dataDir);
  if (!fs.existsSync(file)) return {};
  const raw = JSON.parse(fs.readFileSync(file, 'utf8')) as unknown;
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new UserError(`${file} does not hold a JSON object`);
  return raw as Record<string, unknown>;
}

/**
 * Replaces config.json in one step: a reader sees the old file or the new one, never half of
 * one, and a crash leaves one of them on disk. Root-only (it may hold the SMTP password).
 */
export function writeConfigAtomically(dataDir: string, value: unknown): void {
  const file = configFile(dataDir);
  const tmp = path.join(dataDir, `.config.json.${process.pid}.${Date.now()}.tmp`);
  const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
  try {
    fs.fchmodSync(fd, 0o600);
    fs.writeSync(fd, `${JSON.stringify(value, null, 2)}\n`);
    fs.fsyncSync(fd);
  } catch (err) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  fs.closeSync(fd);
  fs.renameSync(tmp, file);
  const dir = fs.openSync(dataDir, 'r');
  try { fs.fsyncSync(dir); } finally { fs.closeSync(dir); }
}

/** Validates with the schema of the file itself; the parsed config, or a SettingsError naming each field. */
export function validateConfig(raw: unknown): Config {
  const parsed = configSchema.safeParse(raw, plainIssues);
  if (!parsed.success) throw new SettingsError(parsed.error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message })));
  return parsed.data;
}

const SECRET = '********';

/** A setting as the activity log may show it: the SMTP password and a webhook URL's path never appear. */
export function maskedValue(key: string, value: unknown): string {
  if (value === undefined) return '—';
  if (key === 'notifications.email.smtp.password') return SECRET;
  if (key === 'notifications.webhook.url' && typeof value === 'string') return maskedUrl(value);
  return JSON.stringify(value);
}

function flatten(value: unknown, prefix: string, out: Map<string, unknown>): Map<string, unknown> {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
    if (Object.keys(value).length === 0 && prefix) out.set(prefix, {});
  } else if (prefix) out.set(prefix, value);
  return out;
}

export interface SettingChange { key: string; from: string; to: string }

/** What differs between two configs, key by key, secrets masked (a changed password shows as changed, never its value). */
export function changesBetween(before: Partial<Config>, after: Partial<Config>, keys: readonly string[]): SettingChange[] {
  const a = new Map<string, unknown>();
  const b = new Map<string, unknown>();
  for (const k of keys) {
    flatten((before as Record<string, unknown>)[k], k, a);
    flatten((after as Record<string, unknown>)[k], k, b);
  }
  const out: SettingChange[] = [];
  for (const key of [...new Set([...a.keys(), ...b.keys()])].sort()) {
    if (JSON.stringify(a.get(key)) === JSON.stringify(b.get(key))) continue;
    out.push({ key, from: maskedValue(key, a.get(key)), to: maskedValue(key, b.get(key)) });
  }
  return out;
}

/** The config the daemon works with from now on: every reader of ctx.config sees the new one. */
export function useConfig(ctx: Context, config: Config): void {
  ctx.config = config;
}

/** Reads config.json again (the daemon on SIGHUP, after someone edited the file by hand). */
export async function reloadConfig(ctx: Context): Promise<void> {
  const { loadConfig } = await import('../config.js');
  useConfig(ctx, await loadConfig(ctx.dataDir));
}

/**
 * Changes settings from the pages: `patch` replaces whole top-level keys (undefined removes
 * one). Validated with the schema of the file, written atomically, recorded in the activity
 * log with the old and new values (secrets masked), and in effect at once in this process.
 * Admins only. Nothing is written when the result would not load.
 */
export function changeSettings(ctx: Context, actor: Actor, section: string, patch: Partial<Record<SettingsKey, unknown>>): SettingChange[] {
  if (actor.role !== 'admin') throw new UserError('only the server\'s administrator changes settings');
  for (const k of Object.keys(patch)) if (!(SETTINGS_KEYS as readonly string[]).includes(k)) throw new UserError(`${k}: not a setting of these pages`);
  const raw = readConfigFile(ctx.dataDir);
  const next: Record<string, unknown> = { ...raw };
  for (const [k, v] of Object.entries(patch)) {
    if (v === undefined) delete next[k]; else next[k] = v;
  }
  const config = validateConfig(next);
  const changes = changesBetween(ctx.config, config, Object.keys(patch));
  if (changes.length === 0) return [];
  writeConfigAtomically(ctx.dataDir, next);
  useConfig(ctx, config);
  ctx.store.activity.record({
    actor: actor.name, role: actor.role, action: 'settings.change', target: section, result: 'ok',
    detail: changes.map((c) => `${c.key}: ${c.from} → ${c.to}`).join('; '),
  });
  return changes;
}
