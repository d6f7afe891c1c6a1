import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DestinationError } from '../server/destinations/types.js';
import { SYNC_SHELL_COMMAND } from '../server/destinations/ssh-sync-shell.js';
import { fakeTarServers, withDestination } from './support/fake-tar.js';

/**
 * (The shell's answer cannot prove a sync happened: a hostile server can fake `sync` itself.)
 * The flushes and write-outs of an SSH destination go through one remote shell per
 * connection (ssh-sync-shell.ts). A shell that answers anything but its answer, or nothing
 * in time, fails the flush (never a silent success), and the next flush starts another; a
 * folder whose name cannot go on one line is synced by a command of its own.
 */
const servers = fakeTarServers('tm-sync-shell-');

const replaceShell = (dest: unknown, by: string): void => {
  const d = dest as { exec: (c: string) => Promise<unknown> };
  const exec = d.exec.bind(dest);
  let once = true;
  d.exec = (c: string) => {
    if (c !== SYNC_SHELL_COMMAND || !once) return exec(c);
    once = false;
    return exec(by);
  };
};

test('a sync shell that answers something else fails the flush; the next flush starts a shell of its own', async () => {
  await withDestination(servers.server, null, async (dest, _remote, commands) => {
    await dest.writeSmallFile('acct/meta.json', [Buffer.from('{}')]);
    replaceShell(dest, 'read -r x; echo hello; cat >/dev/null');
    await assert.rejects(dest.flush(['acct']), (err: unknown) => err instanceof DestinationError && err.code === 'io' && /answered something else/.test(err.message));
    await dest.flush(['acct']);
    assert.equal(commands.filter((c) => c === SYNC_SHELL_COMMAND).length, 1, 'a second shell for the next flush');
  });
});

test('a sync shell that gives no answer in time fails the flush', async () => {
  await withDestination(servers.server, null, async (dest) => {
    await dest.writeSmallFile('acct/meta.json', [Buffer.from('{}')]);
    replaceShell(dest, 'cat >/dev/null');
    await assert.rejects(dest.flush(['acct']), (err: unknown) => err instanceof DestinationError && err.code === 'io' && /did not answer in time/.test(err.message));
    await dest.flush(['acct']);
  }, 500);
});

test('a sync shell that exits in the middle fails the flush', async () => {
  await withDestination(servers.server, null, async (dest) => {
    await dest.writeSmallFile('acct/meta.json', [Buffer.from('{}')]);
    replaceShell(dest, 'read -r x; exit 0');
    await assert.rejects(dest.flush(['acct']), (err: unknown) => err instanceof DestinationError && err.code === 'io');
    await dest.flush(['acct']);
  });
});

test('a folder whose name holds a newline is synced by a command of its own', async () => {
  await withDestination(servers.server, null, async (dest, remote, commands, syncs) => {
    await dest.writeSmallFile('ac\nct/meta.json', [Buffer.from('{}')]);
    dest.flushAhead();
    await (dest as unknown as { aheadRunning: Promise<void> | null }).aheadRunning;
    await dest.flush(['ac\nct']);
    assert.deepEqual(syncs.at(-1)![0], { path: `${remote}/ac\nct`, mustExist: true });
    assert.ok(commands.at(-1)!.startsWith(`sync -f -- '${remote}/ac\nct'`), JSON.stringify(commands));
    await assert.rejects(dest.flush(['gone\nfolder']), /reported an error while flushing/);
  });
});
