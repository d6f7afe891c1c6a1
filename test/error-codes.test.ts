/**
 * One error family with stable codes, mapped in one place per surface: the CLI to exit codes,
 * the JSON API to HTTP statuses, the web pages to a status and a translated message.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { cli, makeDataDir } from './support/cli.js';
import { UserError } from '../server/services/context.js';
import { ERROR_CODES, errorCodeOf, TidemarkError } from '../server/services/errors.js';
import { PermissionError } from '../server/services/permissions.js';
import { DestinationError } from '../server/destinations/types.js';
import { statusOf } from '../server/app/api/errors.js';
import { refusalOf, webErrorOf } from '../server/app/web-errors.js';
import { LOCALES } from '../server/i18n/index.js';

const dirs: string[] = [];
after(() => { for (const d of dirs) fs.rmSync(d, { recursive: true, force: true }); });

const translated = (lng: string, key: string): unknown => {
  const doc = JSON.parse(fs.readFileSync(new URL(`../../views/locales/${lng}.json`, import.meta.url), 'utf8')) as Record<string, Record<string, unknown>>;
  const [group, name] = key.split('.');
  return doc[group!]?.[name!];
};

test('regression: a service refusal that reached the web error handler was answered 500 and logged as a crash', () => {
  const busy = webErrorOf(new UserError('account "alice" is busy: a backup is running'));
  assert.deepEqual([busy.status, busy.key, busy.detail], [409, 'error.busy', 'account "alice" is busy: a backup is running']);
  const missing = webErrorOf(new UserError('no snapshot 20200101T000000Z-0000'));
  assert.deepEqual([missing.status, missing.key, missing.detail], [404, 'error.notFound', '']);
  const denied = webErrorOf(new PermissionError('backupNow'));
  assert.deepEqual([denied.status, denied.key], [403, 'error.forbidden']);
  // A destination's failure names the provider's host: never shown on a page.
  const remote = webErrorOf(new DestinationError('ssh backup.example.net:22: connection refused', 'unreachable'));
  assert.deepEqual([remote.status, remote.key, remote.detail], [500, 'error.destination', '']);
  const fault = webErrorOf(new Error('something broke'));
  assert.deepEqual([fault.status, fault.key, fault.detail], [500, 'error.internal', '']);
});

test('every error code has an API status, a web status and a message translated in every locale', () => {
  for (const code of ERROR_CODES) {
    const err = new UserError(`a ${code} error`, code);
    assert.equal(errorCodeOf(err), code);
    const status = statusOf(err);
    assert.ok(status >= 400 && status < 600, `${code}: API status ${status}`);
    const web = webErrorOf(err);
    assert.ok(web.status >= 400 && web.status < 600, `${code}: web status ${web.status}`);
    for (const lng of Object.keys(LOCALES)) assert.equal(typeof translated(lng, web.key), 'string', `${code}: ${web.key} in ${lng}`);
  }
});

test('a refusal thrown without a code gets the one its message meant to the API before: same statuses', () => {
  const cases: [Error, string, number][] = [
    [new UserError('no snapshot 20200101T000000Z-0000'), 'not-found', 404],
    [new UserError('account "bob" does not exist'), 'not-found', 404],
    [new UserError('job "nightly" exists already'), 'conflict', 409],
    [new UserError('account "bob" is busy: a restore is running'), 'busy', 409],
    [new UserError('task 7 is not yours to cancel'), 'forbidden', 403],
    [new PermissionError('download'), 'forbidden', 403],
    [new UserError('the keep count must be at least 1'), 'refused', 400],
    [new UserError('give --hidden or --visible', 'invalid-input'), 'invalid-input', 400],
    [new DestinationError('no space left', 'no-space'), 'destination-no-space', 500],
    [new Error('unforeseen'), 'internal', 500],
  ];
  for (const [err, code, status] of cases) {
    assert.equal(errorCodeOf(err), code, err.message);
    assert.equal(statusOf(err), status, err.message);
    assert.equal(err instanceof TidemarkError, !(err instanceof DestinationError) && code !== 'internal');
  }
});

test('the CLI exits 2 for invalid input and 1 for every other refusal, with the message unchanged', () => {
  const dataDir = makeDataDir({ panel: 'standalone', homeRoots: [] });
  dirs.push(dataDir);
  const missing = cli(dataDir, ['task', 'show', '999999']);
  assert.equal(missing.code, 1);
  assert.deepEqual(missing.json, { error: 'no task 999999' });
  const malformed = cli(dataDir, ['activity', '--csv']);
  assert.equal(malformed.code, 2);
  assert.deepEqual(malformed.json, { error: '--csv and --json: choose one' });
  const usage = cli(dataDir, ['destination', 'visibility', 'nowhere']);
  assert.equal(usage.code, 2);
  assert.deepEqual(usage.json, { error: 'give --hidden or --visible' });
});

test('regression: an account holder\'s page answered 409 to malformed input and to what is not there; refusalOf answers 400 and 404, 409 to a refusal', () => {
  const malformed = refusalOf(new UserError('path: a path may not contain ".."', 'invalid-input'));
  assert.deepEqual([malformed.status, malformed.key], [400, 'error.invalidInput']);
  const missing = refusalOf(new UserError('snapshot X records no WordPress site in "a"', 'not-found'));
  assert.deepEqual([missing.status, missing.key, missing.detail], [404, 'error.notFound', ''], 'what is not there says nothing more');
  const forbidden = refusalOf(new UserError('snapshot X is not yours to restore'));
  assert.equal(forbidden.status, 403);
  const refused = refusalOf(new UserError('the site cannot be restored as a site'));
  assert.deepEqual([refused.status, refused.key, refused.detail], [409, 'error.refused', 'the site cannot be restored as a site']);
  const busy = refusalOf(new UserError('account "alice" is busy: a restore is running'));
  assert.deepEqual([busy.status, busy.key], [409, 'error.busy'], 'a busy account says so, in the table\'s words');
  const destination = refusalOf(new UserError('could not reach backup.example.org:22', 'destination-unreachable'));
  assert.deepEqual([destination.status, destination.detail], [500, ''], 'never the provider\'s host to an account holder');
  const ownWords = refusalOf(new UserError('backups are paused for this account'), 'error.backupNowRefused');
  assert.deepEqual([ownWords.status, ownWords.key], [409, 'error.backupNowRefused'], 'a plain refusal may carry the action\'s own words');
  const ownWordsBusy = refusalOf(new UserError('account "alice" is busy: a backup is running'), 'error.backupNowRefused');
  assert.deepEqual([ownWordsBusy.status, ownWordsBusy.key], [409, 'error.busy'], 'any other code keeps the table\'s words');
});
