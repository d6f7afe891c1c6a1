import type { Context } from '../services/context.js';
import type { Clock } from './clock.js';
import type { SchedulerLog } from './scheduler.js';

/**
 * Ships the binary logs every `binlogs.intervalMinutes` (read again each time: the settings may
 * change while the daemon runs) while a destination is marked for them. A pass that fails is
 * logged; the next one catches up, since the server keeps its logs until it purges them.
 */
export class BinlogShipper {
  private cancel: (() => void) | null = null;
  private running: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(private readonly ctx: Context, private readonly clock: Clock, private readonly log: SchedulerLog) {}

  start(): void {
    this.stopped = false;
    this.arm();
  }

  stop(): void {
    this.stopped = true;
    this.cancel?.();
    this.cancel = null;
  }

  /** Resolves once no pass is going on. */
  idle(): Promise<void> {
    return this.running;
  }

  private arm(): void {
    if (this.stopped) return;
    const every = this.ctx.config.binlogs.intervalMinutes * 60_000;
    this.cancel = this.clock.at(this.clock.now() + every, () => {
      this.running = this.pass().finally(() => this.arm());
    });
  }

  private async pass(): Promise<void> {
    if (this.ctx.store.binlogs.markedDestinations().length === 0) return;
    try {
      const { shipBinlogsNow } = await import('../services/point-in-time.js');
      const r = await shipBinlogsNow(this.ctx);
      if (!r.logBin) return;
      if (r.shipped.length || r.removed.length) this.log.info({ shipped: r.shipped.map((s) => s.file), removed: r.removed.map((s) => s.file) }, 'binary logs shipped');
      for (const g of r.gaps) this.log.error({ gap: g }, 'binary logs missing');
      for (const f of r.failed) this.log.error({ destination: f.destination, err: f.error }, 'binary log shipping failed');
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'binary log shipping failed');
    }
  }
}
