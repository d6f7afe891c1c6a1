// Makes the built CLI executable (tsc does not keep the mode of its outputs).
import fs from 'node:fs';
const cli = new URL('../dist/server/cli/main.js', import.meta.url);
if (fs.existsSync(cli)) fs.chmodSync(cli, 0o755);
