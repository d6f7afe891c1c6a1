/**
 * Keeps at most `limit` operations going at once, or, where `add` is given weights (bytes, say),
 * operations whose weights add up to less than `limit` (one heavier than that alone still goes,
 * and `add` then waits for it). The first failure is thrown by the next `add` or by `drain`; the
 * other operations still settle (no unhandled rejection).
 */
export class InFlight {
  private readonly pending = new Set<Promise<void>>();
  private weight = 0;
  private failure: { error: unknown } | null = null;

  constructor(private readonly limit: number) {
    if (!(limit >= 1)) throw new RangeError('limit must be at least 1');
  }

  async add(operation: Promise<unknown>, weight = 1): Promise<void> {
    const done = (): void => {
      this.pending.delete(tracked);
      this.weight -= weight;
    };
    const tracked: Promise<void> = operation.then(done, (error: unknown) => {
      done();
      this.failure ??= { error };
    });
    this.pending.add(tracked);
    this.weight += weight;
    this.check();
    while (this.weight >= this.limit && this.pending.size > 0) {
      await Promise.race(this.pending);
      this.check();
    }
  }

  async drain(): Promise<void> {
    await Promise.all(this.pending);
    this.check();
  }

  /** Waits until every operation has settled, whatever its outcome (after a failure, before cleaning up). */
  async settle(): Promise<void> {
    await Promise.all(this.pending);
  }

  private check(): void {
    if (this.failure) throw this.failure.error;
  }
}
