/**
 * The end of the CLI and of the account worker without Node's tear-down (exit-now.ts): 'exit'
 * listeners still run and the exit code is kept; where the tear-down writes something (a
 * profile, coverage) the process ends through process.exit as before.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { nativeAddon } from '../server/native/addon.js';
import { CLI } from './support/cli.js';

const EXIT_NOW = fileURLToPath(new URL('../server/native/exit-now.js', import.meta.url));
const built = nativeAddon('exitNow') !== null;

// Says on stdout when Node's own end (process.reallyExit, which process.exit calls and which
// tears down) is reached, and what the 'exit' listeners saw.
const WATCH = `
const really = process.reallyExit;
process.reallyExit = (code) => { process.stdout.write('tear-down ' + code + '\\n'); really.call(process, code); };
process.on('exit', (code) => { process.stdout.write('exit listener ' + code + '\\n'); });
`;
const PROBE = `${WATCH}
import(process.argv[1]).then((m) => {
  if (process.argv[3] === 'change') process.on('exit', () => { process.exitCode = 5; });
  m.endProcess(Number(process.argv[2]));
});
`;

const run = (code: number, opts: { env?: NodeJS.ProcessEnv; flags?: string[]; change?: boolean } = {}) => {
  const env = { ...process.env, ...opts.env };
  if (!opts.env?.NODE_V8_COVERAGE) delete env.NODE_V8_COVERAGE;
  return spawnSync(process.execPath, [...(opts.flags ?? []), '-e', PROBE, EXIT_NOW, String(code), opts.change ? 'change' : ''], { encoding: 'utf8', env });
};

test('the addon refuses an exit code out of range', { skip: !built }, () => {
  const addon = nativeAddon<{ exitNow(code: number): never }>('exitNow')!;
  assert.throws(() => addon.exitNow(256), RangeError);
  assert.throws(() => addon.exitNow(-1), RangeError);
});

test('endProcess runs the exit listeners and ends with the code, without Node\'s tear-down', { skip: !built }, () => {
  for (const code of [0, 1, 3]) {
    const r = run(code);
    assert.equal(r.status, code, r.stderr);
    assert.equal(r.stdout, `exit listener ${code}\n`);
  }
  const changed = run(0, { change: true });
  assert.equal(changed.status, 5, 'an exit listener may change the code, as with process.exit');
});

test('where the tear-down writes something (coverage, a CPU profile), endProcess is process.exit', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tm-exit-now-'));
  try {
    const covered = run(4, { env: { NODE_V8_COVERAGE: path.join(dir, 'cov') } });
    assert.equal(covered.status, 4, covered.stderr);
    assert.equal(covered.stdout, 'exit listener 4\ntear-down 4\n');
    assert.ok(fs.readdirSync(path.join(dir, 'cov')).length > 0, 'the coverage was written');
    const profiled = run(0, { flags: ['--cpu-prof', `--cpu-prof-dir=${path.join(dir, 'prof')}`] });
    assert.equal(profiled.status, 0, profiled.stderr);
    assert.match(profiled.stdout, /tear-down 0/);
    assert.equal(fs.readdirSync(path.join(dir, 'prof')).filter((f) => f.endsWith('.cpuprofile')).length, 1, 'the profile was written');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the CLI ends without Node\'s tear-down, with its output and exit code', { skip: !built }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tm-exit-now-'));
  const env = { ...process.env };
  delete env.NODE_V8_COVERAGE;
  const watch = `data:text/javascript,${encodeURIComponent(WATCH)}`;
  try {
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ panel: 'standalone', homeRoots: [dir], logLevel: 'silent' }));
    const ok = spawnSync(process.execPath, ['--import', watch, CLI, '--data-dir', dir, '--json', 'job', 'list'], { encoding: 'utf8', env });
    assert.equal(ok.status, 0, ok.stderr);
    assert.deepEqual(JSON.parse(ok.stdout.slice(0, ok.stdout.lastIndexOf('exit listener'))), []);
    assert.match(ok.stdout, /exit listener 0\n$/);
    const refused = spawnSync(process.execPath, ['--import', watch, CLI, '--data-dir', dir, 'job', 'list', '--no-such-option'], { encoding: 'utf8', env });
    assert.equal(refused.status, 2, refused.stderr);
    assert.match(refused.stderr, /no-such-option/);
    assert.equal(refused.stdout, 'exit listener 2\n');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
