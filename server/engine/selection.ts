import { normaliseRelative, parentOf, type BytePath } from '../util/byte-path.js';
import type { Entry } from './format/entry.js';
import type { Destination } from '../destinations/types.js';
import { readIndexChildren } from './snapshot-index.js';

export interface Selected {
  entry: Entry;
  /** Sent only so the directory exists; an existing one is left alone. */
  ancestor: boolean;
  /** For a hard link whose first path is not restored: the entry whose content to send. */
  contentFrom: Entry | null;
}

/**
 * Picks the entries below the chosen paths (all when none), adds their parent
 * directories, and turns hard links to unselected files into real files.
 */
export function selectEntries(index: Entry[], paths: BytePath[]): Selected[] {
  const prefixes = paths.map(normaliseRelative);
  const all = prefixes.length === 0 || prefixes.includes('');
  const byPath = new Map<BytePath, Entry>();
  for (const e of index) byPath.set(e.path, e);
  for (const p of prefixes) {
    if (!all && !byPath.has(p)) throw new NotInSnapshotError(`not in this snapshot: ${Buffer.from(p, 'latin1').toString('utf8')}`);
  }
  // A set and a walk up the entry's own ancestors: N chosen paths against M entries cost
  // M × depth, not N × M (this runs in the daemon's event loop).
  const chosenSet = new Set(prefixes);
  const chosen = (p: BytePath): boolean => {
    if (all) return true;
    for (let a = p; ; a = parentOf(a)) {
      if (chosenSet.has(a)) return true;
      if (a === '') return false;
    }
  };
  const ancestors = new Set<BytePath>();
  if (!all) {
    for (const p of prefixes) for (let a = parentOf(p); ; a = parentOf(a)) { ancestors.add(a); if (a === '') break; }
  }
  const out: Selected[] = [];
  const relinked = new Map<BytePath, BytePath>();
  for (const e of index) {
    if (chosen(e.path)) {
      if (e.kind === 'h' && !chosen(e.link)) {
        const first = relinked.get(e.link);
        if (first !== undefined) {
          out.push({ entry: { ...e, link: first }, ancestor: false, contentFrom: null });
        } else {
          const source = byPath.get(e.link);
          if (!source || source.kind !== 'f') continue;
          relinked.set(e.link, e.path);
          out.push({ entry: { ...source, path: e.path, kind: 'f' }, ancestor: false, contentFrom: source });
        }
        continue;
      }
      out.push({ entry: e, ancestor: false, contentFrom: null });
    } else if (ancestors.has(e.path) && e.kind === 'd') {
      out.push({ entry: e, ancestor: true, contentFrom: null });
    }
  }
  return out;
}

/** The direct children of a directory in a snapshot, for browsing (streamed: the index is not held whole). */
export async function listChildren(dest: Destination, snapshotDir: string, dir: BytePath): Promise<Entry[]> {
  const d = normaliseRelative(dir);
  const found = await readIndexChildren(dest, snapshotDir, d);
  if (!found) throw new NotInSnapshotError(`not in this snapshot: ${Buffer.from(d, 'latin1').toString('utf8')}`);
  return found.parent.kind === 'd' ? found.children : [found.parent];
}

export class NotInSnapshotError extends Error {}
