import type { Context } from '../../services/context.js';
import type { ActivityRecord } from '../../store/activity.js';
import { snapshotUrl } from '../user/routes.js';

/** A piece of an entry as the page shows it: text, a link, or a result name to translate. */
export type Segment = { text: string } | { text: string; href: string } | { status: string };
export interface ReadableEntry extends ActivityRecord { targetParts: Segment[]; detailParts: Segment[][] }

const TASK = /\btask (\d+)\b/g;

/**
 * Makes an activity entry readable: its target and detail become sentences whose task,
 * snapshot, account and job are links (for a provider; what a reseller may not open stays
 * text), results of JSON lists become "account: status" lines. Nothing is looked up that
 * the entry does not name.
 */
export class ActivityReader {
  private readonly accounts: Set<string>;

  constructor(private readonly ctx: Context, private readonly isAdmin: boolean, visibleAccounts: readonly string[]) {
    this.accounts = new Set(visibleAccounts);
  }

  read(e: ActivityRecord): ReadableEntry {
    return { ...e, targetParts: this.target(e), detailParts: this.detail(e) };
  }

  private account(name: string): Segment {
    return this.accounts.has(name) ? { text: name, href: `/admin/accounts/${encodeURIComponent(name)}` } : { text: name };
  }

  /** Text with every "task N" a link to the task. */
  private withTasks(text: string): Segment[] {
    const out: Segment[] = [];
    let at = 0;
    for (const m of text.matchAll(TASK)) {
      if (m.index > at) out.push({ text: text.slice(at, m.index) });
      out.push({ text: m[0], href: `/admin/queue/${m[1]}` });
      at = m.index + m[0].length;
    }
    if (at < text.length) out.push({ text: text.slice(at) });
    return out;
  }

  private target(e: ActivityRecord): Segment[] {
    const t = e.target;
    const job = /^job (.+?)(?: account (\S+))?$/.exec(t);
    if (job) {
      const parts: Segment[] = [this.isAdmin ? { text: `job ${job[1]}`, href: '/admin/jobs' } : { text: `job ${job[1]}` }];
      if (job[2]) parts.push({ text: ', ' }, this.account(job[2]));
      return parts;
    }
    const snap = /^(\S+)[ /](\d{8}T\d{6}[^ ]*|[0-9a-zA-Z-]{10,})$/.exec(t);
    if (snap) {
      const s = this.ctx.store.snapshots.list({ account: snap[1]! }).find((x) => x.id === snap[2]);
      if (s && this.accounts.has(s.account)) return [this.account(s.account), { text: ' · ' }, { text: `snapshot ${s.id}`, href: snapshotUrl(s) }];
    }
    if (e.action === 'settings.change' || e.action === 'settings.test') return this.isAdmin ? [{ text: t, href: `/admin/settings#settings-${t}` }] : [{ text: t }];
    if (TASK.test(t)) { TASK.lastIndex = 0; return this.withTasks(t); }
    if (this.accounts.has(t)) return [this.account(t)];
    return [{ text: t }];
  }

  private detail(e: ActivityRecord): Segment[][] {
    const d = e.detail.trim();
    if (d === '') return [];
    if (d.startsWith('[') || d.startsWith('{')) {
      try {
        const parsed = JSON.parse(d) as unknown;
        const rows = Array.isArray(parsed) ? parsed : [parsed];
        return rows.map((r) => this.row(r));
      } catch {
        // not JSON after all: shown as text
      }
    }
    // "key: old → new; …" (settings), or sentences joined by "; ".
    if (e.action === 'settings.change') return d.split('; ').map((x) => [{ text: x }]);
    return [this.withTasks(d)];
  }

  private row(r: unknown): Segment[] {
    if (r === null || typeof r !== 'object') return [{ text: String(r) }];
    const o = r as Record<string, unknown>;
    const out: Segment[] = [];
    if (typeof o.account === 'string') out.push(this.account(o.account), { text: ': ' });
    if (typeof o.status === 'string') out.push({ status: o.status });
    for (const [k, v] of Object.entries(o)) {
      if (k === 'account' || k === 'status' || v === null || v === undefined) continue;
      if (k === 'task' && typeof v === 'number') out.push({ text: ' · ' }, { text: `task ${v}`, href: `/admin/queue/${v}` });
      else out.push({ text: ` · ${k}: ${typeof v === 'object' ? JSON.stringify(v) : String(v)}` });
    }
    return out;
  }
}
