// The CLI proper (main.ts runs this, or its bundle). Only the worker's early start is loaded
// before it is started (prestart.ts); then the rest.
import { applyCompilePolicy, applyGcPolicy } from './gc-policy.js';
import { applyMallocPolicy } from '../native/malloc-policy.js';
import { prestartWorkers } from './prestart.js';
import { preloadCommandGroup } from './command-table.js';

const args = process.argv.slice(2);
applyGcPolicy(args);
applyCompilePolicy(args);
applyMallocPolicy();

// The command's modules and the command line's are read while the worker is spawned.
preloadCommandGroup(args);
const run = import('./run.js');
await prestartWorkers(args);
await run;
