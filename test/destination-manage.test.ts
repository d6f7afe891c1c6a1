import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import Database from 'better-sqlite3';
import { createAccount, makeHomeRoot, removeAccount, type TestAccount } from './support/accounts.js';
import { cli, makeDataDir, makeDestinationDir, ok, type CliResult } from './support/cli.js';
import { startTestSshServer, type TestSshServer } from './support/sshd.js';

let homeRoot: string;
let account: TestAccount;
let dataDir: string;
const cleanups: string[] = [];

const page = (): string => path.join(account.home, 'page.html');
const writePage = (text: string): void => {
  fs.writeFileSync(page(), text);
  fs.chownSync(page(), account.uid, account.gid);
};

/** The settings part of `show`, which must not move when an edit is refused. */
const settingsOf = (name: string): unknown => {
  const d = ok(cli(dataDir, ['destination', 'show', name]));
  return { name: d.name, type: d.type, settings: d.settings, snapshotsVisible: d.snapshotsVisible, freeSpaceLimitMb: d.freeSpaceLimitMb };
};

const refused = (r: CliResult, pattern: RegExp): void => {
  assert.equal(r.code, 1, `expected a refusal, got exit ${r.code}: ${r.stdout}${r.stderr}`);
  assert.match(r.json.error, pattern);
};
/** A setting the destination's schema refuses is malformed input: a wrong command line (README: exit 2). */
const malformed = (r: CliResult, pattern: RegExp): void => {
  assert.equal(r.code, 2, `expected exit 2 for malformed input, got exit ${r.code}: ${r.stdout}${r.stderr}`);
  assert.match(r.json.error, pattern);
};

function activity(action: string): { result: string; detail: string }[] {
  const db = new Database(path.join(dataDir, 'tidemark.sqlite'), { readonly: true });
  try {
    return db.prepare('SELECT result, detail FROM activity WHERE action = ? ORDER BY id').all(action) as { result: string; detail: string }[];
  } finally {
    db.close();
  }
}

before(() => {
  homeRoot = makeHomeRoot();
  account = createAccount(homeRoot);
  writePage('v1');
  dataDir = makeDataDir({ panel: 'standalone', homeRoots: [homeRoot] });
  cleanups.push(homeRoot, dataDir);
});

after(() => {
  if (account) removeAccount(account);
  for (const d of cleanups) fs.rmSync(d, { recursive: true, force: true });
});

describe('a local destination', () => {
  let destDir: string;
  let snapshots: string[];

  before(() => {
    destDir = makeDestinationDir();
    cleanups.push(destDir);
    ok(cli(dataDir, ['destination', 'add', '--name', 'disk', '--type', 'local', '--path', destDir]));
    ok(cli(dataDir, ['job', 'add', '--name', 'j', '--destination', 'disk', '--structure', 'incremental', '--accounts', account.username, '--items', 'files']));
    snapshots = [ok(cli(dataDir, ['backup', '--job', 'j', '--wait'])).snapshots[0]];
    writePage('v2');
    snapshots.push(ok(cli(dataDir, ['backup', '--job', 'j', '--wait'])).snapshots[0]);
  });

  test('name, visibility and free-space limit change; the job follows the rename; activity names the fields', () => {
    const r = ok(cli(dataDir, ['destination', 'edit', 'disk', '--name', 'disk2', '--hidden', '--free-space-limit', '7']));
    assert.equal(r.name, 'disk2');
    assert.equal(r.snapshotsVisible, false);
    assert.equal(r.freeSpaceLimitMb, 7);
    assert.deepEqual([...r.changed].sort(), ['freeSpaceLimitMb', 'name', 'snapshotsVisible']);
    assert.equal(ok(cli(dataDir, ['job', 'show', 'j'])).destination, 'disk2');
    assert.equal(cli(dataDir, ['destination', 'show', 'disk']).code, 1);
    assert.deepEqual(ok(cli(dataDir, ['snapshot', 'list', '--destination', 'disk2'])).map((s: any) => s.id).sort(), [...snapshots].sort());

    const back = ok(cli(dataDir, ['destination', 'edit', 'disk2', '--name', 'disk', '--visible', '--free-space-limit', '0']));
    assert.equal(back.name, 'disk');
    assert.equal(back.snapshotsVisible, true);
    assert.equal(back.freeSpaceLimitMb, 0);
    assert.deepEqual(ok(cli(dataDir, ['destination', 'edit', 'disk', '--visible'])).changed, [], 'the same value is no change');

    const lines = activity('destination.edit').filter((a) => a.result === 'ok');
    assert.match(lines[0]!.detail, /changed: name, .*snapshotsVisible/);
    assert.match(lines[0]!.detail, /freeSpaceLimitMb/);
  });

  test('bad input is refused with the field named, and the settings stay', () => {
    const other = makeDestinationDir();
    cleanups.push(other);
    ok(cli(dataDir, ['destination', 'add', '--name', 'other', '--type', 'local', '--path', other]));
    const before = settingsOf('disk');
    // A malformed value is a wrong command line (exit 2), refused before anything is asked of the destination.
    assert.equal(cli(dataDir, ['destination', 'edit', 'disk', '--free-space-limit', '-5']).code, 2);
    malformed(cli(dataDir, ['destination', 'edit', 'disk', '--path', 'relative/dir']), /^path: path must be absolute/);
    malformed(cli(dataDir, ['destination', 'edit', 'disk', '--name', 'bad/name']), /^name: a name is/);
    refused(cli(dataDir, ['destination', 'edit', 'disk', '--name', 'other']), /^name: a destination named "other" exists already/);
    refused(cli(dataDir, ['destination', 'edit', 'disk', '--type', 'ssh']), /^type: the type of a destination cannot change/);
    malformed(cli(dataDir, ['destination', 'edit', 'disk', '--host', 'example.org']), /^host: only ssh destinations/);
    refused(cli(dataDir, ['destination', 'edit', 'disk', '--path', path.join(other, 'missing')]), /not usable.*does not exist/);
    assert.equal(cli(dataDir, ['destination', 'edit', 'disk']).code, 2, 'nothing to change');
    refused(cli(dataDir, ['destination', 'edit', 'nosuch', '--hidden']), /no destination named "nosuch"/);
    assert.deepEqual(settingsOf('disk'), before);
    assert.ok(activity('destination.edit').some((a) => a.result === 'refused' && /asked: name/.test(a.detail)));
    ok(cli(dataDir, ['destination', 'remove', 'other']));
  });

  test('a new path without the data is refused, says how many snapshots would be orphaned, and writes nothing there', () => {
    const empty = makeDestinationDir();
    cleanups.push(empty);
    const r = cli(dataDir, ['destination', 'edit', 'disk', '--path', empty]);
    refused(r, new RegExp(`^2 of the 2 snapshots cataloged on destination "disk" are not at ${empty}: saving this change would orphan them`));
    assert.match(r.json.error, /Move the data there first/);
    assert.match(r.json.error, /--forget-snapshots/);
    assert.match(r.json.error, new RegExp(`their data at ${destDir} is not deleted`));
    assert.deepEqual(fs.readdirSync(empty), [], 'no tidemark.json was written at the refused place');
    assert.equal(ok(cli(dataDir, ['destination', 'show', 'disk'])).settings.path, destDir);
  });

  test('after the data is copied (cp -a) the new path is accepted, and the snapshots restore from it', () => {
    const moved = path.join(makeDestinationDir(), 'moved');
    cleanups.push(path.dirname(moved));
    execFileSync('cp', ['-a', destDir, moved]);
    const r = ok(cli(dataDir, ['destination', 'edit', 'disk', '--path', moved]));
    assert.equal(r.settings.path, moved);
    assert.deepEqual(r.changed, ['path']);
    assert.equal(r.forgottenSnapshots, 0);
    fs.rmSync(destDir, { recursive: true });
    writePage('broken');
    ok(cli(dataDir, ['restore', snapshots[0]!, '--path', 'page.html', '--wait']));
    assert.equal(fs.readFileSync(page(), 'utf8'), 'v1');
    ok(cli(dataDir, ['restore', snapshots[1]!, '--path', 'page.html', '--wait']));
    assert.equal(fs.readFileSync(page(), 'utf8'), 'v2');
    const next = ok(cli(dataDir, ['backup', '--job', 'j', '--wait']));
    assert.equal(next.results[0].status, 'completed');
    assert.ok(fs.existsSync(path.join(moved, account.username, next.snapshots[0], 'manifest.json')), 'new backups go to the new path');
    snapshots.push(next.snapshots[0]);
    destDir = moved;
  });

  test('when the old place is gone (mv), the new path is accepted because every snapshot is there', () => {
    const renamed = `${destDir}-renamed`;
    fs.renameSync(destDir, renamed);
    const r = ok(cli(dataDir, ['destination', 'edit', 'disk', '--path', renamed]));
    assert.equal(r.settings.path, renamed);
    assert.equal(ok(cli(dataDir, ['snapshot', 'list', '--destination', 'disk'])).length, snapshots.length);
    destDir = renamed;
  });

  test('--forget-snapshots drops them from the catalog and leaves their data where it was', () => {
    const fresh = makeDestinationDir();
    cleanups.push(fresh);
    const r = ok(cli(dataDir, ['destination', 'edit', 'disk', '--path', fresh, '--forget-snapshots']));
    assert.equal(r.forgottenSnapshots, snapshots.length);
    assert.equal(r.snapshots, 0);
    assert.deepEqual(ok(cli(dataDir, ['snapshot', 'list', '--destination', 'disk'])), []);
    for (const id of snapshots) assert.ok(fs.existsSync(path.join(destDir, account.username, id, 'manifest.json')), `${id} is still on disk`);
    assert.ok(fs.existsSync(path.join(fresh, 'tidemark.json')), 'the new place was opened');
    assert.ok(activity('destination.edit').some((a) => a.result === 'ok' && a.detail.endsWith(`; ${snapshots.length} snapshots forgotten`)));
    // With nothing cataloged, going back needs no check; a reindex finds them again.
    ok(cli(dataDir, ['destination', 'edit', 'disk', '--path', destDir]));
    assert.equal(ok(cli(dataDir, ['destination', 'reindex', 'disk'])).added, snapshots.length);
  });
});

describe('an SSH destination', () => {
  let server: TestSshServer;
  let secrets: string;
  let snapshot: string;
  const outputs: string[] = [];
  const run = (args: string[]): CliResult => {
    const r = cli(dataDir, args);
    outputs.push(r.stdout, r.stderr);
    return r;
  };
  const file = (name: string): string => path.join(secrets, name);

  before(async () => {
    server = await startTestSshServer({ allowCommands: false });
    secrets = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-secrets-'));
    cleanups.push(secrets);
    fs.writeFileSync(file('key'), server.privateKey, { mode: 0o600 });
    fs.writeFileSync(file('enc-key'), server.encryptedPrivateKey, { mode: 0o600 });
    fs.writeFileSync(file('passphrase'), `${server.passphrase}\n`, { mode: 0o600 });
    fs.writeFileSync(file('password'), `${server.password}\n`, { mode: 0o600 });
    fs.writeFileSync(file('wrong-password'), 'Wr0ng-Pa55word-xyz\n', { mode: 0o600 });
    ok(run(['destination', 'add', '--name', 'remote', '--type', 'ssh', '--host', '127.0.0.1', '--port', String(server.port), '--user', server.user,
      '--path', server.remoteRoot, '--password-file', file('password')]));
    ok(run(['job', 'add', '--name', 'rj', '--destination', 'remote', '--structure', 'archive', '--accounts', account.username, '--items', 'files']));
    writePage('remote-v1');
    snapshot = ok(run(['backup', '--job', 'rj', '--wait'])).snapshots[0];
  });

  after(async () => {
    await server?.stop();
  });

  test('secrets are replaced (password to key, key with passphrase, back to password), sealed, and never printed', () => {
    const key = ok(run(['destination', 'edit', 'remote', '--key-file', file('key')]));
    assert.equal(key.settings.privateKey, '********');
    assert.equal(key.settings.password, undefined, 'the key replaces the password');
    assert.deepEqual([...key.changed].sort(), ['password', 'privateKey']);
    const enc = ok(run(['destination', 'edit', 'remote', '--key-file', file('enc-key'), '--passphrase-file', file('passphrase')]));
    assert.equal(enc.settings.passphrase, '********');
    refused(run(['destination', 'edit', 'remote', '--password-file', file('wrong-password')]), /not usable with these settings: authentication failed/);
    const kept = ok(run(['destination', 'show', 'remote']));
    assert.equal(kept.settings.privateKey, '********', 'the refused password did not replace the key');
    assert.equal(kept.settings.password, undefined);
    const pw = ok(run(['destination', 'edit', 'remote', '--password-file', file('password')]));
    assert.equal(pw.settings.password, '********');
    assert.equal(pw.settings.privateKey, undefined);
    assert.equal(pw.settings.passphrase, undefined);
    malformed(run(['destination', 'edit', 'remote', '--passphrase-file', file('passphrase')]), /^passphrase: a passphrase goes with a private key/);

    const stored = ['tidemark.sqlite', 'tidemark.sqlite-wal'].filter((f) => fs.existsSync(path.join(dataDir, f)))
      .map((f) => fs.readFileSync(path.join(dataDir, f)).toString('latin1')).join('');
    const keyLine = server.privateKey.split('\n')[1]!;
    const encKeyLine = server.encryptedPrivateKey.split('\n')[1]!;
    for (const secret of [server.password, server.passphrase, keyLine, encKeyLine, 'Wr0ng-Pa55word-xyz']) {
      assert.ok(!stored.includes(secret), 'no secret is stored in clear');
      assert.ok(!outputs.some((o) => o.includes(secret)), 'no secret is printed');
      assert.ok(!activity('destination.edit').some((a) => a.detail.includes(secret)), 'no secret is in the activity log');
    }
    const r = ok(run(['snapshot', 'list', '--destination', 'remote']));
    assert.deepEqual(r.map((s: any) => s.id), [snapshot]);
  });

  test('regression: a setting of another type of destination, or --force-insecure-path on a remote one, was exit 1; it is a malformed command line (exit 2) and changes nothing', () => {
    const before = settingsOf('remote');
    malformed(run(['destination', 'edit', 'remote', '--bucket', 'b']), /^bucket: only s3 destinations have this setting/);
    malformed(run(['destination', 'edit', 'remote', '--force-insecure-path']), /^--force-insecure-path applies to local destinations only/);
    assert.deepEqual(settingsOf('remote'), before);
  });

  test('user and timeout change; a bad port or an unknown user is refused and the settings stay', async () => {
    const t = ok(run(['destination', 'edit', 'remote', '--timeout', '5']));
    assert.equal(t.settings.timeoutMs, 5000);
    assert.deepEqual(t.changed, ['timeoutMs']);
    const before = settingsOf('remote');
    // Malformed ports are a wrong command line (exit 2).
    for (const port of ['70000', 'abc']) assert.match(run(['destination', 'edit', 'remote', '--port', port]).json.error, /--port.*a whole number from 1 to 65535/);
    assert.equal(run(['destination', 'edit', 'remote', '--port', 'abc']).code, 2);
    const closed = await new Promise<number>((resolve) => {
      const srv = net.createServer().listen(0, '127.0.0.1', () => {
        const port = (srv.address() as net.AddressInfo).port;
        srv.close(() => resolve(port));
      });
    });
    refused(run(['destination', 'edit', 'remote', '--port', String(closed)]), /not usable with these settings: cannot reach .*ECONNREFUSED/);
    refused(run(['destination', 'edit', 'remote', '--user', 'nosuchuser']), /not usable with these settings: authentication failed/);
    assert.deepEqual(settingsOf('remote'), before);
    assert.equal(ok(run(['destination', 'validate', 'remote'])).ok, true);
    const same = ok(run(['destination', 'edit', 'remote', '--user', server.user, '--port', String(server.port)]));
    assert.deepEqual(same.changed, [], 'the same user and port are no change');
  });

  test('a remote path without the data is refused; after cp -a it is accepted and the snapshot restores', () => {
    const { uid, gid } = fs.statSync(server.remoteRoot);
    const empty = path.join(server.home, 'empty');
    fs.mkdirSync(empty);
    fs.chownSync(empty, uid, gid);
    const r = run(['destination', 'edit', 'remote', '--path', empty]);
    refused(r, /^1 of the 1 snapshots cataloged on destination "remote" are not at .*@127\.0\.0\.1:\d+:.*\/empty: saving this change would orphan them/);
    assert.deepEqual(fs.readdirSync(empty), []);
    const moved = path.join(server.home, 'moved');
    execFileSync('cp', ['-a', server.remoteRoot, moved]);
    const m = ok(run(['destination', 'edit', 'remote', '--path', moved]));
    assert.equal(m.settings.path, moved);
    fs.rmSync(server.remoteRoot, { recursive: true });
    writePage('broken');
    ok(run(['restore', snapshot, '--path', 'page.html', '--wait']));
    assert.equal(fs.readFileSync(page(), 'utf8'), 'remote-v1');
  });

  test('a new host drops the pinned key and pins the one seen; a given --host-key is checked', async () => {
    await server.rotateHostKey();
    const pinned = ok(run(['destination', 'show', 'remote'])).settings.hostKeyFingerprint;
    assert.notEqual(pinned, server.hostKeyFingerprint);
    refused(run(['destination', 'edit', 'remote', '--host-key', `SHA256:${'A'.repeat(43)}`]), /not usable with these settings: the host key of .* has changed/);
    malformed(run(['destination', 'edit', 'remote', '--host-key', 'not-a-fingerprint']), /^hostKeyFingerprint: host key is a SHA256 fingerprint/);
    // The old place answers with another key now (unreachable for it): every snapshot is looked for at the new one.
    const r = ok(run(['destination', 'edit', 'remote', '--host', 'localhost']));
    assert.equal(r.settings.host, 'localhost');
    assert.equal(r.settings.hostKeyFingerprint, server.hostKeyFingerprint);
    assert.deepEqual([...r.changed].sort(), ['host', 'hostKeyFingerprint']);
    assert.equal(r.forgottenSnapshots, 0);
    assert.equal(ok(run(['destination', 'validate', 'remote'])).ok, true);
    const explicit = ok(run(['destination', 'edit', 'remote', '--host', '127.0.0.1', '--host-key', `SHA256:${server.hostKeyFingerprint}`]));
    assert.equal(explicit.settings.hostKeyFingerprint, server.hostKeyFingerprint);
  });
});
