// Makes the built CLI executable (tsc does not keep the mode of its outputs), builds the
// native addon of the bridge socket (scripts/build-native.mjs), then bundles the CLI and the
// account worker (scripts/bundle.mjs), last: the bundle must be newer than the compiled entry.
import fs from 'node:fs';
import './build-native.mjs';
import './bundle.mjs';
const cli = new URL('../dist/server/cli/main.js', import.meta.url);
if (fs.existsSync(cli)) fs.chmodSync(cli, 0o755);
