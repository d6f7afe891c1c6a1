import { z } from 'zod';
import { MAIL_ADDRESS } from './util/mail-address.js';
import { ruleProblem } from './destinations/address-policy.js';
import { absolutePathProblem } from './util/input-checks.js';

const mysqlSchema = z.object({
  socket: z.string().optional(),
  host: z.string().optional(),
  port: z.number().int().positive().optional(),
  user: z.string().default('root'),
  password: z.string().optional(),
}).strict();

/**
 * A path root gives in config.json, checked as written: absolute, and without `.` or `..`
 * (a path through a symlink then `..` is not where its lexical form says).
 */
function absolutePath(whenRelative: string) {
  return (p: string, c: z.RefinementCtx): void => {
    const problem = absolutePathProblem(p);
    if (problem !== null) c.addIssue({ code: 'custom', message: p.startsWith('/') ? problem : whenRelative });
  };
}

/** A hook script: an absolute path (its owner and mode are checked each time it runs). */
const hookList = z.array(z.string().superRefine(absolutePath('a hook script is given by its absolute path'))).default([]);

export const HOOK_EVENTS = ['preBackup', 'postBackup', 'preAccountBackup', 'postAccountBackup', 'preRestore', 'postRestore', 'preDownload', 'postDownload'] as const;

const hooksSchema = z.object({
  preBackup: hookList, postBackup: hookList, preAccountBackup: hookList, postAccountBackup: hookList,
  preRestore: hookList, postRestore: hookList, preDownload: hookList, postDownload: hookList,
  /** A hook still running after this many seconds is killed (a pre-hook then counts as failed). */
  timeLimitSeconds: z.number().int().min(1).max(86_400).default(300),
}).strict();

/** What account holders or resellers may do; a key left out keeps the default. */
const permissionFields = {
  restoreFiles: z.boolean().optional(),
  restoreDatabases: z.boolean().optional(),
  download: z.boolean().optional(),
  ownDestinations: z.boolean().optional(),
  ownJobs: z.boolean().optional(),
  /** Start a backup of the own account now (account holders: at most `backupNowPerDay` in 24 hours). */
  backupNow: z.boolean().optional(),
};
const permissionSet = z.object(permissionFields).strict();

const permissionsSchema = z.object({
  user: z.object({
    ...permissionFields,
    // One switch only: whether account holders may have destinations of their own is accountDestinations.enabled.
    ownDestinations: z.undefined({ message: 'set accountDestinations.enabled instead (it is the switch for account holders\' own destinations)' }).optional(),
  }).strict().default({}),
  reseller: permissionSet.default({}),
  /** Per account (or reseller) name: overrides of its role's settings. */
  accounts: z.record(z.string().regex(/^[a-z_][a-z0-9_.-]{0,31}$/i, 'an account name'), permissionSet).default({}),
  /** How many backups an account holder may start with "back up now" in 24 hours. */
  backupNowPerDay: z.number().int().min(1).max(100).default(1),
}).strict();

/** Addresses, CIDR ranges or host names (`*.example.com`) for accountDestinations. */
const hostRules = z.array(z.string().superRefine((rule, c) => {
  const problem = ruleProblem(rule);
  if (problem) c.addIssue({ code: 'custom', message: problem });
})).max(10_000).default([]);

/** A mail address as it may stand in a header: no spaces, no line breaks, no list separators. */
const mailAddress = z.string().regex(MAIL_ADDRESS, 'a mail address (name@domain)');

const smtpSchema = z.object({
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535).default(25),
  /** Implicit TLS from the first byte (port 465); otherwise STARTTLS is used when the server offers it. */
  secure: z.boolean().default(false),
  user: z.string().min(1).optional(),
  /** Sent only over TLS (AUTH PLAIN); never logged. */
  password: z.string().optional(),
}).strict();

const notificationsSchema = z.object({
  email: z.object({
    to: z.array(mailAddress).min(1),
    from: mailAddress,
    via: z.enum(['sendmail', 'smtp']).default('sendmail'),
    sendmailPath: z.string().superRefine(absolutePath('an absolute path')).optional(),
    smtp: smtpSchema.optional(),
  }).strict().refine((e) => e.via !== 'smtp' || e.smtp !== undefined, { message: 'via "smtp" needs an "smtp" block (host, port)', path: ['smtp'] }).optional(),
  /** Slack-compatible incoming webhook (POSTed JSON with a "text" field). */
  webhook: z.object({ url: z.string().url().refine((u) => /^https?:/.test(u), 'an http(s) URL') }).strict().optional(),
  /** Failures to tell about: every one, or only the second in a row of the same job and account (the default), or every result. */
  on: z.enum(['failure', 'second-failure', 'always']).default('second-failure'),
  /** Also tell about backups that succeeded. */
  success: z.boolean().default(false),
  /** A summary of the last 24 hours, sent every day at this local time. */
  dailySummary: z.object({ at: z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'HH:MM') }).strict().nullable().default(null),
  /**
   * Mail to account holders (at the contact address their panel holds, through `email`) about
   * restores of their account: 'opt-in' (the default) when the holder asked for it and started
   * the restore itself; 'always' for every restore of the account, whoever started it, unless
   * the holder turned it off; 'off' never.
   */
  accountRestores: z.enum(['opt-in', 'always', 'off']).default('opt-in'),
}).strict();

export type NotificationsConfig = z.infer<typeof notificationsSchema>;

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
  /**
   * The panel pages that run as an account's own Unix user reach the daemon here: `bridge.sock`
   * (open to every local user; the kernel tells the daemon the uid of each connection, and
   * nothing answers without it). Default: `tidemark-bridge` beside the socket's directory
   * (/var/run/tidemark-bridge), the path the installer writes into the pages: set it only for tests.
   */
  bridgeDir: z.string().optional(),
  /**
   * DirectAdmin's own API, where the daemon checks the session of a reseller or admin page:
   * `apiUrl` (https on a loopback address only; default https://127.0.0.1:<port of
   * directadmin.conf, else 2222>) and `certFile`, the certificate DirectAdmin serves, which
   * the answer must come with (default: directadmin.conf's `cacert`, else
   * /usr/local/directadmin/conf/cacert.pem).
   */
  directadmin: z.object({
    apiUrl: z.string().url().optional(),
    certFile: z.string().superRefine(absolutePath('an absolute path')).optional(),
  }).strict().default({}),
  /** HTTP listener for standalone mode (127.0.0.1 only); 0 disables it. */
  httpPort: z.number().int().min(0).max(65535).default(7080),
  /**
   * Account-level destinations: when enabled, an account holder may add SSH destinations of
   * its own (at most `maxPerAccount`) and back up its own account to them. Off by default.
   */
  accountDestinations: z.object({
    enabled: z.boolean().default(false),
    maxPerAccount: z.number().int().min(0).max(100).default(2),
    /**
     * Where an account's SSH destination may connect (server/destinations/address-policy.ts):
     * loopback, private, shared, link-local and reserved addresses are denied unless listed in
     * allowHosts; denyHosts wins over everything; with onlyAllowedHosts only allowHosts may be
     * reached; allowPorts (empty: any) limits the ports.
     */
    allowHosts: hostRules,
    denyHosts: hostRules,
    onlyAllowedHosts: z.boolean().default(false),
    allowPorts: z.array(z.number().int().min(1).max(65535)).max(1000).default([]),
  }).strict().default({ enabled: false, maxPerAccount: 2, allowHosts: [], denyHosts: [], onlyAllowedHosts: false, allowPorts: [] }),
  /** Web sessions end after this many minutes without a request… */
  sessionIdleMinutes: z.number().int().min(1).max(24 * 60).default(30),
  /** …and at the latest this many hours after sign-in. */
  sessionMaxHours: z.number().int().min(1).max(24 * 7).default(12),
  /** When the panel removes an account, first take a final backup of it with every job that covers it. */
  finalBackupOnRemove: z.boolean().default(false),
  /** Scripts of the provider run (as root) before and after backups, restores and downloads. */
  hooks: hooksSchema.default({
    preBackup: [], postBackup: [], preAccountBackup: [], postAccountBackup: [], preRestore: [], postRestore: [], preDownload: [], postDownload: [],
    timeLimitSeconds: 300,
  }),
  /** What account holders and resellers may do (server/services/permissions.ts has the defaults). */
  permissions: permissionsSchema.default({ user: {}, reseller: {}, accounts: {}, backupNowPerDay: 1 }),
  /** Mail and webhook messages about backups (none when absent). */
  notifications: notificationsSchema.optional(),
  /** How many tasks run at once, and how gently backups use the machine (server/queue/). */
  queue: z.object({
    /** Account backups running at the same time on this server. */
    maxBackups: z.number().int().min(1).max(64).default(2),
    /** Tasks (backups and restores) working on one destination at the same time. */
    maxTasksPerDestination: z.number().int().min(1).max(64).default(2),
    /** CPU priority of a backup's account worker and dump tools: nice(1) increment. */
    nice: z.number().int().min(0).max(19).default(10),
    /** Disk priority of the same: ionice(1) class ('idle': only when nobody else uses the disk) and level. */
    ioClass: z.enum(['idle', 'best-effort', 'none']).default('best-effort'),
    ioPriority: z.number().int().min(0).max(7).default(7),
  }).strict().default({ maxBackups: 2, maxTasksPerDestination: 2, nice: 10, ioClass: 'best-effort', ioPriority: 7 }),
  /**
   * Scheduled verification: each day the daemon re-reads this share (percent) of all snapshots,
   * chosen at random, and compares them with their hashes (as `destination verify --sample`);
   * damaged ones are marked. 0: none. At `at` (HH:MM, server time).
   */
  verification: z.object({
    dailyPercent: z.number().min(0).max(100).default(0),
    at: z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'must be HH:MM').default('03:30'),
  }).strict().default({ dailyPercent: 0, at: '03:30' }),
  /**
   * Binary-log shipping (point-in-time restores): every `intervalMinutes` the daemon flushes the
   * MySQL server's binary log and copies the closed logs to the destinations marked for them.
   */
  binlogs: z.object({
    intervalMinutes: z.number().int().min(1).max(60).default(1),
  }).strict().default({ intervalMinutes: 1 }),
  /** Activity log entries older than this many days are removed (at daemon start, then daily). */
  activityRetentionDays: z.number().int().min(1).max(3650).default(90),
  /** Log level for the JSON logs. */
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
}).strict();

export type Config = z.infer<typeof configSchema>;
