import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

let binding: string | null | undefined;

/**
 * The options every SQLite database is opened with. better-sqlite3 finds its addon through
 * the `bindings` package, which tries path after path (3 to 15 ms of every CLI run measured,
 * more than opening the database); where the package's own build put it, it is named directly.
 */
export function sqliteOptions(): { nativeBinding?: string } {
  if (binding === undefined) {
    try {
      const dir = path.dirname(createRequire(import.meta.url).resolve('better-sqlite3/package.json'));
      const file = path.join(dir, 'build', 'Release', 'better_sqlite3.node');
      binding = fs.existsSync(file) ? file : null;
    } catch {
      binding = null;
    }
  }
  return binding ? { nativeBinding: binding } : {};
}
