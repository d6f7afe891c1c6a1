import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { CLI, cli, cliAsync, ok, type CliResult } from './support/cli.js';
import { pathParam, startWebFixture, WebClient, type WebFixture } from './support/web-daemon.js';
import { bodyOf, headerOf, startSmtpSink, type ReceivedMail, type SmtpSink } from './support/smtp-sink.js';
import type { TestAccount } from './support/accounts.js';
import { openContext } from '../server/services/context.js';

/**
 * Mail to account holders about their own restores, and the activity log per role from the
 * CLI. The fixture's real Linux users are described by a cPanel tree (alice owned by the
 * reseller "resa", bob by root), each with a contact address; mail goes to a real SMTP
 * server on loopback.
 */
let fx: WebFixture;
let sink: SmtpSink;
let panelRoot: string;
let baseConfig: Record<string, unknown>;
const ALICE_MAIL = 'alice.holder@mail.example';
const BOB_MAIL = 'bob.holder@mail.example';
const PROVIDER_MAIL = 'ops@provider.example';

function writeCpanelTree(dataDir: string, alice: TestAccount, bob: TestAccount): string {
  const root = fs.mkdtempSync(path.join(path.dirname(dataDir), 'tidemark-cpanel-'));
  fs.mkdirSync(path.join(root, 'etc'), { recursive: true });
  fs.mkdirSync(path.join(root, 'var/cpanel/users'), { recursive: true });
  const passwd = [alice, bob].map((a) => execFileSync('getent', ['passwd', a.username]).toString().trim());
  fs.writeFileSync(path.join(root, 'etc/passwd'), `${passwd.join('\n')}\n`);
  fs.writeFileSync(path.join(root, 'etc/trueuserowners'), `${alice.username}: resa\n${bob.username}: root\n`);
  fs.writeFileSync(path.join(root, 'var/cpanel/users', alice.username), `DNS=${alice.username}.test\nOWNER=resa\nCONTACTEMAIL=${ALICE_MAIL}, second@mail.example\n`);
  fs.writeFileSync(path.join(root, 'var/cpanel/users', bob.username), `DNS=${bob.username}.test\nOWNER=root\nCONTACTEMAIL=${BOB_MAIL}\n`);
  return root;
}

const notifications = (over: Record<string, unknown> = {}, port = sink.port): Record<string, unknown> => ({
  email: { to: [PROVIDER_MAIL], from: 'tidemark@provider.example', via: 'smtp', smtp: { host: '127.0.0.1', port } },
  ...over,
});
function setConfig(extra: Record<string, unknown>): void {
  fs.writeFileSync(path.join(fx.dataDir, 'config.json'), JSON.stringify({ ...baseConfig, ...extra }));
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const alice = (): TestAccount => fx.alice;
const bob = (): TestAccount => fx.bob;

/** A restore from the CLI (asynchronous: the SMTP server runs in this process). `as` acts as that account's holder. */
function restoreCli(snapshot: string, paths: string[], as?: TestAccount): Promise<CliResult> {
  const who = as ? ['--as-account', as.username] : [];
  return cliAsync(fx.dataDir, [...who, 'restore', snapshot, '--destination', 'shown', ...paths.flatMap((p) => ['--path', p]), '--into-folder']).result;
}

const setting = (account: string): any => ok(cli(fx.dataDir, ['account', 'notify', '--account', account]));
const mailsSince = (n: number): ReceivedMail[] => sink.mails.slice(n);

async function taskLog(task: number): Promise<string> {
  const ctx = await openContext(fx.dataDir);
  try {
    return ctx.store.tasks.logs(task, { provider: true }).map((l) => `${l.level}: ${l.message}`).join('\n');
  } finally {
    ctx.close();
  }
}

before(async () => {
  sink = await startSmtpSink();
  fx = await startWebFixture({
    beforeBackup: async (a, b, dataDir) => {
      panelRoot = writeCpanelTree(dataDir, a, b);
      const file = path.join(dataDir, 'config.json');
      baseConfig = { ...JSON.parse(fs.readFileSync(file, 'utf8')), panel: 'cpanel', rootPrefix: panelRoot };
      fs.writeFileSync(file, JSON.stringify({ ...baseConfig, notifications: notifications() }));
    },
  });
});

after(async () => {
  await fx?.stop();
  sink?.close();
  if (panelRoot) fs.rmSync(panelRoot, { recursive: true, force: true });
});

describe('mail about restores', () => {
  test('the page: the holder opts in with a CSRF-protected form, and its own restore mails it exactly once, at its contact address', async () => {
    const web = new WebClient(fx.base);
    assert.equal((await web.get(fx.loginUrl(alice().username, 'user'))).status, 200);
    const page = await web.get('/tasks');
    assert.equal(page.status, 200);
    assert.match(page.body, /<form method="post" action="\/preferences\/restore-mail"/);
    assert.match(page.body, /name="restoreMail" value="on">/, 'not ticked before the holder chooses');
    assert.ok(page.body.includes(ALICE_MAIL), 'the page says where the mail goes');
    assert.ok(!page.body.includes(BOB_MAIL));
    const csrf = await web.csrf();

    assert.equal((await web.post('/preferences/restore-mail', { restoreMail: 'on' })).status, 403, 'no CSRF token');
    assert.equal((await web.post('/preferences/restore-mail', { restoreMail: 'on', _csrf: 'forged' })).status, 403);
    assert.equal(setting(alice().username).chosen, null, 'a refused form changes nothing');
    const saved = await web.post('/preferences/restore-mail', { restoreMail: 'on', _csrf: csrf });
    assert.equal(saved.status, 303);
    assert.equal(saved.headers.get('location'), '/tasks');
    assert.deepEqual(
      (({ chosen, restores, contactEmail, problem }) => ({ chosen, restores, contactEmail, problem }))(setting(alice().username)),
      { chosen: true, restores: true, contactEmail: ALICE_MAIL, problem: null },
    );
    assert.match((await web.get('/tasks')).body, /name="restoreMail" value="on" checked>/);

    const before = sink.mails.length;
    const snap = `/snapshots/${fx.destinationIds.shown}/${alice().username}/${fx.visible.alice}`;
    const started = await web.post(`${snap}/restore`, { _csrf: csrf, mode: 'folder', path: pathParam('notes.txt') });
    assert.equal(started.status, 303);
    const task = Number(/^\/tasks\/(\d+)$/.exec(started.headers.get('location') ?? '')?.[1]);
    assert.ok(task > 0, started.headers.get('location') ?? '');
    for (let i = 0; i < 200 && !(await taskLog(task)).includes('mail about this restore'); i++) await sleep(100);
    assert.match(await taskLog(task), /info: mail about this restore sent to the account's contact address/);

    const mails = mailsSince(before);
    assert.equal(mails.length, 1, 'exactly one mail');
    const m = mails[0]!;
    assert.deepEqual(m.to, [ALICE_MAIL], 'to the contact address only (the first one listed), not to the provider');
    assert.equal(m.from, 'tidemark@provider.example');
    assert.equal(headerOf(m, 'To'), ALICE_MAIL);
    assert.match(headerOf(m, 'Subject')!, new RegExp(`restore of ${alice().username} completed`));
    const body = bodyOf(m);
    assert.match(body, /The restore you asked for on your account .* has completed\./);
    assert.match(body, /^ {2}notes\.txt$/m, 'what was restored');
    assert.match(body, new RegExp(`\\(${fx.visible.alice}\\)`), 'the snapshot');
    assert.match(body, /^Where: +into a new folder \(~\/tidemark-restore-/m);
    assert.match(body, new RegExp(`^Task: +${task}$`, 'm'));
    for (const foreign of [bob().username, BOB_MAIL, PROVIDER_MAIL, 'hidden', fx.hidden.alice]) assert.ok(!m.data.includes(foreign), `no ${foreign} in the mail`);

    // bob's page shows bob's own address, never alice's choice or address.
    const bobWeb = new WebClient(fx.base);
    await bobWeb.get(fx.loginUrl(bob().username, 'user'));
    const bobPage = (await bobWeb.get('/tasks')).body;
    assert.ok(bobPage.includes(BOB_MAIL) && !bobPage.includes(ALICE_MAIL));
    assert.match(bobPage, /name="restoreMail" value="on">/);
  });

  test('without opt-in nothing is sent; with opt-in, a restore by the provider sends nothing either', async () => {
    const before = sink.mails.length;
    assert.equal(setting(bob().username).chosen, null);
    assert.equal(ok(await restoreCli(fx.visible.bob, ['secret.txt'], bob())).files.files, 1);
    assert.equal(ok(await restoreCli(fx.visible.alice, ['notes.txt'])).files.files, 1, 'root restores alice, who opted in');
    ok(cli(fx.dataDir, ['--as-account', alice().username, 'account', 'notify', '--restores', 'off']));
    ok(await restoreCli(fx.visible.alice, ['notes.txt'], alice()));
    assert.deepEqual(mailsSince(before), []);
    assert.equal(ok(cli(fx.dataDir, ['--as-account', alice().username, 'account', 'notify', '--restores', 'on'])).restores, true);
  });

  test('a restore that fails mails that it failed, with the error', async () => {
    const before = sink.mails.length;
    const r = await restoreCli(fx.visible.alice, ['no-such-file.txt'], alice());
    assert.equal(r.code, 1);
    assert.match(r.json.error, /not in this snapshot: no-such-file\.txt/);
    const mails = mailsSince(before);
    assert.equal(mails.length, 1);
    assert.deepEqual(mails[0]!.to, [ALICE_MAIL]);
    assert.match(headerOf(mails[0]!, 'Subject')!, /FAILED/);
    const body = bodyOf(mails[0]!);
    assert.match(body, /The restore you asked for on your account .* failed\./);
    assert.match(body, /^Result: +failed$/m);
    assert.match(body, /^Error: +.*not in this snapshot: no-such-file\.txt$/m);
  });

  test('"always": every restore of the account, whoever started it, unless the holder turned it off; "off": none, and opting in is refused', async () => {
    setConfig({ notifications: notifications({ accountRestores: 'always' }) });
    let before = sink.mails.length;
    assert.equal(setting(bob().username).restores, true, "bob never chose: the provider's default");
    ok(await restoreCli(fx.visible.bob, ['secret.txt']));
    let mails = mailsSince(before);
    assert.equal(mails.length, 1);
    assert.deepEqual(mails[0]!.to, [BOB_MAIL]);
    assert.match(bodyOf(mails[0]!), /The restore your provider started on your account/);
    assert.ok(!/\broot\b/.test(bodyOf(mails[0]!)), 'who at the provider is not named');

    ok(cli(fx.dataDir, ['--as-account', bob().username, 'account', 'notify', '--restores', 'off']));
    before = sink.mails.length;
    ok(await restoreCli(fx.visible.bob, ['secret.txt']));
    assert.deepEqual(mailsSince(before), [], 'the holder turned it off');

    setConfig({ notifications: notifications({ accountRestores: 'off' }) });
    const refused = cli(fx.dataDir, ['--as-account', bob().username, 'account', 'notify', '--restores', 'on']);
    assert.equal(refused.code, 1);
    assert.match(refused.json.error, /notifications\.accountRestores is "off"/);
    assert.equal(setting(bob().username).chosen, false, 'nothing stored');
    assert.equal(setting(alice().username).chosen, true);
    assert.equal(setting(alice().username).restores, false);
    before = sink.mails.length;
    ok(await restoreCli(fx.visible.alice, ['notes.txt'], alice()));
    assert.deepEqual(mailsSince(before), [], '"off" wins over the holder\'s choice');
  });

  test('a mail that cannot be sent is a warning in the task log; the restore stays completed', async () => {
    const s = net.createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const port = (s.address() as net.AddressInfo).port;
    await new Promise((r) => s.close(r));
    setConfig({ notifications: notifications({}, port) });
    const r = ok(await restoreCli(fx.visible.alice, ['notes.txt'], alice()));
    assert.equal(r.files.files, 1);
    const ctx = await openContext(fx.dataDir);
    try {
      assert.equal(ctx.store.tasks.byId(r.task)!.status, 'completed');
    } finally {
      ctx.close();
    }
    assert.match(await taskLog(r.task), new RegExp(`warn: mail about this restore could not be sent: SMTP 127\\.0\\.0\\.1:${port}: cannot connect`));
    setConfig({ notifications: notifications() });
  });

  test('account notify: a holder reaches its own account only, root any with --account', () => {
    const other = cli(fx.dataDir, ['--as-account', alice().username, 'account', 'notify', '--account', bob().username, '--restores', 'on']);
    assert.equal(other.code, 1);
    assert.match(other.json.error, new RegExp(`no account named "${bob().username}"`));
    assert.equal(setting(bob().username).chosen, false, "bob's choice is untouched");
    const own = ok(cli(fx.dataDir, ['--as-account', alice().username, 'account', 'notify']));
    assert.equal(own.account, alice().username);
    assert.equal(own.contactEmail, ALICE_MAIL);
    assert.equal(cli(fx.dataDir, ['account', 'notify']).code, 2, 'root names the account');
    assert.equal(cli(fx.dataDir, ['--as-account', alice().username, 'account', 'notify', '--restores', 'maybe']).code, 2);
    assert.equal(cli(fx.dataDir, ['account', 'notify', '--account', 'nosuchacct', '--restores', 'on']).code, 1);
    assert.equal(ok(cli(fx.dataDir, ['account', 'notify', '--account', bob().username, '--restores', 'on'])).chosen, true);
  });
});

describe('activity from the CLI, per role', () => {
  before(async () => {
    const ctx = await openContext(fx.dataDir);
    try {
      for (const a of [alice(), bob()]) {
        ctx.store.activity.record({ actor: a.username, role: 'user', action: 'test.own', target: `own-${a.username}`, result: 'ok', detail: `by ${a.username}` });
        ctx.store.activity.record({ actor: 'root', role: 'admin', action: 'test.provider', target: `${a.username} ${a === alice() ? fx.visible.alice : fx.visible.bob}`, result: 'ok', detail: '' });
      }
      // alice's snapshot on the hidden destination: what happens to it stays with the provider.
      ctx.store.activity.record({ actor: 'root', role: 'admin', action: 'test.hidden', target: `${alice().username} ${fx.hidden.alice}`, result: 'ok', detail: '' });
      // Someone named like alice but acting as a reseller is not alice.
      ctx.store.activity.record({ actor: alice().username, role: 'reseller', action: 'test.other-role', target: 'elsewhere', result: 'ok', detail: '' });
    } finally {
      ctx.close();
    }
  });

  test('an account holder sees its own entries and those about its snapshots, never the other account\'s', () => {
    const all = ok(cli(fx.dataDir, ['activity']));
    assert.ok(all.some((a: any) => a.target === `own-${bob().username}`), 'root sees everything');
    const mine = ok(cli(fx.dataDir, ['--as-account', alice().username, 'activity']));
    assert.ok(mine.length > 0);
    for (const a of mine) {
      assert.ok((a.actor === alice().username && a.role === 'user') || a.target === `${alice().username} ${fx.visible.alice}`, JSON.stringify(a));
    }
    assert.ok(!JSON.stringify(mine).includes(bob().username), 'nothing of bob');
    for (const action of ['test.own', 'test.provider', 'restore', 'account.notify', 'notify']) assert.ok(mine.some((a: any) => a.action === action), action);
    assert.ok(!mine.some((a: any) => a.action === 'test.hidden' || a.action === 'test.other-role'));
  });

  test('--csv as an account holder: the same entries, as CSV', () => {
    const csv = execFileSync(process.execPath, [CLI, '--data-dir', fx.dataDir, '--as-account', alice().username, 'activity', '--csv'], { encoding: 'utf8' });
    const lines = csv.trimEnd().split('\r\n');
    assert.equal(lines[0], 'when,who,role,action,target,result,detail');
    assert.equal(lines.length - 1, ok(cli(fx.dataDir, ['--as-account', alice().username, 'activity'])).length);
    assert.ok(csv.includes(`"own-${alice().username}"`));
    assert.ok(!csv.includes(bob().username));
    assert.equal(cli(fx.dataDir, ['--as-account', alice().username, 'activity', '--csv']).code, 2, '--csv and --json together');
  });

  test('--reseller shows what the reseller sees (root only)', () => {
    const resa = ok(cli(fx.dataDir, ['activity', '--reseller', 'resa']));
    assert.ok(resa.some((a: any) => a.target === `${alice().username} ${fx.visible.alice}`), "the reseller's account's snapshot");
    assert.ok(!JSON.stringify(resa).includes(bob().username), 'bob belongs to root');
    assert.ok(!resa.some((a: any) => a.action === 'test.hidden'));
    assert.equal(cli(fx.dataDir, ['--as-account', alice().username, 'activity', '--reseller', 'resa']).code, 2);
    assert.equal(cli(fx.dataDir, ['activity', '--reseller', '../x']).code, 2);
  });
});
