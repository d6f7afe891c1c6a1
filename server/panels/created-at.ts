/**
 * When the panel says an account was created: with the uid, what tells one account apart
 * from a later one of the same name (services/account-identity.ts). cPanel keeps STARTDATE
 * (seconds since the epoch) in /var/cpanel/users/USER, DirectAdmin date_created in
 * data/users/USER/user.conf. Standalone servers have none that Linux keeps reliably.
 */
import path from 'node:path';
import { prefixed, type Config } from '../config.js';
import { detectPanel } from './index.js';
import { isSafeName, parseKeyValue, readTextIfExists } from './files.js';

const CPANEL_USERS = '/var/cpanel/users';
const DIRECTADMIN_USERS = '/usr/local/directadmin/data/users';

/** The panel's creation time of `username` as ISO text (or as the panel wrote it, when it is no date), or null. */
export async function accountCreatedAt(config: Config, username: string): Promise<string | null> {
  if (!isSafeName(username)) return null;
  const panel = detectPanel(config);
  if (panel === 'cpanel') {
    const text = await readTextIfExists(prefixed(config, path.posix.join(CPANEL_USERS, username)));
    const v = text === null ? undefined : parseKeyValue(text).get('STARTDATE');
    return v && /^\d{1,12}$/.test(v) ? new Date(Number(v) * 1000).toISOString() : v || null;
  }
  if (panel === 'directadmin') {
    const text = await readTextIfExists(prefixed(config, path.posix.join(DIRECTADMIN_USERS, username, 'user.conf')));
    const v = text === null ? undefined : parseKeyValue(text).get('date_created')?.trim();
    if (!v) return null;
    const ms = Date.parse(v);
    return Number.isNaN(ms) ? v : new Date(ms).toISOString();
  }
  return null;
}
