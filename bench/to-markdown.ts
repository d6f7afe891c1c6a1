/**
 * node dist/bench/to-markdown.js FILE.json: the tables and the goals of a `--json` file as
 * Markdown (for docs/benchmarks.md), the same figures as the bench prints.
 */
import fs from 'node:fs';
import { resultsFromJson } from './report.js';
import type { ScalePoint } from './rows-scale.js';

interface Latency { n: number; p50: number; p99: number; max: number }

const file = process.argv[2];
if (!file) { process.stderr.write('usage: node dist/bench/to-markdown.js FILE.json\n'); process.exit(2); }
const doc = JSON.parse(fs.readFileSync(file, 'utf8'));
const out: string[] = [];
if (doc.rows.length || doc.checks.length) out.push(resultsFromJson(doc).markdown());
const scale = doc.scale as ScalePoint[] | undefined;
if (scale?.length) {
  const names = [...new Set(scale.flatMap((p) => Object.keys(p.seconds)))];
  out.push('', `| files | MiB | ${names.join(' | ')} | Tidemark peak MiB (incremental / archive) | index KiB |`, `|---|---|${names.map(() => '---|').join('')}---|---|`);
  for (const p of scale) {
    out.push(`| ${p.files} | ${(p.datasetBytes / 1048576).toFixed(0)} | ${names.map((n) => p.seconds[n]?.toFixed(2) ?? '').join(' | ')} | ${Object.values(p.tidemarkPeakMiB).map((v) => v.toFixed(0)).join(' / ')} | ${(p.indexBytes / 1024).toFixed(0)} |`);
  }
}
const cat = doc.catalog as Record<string, unknown> | undefined;
if (cat) {
  out.push('', '| catalog request | n | p50 ms | p99 ms | max ms |', '|---|---|---|---|---|');
  const label: Record<string, string> = {
    apiSnapshotListMs: 'GET /api/v1/snapshots?account=X (root socket)',
    cliSnapshotListMs: 'tidemark snapshot list --account X --json (whole process)',
    accountSnapshotPageMs: 'account holder\'s /snapshots page',
    folderApiMs: 'GET /api/v1/snapshots/ID/files?path=big (100,000 entries)',
    folderPageMs: 'web file browser page of the 100,000-entry folder',
  };
  for (const [k, l] of Object.entries(label)) {
    const v = cat[k] as Latency | undefined;
    if (v) out.push(`| ${l} | ${v.n} | ${v.p50.toFixed(1)} | ${v.p99.toFixed(1)} | ${v.max.toFixed(1)} |`);
  }
}
process.stdout.write(`${out.join('\n')}\n`);
