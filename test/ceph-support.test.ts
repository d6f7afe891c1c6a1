import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { S3Client, PutObjectCommand, GetObjectCommand } from '@aws-sdk/client-s3';
import { sharedCeph } from './support/ceph.js';

test('the shared test cluster answers S3 with the user it made, and is the same cluster for a second caller', async () => {
  const ceph = await sharedCeph();
  const again = await sharedCeph();
  assert.equal(again.endpoint, ceph.endpoint);
  assert.ok(fs.existsSync(ceph.conf));
  const bucket = await ceph.newBucket('support');
  const s3 = new S3Client({ endpoint: ceph.endpoint, region: ceph.region, forcePathStyle: true, credentials: { accessKeyId: ceph.accessKey, secretAccessKey: ceph.secretKey } });
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'a b/ü', Body: 'hello' }));
  const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'a b/ü' }));
  assert.equal(await got.Body!.transformToString(), 'hello');
  s3.destroy();
  const stats = JSON.parse(await ceph.admin(['bucket', 'stats', '--bucket', bucket])) as { bucket: string };
  assert.equal(stats.bucket, bucket);
});
