import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';

export interface WriterResult { files: number; directories: number; links: number; warningCount: number; warnings: unknown[] }

/**
 * Runs the restore writer on its own, as a separate process with `stream` (encoded index
 * records, written to `dir`/stream) on its standard input, into the new folder `intoFolder` of
 * `dir`/home; asserts it succeeds and returns its result (descriptor 3).
 */
export function runWriterOnStream(dir: string, stream: Buffer, intoFolder: string): { home: string; result: WriterResult } {
  const streamFile = path.join(dir, 'stream');
  fs.writeFileSync(streamFile, stream);
  const home = path.join(dir, 'home');
  fs.mkdirSync(home);
  const writer = new URL('../../server/engine/worker/restore-writer.js', import.meta.url).href;
  const input = fs.openSync(streamFile, 'r');
  let out: ReturnType<typeof spawnSync>;
  try {
    out = spawnSync(process.execPath, ['--input-type=module', '-e',
      `import(${JSON.stringify(writer)}).then((m) => m.runRestoreWriter({ home: ${JSON.stringify(home)}, intoFolder: ${JSON.stringify(intoFolder)} }))`],
    { stdio: [input, 'pipe', 'pipe', 'pipe'] });
  } finally {
    fs.closeSync(input);
  }
  if (out.status !== 0) throw new Error(`the restore writer exited ${out.status}: ${String(out.stderr)}`);
  return { home, result: JSON.parse(String(out.output[3])) as WriterResult };
}
