import { after } from 'node:test';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LocalDestination } from '../server/destinations/local.js';
import { destinationConformance } from './support/destination-conformance.js';

const made: string[] = [];
after(() => { for (const d of made) fs.rmSync(d, { recursive: true, force: true }); });

destinationConformance('local', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-conf-'));
  made.push(dir);
  return new LocalDestination(dir);
}, { serverSideClone: false });
