/** Time as the scheduler sees it: the real one in the daemon, a fake one in tests. */
export interface Clock {
  now(): number;
  /** Calls `fn` once at `at` (ms since the epoch); returns a function cancelling it. */
  at(at: number, fn: () => void): () => void;
}

/** The real clock fires through node-schedule, which copes with delays beyond setTimeout's 24.8 days. */
export async function realClock(): Promise<Clock> {
  const { scheduleJob } = await import('node-schedule');
  return {
    now: () => Date.now(),
    at: (at, fn) => {
      if (at <= Date.now()) {
        const t = setTimeout(fn, 0);
        return () => clearTimeout(t);
      }
      const job = scheduleJob(new Date(at), fn);
      return () => { job?.cancel(); };
    },
  };
}

/** A clock that only moves when told to; `advance` fires what falls due, in time order, waiting for each. */
export class FakeClock implements Clock {
  private timers: { at: number; fn: () => void; seq: number }[] = [];
  private seq = 0;

  constructor(private current: number) {}

  now(): number {
    return this.current;
  }
  at(at: number, fn: () => void): () => void {
    const timer = { at, fn, seq: this.seq++ };
    this.timers.push(timer);
    return () => { this.timers = this.timers.filter((t) => t !== timer); };
  }
  /** Moves to `now + ms`, firing timers due on the way; `settle` is awaited after each (the scheduler's idle promise). */
  async advance(ms: number, settle: () => Promise<void> = async () => {}): Promise<void> {
    const target = this.current + ms;
    for (;;) {
      const due = this.timers.filter((t) => t.at <= target).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!due) break;
      this.timers = this.timers.filter((t) => t !== due);
      this.current = Math.max(this.current, due.at);
      due.fn();
      await settle();
    }
    this.current = target;
  }
  pending(): number {
    return this.timers.length;
  }
}
