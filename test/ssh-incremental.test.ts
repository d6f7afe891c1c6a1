import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { asAccount, createAccount, makeHomeRoot, removeAccount, type TestAccount } from './support/accounts.js';
import { buildTrickyTree } from './support/tricky-tree.js';
import { diffTrees, snapshotTree, type TreeEntry } from './support/tree.js';
import { cli, makeDataDir, ok } from './support/cli.js';
import { startTestSshServer, type TestSshServer } from './support/sshd.js';

const BIG = 4 << 20;

/** Every blob of a snapshot on the server, with its link count. */
function blobLinks(dir: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const bucket of fs.readdirSync(dir)) {
    for (const b of fs.readdirSync(path.join(dir, bucket))) out.set(`${bucket}/${b}`, fs.statSync(path.join(dir, bucket, b)).nlink);
  }
  return out;
}

function restoredTree(dataDir: string, account: TestAccount, snapshot: string): Map<string, TreeEntry> {
  const restored = ok(cli(dataDir, ['restore', snapshot, '--into-folder', '--wait']));
  const folder = path.join(account.home, restored.folder);
  try {
    return snapshotTree(folder);
  } finally {
    fs.rmSync(folder, { recursive: true, force: true });
  }
}

for (const allowCommands of [false, true]) {
  const mode = allowCommands ? 'commands allowed (remote cp -al)' : 'SFTP only (hard-link extension)';
  describe(`incremental over SSH, ${mode}`, () => {
    let server: TestSshServer;
    let homeRoot: string;
    let account: TestAccount;
    let dataDir: string;
    let keyDir: string;

    before(async () => {
      server = await startTestSshServer({ allowCommands });
      homeRoot = makeHomeRoot();
      account = createAccount(homeRoot);
      buildTrickyTree(account);
      asAccount(account, `mkdir -p many && for i in $(seq 1 300); do echo "file $i" > many/f$i.txt; done && head -c ${BIG} /dev/urandom > big.bin`);
      dataDir = makeDataDir({ panel: 'standalone', homeRoots: [homeRoot] });
      keyDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-key-'));
      fs.writeFileSync(path.join(keyDir, 'key'), server.privateKey, { mode: 0o600 });
      ok(cli(dataDir, ['destination', 'add', '--name', 'remote', '--type', 'ssh', '--host', '127.0.0.1', '--port', String(server.port),
        '--user', server.user, '--path', server.remoteRoot, '--key-file', path.join(keyDir, 'key')]));
      ok(cli(dataDir, ['job', 'add', '--name', 'inc', '--destination', 'remote', '--structure', 'incremental', '--accounts', account.username, '--items', 'files']));
    });

    after(async () => {
      removeAccount(account);
      for (const d of [homeRoot, dataDir, keyDir]) fs.rmSync(d, { recursive: true, force: true });
      await server?.stop();
    });

    test('the second run sends only what changed, shares the rest as links, and leaves the first snapshot whole', (t) => {
      const skip = (p: string): boolean => p.startsWith('tidemark-restore-');
      const first = ok(cli(dataDir, ['backup', '--job', 'inc', '--wait'])).results[0];
      assert.equal(first.status, 'completed');
      assert.ok(first.sentBytes > BIG, `the first run sends the content (${first.sentBytes} bytes)`);
      const firstTree = snapshotTree(account.home, { skip });

      const changed = 'changed content, longer than before';
      const added = crypto.randomBytes(5000);
      fs.writeFileSync(path.join(account.home, 'many/f7.txt'), changed);
      fs.rmSync(path.join(account.home, 'many/f8.txt'));
      fs.writeFileSync(path.join(account.home, 'many/new.bin'), added);
      fs.chownSync(path.join(account.home, 'many/new.bin'), account.uid, account.gid);

      const second = ok(cli(dataDir, ['backup', '--job', 'inc', '--wait'])).results[0];
      assert.equal(second.status, 'completed');
      assert.equal(second.storedBytes, changed.length + added.length, 'only the changed and the new file are stored');
      assert.ok(second.sentBytes < BIG / 8, `the second run sends little (${second.sentBytes} bytes)`);
      t.diagnostic(`bytes sent: first run ${first.sentBytes}, second run ${second.sentBytes}`);
      assert.ok(second.sentBytes > added.length, 'the new content did go over the wire');

      const accountDir = path.join(server.remoteRoot, account.username);
      const firstLinks = blobLinks(path.join(accountDir, first.snapshot, 'files'));
      const links = blobLinks(path.join(accountDir, second.snapshot, 'files'));
      assert.equal(links.size, firstLinks.size, 'one file went, one came: the deleted file\'s blob is not in the new snapshot');
      assert.equal([...links.values()].filter((n) => n === 1).length, 2, 'only the changed and the new file have their own inode');
      assert.equal([...links.values()].filter((n) => n === 2).length, links.size - 2, 'every other blob is shared with the first snapshot');
      assert.equal([...firstLinks.values()].filter((n) => n === 1).length, 2, 'the first snapshot keeps the old content of the changed and the deleted file');
      assert.deepEqual(fs.readdirSync(accountDir).filter((n) => n.startsWith('.partial-')), []);

      assert.deepEqual(diffTrees(firstTree, restoredTree(dataDir, account, first.snapshot), { ignoreRootTimes: true }), [], 'the first snapshot restores as it was');
      assert.deepEqual(diffTrees(snapshotTree(account.home, { skip }), restoredTree(dataDir, account, second.snapshot), { ignoreRootTimes: true }), []);
    });
  });
}
