/**
 * The SSH and S3 drivers and the resolver of the address policy are loaded at their first use
 * (services/destinations.ts, destinations/address-policy.ts): a command that only meets Local
 * destinations, such as the backup of a provider's local job, must not load them, and each
 * other type must still get its own driver.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';

const SERVICES = new URL('../server/services/destinations.js', import.meta.url).href;
const POLICY = new URL('../server/destinations/address-policy.js', import.meta.url).href;

test('a Local destination\'s driver loads neither the SSH nor the S3 driver nor node:dns; the first SSH or S3 destination loads its own', () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-drivers-'));
  try {
    // In a process of its own, with a loader hook that notes each of our modules as it loads
    // (what this test file has loaded already does not count).
    const hooks = `import fs from 'node:fs';
export async function load(url, context, next) {
  const m = /\\/server\\/(destinations\\/[a-z0-9-]+)\\.js$/.exec(url);
  if (m) fs.writeSync(2, 'loaded:' + m[1] + '\\n');
  return next(url, context);
}`;
    const preload = `import { register } from 'node:module'; register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(hooks)}));`;
    const script = `
      import fs from 'node:fs';
      // The config's schema loads the address policy (its rule check) in every command.
      await import(${JSON.stringify(POLICY)});
      const { driverFor } = await import(${JSON.stringify(SERVICES)});
      const ctx = { dataDir: ${JSON.stringify(dataDir)} };
      const note = (s) => fs.writeSync(2, s + '\\n');
      const dns = () => process.moduleLoadList.includes('NativeModule dns/promises');
      note('phase:local ' + (await driverFor(ctx, { type: 'local', settings: { path: '/nonexistent-tidemark' } })).type + ' dns=' + dns());
      const sshSettings = { host: '127.0.0.1', port: 22, username: 'u', password: 'p', path: '/x' };
      note('phase:ssh ' + (await driverFor(ctx, { type: 'ssh', settings: sshSettings })).type + ' dns=' + dns());
      note('phase:owned ' + (await driverFor(ctx, { type: 'ssh', owner: 'tmsomeone', name: 'mine', settings: sshSettings })).type);
      const s3 = { endpoint: 'http://127.0.0.1:1', bucket: 'b', serverFolder: 'f', accessKeyId: 'a', secretAccessKey: 's' };
      note('phase:s3 ' + (await driverFor(ctx, { type: 's3', settings: s3 })).type);
      try { await driverFor(ctx, { type: 'ftp', settings: {} }); note('phase:unknown accepted'); } catch (err) { note('phase:unknown ' + err.message); }
    `;
    const r = spawnSync(process.execPath, ['--no-warnings', '--import', `data:text/javascript,${encodeURIComponent(preload)}`, '--input-type=module', '-e', script], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stderr.split('\n').filter((l) => l.startsWith('phase:') || /^loaded:destinations\/(ssh|s3|address-policy)$/.test(l));
    const phase = (name: string): string[] => {
      const at = lines.findIndex((l) => l.startsWith(`phase:${name} `));
      assert.ok(at >= 0, r.stderr);
      return lines.slice(0, at + 1);
    };
    // Until a Local driver is made: neither driver, and no resolver (address-policy.js is
    // loaded, by the config's rule check, but loads node:dns only to resolve a name).
    assert.deepEqual(phase('local').filter((l) => /destinations\/(ssh|s3)$/.test(l)), []);
    assert.match(phase('local').at(-1)!, /^phase:local local dns=false$/);
    assert.ok(phase('ssh').includes('loaded:destinations/ssh'));
    assert.ok(!phase('ssh').includes('loaded:destinations/s3'));
    assert.match(phase('ssh').at(-1)!, /^phase:ssh ssh dns=false$/);
    assert.match(phase('owned').at(-1)!, /^phase:owned ssh$/);
    assert.ok(phase('s3').includes('loaded:destinations/s3'));
    assert.match(phase('s3').at(-1)!, /^phase:s3 s3$/);
    const out = { unknown: lines.find((l) => l.startsWith('phase:unknown'))! };
    assert.match(out.unknown, /unknown destination type ftp/);
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});
