#!/usr/bin/env node
// Only the worker's early start is loaded before it is started (prestart.ts); then the rest.
import { prestartWorkers } from './prestart.js';

await prestartWorkers(process.argv.slice(2));
await import('./run.js');
