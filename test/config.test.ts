import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../server/config.js';

test('config.json: defaults, edits take effect at once, bad values are clear errors even after a good file', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-config-'));
  const file = path.join(dir, 'config.json');
  try {
    assert.deepEqual((await loadConfig(dir)).homeRoots, ['/home'], 'no file: defaults');
    fs.writeFileSync(file, JSON.stringify({ homeRoots: ['/srv/homes'] }));
    assert.deepEqual((await loadConfig(dir)).homeRoots, ['/srv/homes']);
    assert.equal((await loadConfig(dir)).httpPort, 7080, 'defaults fill what the file leaves out');
    fs.writeFileSync(file, JSON.stringify({ homeRoots: ['/home2'] }));
    assert.deepEqual((await loadConfig(dir)).homeRoots, ['/home2'], 'an edit is seen by the next command');
    fs.writeFileSync(file, JSON.stringify({ httpPort: -1 }));
    await assert.rejects(loadConfig(dir), (err: Error) => err.message.startsWith(`${file}: httpPort:`));
    fs.writeFileSync(file, JSON.stringify({ panel: 'plesk' }));
    await assert.rejects(loadConfig(dir), /panel/);
    fs.writeFileSync(file, '{ not json');
    await assert.rejects(loadConfig(dir), /is not valid JSON/);
    fs.writeFileSync(file, JSON.stringify({ minUid: 500 }));
    fs.writeFileSync(path.join(dir, '.config.validated.json'), '{"hash":"forged","config":{"minUid":0}}');
    assert.equal((await loadConfig(dir)).minUid, 500, 'a cached copy that does not match the file is ignored');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("regression: a config.json error was zod's default message (\"Invalid input: expected array, received string\")", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-config-'));
  const file = path.join(dir, 'config.json');
  try {
    fs.writeFileSync(file, JSON.stringify({ homeRoots: '/srv/homes', minUid: 1.5 }));
    await assert.rejects(loadConfig(dir), (err: Error) => {
      assert.equal(err.message, `${file}: homeRoots: home roots must be a list; minUid: min uid must be a whole number`);
      return true;
    });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
