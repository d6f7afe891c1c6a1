import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { DestinationError } from '../server/destinations/types.js';
import { fakeTarServers, withDestination } from './support/fake-tar.js';

/**
 * SshDestination.flushAhead: where flush syncs by command, a `sync -f` of the account folders
 * written to runs on the server while the backup goes on. It makes nothing durable, runs one
 * at a time, and an error it meets fails the next flush (that flush's own `sync -f`, a new
 * process, would not see it).
 */
const servers = fakeTarServers('tm-flush-ahead-');

const writeOuts = (commands: string[]): string[] => commands.filter((c) => c.startsWith('for p in ') && c.includes('sync -f'));

/** Waits until the destination has no write-out running. */
async function settled(dest: unknown): Promise<void> {
  await (dest as { aheadRunning: Promise<void> | null }).aheadRunning;
}

test('flushAhead syncs the written account folders in the background, one at a time, and never by itself clears what flush must sync', async () => {
  await withDestination(servers.server, null, async (dest, remote, commands) => {
    // open() wrote tidemark.json: flushed here, nothing is left to write out.
    await dest.flush(['']);
    dest.flushAhead();
    assert.equal(writeOuts(commands).length, 0, 'nothing written since the flush: no write-out');
    await dest.mkdir('acct/.partial-1/files/00');
    await dest.writeSmallFile('acct/.partial-1/files/00/1', [Buffer.from('one')]);
    await dest.writeSmallFile('other/meta.json', [Buffer.from('{}')]);
    dest.flushAhead();
    dest.flushAhead();
    assert.equal(writeOuts(commands).length, 1, `a call while one runs does nothing: ${JSON.stringify(commands)}`);
    const w = writeOuts(commands)[0]!;
    assert.ok(w.includes(`'${remote}/acct'`) && w.includes(`'${remote}/other'`), w);
    await settled(dest);
    // The commit's flush still syncs every written account folder.
    await dest.flush(['acct/.partial-1']);
    const sync = commands.at(-1)!;
    assert.ok(sync.startsWith(`sync -f -- '${remote}/acct/.partial-1'`) && sync.includes(`'${remote}/other'`), sync);
    assert.equal(fs.readFileSync(path.join(remote, 'acct/.partial-1/files/00/1'), 'utf8'), 'one');
    // Nothing written since the flush: no write-out.
    dest.flushAhead();
    assert.equal(writeOuts(commands).length, 1);
  });
});

test('regression guard: a write-out that failed fails the next flush even though that flush\'s own sync -f succeeds; the flush after it syncs again', async () => {
  await withDestination(servers.server, null, async (dest, remote, commands) => {
    const d = dest as unknown as { run: (c: string) => Promise<{ code: number | null; stdout: string; stderr: string }> };
    const run = d.run.bind(dest);
    let failOnce = true;
    d.run = (c: string) => {
      if (failOnce && c.startsWith('for p in ')) {
        failOnce = false;
        commands.push(c);
        return Promise.resolve({ code: 1, stdout: '', stderr: 'sync: error syncing: Input/output error' });
      }
      return run(c);
    };
    await dest.mkdir('acct/.partial-1/files/00');
    await dest.writeSmallFile('acct/.partial-1/files/00/1', [Buffer.from('one')]);
    dest.flushAhead();
    await assert.rejects(dest.flush(['acct/.partial-1']), (err: unknown) => err instanceof DestinationError && err.code === 'io' && /Input\/output error/.test(err.message));
    const before = commands.filter((c) => c.startsWith('sync -f')).length;
    await dest.flush(['acct/.partial-1']);
    const syncs = commands.filter((c) => c.startsWith('sync -f'));
    assert.equal(syncs.length, before + 1, 'the next flush syncs');
    assert.ok(syncs.at(-1)!.startsWith(`sync -f -- '${remote}/acct/.partial-1'`));
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
  await withDestination(servers.sftpOnly, null, async (dest, _remote, commands) => {
    await dest.mkdir('acct/.partial-1/files/00');
    await dest.writeSmallFile('acct/.partial-1/files/00/1', [Buffer.from('one')]);
    dest.flushAhead();
    await settled(dest);
    assert.equal(writeOuts(commands).length, 0);
    await dest.flush(['acct/.partial-1']);
  });
});

test('close does not wait for a write-out stuck on the server, and the destination opened again starts clean', async () => {
  await withDestination(servers.server, null, async (dest, remote) => {
    const d = dest as unknown as { run: (c: string) => Promise<unknown> };
    const run = d.run.bind(dest);
    // A write-out whose sync takes long (a stuck disk), and says when it has ended.
    const ended = path.join(remote, 'write-out-ended');
    d.run = (c: string) => run(c.startsWith('for p in ') ? `sleep 20; touch '${ended}'` : c);
    await dest.mkdir('acct/.partial-1/files/00');
    await dest.writeSmallFile('acct/.partial-1/files/00/1', [Buffer.from('one')]);
    dest.flushAhead();
    await dest.close();
    assert.equal(fs.existsSync(ended), false, 'close returned before the write-out ended');
    d.run = run;
    await dest.open();
    await dest.writeSmallFile('acct/.partial-1/files/00/2', [Buffer.from('two')]);
    await dest.flush(['acct/.partial-1']);
  });
});
