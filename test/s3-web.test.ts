/**
 * The provider's pages for an s3 destination: added with the form (the bucket tried first),
 * shown with its secret masked and a warning for plain http, managed without retyping the
 * secret, validated, and its free space shown as unknown without a stated quota.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { cli, ok } from './support/cli.js';
import { startWebFixture, WebClient, type WebFixture } from './support/web-daemon.js';
import { sharedCeph, type CephCluster } from './support/ceph.js';

let fx: WebFixture;
let ceph: CephCluster;
let admin: WebClient;
let csrf: string;
let bucket: string;
let id: string;

before(async () => {
  ceph = await sharedCeph();
  fx = await startWebFixture();
  admin = new WebClient(fx.base);
  assert.equal((await admin.get(fx.loginUrl('root', 'admin'))).status, 200);
  csrf = await admin.csrf();
  bucket = await ceph.newBucket('web');
});

after(async () => { await fx?.stop(); });

const form = (over: Record<string, string> = {}): Record<string, string> => ({
  _csrf: csrf, name: 'objects', type: 's3', endpoint: ceph.endpoint, region: 'us-east-1', bucket, prefix: 'fleet', serverFolder: 'web-1',
  accessKeyId: ceph.accessKey, secretAccessKey: ceph.secretKey, addressing: 'path', s3Parallel: '4', s3Timeout: '30', attempts: '3', partSize: '8', ...over,
});

test('the form offers s3, explains refused credentials at the endpoint field, and adds nothing then', async () => {
  const page = await admin.get('/admin/destinations/new');
  assert.match(page.body, /name="type" value="s3"/);
  assert.match(page.body, /name="secretAccessKey" autocomplete="new-password"/);
  const bad = await admin.post('/admin/destinations', form({ secretAccessKey: 'wrong-secret' }));
  assert.equal(bad.status, 400);
  assert.match(bad.body, /refused the credentials \(SignatureDoesNotMatch\)/);
  assert.match(bad.body, /name="endpoint" value="[^"]+" placeholder="[^"]+" aria-invalid="true"/);
  assert.ok(!bad.body.includes('wrong-secret'), 'a refused form does not carry the secret back');
  assert.equal(cli(fx.dataDir, ['destination', 'show', 'objects']).code, 1);
});

test('an s3 destination added with the form is shown with its secret masked, a plain-http warning and unknown free space', async () => {
  const r = await admin.post('/admin/destinations', form());
  assert.equal(r.status, 303, r.body);
  id = r.headers.get('location')!.split('/').pop()!;
  const page = await admin.get(`/admin/destinations/${id}`);
  assert.equal(page.status, 200);
  assert.ok(!page.body.includes(ceph.secretKey), 'the secret is never shown');
  assert.match(page.body, /secretAccessKey<\/dt><dd><code>\*{8}<\/code>/);
  assert.match(page.body, /id="destination-warning"[^>]*>[^<]*plain http/);
  const list = await admin.get('/admin/destinations');
  assert.ok(list.body.includes(`s3://${bucket}/fleet/web-1`));
  const space = JSON.parse((await admin.get(`/admin/destinations/${id}/space`, { accept: 'application/json' })).body);
  assert.deepEqual(space, { ok: true, space: null });
  const d = ok(cli(fx.dataDir, ['destination', 'show', 'objects']));
  assert.equal(d.settings.parallelTransfers, 4);
  assert.equal(d.settings.timeoutMs, 30000);
  assert.equal(d.settings.maxAttempts, 3);
});

test('managing it changes only what was changed, keeps the stored secret, and validation works', async () => {
  const edit = await admin.get(`/admin/destinations/${id}/edit`);
  assert.match(edit.body, /name="bucket" value="[^"]+"/);
  assert.ok(!edit.body.includes(ceph.secretKey));
  assert.match(edit.body, /stored, not shown/);
  const values = form({ name: 'objects', partSize: '16', quota: '5', secretAccessKey: '' });
  delete values.type;
  const r = await admin.post(`/admin/destinations/${id}/edit`, values);
  assert.equal(r.status, 303, r.body);
  const d = ok(cli(fx.dataDir, ['destination', 'show', 'objects']));
  assert.equal(d.settings.partSizeMb, 16);
  assert.equal(d.settings.quotaGb, 5);
  assert.equal(d.space.totalBytes, 5e9);
  const v = ok(cli(fx.dataDir, ['destination', 'validate', 'objects']));
  assert.equal(v.ok, true, 'the stored secret still works');
  assert.equal((await admin.post(`/admin/destinations/${id}/validate`, { _csrf: csrf })).status, 303);
});
