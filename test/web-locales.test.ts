import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LOCALES, LOCALE_DIR, readLocale } from '../server/i18n/index.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PLURAL = /_(zero|one|two|few|many|other)$/;

function flatten(obj: Record<string, unknown>, prefix = ''): Map<string, string> {
  const out = new Map<string, string>();
  for (const [k, v] of Object.entries(obj)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v !== null && typeof v === 'object') for (const [kk, vv] of flatten(v as Record<string, unknown>, key)) out.set(kk, vv);
    else out.set(key, String(v));
  }
  return out;
}

const baseKeys = (m: Map<string, string>): Set<string> => new Set([...m.keys()].map((k) => k.replace(PLURAL, '')));
const variables = (s: string): string[] => [...s.matchAll(/\{\{\s*(\w+)\s*\}\}/g)].map((x) => x[1]!).sort();
const locales = Object.keys(LOCALES);
const en = flatten(readLocale('en'));

function filesUnder(dir: string, ext: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((d) => d.isFile() && d.name.endsWith(ext)).map((d) => path.join(d.parentPath, d.name));
}

test('the locale files are exactly the languages offered, English and at least two more', () => {
  const files = fs.readdirSync(LOCALE_DIR).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5)).sort();
  assert.deepEqual(files, [...locales].sort());
  assert.ok(locales.includes('en') && locales.length >= 3);
});

for (const lng of locales) {
  test(`locale ${lng} has every key, every plural form of its language, and the same placeholders`, () => {
    const m = flatten(readLocale(lng));
    const missing = [...baseKeys(en)].filter((k) => !baseKeys(m).has(k));
    assert.deepEqual(missing, [], `missing in ${lng}.json`);
    const extra = [...baseKeys(m)].filter((k) => !baseKeys(en).has(k));
    assert.deepEqual(extra, [], `not in en.json (a typo?)`);
    const categories = new Intl.PluralRules(lng).resolvedOptions().pluralCategories;
    for (const base of new Set([...m.keys(), ...en.keys()].filter((k) => PLURAL.test(k)).map((k) => k.replace(PLURAL, '')))) {
      for (const c of categories) assert.ok(m.has(`${base}_${c}`), `${lng}: ${base}_${c}`);
    }
    for (const [k, v] of m) {
      assert.notEqual(v.trim(), '', `${lng}: ${k} is empty`);
      const enValue = en.get(k) ?? en.get(k.replace(PLURAL, '_other'));
      assert.deepEqual([...new Set(variables(v))], [...new Set(variables(enValue!))], `${lng}: ${k} placeholders`);
    }
  });
}

test('every key the views and routes use is in the English file', () => {
  const used = new Set<string>();
  for (const f of filesUnder(path.join(ROOT, 'views'), '.ejs')) {
    for (const m of fs.readFileSync(f, 'utf8').matchAll(/\bt\('([A-Za-z0-9_.-]+)'[,)]/g)) used.add(m[1]!);
  }
  for (const f of filesUnder(path.join(ROOT, 'server', 'app'), '.ts')) {
    for (const m of fs.readFileSync(f, 'utf8').matchAll(/'((?:error|signedOut)\.[A-Za-z]+)'/g)) used.add(m[1]!);
  }
  assert.ok(used.size > 50, `found ${used.size} keys: is the scan still working?`);
  // Keys the views build from a value: every value they can meet.
  for (const s of ['completed', 'partial', 'failed', 'queued', 'running', 'cancelled']) used.add(`status.${s}`);
  for (const r of ['admin', 'reseller', 'user']) used.add(`role.${r}`);
  for (const i of ['files', 'databases', 'database-users']) used.add(`item.${i}`);
  for (const t of ['restore', 'download', 'backup']) used.add(`taskType.${t}`);
  for (const t of ['local', 'ssh']) used.add(`admin.destinations.types.${t}`);
  for (const s of ['incremental', 'archive', 'compressed']) used.add(`admin.jobs.structures.${s}`);
  const known = baseKeys(en);
  assert.deepEqual([...used].filter((k) => !known.has(k)).sort(), []);
});
