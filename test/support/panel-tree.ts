import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The source tree the tests run from (dist/test/support → the repository). */
export const REPO = fileURLToPath(new URL('../../../', import.meta.url));
export const INSTALL = path.join(REPO, 'install', 'install.sh');
export const CALLS = 'panel-calls.log';

/**
 * Stand-ins for the panel tools the installer calls: each appends its name and argv,
 * tab-separated, to <root>/panel-calls.log, and succeeds.
 */
function fakeTool(root: string, rel: string): void {
  const file = path.join(root, rel);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, `#!/bin/bash\n{ printf '%s' "\${0##*/}"; printf '\\t%s' "$@"; printf '\\n'; } >> '${path.join(root, CALLS)}'\n`, { mode: 0o755 });
}

/** The directories every Debian server has. */
function baseTree(): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tidemark-root-'));
  // Like / on a server: account workers (running as the account) must reach the installed application.
  fs.chmodSync(root, 0o755);
  for (const d of ['etc', 'usr/local/bin', 'var/lib', 'tmp']) fs.mkdirSync(path.join(root, d), { recursive: true });
  fs.writeFileSync(path.join(root, 'etc/hostname'), 'server.test\n');
  return root;
}

/** The files of a cPanel & WHM server the installer looks at or writes beside. */
export function makeCpanelTree(): string {
  const root = baseTree();
  for (const d of ['usr/local/cpanel/3rdparty/bin', 'usr/local/cpanel/whostmgr/docroot/cgi', 'usr/local/cpanel/whostmgr/docroot/addon_plugins',
    'usr/local/cpanel/base/frontend/jupiter', 'usr/local/cpanel/Cpanel/Config/ConfigObj/Driver', 'var/cpanel/apps', 'var/cpanel/users']) {
    fs.mkdirSync(path.join(root, d), { recursive: true });
  }
  fs.writeFileSync(path.join(root, 'usr/local/cpanel/version'), '11.126.0.5\n');
  fs.writeFileSync(path.join(root, 'usr/local/cpanel/3rdparty/bin/other-vendor-hook'), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
  fs.writeFileSync(path.join(root, 'usr/local/cpanel/whostmgr/docroot/addon_plugins/other.png'), 'PNG');
  for (const t of ['bin/register_appconfig', 'bin/unregister_appconfig', 'scripts/install_plugin', 'scripts/uninstall_plugin', 'bin/manage_hooks']) {
    fakeTool(root, `usr/local/cpanel/${t}`);
  }
  return root;
}

/** The files of a DirectAdmin server, with a provider's own custom hook scripts. */
export function makeDirectAdminTree(): string {
  const root = baseTree();
  for (const d of ['usr/local/directadmin/conf', 'usr/local/directadmin/plugins/other_plugin', 'usr/local/directadmin/scripts/custom/user_create_post',
    'usr/local/directadmin/data/users']) {
    fs.mkdirSync(path.join(root, d), { recursive: true });
  }
  fs.writeFileSync(path.join(root, 'usr/local/directadmin/directadmin'), 'ELF', { mode: 0o755 });
  fs.writeFileSync(path.join(root, 'usr/local/directadmin/conf/directadmin.conf'), 'port=2222\n');
  fs.writeFileSync(path.join(root, 'usr/local/directadmin/plugins/other_plugin/plugin.conf'), 'id=other_plugin\n');
  fs.writeFileSync(path.join(root, 'usr/local/directadmin/scripts/custom/user_destroy_pre.sh'), '#!/bin/sh\n# the provider\'s own\nexit 0\n', { mode: 0o700 });
  fs.writeFileSync(path.join(root, 'usr/local/directadmin/scripts/custom/user_create_post/provider.sh'), '#!/bin/sh\nexit 0\n', { mode: 0o700 });
  return root;
}

export interface Run { code: number; stdout: string; stderr: string }

export function runScript(script: string, args: string[], env: NodeJS.ProcessEnv = {}, input?: string): Run {
  const r = spawnSync('bash', [script, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, input: input ?? '', maxBuffer: 16 << 20 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Runs the installer, failing the test with its output when it fails. */
export function install(root: string, args: string[] = []): Run {
  const r = runScript(INSTALL, ['--prefix', root, ...args]);
  if (r.code !== 0) throw new Error(`install.sh exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
  return r;
}

/** Runs the uninstaller the installer left in the application directory. */
export function uninstall(root: string, args: string[] = [], appDir = '/usr/local/tidemark'): Run {
  const script = path.join(root, appDir, 'install/uninstall.sh');
  const r = runScript(script, ['--prefix', root, ...args]);
  if (r.code !== 0) throw new Error(`uninstall.sh exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
  return r;
}

/** The panel tool calls recorded so far: [tool, ...argv]. */
export function calls(root: string): string[][] {
  const file = path.join(root, CALLS);
  if (!fs.existsSync(file)) return [];
  return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => l.split('\t'));
}

/** Every entry under root with its type, mode and content hash, except the paths given. */
export function listing(root: string, except: string[] = []): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    for (const name of fs.readdirSync(path.join(root, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      if (except.some((e) => r === e || r.startsWith(`${e}/`))) continue;
      const st = fs.lstatSync(path.join(root, r));
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isDirectory()) { out.push(`d ${mode} ${r}`); walk(r); }
      else if (st.isSymbolicLink()) out.push(`l ${r} -> ${fs.readlinkSync(path.join(root, r))}`);
      else out.push(`f ${mode} ${r} ${crypto.createHash('sha256').update(fs.readFileSync(path.join(root, r))).digest('hex').slice(0, 16)}`);
    }
  };
  walk('');
  return out;
}
