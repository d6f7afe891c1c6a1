/**
 * The benchmark's figures: rows (one command each, with the row it is compared to), goals
 * checked against them, free-form facts (sizes, bytes sent), printed as a table and written
 * as JSON.
 */
import fs from 'node:fs';
import type { Measure } from './measure.js';

export interface Row {
  /** The comparison the row belongs to (printed as a heading). */
  group: string;
  name: string;
  m: Measure;
  /** The row this one is compared to (same group): its ratio is seconds / ref's seconds. */
  ref?: string;
  /** Output size in bytes, where it matters. */
  size?: number;
}

export interface Check {
  text: string;
  value: number;
  /** The goal: value ≤ limit. */
  limit: number;
  unit: 'x' | 's' | 'ms' | 'MiB' | 'MB';
  ok: boolean;
}

export class Results {
  readonly rows: Row[] = [];
  readonly checks: Check[] = [];
  readonly facts: Record<string, unknown> = {};
  readonly sections: Record<string, unknown> = {};

  add(group: string, name: string, m: Measure | undefined, extra: { ref?: string; size?: number } = {}): Row | undefined {
    if (!m) return undefined;
    const row: Row = { group, name, m, ...extra };
    this.rows.push(row);
    return row;
  }

  /** Adds every measure of `measures`, each compared to `ref` when given (not the ref itself). */
  addAll(group: string, measures: Map<string, import('./measure.js').Measure>, ref?: string): void {
    for (const [name, m] of measures) this.add(group, name, m, ref && name !== ref ? { ref } : {});
  }

  find(name: string): Row | undefined {
    return this.rows.find((r) => r.name === name);
  }

  ratio(name: string, ref: string): number | undefined {
    const a = this.find(name);
    const b = this.find(ref);
    return a && b ? a.m.seconds / b.m.seconds : undefined;
  }

  /** A goal on the ratio of two rows (skipped when either is missing). */
  checkRatio(text: string, name: string, ref: string, limit: number): void {
    const v = this.ratio(name, ref);
    if (v !== undefined) this.check(text, v, limit, 'x');
  }

  check(text: string, value: number, limit: number, unit: Check['unit']): void {
    this.checks.push({ text, value, limit, unit, ok: value <= limit });
  }

  print(out: NodeJS.WritableStream = process.stdout): void {
    const w = (s: string): void => { out.write(`${s}\n`); };
    let group = '';
    if (this.rows.length) w(`\n${'command'.padEnd(64)} ${'seconds'.padStart(8)} ${'ratio'.padStart(8)} ${'peak MiB'.padStart(9)} ${'size MiB'.padStart(9)}  runs`);
    for (const r of this.rows) {
      if (r.group !== group) { group = r.group; w(`-- ${group}`); }
      const ref = r.ref ? this.find(r.ref) : undefined;
      const ratio = ref ? `${(r.m.seconds / ref.m.seconds).toFixed(2)}x` : '';
      w(`${r.name.padEnd(64)} ${r.m.seconds.toFixed(2).padStart(8)} ${ratio.padStart(8)} ${(r.m.peakKiB / 1024).toFixed(0).padStart(9)} ${(r.size !== undefined ? (r.size / 1048576).toFixed(1) : '').padStart(9)}  ${r.m.all.map((s) => s.toFixed(2)).join(' ')}`);
    }
    if (this.checks.length) {
      w('\ngoals (every timing includes the final sync):');
      for (const c of this.checks) {
        const v = c.unit === 'x' ? `${c.value.toFixed(2)}x (goal ≤ ${c.limit}x)` : `${c.value.toFixed(c.unit === 's' ? 3 : 1)} ${c.unit} (goal ≤ ${c.limit} ${c.unit})`;
        w(`  ${c.ok ? 'met ' : 'MISS'}  ${c.text}: ${v}`);
      }
    }
  }

  /** Markdown table of the rows (for docs/benchmarks.md). */
  markdown(): string {
    const lines = this.rows.length ? ['| group | command | seconds (best) | ratio | peak MiB | size MiB |', '|---|---|---|---|---|---|'] : [];
    for (const r of this.rows) {
      const ref = r.ref ? this.find(r.ref) : undefined;
      const ratio = ref ? `${(r.m.seconds / ref.m.seconds).toFixed(2)}x of ${ref.name.replace(/\|/g, '\\|')}` : '';
      lines.push(`| ${r.group} | ${r.name.replace(/\|/g, '\\|')} | ${r.m.seconds.toFixed(2)} | ${ratio} | ${(r.m.peakKiB / 1024).toFixed(0)} | ${r.size !== undefined ? (r.size / 1048576).toFixed(1) : ''} |`);
    }
    if (this.checks.length) {
      if (lines.length) lines.push('');
      lines.push('| goal | measured | limit | |', '|---|---|---|---|');
      for (const c of this.checks) lines.push(`| ${c.text.replace(/\|/g, '\\|')} | ${c.value.toFixed(c.unit === 'x' ? 2 : 3)}${c.unit === 'x' ? 'x' : ` ${c.unit}`} | ${c.limit} | ${c.ok ? 'met' : 'MISS'} |`);
    }
    return lines.join('\n');
  }

  toJson(): unknown {
    return {
      rows: this.rows.map((r) => ({
        group: r.group, name: r.name, seconds: r.m.seconds, runs: r.m.all, ...(r.m.cpu ? { cpuSeconds: r.m.cpu } : {}), peakMiB: r.m.peakKiB / 1024,
        ...(r.ref ? { ref: r.ref, ratio: this.ratio(r.name, r.ref) } : {}), ...(r.size !== undefined ? { sizeBytes: r.size } : {}),
      })),
      checks: this.checks,
      facts: this.facts,
      ...this.sections,
    };
  }

  writeJson(file: string, meta: Record<string, unknown>): void {
    fs.writeFileSync(file, `${JSON.stringify({ ...meta, ...(this.toJson() as object) }, null, 2)}\n`);
  }
}

/** Results read back from a --json file (for tables written after the run). */
export function resultsFromJson(doc: {
  rows: { group: string; name: string; seconds: number; runs: number[]; peakMiB: number; ref?: string; sizeBytes?: number }[];
  checks: Check[]; facts?: Record<string, unknown>;
}): Results {
  const r = new Results();
  for (const row of doc.rows) {
    r.add(row.group, row.name, { seconds: row.seconds, peakKiB: row.peakMiB * 1024, all: row.runs },
      { ...(row.ref ? { ref: row.ref } : {}), ...(row.sizeBytes !== undefined ? { size: row.sizeBytes } : {}) });
  }
  r.checks.push(...doc.checks);
  Object.assign(r.facts, doc.facts ?? {});
  return r;
}
