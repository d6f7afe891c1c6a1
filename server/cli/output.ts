import { clipLongRuns, QUOTED_INPUT_MAX, quoteInput } from '../util/input-checks.js';

/** CLI output: one JSON document with --json, aligned text otherwise. */
export function printJson(doc: unknown): void {
  process.stdout.write(JSON.stringify(doc, null, 2) + '\n');
}

export function printTable(rows: Record<string, unknown>[], columns: string[]): void {
  if (rows.length === 0) {
    process.stdout.write('(none)\n');
    return;
  }
  const cell = (v: unknown): string => (v === null || v === undefined ? '-' : Array.isArray(v) ? v.join(',') : String(v)).replace(/\n/g, '\\n');
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (vals: string[]): string => vals.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd() + '\n';
  process.stdout.write(line(columns.map((c) => c.toUpperCase())));
  for (const r of rows) process.stdout.write(line(columns.map((c) => cell(r[c]))));
}

export function printRecord(doc: Record<string, unknown>): void {
  const width = Math.max(...Object.keys(doc).map((k) => k.length));
  for (const [k, v] of Object.entries(doc)) {
    const text = v !== null && typeof v === 'object' ? JSON.stringify(v) : String(v);
    process.stdout.write(`${k.padEnd(width)}  ${text}\n`);
  }
}

export const humanBytes = (n: number): string => {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
};

/** A task's progress in a few words: phase, files and bytes so far. */
export function progressText(p: Record<string, unknown>): string {
  const parts: string[] = [];
  if (typeof p.phase === 'string') parts.push(p.phase);
  if (typeof p.files === 'number') parts.push(`${p.files} files`);
  if (typeof p.bytes === 'number') parts.push(humanBytes(p.bytes));
  return parts.join(', ');
}

/**
 * An error message with every long or control-character-bearing command-line value it repeats
 * (commander quotes the bad value, a service may name it) cut to a short, escaped prefix, and any
 * other run of 200 characters without a space cut the same way: a 100 KB value is never echoed whole.
 */
export function clipEchoedInput(message: string, argv: readonly string[] = process.argv.slice(2)): string {
  let out = message;
  // A value of whitespace alone is left: replacing it would mangle every line of the message.
  const risky = [...new Set(argv)].filter((v) => v.trim() !== '' && (v.length > QUOTED_INPUT_MAX || /[\x00-\x1f\x7f]/.test(v)))
    .sort((a, b) => b.length - a.length);
  for (const v of risky) out = out.split(v).join(quoteInput(v));
  return clipLongRuns(out);
}
