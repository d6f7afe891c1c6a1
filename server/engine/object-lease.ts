import os from 'node:os';
import type { Destination } from '../destinations/types.js';
import { layout } from './snapshot-layout.js';

/**
 * Leases on the destination keep an object sweep and an object-layout backup of the same
 * account from overlapping, whichever servers run them (the account lock only covers one
 * server's processes, and several servers may write one prefix by mistake or during a
 * disaster recovery). See docs/reliability.md, "Deleting in the object layout".
 *
 * Each side writes its own lease file first and lists the others after: with a store that
 * lists what was written before (S3 and Ceph RGW are strongly consistent for this; a local
 * or SSH folder trivially), of two that start at the same time at least one sees the other.
 * A sweep that sees a live backup lease gives up (the objects stay until the next one); a
 * backup that sees a live sweep lease waits until the sweep has ended.
 *
 * A lease is live while its file was rewritten within LEASE_MS. The holder rewrites it every
 * HEARTBEAT_MS; times are compared on the destination's own clock (the times it gives its
 * files), never between servers. A holder that could not renew for LEASE_MS / 2 (a paused
 * process, a network cut) no longer counts on its lease: a backup fails instead of committing,
 * a sweep stops deleting.
 */
export const LEASE_MS = 10 * 60_000;
export const HEARTBEAT_MS = 60_000;

export type LeaseKind = 'backup' | 'sweep';

const LEASE_NAME = /^(backup|sweep)-[0-9A-Za-z-]{1,80}\.json$/;

export class LeaseLostError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LeaseLostError';
  }
}

export class ObjectLease {
  private timer: NodeJS.Timeout | null = null;
  private lastRenewal = Date.now();
  private longestGap = 0;
  private renewing: Promise<void> | null = null;
  private renewError: Error | null = null;

  private constructor(private readonly dest: Destination, private readonly file: string, private readonly body: string) {}

  /**
   * Writes the lease and looks for the other kind. Returns the lease, or null (nothing left
   * behind) when a live lease of a kind that excludes this one is there: for a sweep, any
   * other live lease; for a backup, a live sweep.
   */
  static async take(dest: Destination, account: string, kind: LeaseKind, id: string): Promise<ObjectLease | null> {
    const dir = layout.leasesDir(account);
    const name = `${kind}-${id}.json`;
    const body = JSON.stringify({ kind, id, host: os.hostname(), pid: process.pid, startedAt: new Date().toISOString() });
    const lease = new ObjectLease(dest, `${dir}/${name}`, body);
    await dest.writeFile(lease.file, body);
    const entries = await dest.list(dir);
    const mine = entries.find((e) => e.name === name);
    // The destination's "now": the time it gave the lease just written.
    const now = mine?.mtimeMs ?? Math.max(0, ...entries.map((e) => e.mtimeMs));
    const others = entries.filter((e) => e.name !== name && e.type === 'file' && LEASE_NAME.test(e.name));
    // Leases of killed runs: gone once not renewed for twice the lease time.
    for (const e of others) if (e.mtimeMs < now - 2 * LEASE_MS) await dest.remove(`${dir}/${e.name}`).catch(() => undefined);
    const blocking = others.some((e) => e.mtimeMs >= now - LEASE_MS && (kind === 'sweep' || e.name.startsWith('sweep-')));
    if (blocking) {
      await dest.remove(lease.file);
      return null;
    }
    lease.timer = setInterval(() => { void lease.renew(); }, HEARTBEAT_MS);
    lease.timer.unref();
    return lease;
  }

  private async renew(): Promise<void> {
    if (this.renewing) return this.renewing;
    this.renewing = (async () => {
      try {
        await this.dest.writeFile(this.file, this.body);
        const at = Date.now();
        this.longestGap = Math.max(this.longestGap, at - this.lastRenewal);
        this.lastRenewal = at;
      } catch (err) {
        this.renewError = err as Error;
      } finally {
        this.renewing = null;
      }
    })();
    return this.renewing;
  }

  /**
   * Renews now and throws when the lease could have lapsed at some moment (renewals more
   * than LEASE_MS / 2 apart): then a sweep may have run meanwhile and nothing may be
   * committed or deleted on the strength of this lease.
   */
  async confirm(): Promise<void> {
    await this.renew();
    if (this.renewError) throw new LeaseLostError(`the lease on the destination could not be renewed: ${this.renewError.message}`);
    if (this.longestGap > LEASE_MS / 2) {
      throw new LeaseLostError(`the lease on the destination went ${Math.round(this.longestGap / 1000)} s without renewal (the limit is ${LEASE_MS / 2000} s): a sweep may have run meanwhile`);
    }
  }

  async release(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.renewing;
    await this.dest.remove(this.file);
  }
}

/** Takes a backup lease, waiting (up to `timeoutMs`) while a sweep of the account runs. */
export async function takeBackupLease(dest: Destination, account: string, id: string, signal?: AbortSignal, timeoutMs = 2 * LEASE_MS): Promise<ObjectLease> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    signal?.throwIfAborted();
    const lease = await ObjectLease.take(dest, account, 'backup', id);
    if (lease) return lease;
    if (Date.now() > until) throw new Error(`a sweep of unused objects of ${account} has been running on this destination for more than ${Math.round(timeoutMs / 60_000)} minutes: the backup did not start`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}
