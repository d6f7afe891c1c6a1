import type { Entry } from './format/entry.js';

/**
 * The uid and gid the snapshot's account had when it was taken (manifest `accountInfo`). When
 * the account now has others (re-created by the panel, or restored on a new server after a
 * disaster), what the old account owned is the new account's: its entries are written with the
 * new uid and gid, which the restore worker (running as the account) sets without a warning.
 * Entries of any other owner are left as they are (the worker warns about those it cannot set).
 */
export function ownerMapping(accountInfo: unknown, now: { uid: number; gid: number }): (e: Entry) => Entry {
  const info = (accountInfo ?? {}) as { uid?: unknown; gid?: unknown };
  const wholeNumber = (v: unknown): number | null => (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : null);
  const uid = wholeNumber(info.uid);
  const gid = wholeNumber(info.gid);
  if ((uid === null || uid === now.uid) && (gid === null || gid === now.gid)) return (e) => e;
  return (e) => ({
    ...e,
    uid: uid !== null && e.uid === uid ? now.uid : e.uid,
    gid: gid !== null && e.gid === gid ? now.gid : e.gid,
  });
}
