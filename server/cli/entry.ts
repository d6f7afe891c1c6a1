// The CLI proper (main.ts runs this, or its bundle). Only the worker's early start is loaded
// before it is started (prestart.ts); then the rest.
import { applyGcPolicy } from './gc-policy.js';
import { applyMallocPolicy } from '../native/malloc-policy.js';
import { prestartWorkers } from './prestart.js';

applyGcPolicy(process.argv.slice(2));
applyMallocPolicy();

await prestartWorkers(process.argv.slice(2));
await import('./run.js');
