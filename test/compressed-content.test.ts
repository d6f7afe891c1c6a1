// The restore writer's content from a compressed snapshot by descriptor (compressed-content.ts):
// the members' CRC-32 is not computed while every file has a SHA-256 the writer checks; a file
// without one (an index written before hashes) turns the CRC check on before its content is read.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Entry, StreamEvent } from '../server/engine/format/entry.js';
import { CompressedContent } from '../server/engine/worker/compressed-content.js';
import { inflateMemberSupported } from '../server/native/inflate-member.js';
import { memberArchive } from './support/gzip-members.js';

const text = (n: number): Buffer => Buffer.from('every byte of every file comes back\n'.repeat(Math.ceil(n / 36))).subarray(0, n);

/**
 * A .tar.gz-like file of independent members of `blocks`, the first member's CRC-32 wrong (its
 * bytes and length right), and its member list; both opened, as the writer receives them.
 */
function snapshotWithBadCrc(blocks: Buffer[]): { fds: number[]; data: Buffer; dir: string } {
  const { file, members, data, dir } = memberArchive(blocks, { badCrcFirst: true });
  fs.writeFileSync(path.join(dir, 'files.members.json'), JSON.stringify(members));
  const fds = [fs.openSync(path.join(dir, 'files.members.json'), 'r'), fs.openSync(file, 'r')];
  return { fds, data, dir };
}

const file = (p: string, dataRef: number, size: number, hash: boolean): Entry => ({
  kind: 'f', path: p, mode: 0o644, uid: 0, gid: 0, size, mtimeSec: 1, mtimeNsec: 2, link: '', dataRef, prevRef: -1,
  ...(hash ? { hash: crypto.createHash('sha256').update('whatever the writer checks').digest() } : {}),
});

/** The data events events() gives for the records `entries` (one batch), as one Buffer per file with content. */
async function contentOf(content: CompressedContent, entries: Entry[]): Promise<Buffer[]> {
  async function* once(): AsyncGenerator<StreamEvent[]> { yield entries.map((entry) => ({ type: 'entry', entry, hasData: false, ancestor: false, byDescriptor: false })); }
  const files: Buffer[][] = [];
  for await (const batch of content.events(once())) {
    for (const ev of batch) {
      if (ev.type === 'entry') files.push([]);
      else if (ev.type === 'data') files[files.length - 1]!.push(Buffer.from(ev.chunk));
    }
  }
  return files.map((parts) => Buffer.concat(parts));
}

const skip = !inflateMemberSupported() && 'the native addon was built without libdeflate';

test('compressed content of files with a hash: the members\' CRC is not computed (the writer checks each file\'s SHA-256)', { skip }, async () => {
  const { fds, data, dir } = snapshotWithBadCrc([text(300_000), crypto.randomBytes(200_000), text(50_000)]);
  const content = new CompressedContent(fds, 'acct/snap');
  try {
    const got = await contentOf(content, [file('a', 100, 5000, true), file('b', 290_000, 100_000, true)]);
    assert.ok(got[0]!.equals(data.subarray(100, 5100)));
    assert.ok(got[1]!.equals(data.subarray(290_000, 390_000)));
  } finally {
    await content.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('regression: compressed content of a file without a hash (an index from before hashes) is checked by the members\' CRC, also in a member read before without it', { skip }, async () => {
  const { fds, dir } = snapshotWithBadCrc([text(300_000), crypto.randomBytes(200_000), text(50_000)]);
  const content = new CompressedContent(fds, 'acct/snap');
  try {
    await assert.rejects(contentOf(content, [file('a', 100, 5000, true), file('old', 6000, 5000, false)]), /snapshot acct\/snap: .*CRC.* while reading "old": the destination copy is damaged/);
  } finally {
    await content.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
