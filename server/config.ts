import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import type { Config } from './config-schema.js';

export type { Config } from './config-schema.js';

export const DEFAULT_DATA_DIR = '/var/lib/tidemark';

export function resolveDataDir(explicit?: string): string {
  return path.resolve(explicit ?? process.env.TIDEMARK_HOME ?? DEFAULT_DATA_DIR);
}

/** Changes with every build or upgrade of the schema module, so an older validated copy is never reused. */
function schemaStamp(): string {
  const st = fs.statSync(new URL('./config-schema.js', import.meta.url));
  return `${st.size}:${st.mtimeMs}`;
}

/**
 * Reads `<dataDir>/config.json` (missing file = all defaults); a bad file is a clear
 * error. The validated result is kept beside it, keyed by a hash of the text: loading
 * the validation library costs every command a tenth of a second, and the file rarely
 * changes.
 */
export async function loadConfig(dataDir: string): Promise<Config> {
  const file = path.join(dataDir, 'config.json');
  const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '{}';
  const hash = crypto.createHash('sha256').update(`${schemaStamp()}\0${text}`).digest('hex');
  const cacheFile = path.join(dataDir, '.config.validated.json');
  try {
    const cached = JSON.parse(fs.readFileSync(cacheFile, 'utf8')) as { hash?: string; config?: Config };
    if (cached.hash === hash && cached.config) return cached.config;
  } catch {
    // no valid cached copy: validate below
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new Error(`${file} is not valid JSON: ${(err as Error).message}`);
  }
  const { configSchema } = await import('./config-schema.js');
  const { plainIssues } = await import('./util/plain-issues.js');
  const parsed = configSchema.safeParse(raw, plainIssues);
  if (!parsed.success) {
    const detail = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new Error(`${file}: ${detail}`);
  }
  try {
    fs.writeFileSync(cacheFile, JSON.stringify({ hash, config: parsed.data }), { mode: 0o600 });
  } catch {
    // a read-only data directory still works, only without the shortcut
  }
  return parsed.data;
}

export function prefixed(config: Pick<Config, 'rootPrefix'>, absolute: string): string {
  return config.rootPrefix ? path.join(config.rootPrefix, absolute) : absolute;
}
