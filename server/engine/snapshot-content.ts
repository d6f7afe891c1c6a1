import zlib from 'node:zlib';
import type { Destination } from '../destinations/types.js';
import type { Structure } from '../store/jobs.js';
import type { Entry } from './format/entry.js';
import { parseTar, tarHeaders } from './format/tar.js';
import { layout } from './snapshot-layout.js';
import type { Selected } from './selection.js';

export type ContentEvent =
  | { type: 'entry'; sel: Selected }
  | { type: 'data'; chunk: Buffer }
  | { type: 'data-end' };

type TarEvent = Awaited<ReturnType<ReturnType<typeof parseTar>['next']>>['value'];

const headerLength = (e: Entry): number => tarHeaders(e.path === '' ? { ...e, path: '.' } : e).length;

/**
 * Yields the selected entries of a snapshot in order, each regular file followed by
 * its content. Incremental reads one blob per file; archive reads byte ranges of the
 * tar; compressed inflates the archive once from start to end, and seeks by gzip
 * member only for the rare entry whose content lies behind the read position.
 */
export async function* snapshotContent(dest: Destination, dir: string, structure: Structure, selected: Selected[]): AsyncGenerator<ContentEvent> {
  if (structure === 'compressed') {
    yield* compressedContent(dest, dir, selected);
    return;
  }
  for (const sel of selected) {
    yield { type: 'entry', sel };
    if (sel.entry.kind !== 'f') continue;
    const source = sel.contentFrom ?? sel.entry;
    if (source.size > 0) {
      const stream = structure === 'incremental'
        ? dest.createReadStream(`${dir}/${layout.blob(source.dataRef)}`)
        : dest.createReadStream(`${dir}/${layout.data('archive')}`, {
          start: source.dataRef + headerLength(source), end: source.dataRef + headerLength(source) + source.size,
        });
      let got = 0;
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        const part = got + chunk.length > source.size ? chunk.subarray(0, source.size - got) : chunk;
        got += part.length;
        if (part.length) yield { type: 'data', chunk: part };
        if (got >= source.size) break;
      }
      if (got !== source.size) throw new Error(`snapshot content is short for ${JSON.stringify(source.path)}: the destination copy is damaged`);
    }
    yield { type: 'data-end' };
  }
}

async function* compressedContent(dest: Destination, dir: string, selected: Selected[]): AsyncGenerator<ContentEvent> {
  const file = `${dir}/${layout.data('compressed')}`;
  let tar: AsyncGenerator<NonNullable<TarEvent>> | null = null;
  let position = -1;
  let pending: NonNullable<TarEvent> | null = null;
  const next = async (): Promise<NonNullable<TarEvent> | null> => {
    if (pending) { const p = pending; pending = null; return p; }
    if (!tar) tar = parseTar(dest.createReadStream(file).pipe(zlib.createGunzip())) as AsyncGenerator<NonNullable<TarEvent>>;
    const r = await tar.next();
    return r.done ? null : r.value;
  };

  try {
    for (const sel of selected) {
      yield { type: 'entry', sel };
      if (sel.entry.kind !== 'f') continue;
      const source = sel.contentFrom ?? sel.entry;
      if (source.dataRef <= position) {
        yield* seekOne(dest, dir, source);
        continue;
      }
      // Advance the sequential reader to the entry at source.dataRef.
      for (;;) {
        const ev = await next();
        if (!ev) throw new Error(`snapshot archive ends before ${JSON.stringify(source.path)}: the destination copy is damaged`);
        if (ev.type === 'entry' && ev.offset === source.dataRef) { position = ev.offset; break; }
      }
      let got = 0;
      for (;;) {
        const ev = await next();
        if (!ev) break;
        if (ev.type === 'data') { got += ev.chunk.length; yield { type: 'data', chunk: ev.chunk }; continue; }
        if (ev.type === 'data-end') break;
        pending = ev;
        break;
      }
      if (got !== source.size) throw new Error(`snapshot content is short for ${JSON.stringify(source.path)}: the destination copy is damaged`);
      yield { type: 'data-end' };
    }
  } finally {
    await (tar as AsyncGenerator<unknown> | null)?.return(undefined);
  }
}

async function* seekOne(dest: Destination, dir: string, source: Entry): AsyncGenerator<ContentEvent> {
  const members = JSON.parse((await dest.readFile(`${dir}/${layout.members}`)).toString('utf8')) as { uOffset: number; cOffset: number }[];
  let m = members[0] ?? { uOffset: 0, cOffset: 0 };
  for (const x of members) if (x.uOffset <= source.dataRef) m = x;
  const stream = dest.createReadStream(`${dir}/${layout.data('compressed')}`, { start: m.cOffset }).pipe(zlib.createGunzip());
  const start = source.dataRef + headerLength(source) - m.uOffset;
  let pos = 0;
  let got = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    const from = Math.max(0, start - pos);
    pos += chunk.length;
    if (from >= chunk.length) continue;
    const part = chunk.subarray(from, Math.min(chunk.length, from + source.size - got));
    got += part.length;
    if (part.length) yield { type: 'data', chunk: part };
    if (got >= source.size) break;
  }
  stream.destroy();
  if (got !== source.size) throw new Error(`snapshot content is short for ${JSON.stringify(source.path)}: the destination copy is damaged`);
  yield { type: 'data-end' };
}
