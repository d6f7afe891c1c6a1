import type { GzipMember } from './parallel-gzip.js';
import { parseJson, SnapshotInputError } from '../untrusted-input.js';

/**
 * A compressed snapshot's gzip member list (files.members.json) from its bytes, checked:
 * a list of whole non-negative offsets, both increasing. Untrusted input (the destination's):
 * a refusal names `what`.
 */
export function parseMembers(raw: Buffer, what: string): GzipMember[] {
  const doc = parseJson(raw, what);
  const bad = (why: string): never => { throw new SnapshotInputError(`${what}: ${why}: refused as damaged or hostile`); };
  if (!Array.isArray(doc)) bad('not a list');
  const out: GzipMember[] = [];
  const offset = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
  for (const x of doc as unknown[]) {
    const m = x as Partial<GzipMember> | null;
    if (!m || typeof m !== 'object' || !offset(m.uOffset) || !offset(m.cOffset)) bad('a member without whole non-negative offsets');
    const prev = out[out.length - 1];
    if (prev && (m!.uOffset! < prev.uOffset || m!.cOffset! < prev.cOffset)) bad('offsets that go backwards');
    out.push({ uOffset: m!.uOffset!, cOffset: m!.cOffset! });
  }
  return out;
}
