/**
 * How the CLI ends: once its command is done and the event loop is empty, it ends the process
 * (server/cli/run.ts: endProcess, server/native/exit-now.ts: the 'exit' listeners, then _exit(2);
 * process.exit where the native addon is missing) instead of letting Node tear its heap down. What a natural
 * end gave must stay: work still pending after the command (a timer, a write) runs first,
 * 'exit' listeners run, and the exit code is the command's (0, 1 for a refusal, 2 for a
 * malformed command line), with its output whole.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { CLI } from './support/cli.js';
import { nativeAddon } from '../server/native/addon.js';

/** How the process ends after its exit listeners: _exit(2) with the addon, else process.exit (its reallyExit). */
const ending = (code: number): string[] => (nativeAddon('exitNow') !== null ? [] : [`really-exit:${code}`]);

// Loaded before the CLI: notes (on stderr) a timer that ends after the command, every 'exit'
// listener call, and process.reallyExit, which process.exit calls and a natural end does not.
const PRELOAD = `import fs from 'node:fs';
const really = process.reallyExit;
process.reallyExit = (code) => { fs.writeSync(2, 'really-exit:' + code + '\\n'); really.call(process, code); };
process.on('exit', (code) => { fs.writeSync(2, 'exit-listener:' + code + '\\n'); });
setTimeout(() => { fs.writeSync(2, 'timer-done\\n'); }, 300);
`;

function run(args: string[]): { status: number | null; stdout: string; marks: string[]; stderr: string } {
  const r = spawnSync(process.execPath, ['--no-warnings', '--import', `data:text/javascript,${encodeURIComponent(PRELOAD)}`, CLI, ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, marks: r.stderr.match(/^(really-exit:\d+|exit-listener:\d+|timer-done)$/gm) ?? [] };
}

test('the CLI ends at once when its work is done: pending work first, then exit listeners, with the command\'s exit code', () => {
  const help = run(['--help']);
  assert.equal(help.status, 0, help.stderr);
  assert.match(help.stdout, /^Usage: tidemark/m);
  assert.match(help.stdout, /^ {2}backup\b/m, 'the help is whole');
  // The timer set before the command ran to its end before the process ended, then the exit
  // listeners ran, then the process ended without Node's tear-down (test/exit-now.test.ts).
  assert.deepEqual(help.marks, ['timer-done', 'exit-listener:0', ...ending(0)]);

  const typo = run(['--data-dir', '/nonexistent-tidemark', 'bakcup']);
  assert.equal(typo.status, 2);
  assert.match(typo.stderr, /unknown command 'bakcup'/);
  assert.deepEqual(typo.marks, ['timer-done', 'exit-listener:2', ...ending(2)]);

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-exit-'));
  try {
    const refused = run(['--data-dir', dir, '--json', 'snapshot', 'list', '--destination', 'nope']);
    assert.equal(refused.status, 1, refused.stderr);
    assert.match(JSON.parse(refused.stdout).error, /no destination named "nope"/);
    assert.deepEqual(refused.marks, ['timer-done', 'exit-listener:1', ...ending(1)]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
