import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { DestinationError } from '../server/destinations/types.js';
import { SYNC_SHELL_COMMAND, type SyncTarget } from '../server/destinations/ssh-sync-shell.js';
import { fakeTarServers, withDestination } from './support/fake-tar.js';

/**
 * SshDestination.flushAhead: where flush syncs by command, a `sync -f` of the account folders
 * written to runs on the server while the backup goes on. It makes nothing durable, runs one
 * at a time, and an error it meets fails the next flush (that flush's own `sync -f`, a new
 * process, would not see it).
 */
const servers = fakeTarServers('tm-flush-ahead-');

/** Write-outs: requests whose folders may all be gone (a flush names one that must exist). */
const writeOuts = (syncs: SyncTarget[][]): SyncTarget[][] => syncs.filter((t) => t.every((x) => !x.mustExist));
type SyncResult = { code: number | null; stderr: string };

/** Waits until the destination has no write-out running. */
async function settled(dest: unknown): Promise<void> {
  await (dest as { aheadRunning: Promise<void> | null }).aheadRunning;
}

test('flushAhead syncs the written account folders in the background, one at a time, and never by itself clears what flush must sync', async () => {
  await withDestination(servers.server, null, async (dest, remote, commands, syncs) => {
    // open() wrote tidemark.json: flushed here, nothing is left to write out.
    await dest.flush(['']);
    dest.flushAhead();
    assert.equal(writeOuts(syncs).length, 0, 'nothing written since the flush: no write-out');
    await dest.mkdir('acct/.partial-1/files/00');
    await dest.writeSmallFile('acct/.partial-1/files/00/1', [Buffer.from('one')]);
    await dest.writeSmallFile('other/meta.json', [Buffer.from('{}')]);
    dest.flushAhead();
    dest.flushAhead();
    assert.equal(writeOuts(syncs).length, 1, `a call while one runs does nothing: ${JSON.stringify(syncs)}`);
    const w = writeOuts(syncs)[0]!.map((t) => t.path);
    assert.ok(w.includes(`${remote}/acct`) && w.includes(`${remote}/other`), JSON.stringify(w));
    await settled(dest);
    // The commit's flush still syncs every written account folder.
    await dest.flush(['acct/.partial-1']);
    assert.deepEqual(syncs.at(-1), [{ path: `${remote}/acct/.partial-1`, mustExist: true }, { path: `${remote}/other`, mustExist: false }]);
    assert.equal(fs.readFileSync(path.join(remote, 'acct/.partial-1/files/00/1'), 'utf8'), 'one');
    // Nothing written since the flush: no write-out.
    dest.flushAhead();
    assert.equal(writeOuts(syncs).length, 1);
    // Every sync went through one remote shell.
    assert.equal(commands.filter((c) => c === SYNC_SHELL_COMMAND).length, 1, JSON.stringify(commands));
    assert.equal(commands.filter((c) => c.includes('sync -f') && !c.includes('/dev/null') && c !== SYNC_SHELL_COMMAND).length, 0, JSON.stringify(commands));
  });
});

test('regression guard: a write-out that failed fails the next flush even though that flush\'s own sync -f succeeds; the flush after it syncs again', async () => {
  await withDestination(servers.server, null, async (dest, remote, _commands, syncs) => {
    const d = dest as unknown as { syncFolders: (t: SyncTarget[]) => Promise<SyncResult> };
    const real = d.syncFolders.bind(dest);
    let failOnce = true;
    d.syncFolders = (t: SyncTarget[]) => {
      if (failOnce && t.every((x) => !x.mustExist)) {
        failOnce = false;
        syncs.push(t);
        return Promise.resolve({ code: 1, stderr: 'sync: error syncing: Input/output error' });
      }
      return real(t);
    };
    await dest.mkdir('acct/.partial-1/files/00');
    await dest.writeSmallFile('acct/.partial-1/files/00/1', [Buffer.from('one')]);
    dest.flushAhead();
    await assert.rejects(dest.flush(['acct/.partial-1']), (err: unknown) => err instanceof DestinationError && err.code === 'io' && /Input\/output error/.test(err.message));
    const before = syncs.filter((t) => t[0]!.mustExist).length;
    await dest.flush(['acct/.partial-1']);
    const flushes = syncs.filter((t) => t[0]!.mustExist);
    assert.equal(flushes.length, before + 1, 'the next flush syncs');
    assert.equal(flushes.at(-1)![0]!.path, `${remote}/acct/.partial-1`);
  });
});

test('a folder removed since it was written is passed over by the write-out, not an error', async () => {
  await withDestination(servers.server, null, async (dest) => {
    await dest.mkdir('acct/.partial-1/files/00');
    await dest.writeSmallFile('acct/.partial-1/files/00/1', [Buffer.from('one')]);
    await dest.writeSmallFile('gone/x.json', [Buffer.from('{}')]);
    await dest.remove('gone');
    dest.flushAhead();
    await settled(dest);
    await dest.flush(['acct/.partial-1']);
  });
});

test('an SFTP-only server (files flushed as they are closed) runs no write-out', async () => {
  await withDestination(servers.sftpOnly, null, async (dest, _remote, _commands, syncs) => {
    await dest.mkdir('acct/.partial-1/files/00');
    await dest.writeSmallFile('acct/.partial-1/files/00/1', [Buffer.from('one')]);
    dest.flushAhead();
    await settled(dest);
    assert.equal(writeOuts(syncs).length, 0);
    await dest.flush(['acct/.partial-1']);
  });
});

test('close does not wait for a write-out stuck on the server, and the destination opened again starts clean', async () => {
  await withDestination(servers.server, null, async (dest, remote) => {
    const d = dest as unknown as { exec: (c: string) => Promise<unknown> };
    const exec = d.exec.bind(dest);
    // A sync shell whose sync takes long (a stuck disk), and says when it has ended.
    const ended = path.join(remote, 'write-out-ended');
    d.exec = (c: string) => exec(c === SYNC_SHELL_COMMAND ? `sleep 20; touch '${ended}'` : c);
    await dest.mkdir('acct/.partial-1/files/00');
    await dest.writeSmallFile('acct/.partial-1/files/00/1', [Buffer.from('one')]);
    dest.flushAhead();
    await new Promise((r) => setTimeout(r, 300));
    await dest.close();
    assert.equal(fs.existsSync(ended), false, 'close returned before the write-out ended');
    d.exec = exec;
    await dest.open();
    await dest.writeSmallFile('acct/.partial-1/files/00/2', [Buffer.from('two')]);
    await dest.flush(['acct/.partial-1']);
  });
});
