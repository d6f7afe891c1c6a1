import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { createAccount, makeHomeRoot, removeAccount, type TestAccount } from './support/accounts.js';
import { cli, cliAsync, makeDataDir, makeDestinationDir, ok, type CliResult } from './support/cli.js';
import { openContext } from '../server/services/context.js';
import { pruneActivity, sendDailySummary } from '../server/notify/daily.js';
import { shouldNotify } from '../server/notify/policy.js';
import { dotStuff } from '../server/notify/smtp.js';
import { startSmtpSink } from './support/smtp-sink.js';

function startWebhookReceiver(): Promise<{ url: string; bodies: any[]; close: () => void }> {
  const bodies: any[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      bodies.push({ contentType: req.headers['content-type'], method: req.method, url: req.url, json: JSON.parse(body) });
      res.end('ok');
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    resolve({ url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}/hooks/SECRETPART`, bodies, close: () => server.close() });
  }));
}

async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

let homeRoot: string;
let account: TestAccount;
let dataDir: string;
let destDir: string;
let sink: Awaited<ReturnType<typeof startSmtpSink>>;
let hook: Awaited<ReturnType<typeof startWebhookReceiver>>;

const baseConfig = (): Record<string, unknown> => ({ panel: 'standalone', homeRoots: [homeRoot] });
function setConfig(extra: Record<string, unknown>): void {
  fs.writeFileSync(path.join(dataDir, 'config.json'), JSON.stringify({ ...baseConfig(), ...extra }));
}
const notifications = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
  email: { to: ['ops@example.test'], from: 'tidemark@example.test', via: 'smtp', smtp: { host: '127.0.0.1', port: sink.port } },
  webhook: { url: hook.url },
  ...over,
});
const breakDestination = (): void => fs.renameSync(destDir, `${destDir}.off`);
const repairDestination = (): void => fs.renameSync(`${destDir}.off`, destDir);
// Asynchronous: the SMTP sink and the webhook receiver live in this process and must answer while the CLI runs.
const backup = (): Promise<CliResult> => cliAsync(dataDir, ['backup', '--job', 'nightly']).result;

before(async () => {
  sink = await startSmtpSink();
  hook = await startWebhookReceiver();
  homeRoot = makeHomeRoot();
  account = createAccount(homeRoot);
  fs.writeFileSync(path.join(account.home, 'a.txt'), 'hello');
  execFileSync('chown', ['-R', `${account.uid}:${account.gid}`, account.home]);
  dataDir = makeDataDir(baseConfig());
  destDir = makeDestinationDir();
  ok(cli(dataDir, ['destination', 'add', '--name', 'disk', '--type', 'local', '--path', destDir]));
  ok(cli(dataDir, ['job', 'add', '--name', 'nightly', '--destination', 'disk', '--structure', 'incremental', '--accounts', account.username, '--items', 'files']));
});

after(() => {
  sink.close();
  hook.close();
  removeAccount(account);
  for (const d of [homeRoot, dataDir, destDir, `${destDir}.off`]) fs.rmSync(d, { recursive: true, force: true });
});

test('the policy: the second failure in a row tells, the first and the third do not, a success resets', () => {
  const p = { on: 'second-failure', success: false } as const;
  assert.equal(shouldNotify([], 'failed', p), false);
  assert.equal(shouldNotify(['failed'], 'failed', p), true);
  assert.equal(shouldNotify(['failed', 'failed'], 'failed', p), false);
  assert.equal(shouldNotify(['completed', 'failed'], 'failed', p), false);
  assert.equal(shouldNotify(['partial', 'failed'], 'failed', p), false);
  assert.equal(shouldNotify(['failed'], 'completed', p), false);
  assert.equal(shouldNotify([], 'failed', { on: 'failure', success: false }), true);
  assert.equal(shouldNotify([], 'completed', { on: 'failure', success: true }), true);
  assert.equal(shouldNotify([], 'completed', { on: 'always', success: false }), true);
  assert.equal(dotStuff('a\r\n.\r\n..b\r\n'), 'a\r\n..\r\n...b\r\n');
});

test('a job failing twice mails once, after the second failure, and posts the webhook JSON; a success resets the count', async () => {
  setConfig({ notifications: notifications() });
  breakDestination();
  const first = await backup();
  assert.equal(first.code, 1);
  assert.equal(first.json.results[0].status, 'failed');
  assert.equal(sink.mails.length, 0, 'no mail after the first failure');
  assert.equal(hook.bodies.length, 0, 'no webhook after the first failure');

  const second = await backup();
  assert.equal(second.json.results[0].status, 'failed');
  assert.equal(sink.mails.length, 1, 'exactly one mail after the second failure');
  const mail = sink.mails[0]!;
  assert.deepEqual(mail.to, ['ops@example.test']);
  assert.equal(mail.from, 'tidemark@example.test');
  assert.match(mail.data, /^To: ops@example\.test$/m);
  assert.match(mail.data, new RegExp(`^Subject: .*${account.username}.*FAILED`, 'm'));
  const body = mail.data.split('\r\n\r\n').slice(1).join('\r\n\r\n');
  assert.match(body, new RegExp(`Account: +${account.username}`));
  assert.match(body, /does not exist/, 'the body carries the error');
  assert.equal(hook.bodies.length, 1);
  const h = hook.bodies[0];
  assert.equal(h.method, 'POST');
  assert.match(h.contentType, /application\/json/);
  assert.equal(typeof h.json.text, 'string');
  assert.match(h.json.text, new RegExp(account.username));
  assert.equal(h.json.tidemark.account, account.username);
  assert.equal(h.json.tidemark.status, 'failed');
  assert.equal(h.json.tidemark.job, 'nightly');
  assert.match(h.json.tidemark.error, /does not exist/);

  // A success in between: the next failure is the first of a new streak.
  repairDestination();
  assert.equal(ok(await backup()).results[0].status, 'completed');
  breakDestination();
  assert.equal((await backup()).json.results[0].status, 'failed');
  assert.equal(sink.mails.length, 1, 'a failure after a success sends nothing');
  assert.equal(hook.bodies.length, 1);
  repairDestination();
});

test('on "always" with success: true, a successful backup is told too', async () => {
  setConfig({ notifications: notifications({ on: 'always', success: true }) });
  const before = sink.mails.length;
  const r = ok(await backup());
  assert.equal(r.results[0].status, 'completed');
  assert.equal(sink.mails.length, before + 1);
  assert.match(sink.mails.at(-1)!.data, new RegExp(`^Subject: .*${account.username} done`, 'm'));
  assert.equal(hook.bodies.at(-1).json.tidemark.status, 'completed');
  assert.equal(hook.bodies.at(-1).json.tidemark.snapshot, r.snapshots[0]);
});

test('an unreachable SMTP server and webhook do not change the backup result, and are logged', async () => {
  const port = await closedPort();
  setConfig({ notifications: notifications({ on: 'always', success: true, email: {
    to: ['ops@example.test'], from: 'tidemark@example.test', via: 'smtp', smtp: { host: '127.0.0.1', port, user: 'ops', password: 'Sup3rSecretPw' },
  }, webhook: { url: `http://127.0.0.1:${port}/hooks/TOPSECRET` } }) });
  const r = await backup();
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.json.results[0].status, 'completed');
  const task = r.json.results[0].task as number;
  const ctx = await openContext(dataDir);
  try {
    const logs = ctx.store.tasks.logs(task, { provider: true }).map((l) => l.message).join('\n');
    assert.match(logs, new RegExp(`notification by email failed: SMTP 127\\.0\\.0\\.1:${port}: cannot connect`));
    assert.match(logs, /notification by webhook failed/);
    assert.ok(!logs.includes('Sup3rSecretPw') && !logs.includes('TOPSECRET'), 'no secret in the task log');
    assert.equal(ctx.store.tasks.byId(task)!.status, 'completed');
  } finally {
    ctx.close();
  }
  const activity = ok(cli(dataDir, ['activity']));
  const failedNotices = activity.filter((a: any) => a.action === 'notify' && a.result === 'failed');
  assert.equal(failedNotices.length, 2);
  assert.ok(!JSON.stringify(activity).includes('TOPSECRET'));
});

test('a password is never sent over an unencrypted connection', async () => {
  setConfig({ notifications: { on: 'always', success: true, email: {
    to: ['ops@example.test'], from: 'tidemark@example.test', via: 'smtp', smtp: { host: '127.0.0.1', port: sink.port, user: 'ops', password: 'Sup3rSecretPw' },
  } } });
  const before = sink.mails.length;
  const r = ok(await backup());
  assert.equal(r.results[0].status, 'completed');
  assert.equal(sink.mails.length, before);
  const ctx = await openContext(dataDir);
  try {
    const logs = ctx.store.tasks.logs(r.results[0].task, { provider: true }).map((l) => l.message).join('\n');
    assert.match(logs, /refusing to send the password over an unencrypted connection/);
    assert.ok(!logs.includes('Sup3rSecretPw'));
  } finally {
    ctx.close();
  }
});

test('via sendmail: the message goes to `sendmail -t -i` on stdin', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-sendmail-'));
  const script = path.join(dir, 'sendmail');
  fs.writeFileSync(script, `#!/bin/sh\necho "$@" > ${dir}/args\ncat > ${dir}/message\n`, { mode: 0o755 });
  try {
    setConfig({ notifications: { on: 'always', success: true, email: { to: ['ops@example.test', 'boss@example.test'], from: 'tidemark@example.test', via: 'sendmail', sendmailPath: script } } });
    const r = ok(await backup());
    assert.equal(fs.readFileSync(path.join(dir, 'args'), 'utf8').trim(), '-t -i');
    const message = fs.readFileSync(path.join(dir, 'message'), 'utf8');
    assert.match(message, /^To: ops@example\.test, boss@example\.test\r$/m);
    assert.match(message, new RegExp(`Snapshot: +${r.snapshots[0]}`));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the daily summary counts the last 24 hours and lists the failures', async () => {
  setConfig({ notifications: notifications({ dailySummary: { at: '06:00' } }) });
  const before = sink.mails.length;
  const ctx = await openContext(dataDir);
  try {
    assert.deepEqual(await sendDailySummary(ctx), []);
  } finally {
    ctx.close();
  }
  assert.equal(sink.mails.length, before + 1);
  const mail = sink.mails.at(-1)!.data;
  assert.match(mail, /^Subject: \[Tidemark\] daily summary: 3 failed/m);
  assert.match(mail, /completed, 0 partial, 3 failed/);
  assert.match(mail, new RegExp(`${account.username} \\(job nightly\\): .*does not exist`));
  assert.equal(hook.bodies.at(-1).json.tidemark.event, 'daily-summary');
});

test('a bad notifications block is a clear error', () => {
  setConfig({ notifications: { email: { to: ['ops@example.test\r\nBcc: x@y'], from: 'a@b', via: 'smtp' } } });
  const r = cli(dataDir, ['job', 'list']);
  assert.equal(r.code, 1);
  assert.match(r.json.error, /notifications\.email\.to\.0: a mail address/);
  assert.match(r.json.error, /notifications\.email\.smtp: via "smtp" needs/);
});

test('activity: entries older than the retention are pruned; --since filters; CSV is formula-safe', async () => {
  setConfig({ activityRetentionDays: 30 });
  const ctx = await openContext(dataDir);
  try {
    ctx.store.activity.record({ actor: '=HYPERLINK("x")', role: 'admin', action: 'test', target: 'old', result: 'ok', detail: 'a "quoted" detail' });
    ctx.store.activity.record({ actor: 'root', role: 'admin', action: 'test', target: 'recent', result: 'ok', detail: '' });
    ctx.store.activity.record({ actor: 'root', role: 'admin', action: 'test', target: 'formula', result: 'ok', detail: '=1+2' });
    const old = new Date(Date.now() - 31 * 86_400_000).toISOString();
    const recent = new Date(Date.now() - 29 * 86_400_000).toISOString();
    ctx.store.db.prepare("UPDATE activity SET at = ? WHERE target = 'old'").run(old);
    ctx.store.db.prepare("UPDATE activity SET at = ? WHERE target = 'recent'").run(recent);
    const csvBefore = execFileSync(process.execPath, [(await import('./support/cli.js')).CLI, '--data-dir', dataDir, 'activity', '--csv'], { encoding: 'utf8' });
    assert.match(csvBefore, /^when,who,role,action,target,result,detail\r\n/);
    assert.ok(csvBefore.includes(`"'=HYPERLINK(""x"")","admin","test","old","ok","a ""quoted"" detail"`), csvBefore);
    assert.ok(csvBefore.includes(`"'=1+2"`));
    const since = new Date(Date.now() - 10 * 86_400_000).toISOString().slice(0, 10);
    const filtered = ok(cli(dataDir, ['activity', '--since', since]));
    assert.ok(filtered.some((a: any) => a.target === 'formula'));
    assert.ok(!filtered.some((a: any) => a.target === 'recent' || a.target === 'old'));
    assert.equal(pruneActivity(ctx), 1);
    const targets = ctx.store.activity.list(1000).map((a) => a.target);
    assert.ok(!targets.includes('old'));
    assert.ok(targets.includes('recent'));
  } finally {
    ctx.close();
  }
  const bad = cli(dataDir, ['activity', '--since', 'yesterday']);
  assert.equal(bad.code, 2);
  assert.match(bad.json.error, /--since: "yesterday" is not a date/);
  // An account holder sees only what concerns its own account: none of root's entries above.
  const asUser = ok(cli(dataDir, ['--as-account', account.username, 'activity']));
  assert.ok(!asUser.some((a: any) => ['formula', 'recent', 'daily summary'].includes(a.target)), JSON.stringify(asUser));
});
