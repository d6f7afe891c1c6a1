import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';

export const DEFAULT_DATA_DIR = '/var/lib/tidemark';

const mysqlSchema = z.object({
  socket: z.string().optional(),
  host: z.string().optional(),
  port: z.number().int().positive().optional(),
  user: z.string().default('root'),
  password: z.string().optional(),
}).strict();

export const configSchema = z.object({
  /** Which panel's accounts to back up; 'auto' detects cPanel, then DirectAdmin, else standalone. */
  panel: z.enum(['auto', 'standalone', 'cpanel', 'directadmin']).default('auto'),
  /** Prefix put before every panel file path (tests build a panel's files under a temporary root). */
  rootPrefix: z.string().default(''),
  /** standalone: homes must lie under one of these. */
  homeRoots: z.array(z.string()).default(['/home']),
  /** standalone: the lowest uid that counts as an account. */
  minUid: z.number().int().nonnegative().default(1000),
  /** Overrides the panel's MySQL credentials when set. */
  mysql: mysqlSchema.optional(),
  /** Unix socket of the daemon. */
  socketPath: z.string().default('/var/run/tidemark/tidemark.sock'),
  /** HTTP listener for standalone mode (127.0.0.1 only); 0 disables it. */
  httpPort: z.number().int().min(0).max(65535).default(7080),
  /** Log level for the JSON logs. */
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
}).strict();

export type Config = z.infer<typeof configSchema>;

export interface Runtime {
  dataDir: string;
  config: Config;
}

export function resolveDataDir(explicit?: string): string {
  return path.resolve(explicit ?? process.env.TIDEMARK_HOME ?? DEFAULT_DATA_DIR);
}

/** Reads `<dataDir>/config.json` (missing file = all defaults); a bad file is a clear error. */
export function loadConfig(dataDir: string): Config {
  const file = path.join(dataDir, 'config.json');
  let raw: unknown = {};
  if (fs.existsSync(file)) {
    try {
      raw = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch (err) {
      throw new Error(`${file} is not valid JSON: ${(err as Error).message}`);
    }
  }
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    const detail = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new Error(`${file}: ${detail}`);
  }
  return parsed.data;
}

export function prefixed(config: Pick<Config, 'rootPrefix'>, absolute: string): string {
  return config.rootPrefix ? path.join(config.rootPrefix, absolute) : absolute;
}
