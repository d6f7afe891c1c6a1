/**
 * Keeps at most `limit` operations going at once. The first failure is thrown by the
 * next `add` or by `drain`; the other operations still settle (no unhandled rejection).
 */
export class InFlight {
  private readonly pending = new Set<Promise<void>>();
  private failure: { error: unknown } | null = null;

  constructor(private readonly limit: number) {
    if (!(limit >= 1)) throw new RangeError('limit must be at least 1');
  }

  async add(operation: Promise<unknown>): Promise<void> {
    const tracked: Promise<void> = operation.then(
      () => { this.pending.delete(tracked); },
      (error: unknown) => { this.pending.delete(tracked); this.failure ??= { error }; },
    );
    this.pending.add(tracked);
    this.check();
    while (this.pending.size >= this.limit) {
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
