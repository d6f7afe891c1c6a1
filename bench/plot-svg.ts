/**
 * The scale plot: seconds of a first backup against the number of files, both axes
 * logarithmic, one line per command, as a small self-contained SVG.
 */
import fs from 'node:fs';
import type { ScalePoint } from './rows-scale.js';

const SERIES: { name: string; label: string; color: string; dash?: string }[] = [
  { name: 'tidemark incremental (first)', label: 'Tidemark incremental (first)', color: '#0b6e4f' },
  { name: 'tidemark archive', label: 'Tidemark archive', color: '#08a045', dash: '6 3' },
  { name: 'rsync -a', label: 'rsync -a', color: '#1f4e9c' },
  { name: 'tar cf', label: 'tar cf', color: '#7a7a7a', dash: '2 3' },
  { name: 'restic backup (first)', label: 'restic backup (first)', color: '#c0392b' },
  { name: 'borg backup (first)', label: 'borg create (first)', color: '#d68910' },
];

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function scaleSvg(points: ScalePoint[]): string {
  const W = 720, H = 440, left = 70, right = 230, top = 40, bottom = 60;
  const pw = W - left - right, ph = H - top - bottom;
  const xs = points.map((p) => p.files);
  const ys = points.flatMap((p) => Object.values(p.seconds)).filter((v) => v > 0);
  const lx0 = Math.log10(Math.min(...xs)) - 0.15, lx1 = Math.log10(Math.max(...xs)) + 0.15;
  const ly0 = Math.floor(Math.log10(Math.min(...ys))), ly1 = Math.ceil(Math.log10(Math.max(...ys)));
  const X = (v: number): number => left + ((Math.log10(v) - lx0) / (lx1 - lx0 || 1)) * pw;
  const Y = (v: number): number => top + ph - ((Math.log10(v) - ly0) / (ly1 - ly0 || 1)) * ph;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="#fff"/>`);
  out.push(`<text x="${left}" y="22" font-size="14" font-weight="bold">First backup: seconds (durable, sync included) against files</text>`);
  // Grid and y ticks: 1, 2, 5 of each decade.
  for (let d = ly0; d <= ly1; d++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** d;
      if (Math.log10(v) > ly1 + 1e-9) continue;
      const y = Y(v).toFixed(1);
      out.push(`<line x1="${left}" x2="${left + pw}" y1="${y}" y2="${y}" stroke="${m === 1 ? '#ccc' : '#eee'}"/>`);
      out.push(`<text x="${left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle" fill="#444">${v >= 1 ? v : v.toPrecision(1)}</text>`);
    }
  }
  for (const x of xs) {
    out.push(`<line x1="${X(x).toFixed(1)}" x2="${X(x).toFixed(1)}" y1="${top}" y2="${top + ph}" stroke="#eee"/>`);
    out.push(`<text x="${X(x).toFixed(1)}" y="${top + ph + 18}" text-anchor="middle" fill="#444">${x.toLocaleString('en-US')}</text>`);
  }
  out.push(`<rect x="${left}" y="${top}" width="${pw}" height="${ph}" fill="none" stroke="#888"/>`);
  out.push(`<text x="${left + pw / 2}" y="${H - 18}" text-anchor="middle">files in the account (log scale)</text>`);
  out.push(`<text transform="translate(18 ${top + ph / 2}) rotate(-90)" text-anchor="middle">seconds (log scale)</text>`);
  SERIES.forEach((s, i) => {
    const pts = points.filter((p) => p.seconds[s.name] !== undefined).map((p) => [X(p.files), Y(p.seconds[s.name]!)] as const);
    if (!pts.length) return;
    out.push(`<polyline fill="none" stroke="${s.color}" stroke-width="2"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''} points="${pts.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(' ')}"/>`);
    for (const [x, y] of pts) out.push(`<circle cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="3" fill="${s.color}"/>`);
    const ly = top + 10 + i * 20;
    out.push(`<line x1="${left + pw + 15}" x2="${left + pw + 40}" y1="${ly}" y2="${ly}" stroke="${s.color}" stroke-width="2"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''}/>`);
    out.push(`<text x="${left + pw + 46}" y="${ly}" dominant-baseline="middle">${esc(s.label)}</text>`);
  });
  const notes = points.map((p) => `${p.files.toLocaleString('en-US')} files: ${(p.datasetBytes / 1048576).toFixed(0)} MiB`);
  notes.forEach((n, i) => out.push(`<text x="${left + pw + 15}" y="${top + 10 + SERIES.length * 20 + 16 + i * 16}" fill="#666">${esc(n)}</text>`));
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

export function writeScalePlot(file: string, points: ScalePoint[]): void {
  fs.writeFileSync(file, scaleSvg(points));
}
