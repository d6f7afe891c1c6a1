// Makes the built CLI executable (tsc does not keep the mode of its outputs), then builds the
// native addon of the bridge socket (scripts/build-native.mjs).
import fs from 'node:fs';
import './build-native.mjs';
const cli = new URL('../dist/server/cli/main.js', import.meta.url);
if (fs.existsSync(cli)) fs.chmodSync(cli, 0o755);
