#!/usr/bin/env node
// `npm run build` also bundles the CLI and the account worker into a few files
// (scripts/bundle.mjs, dist/server/bundle/): Node's ES module loader costs about half a
// millisecond of CPU per file, and a backup's root process loaded 120 of them.
import { bundleIsCurrent } from './bundle-choice.js';

const bundle = new URL('../bundle/tidemark.js', import.meta.url);
const compiled = new URL('./entry.js', import.meta.url);
await import(bundleIsCurrent(bundle, compiled) ? bundle.href : compiled.href);
