import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { S3Destination } from '../server/destinations/s3.js';
import { S3_DEFAULTS, type S3Settings } from '../server/destinations/s3-settings.js';
import { sharedCeph, type CephCluster } from './support/ceph.js';
import { destinationConformance } from './support/destination-conformance.js';

let ceph: CephCluster;
const made: S3Destination[] = [];

before(async () => { ceph = await sharedCeph(); });
after(async () => { for (const d of made) await d.close(); });

async function settings(over: Partial<S3Settings> = {}): Promise<S3Settings> {
  return {
    ...S3_DEFAULTS, endpoint: ceph.endpoint, region: ceph.region, bucket: await ceph.newBucket('conf'), serverFolder: 'server-a',
    accessKeyId: ceph.accessKey, secretAccessKey: ceph.secretKey, ...over,
  };
}

async function fresh(over: Partial<S3Settings> = {}): Promise<S3Destination> {
  const d = new S3Destination(await settings(over));
  made.push(d);
  return d;
}

destinationConformance('s3 (Ceph radosgw)', () => fresh(), { serverSideClone: false, hardLinks: false });
