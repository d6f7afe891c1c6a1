import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { compressMember, type GzipMember } from '../../server/engine/format/parallel-gzip.js';

/**
 * A .tar.gz-like file (files.tar.gz in a new temporary folder) of one independent gzip member
 * per block, and its member list, as a compressed snapshot holds them. `badCrcFirst`: the
 * first member's CRC-32 is wrong, its bytes and length right.
 */
export function memberArchive(blocks: Buffer[], { badCrcFirst = false } = {}): MemberArchive {
  const compressed = blocks.map((b) => compressMember(b));
  if (badCrcFirst) {
    const m = compressed[0]!;
    m.writeUInt32LE((m.readUInt32LE(m.length - 8) ^ 1) >>> 0, m.length - 8);
  }
  return memberArchiveOf(blocks, compressed);
}

export interface MemberArchive { file: string; members: GzipMember[]; data: Buffer; dir: string }

/** The same file of blocks already compressed, `compressed[i]` holding `blocks[i]`. */
export function memberArchiveOf(blocks: Buffer[], compressed: Buffer[]): MemberArchive {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tm-gzip-members-'));
  const members: GzipMember[] = [];
  let u = 0;
  let c = 0;
  blocks.forEach((b, i) => {
    members.push({ uOffset: u, cOffset: c });
    u += b.length;
    c += compressed[i]!.length;
  });
  const file = path.join(dir, 'files.tar.gz');
  fs.writeFileSync(file, Buffer.concat(compressed));
  return { file, members, data: Buffer.concat(blocks), dir };
}
