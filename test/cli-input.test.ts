/**
 * Malformed command lines and hostile input values: exit code 2 for every malformed value,
 * strict base64, no empty or `..` paths, paths checked before they are normalised, and
 * error messages that never repeat a long value whole.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import net from 'node:net';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createAccount, makeHomeRoot, removeAccount, type TestAccount } from './support/accounts.js';
import { CLI, cli, makeDataDir, makeDestinationDir, ok } from './support/cli.js';
import { decodeBase64Path, quoteInput } from '../server/util/input-checks.js';
import { openContext, UserError } from '../server/services/context.js';
import { download, findSnapshot, restore } from '../server/services/snapshots.js';
import { loadConfig } from '../server/config.js';

const cleanups: string[] = [];
let dataDir: string;
let homeRoot: string;
let account: TestAccount;
let snapshotId: string;

before(() => {
  homeRoot = makeHomeRoot();
  account = createAccount(homeRoot);
  fs.writeFileSync(path.join(account.home, 'site.html'), 'original\n');
  fs.chownSync(path.join(account.home, 'site.html'), account.uid, account.gid);
  dataDir = makeDataDir({ panel: 'standalone', homeRoots: [homeRoot] });
  const destDir = makeDestinationDir();
  cleanups.push(homeRoot, dataDir, destDir);
  ok(cli(dataDir, ['destination', 'add', '--name', 'disk', '--type', 'local', '--path', destDir]));
  ok(cli(dataDir, ['job', 'add', '--name', 'j', '--destination', 'disk', '--structure', 'incremental', '--accounts', account.username, '--items', 'files']));
  snapshotId = ok(cli(dataDir, ['backup', '--job', 'j', '--wait'])).snapshots[0];
});

after(() => {
  if (account) removeAccount(account);
  for (const d of cleanups) fs.rmSync(d, { recursive: true, force: true });
});

/** Each command with a numeric or enumerated option, and a malformed value for it. */
const MALFORMED: [string, string[]][] = [
  ['destination add --free-space-limit', ['destination', 'add', '--name', 'x', '--type', 'local', '--path', '/srv/x', '--free-space-limit', 'lots']],
  ['destination add --free-space-limit (negative)', ['destination', 'add', '--name', 'x', '--type', 'local', '--path', '/srv/x', '--free-space-limit=-5']],
  ['destination add --type', ['destination', 'add', '--name', 'x', '--type', 'ftp', '--path', '/srv/x']],
  ['destination add --port', ['destination', 'add', '--name', 'x', '--type', 'ssh', '--host', 'h', '--user', 'u', '--path', '/x', '--port', '22x']],
  ['destination add --port (out of range)', ['destination', 'add', '--name', 'x', '--type', 'ssh', '--host', 'h', '--user', 'u', '--path', '/x', '--port', '70000']],
  ['destination add --timeout', ['destination', 'add', '--name', 'x', '--type', 'ssh', '--host', 'h', '--user', 'u', '--path', '/x', '--timeout', 'soon']],
  ['destination add --parallel', ['destination', 'add', '--name', 'x', '--type', 'ssh', '--host', 'h', '--user', 'u', '--path', '/x', '--parallel', '1e3']],
  ['destination edit --port', ['destination', 'edit', 'disk', '--port', '-1']],
  ['destination edit --free-space-limit', ['destination', 'edit', 'disk', '--free-space-limit', '1.5']],
  ['destination edit --type', ['destination', 'edit', 'disk', '--type', 'nfs']],
  ['destination edit --timeout', ['destination', 'edit', 'disk', '--timeout', 'NaN']],
  ['destination edit --parallel', ['destination', 'edit', 'disk', '--parallel', '0']],
  ['job add --structure', ['job', 'add', '--name', 'k', '--destination', 'disk', '--structure', 'zip', '--all']],
  ['job add --items', ['job', 'add', '--name', 'k', '--destination', 'disk', '--structure', 'archive', '--all', '--items', 'files,mail']],
  ['job schedule add --kind', ['job', 'schedule', 'add', 'j', '--kind', 'yearly', '--keep', '1']],
  ['job schedule add --keep', ['job', 'schedule', 'add', 'j', '--kind', 'daily', '--keep', 'many']],
  ['job schedule add --at', ['job', 'schedule', 'add', 'j', '--kind', 'daily', '--keep', '1', '--at', '25:00']],
  ['job schedule add --weekday', ['job', 'schedule', 'add', 'j', '--kind', 'weekly', '--keep', '1', '--weekday', 'monday']],
  ['job schedule add --monthday', ['job', 'schedule', 'add', 'j', '--kind', 'monthly', '--keep', '1', '--monthday', '31']],
  ['job schedule manual --keep', ['job', 'schedule', 'manual', 'j', '--keep', 'some']],
  ['backup --priority', ['backup', '--job', 'j', '--priority', 'urgent']],
  ['task list --limit', ['task', 'list', '--limit', 'ten']],
  ['task show ID', ['task', 'show', 'first']],
  ['task cancel ID', ['task', 'cancel', '1.5']],
  ['api-token create --role', ['api-token', 'create', '--name', 't', '--role', 'god']],
  ['api-token create --expires', ['api-token', 'create', '--name', 't', '--expires', 'never']],
  ['login-url --role', ['login-url', '--user', 'root', '--role', 'owner']],
  ['panel-event --panel', ['panel-event', 'created', '--panel', 'plesk']],
  ['panel-event --time-limit', ['panel-event', 'removed', '--user', 'nobody1', '--time-limit', 'forever']],
  ['snapshot assign --from-identity', ['snapshot', 'assign', '--from-identity', 'x1', '--to', 'nobody1']],
  ['account notify --restores', ['account', 'notify', '--account', 'nobody1', '--restores', 'maybe']],
  ['activity --since', ['activity', '--since', 'yesterday']],
  ['restore --path-base64', ['restore', 'any', '--path-base64', '!!!']],
  ['download --path-base64', ['download', 'any', '--path-base64', '!!!', '--out', '/tmp/never.tar.gz']],
  ['snapshot files --path-base64', ['snapshot', 'files', 'any', '--path-base64', '!!!']],
  ['serve --port', ['serve', '--port', 'http']],
  ['restore --as without --database', ['restore', 'any', '--as', 'copy']],
  ['snapshot files PATH with ..', ['snapshot', 'files', 'any', 'public_html/../..']],
];

describe('exit codes', () => {
  test('regression: the exit code for a malformed option value is 1 for some commands and 2 for others', () => {
    const wrong: string[] = [];
    for (const [name, args] of MALFORMED) {
      const r = cli(dataDir, args);
      if (r.code !== 2 || typeof r.json?.error !== 'string') wrong.push(`${name}: exit ${r.code}, ${r.stdout.trim() || r.stderr.trim()}`);
    }
    assert.deepEqual(wrong, []);
    // Nothing was changed by any of them.
    assert.deepEqual(ok(cli(dataDir, ['destination', 'list'])).map((d: any) => d.name), ['disk']);
    assert.deepEqual(ok(cli(dataDir, ['job', 'list'])).map((j: any) => j.name), ['j']);
  });

  test("regression: malformed input that a setting's schema or a service checks exited 1, not the README's 2", () => {
    const secret = path.join(dataDir, 's3-secret-exit');
    fs.writeFileSync(secret, 'S3SECRETVALUE\n', { mode: 0o600 });
    try {
      const cases: [string, string[], RegExp][] = [
        ['a local path with ..', ['destination', 'add', '--name', 'x', '--type', 'local', '--path', '/a/../b'], /^path: must not contain "\." or "\.\."/],
        ['a relative local path', ['destination', 'edit', 'disk', '--path', 'relative/dir'], /^path: path must be absolute/],
        ['a bad destination name', ['destination', 'add', '--name', 'bad/name', '--type', 'local', '--path', '/srv/x'], /^name: a name is/],
        ['a bad bucket name', ['destination', 'add', '--name', 'x', '--type', 's3', '--endpoint', 'https://s3.example.com', '--bucket', 'B_', '--access-key', 'k',
          '--secret-file', secret], /^bucket: a bucket name is/],
        ['a bad job name', ['job', 'add', '--name', 'bad/name', '--destination', 'disk', '--structure', 'archive', '--all'], /^name: a name is/],
        ['a job without --all or --accounts', ['job', 'add', '--name', 'k', '--destination', 'disk', '--structure', 'archive'], /give either --all or --accounts/],
        ['a bad account in a job', ['job', 'add', '--name', 'k', '--destination', 'disk', '--structure', 'archive', '--accounts', 'Not An Account'], /^accounts\.0: /],
        ['a weekly schedule without --weekday', ['job', 'schedule', 'add', 'j', '--kind', 'weekly', '--keep', '1'], /weekly: give the weekday/],
        ['panel-event created without --user', ['panel-event', 'created'], /--user is missing/],
        ['panel-event with a malformed --user', ['panel-event', 'created', '--user', '../etc'], /not a valid account name/],
        ['a note with a newline', ['snapshot', 'note', snapshotId, '--text', 'two\nlines'], /^text: a note is one line/],
        ['a note too long', ['snapshot', 'note', snapshotId, '--text', 'n'.repeat(501)], /^text: a note is at most 500 characters/],
      ];
      const wrong: string[] = [];
      for (const [name, args, message] of cases) {
        const r = cli(dataDir, args);
        if (r.code !== 2 || !message.test(r.json?.error ?? '')) wrong.push(`${name}: exit ${r.code}, ${r.stdout.trim() || r.stderr.trim()}`);
      }
      assert.deepEqual(wrong, []);
      // Nothing was changed by any of them.
      assert.deepEqual(ok(cli(dataDir, ['destination', 'list'])).map((d: any) => d.name), ['disk']);
      assert.deepEqual(ok(cli(dataDir, ['job', 'list'])).map((j: any) => j.name), ['j']);
      assert.equal(ok(cli(dataDir, ['snapshot', 'show', snapshotId])).note, '');
      // A well-formed request the rules refuse is still exit 1.
      assert.equal(cli(dataDir, ['destination', 'add', '--name', 'disk', '--type', 'local', '--path', '/srv/x']).code, 1);
    } finally {
      fs.rmSync(secret, { force: true });
    }
  });

  test('well-formed values of the same options are still accepted', () => {
    ok(cli(dataDir, ['job', 'schedule', 'add', 'j', '--kind', 'weekly', '--keep', '3', '--weekday', '0', '--at', '23:59']));
    ok(cli(dataDir, ['job', 'schedule', 'manual', 'j', '--keep', 'all']));
    ok(cli(dataDir, ['job', 'schedule', 'manual', 'j', '--keep', '5']));
    ok(cli(dataDir, ['destination', 'edit', 'disk', '--free-space-limit', '0']));
    ok(cli(dataDir, ['job', 'add', '--name', 'k', '--destination', 'disk', '--structure', 'archive', '--accounts', account.username, '--items', 'files, databases']));
    assert.deepEqual(ok(cli(dataDir, ['task', 'list', '--limit', '1'])).length, 1);
    ok(cli(dataDir, ['job', 'remove', 'k']));
  });
});

describe('days and database names', () => {
  test('regression: --from 2026-02-30 was taken as 2 March, and --at 2026-04-31T10:00 as 1 May', () => {
    for (const args of [
      ['snapshot', 'search', 'x', '--account', account.username, '--from', '2026-02-30'],
      ['snapshot', 'search', 'x', '--account', account.username, '--modified-since', '2026-04-31'],
      ['activity', '--since', '2026-02-29'],
      ['activity', '--since', '2026-06-31T10:00:00Z'],
      ['database', 'preview', `${account.username}_db`, '--account', account.username, '--at', '2026-04-31T10:00:00Z'],
      ['database', 'preview', `${account.username}_db`, '--account', account.username, '--at', '2026-04-30T24:00:00Z'],
    ]) {
      const r = cli(dataDir, args);
      assert.equal(r.code, 2, `${args.join(' ')}: exit ${r.code} ${r.stdout}`);
    }
    assert.equal(ok(cli(dataDir, ['snapshot', 'search', 'x', '--account', account.username, '--from', '2028-02-29'])).total, 0);
    ok(cli(dataDir, ['activity', '--since', '2024-02-29']));
  });

  test("regression: database window answered for another account's database (or any name) as if it were the account's", () => {
    const other = createAccount(homeRoot);
    try {
      for (const db of [`${other.username}_shop`, 'mysql', 'x'.repeat(300)]) {
        const r = cli(dataDir, ['database', 'window', db, '--account', account.username]);
        assert.equal(r.code, 1, `${db}: exit ${r.code} ${r.stdout}`);
        assert.match(r.json.error, /is not a database name of account/);
        assert.ok(r.stdout.length < 400, r.stdout);
      }
      const asHolder = cli(dataDir, ['--as-account', account.username, 'database', 'window', `${other.username}_shop`, '--account', account.username]);
      assert.equal(asHolder.code, 1);
      const mine = ok(cli(dataDir, ['database', 'window', `${account.username}_shop`, '--account', account.username]));
      assert.equal(mine.database, `${account.username}_shop`);
    } finally {
      removeAccount(other);
    }
  });
});

test('regression: a refused s3 or ssh setting was named twice ("bucket: bucket: 3-63 …", "serverFolder: server folder: …")', () => {
  const secret = path.join(dataDir, 's3-secret');
  fs.writeFileSync(secret, 'S3SECRETVALUE\n', { mode: 0o600 });
  const r = cli(dataDir, ['destination', 'add', '--name', 'x', '--type', 's3', '--endpoint', 'https://s3.example.com', '--bucket', 'B', '--access-key', 'a b',
    '--secret-file', secret, '--prefix', '/p/', '--server-folder', 'a b']);
  assert.equal(r.code, 2, r.stdout);
  const parts = (r.json.error as string).split('; ');
  for (const field of ['bucket', 'prefix', 'serverFolder', 'accessKeyId']) {
    assert.ok(parts.some((p) => p.startsWith(`${field}: `)), `${field} is named: ${r.json.error}`);
  }
  for (const p of parts) assert.doesNotMatch(p, /^\w+: (bucket|prefix|server folder|access key|secret|parallel transfers|part size|timeout|attempts): /, p);
  assert.ok(!r.stdout.includes('S3SECRETVALUE'));
  fs.rmSync(secret);
});

describe('paths', () => {
  test("regression: --path-base64 '!!!' decodes to garbage", () => {
    for (const bad of ['!!!', 'YQ', 'YQ=', 'Y Q==', 'YQ==\n', 'YR==', '-_8=', 'YQ==YQ==']) assert.equal(decodeBase64Path(bad), null, `refused: ${JSON.stringify(bad)}`);
    const bytes = Buffer.from([0x6e, 0xff, 0xfe, 0x2f, 0x0a, 0x41]);
    assert.equal(decodeBase64Path(bytes.toString('base64')), bytes.toString('latin1'));
    assert.equal(decodeBase64Path(''), '');
    // Before: '!!!' decoded to '' and the restore took the whole home.
    fs.writeFileSync(path.join(account.home, 'site.html'), 'changed since the backup\n');
    const r = cli(dataDir, ['restore', snapshotId, '--path-base64', '!!!', '--wait']);
    assert.equal(r.code, 2, r.stdout);
    assert.match(r.json.error, /base64/);
    assert.equal(fs.readFileSync(path.join(account.home, 'site.html'), 'utf8'), 'changed since the backup\n');
  });

  test("regression: restore --path '' restores everything", async () => {
    fs.writeFileSync(path.join(account.home, 'site.html'), 'changed since the backup\n');
    for (const args of [['--path', ''], ['--path='], ['--path', '/'], ['--path', './/.'], ['--path-base64', ''], ['--path', 'a/../site.html']]) {
      const r = cli(dataDir, ['restore', snapshotId, ...args, '--wait']);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stdout}`);
      assert.match(r.json.error, /path/);
    }
    assert.equal(fs.readFileSync(path.join(account.home, 'site.html'), 'utf8'), 'changed since the backup\n');
    // The services refuse them too (the JSON API and the pages go through them, not the CLI).
    const ctx = await openContext(dataDir);
    try {
      const s = await findSnapshot(ctx, snapshotId);
      for (const p of ['', '/', '..', 'x/../..']) {
        await assert.rejects(restore(ctx, s, { paths: [p], databases: [], intoFolder: false }), (e: Error) => e instanceof UserError && /path/.test(e.message));
        await assert.rejects(download(ctx, s, { paths: [p], databases: [], out: path.join(dataDir, 'out.tar.gz') }), (e: Error) => e instanceof UserError);
      }
      await assert.rejects(download(ctx, s, { paths: ['site.html'], databases: [], out: `${dataDir}/sub/../out.tar.gz` }), /out: .*"\."/);
    } finally {
      ctx.close();
    }
    assert.equal(fs.readFileSync(path.join(account.home, 'site.html'), 'utf8'), 'changed since the backup\n');
    assert.ok(!fs.existsSync(path.join(dataDir, 'out.tar.gz')));
    // A real path still restores.
    const r = ok(cli(dataDir, ['restore', snapshotId, '--path', 'site.html', '--wait']));
    assert.equal(r.files.files, 1);
    assert.equal(fs.readFileSync(path.join(account.home, 'site.html'), 'utf8'), 'original\n');
  });

  test('regression: download --out with ".." is written where the lexical resolution says, not where the kernel goes', () => {
    const r = cli(dataDir, ['download', snapshotId, '--path', 'site.html', '--out', `${dataDir}/nowhere/../x.tar.gz`]);
    assert.equal(r.code, 2);
    assert.ok(!fs.existsSync(path.join(dataDir, 'x.tar.gz')));
  });

  test('regression: an ssh --path with ".." is stored normalised (/x/../../../etc becomes /etc)', () => {
    const pw = path.join(dataDir, 'pw');
    fs.writeFileSync(pw, 'secret\n', { mode: 0o600 });
    for (const remote of ['/x/../../../etc', '/srv/./backups', '/srv/backups/..']) {
      const r = cli(dataDir, ['destination', 'add', '--name', 'remote', '--type', 'ssh', '--host', '127.0.0.1', '--port', '1', '--user', 'u', '--password-file', pw, '--path', remote]);
      assert.equal(r.code, 2, r.stdout);
      assert.match(r.json.error, /remote path|path: /);
      assert.match(r.json.error, /"\." or "\.\."/);
    }
    // An ssh destination edited to such a path is refused the same way (edit validates with add's rules).
    assert.deepEqual(ok(cli(dataDir, ['destination', 'list'])).map((d: any) => d.name), ['disk']);
  });

  test('regression: a hook script path with ".." in config.json is normalised when the hook runs', async () => {
    const dir = makeDataDir({ panel: 'standalone', homeRoots: [homeRoot], hooks: { preBackup: ['/usr/local/sbin/../../../tmp/hook.sh'] } });
    cleanups.push(dir);
    await assert.rejects(loadConfig(dir), /hooks\.preBackup.*"\." or "\.\."|"\." or "\.\."/s);
    const r = cli(dir, ['destination', 'list']);
    assert.notEqual(r.code, 0);
  });
});

describe('echoed input', () => {
  const BIG = 'A'.repeat(100_000);
  test('regression: 100 KB inputs are echoed back whole', () => {
    const cases: string[][] = [
      ['destination', 'add', '--name', 'x', '--type', 'ssh', '--host', 'h', '--user', 'u', '--path', '/x', '--port', BIG],
      ['restore', snapshotId, '--path-base64', `${BIG}!`],
      ['restore', snapshotId, '--path', `${BIG}/../x`],
      ['destination', 'add', '--name', BIG, '--type', 'local', '--path', '/srv/x'],
      ['--as-account', BIG, 'snapshot', 'list'],
      ['snapshot', 'show', BIG],
      ['job', 'show', `${BIG.slice(0, 60_000)} with spaces ${BIG.slice(0, 60_000)}`],
      [BIG],
    ];
    for (const args of cases) {
      const r = cli(dataDir, args);
      assert.notEqual(r.code, 0);
      const said = r.stdout + r.stderr;
      assert.ok(said.length < 8000, `${args.slice(0, 3).join(' ')}: ${said.length} characters said`);
      assert.ok(!said.includes('A'.repeat(200)), 'no long run of the value');
    }
  });

  test('regression: a refused value with control characters reaches the terminal raw', () => {
    for (const args of [['--as-account', 'x\u001bc\ny', 'snapshot', 'list'], ['job', 'schedule', 'add', 'j', '--kind', 'daily', '--keep', '1\u001b[2J']]) {
      const r = cli(dataDir, args);
      assert.notEqual(r.code, 0);
      assert.ok(!(r.stdout + r.stderr).includes('\u001b'), JSON.stringify(r.stderr));
      assert.match(r.stdout + r.stderr, /\\u001b/);
    }
  });

  test('a quoted value is escaped and cut to a short prefix', () => {
    assert.equal(quoteInput('ok'), '"ok"');
    assert.equal(quoteInput('a\nb\u001b[31m'), '"a\\nb\\u001b[31m"');
    const q = quoteInput('é'.repeat(1000));
    assert.match(q, /… \(1000 characters\)$/);
    assert.ok(q.length < 100);
  });
});

describe('the JSON API', () => {
  let daemon: ChildProcess | undefined;
  let base = '';
  let token = '';
  let output = '';
  const post = async (url: string, body: unknown): Promise<{ status: number; json: any; text: string }> => {
    const res = await fetch(base + url, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const text = await res.text();
    let json: any = null;
    try { json = JSON.parse(text); } catch { json = null; }
    return { status: res.status, json, text };
  };

  before(async () => {
    const port = await new Promise<number>((resolve) => {
      const srv = net.createServer().listen(0, '127.0.0.1', () => { const { port: p } = srv.address() as net.AddressInfo; srv.close(() => resolve(p)); });
    });
    const config = JSON.parse(fs.readFileSync(path.join(dataDir, 'config.json'), 'utf8'));
    fs.writeFileSync(path.join(dataDir, 'config.json'), JSON.stringify({ ...config, httpPort: port, socketPath: path.join(dataDir, 'run', 'tidemark.sock') }));
    token = ok(cli(dataDir, ['api-token', 'create', '--name', 'input-checks'])).token;
    daemon = spawn(process.execPath, [CLI, '--data-dir', dataDir, 'serve'], { stdio: ['ignore', 'pipe', 'pipe'] });
    daemon.stdout!.on('data', (d) => { output += d; });
    daemon.stderr!.on('data', (d) => { output += d; });
    base = `http://127.0.0.1:${port}`;
    for (let i = 0; ; i++) {
      try { if ((await fetch(`${base}/api/v1/health`)).ok) break; } catch { /* not up yet */ }
      if (i > 200 || daemon.exitCode !== null) throw new Error(`the daemon did not start: ${output}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  });

  after(async () => {
    if (daemon && daemon.exitCode === null) {
      daemon.kill('SIGTERM');
      await new Promise((r) => daemon!.once('exit', r));
    }
  });

  test("regression: the API decodes pathsBase64 '!!!' to garbage and restores everything for an empty path", async () => {
    fs.writeFileSync(path.join(account.home, 'site.html'), 'changed since the backup\n');
    for (const body of [{ pathsBase64: ['!!!'] }, { paths: [''] }, { paths: ['a/../..'] }, { pathsBase64: [''] }]) {
      const r = await post(`/api/v1/snapshots/${snapshotId}/restore`, body);
      assert.equal(r.status, 400, `${JSON.stringify(body)}: ${r.text}`);
    }
    const files = await fetch(`${base}/api/v1/snapshots/${snapshotId}/files?pathBase64=${encodeURIComponent('!!!')}`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(files.status, 400);
    assert.equal(fs.readFileSync(path.join(account.home, 'site.html'), 'utf8'), 'changed since the backup\n');
  });

  test('regression: the API answers a 100 KB value back whole', async () => {
    const big = 'B'.repeat(100_000);
    for (const [url, body] of [
      ['/api/v1/destinations', { name: 'x', type: 'ssh', host: 'h', username: 'u', password: 'p', path: `/srv/${big}/../x` }],
      [`/api/v1/snapshots/${snapshotId}/restore`, { paths: [`${big}/../x`] }],
      [`/api/v1/snapshots/${big}/restore`, {}],
    ] as const) {
      const r = await post(url, body);
      assert.ok(r.status >= 400 && r.status < 500, `${url.slice(0, 40)}: ${r.status}`);
      assert.ok(r.text.length < 3000, `${url.slice(0, 40)}: ${r.text.length} characters answered`);
      assert.ok(!r.text.includes('B'.repeat(200)));
    }
  });
});

test('regression: the CLI died with a stack trace when the reader of its output went away (| head)', async () => {
  // A reader that leaves before the first byte: the output meets a closed pipe.
  const child = spawn(process.execPath, [CLI, '--data-dir', dataDir, '--json', 'activity'], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.destroy();
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
  assert.equal(code, 0, stderr);
  assert.doesNotMatch(stderr, /EPIPE|Error:|at /);
});

test('regression: another user running the CLI was told only "unable to open database file"', () => {
  const r = spawnSync(process.execPath, [CLI, '--data-dir', dataDir, '--json', 'snapshot', 'list'], { encoding: 'utf8', uid: account.uid, gid: account.gid });
  assert.equal(r.status, 1, r.stderr);
  const answer = JSON.parse(r.stdout) as { error: string };
  assert.match(answer.error, /runs as root/);
  assert.doesNotMatch(r.stdout, new RegExp(snapshotId));
});
