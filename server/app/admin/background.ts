/**
 * Work a provider page starts and does not wait for (validating a destination, running
 * a job): the page answers at once and shows the state until the work is done. Kept in
 * the daemon's memory: after a restart the tasks in the store still tell what happened.
 */
export interface BackgroundState<T> {
  running: boolean;
  startedAt: string;
  finishedAt: string | null;
  result: T | null;
  error: string | null;
}

export class Background<T> {
  private readonly states = new Map<string, BackgroundState<T>>();

  get(key: string): BackgroundState<T> | null {
    return this.states.get(key) ?? null;
  }

  /** Starts `work` unless the same key is still running; returns at once. */
  start(key: string, work: () => Promise<T>): BackgroundState<T> {
    const current = this.states.get(key);
    if (current?.running) return current;
    const state: BackgroundState<T> = { running: true, startedAt: new Date().toISOString(), finishedAt: null, result: null, error: null };
    this.states.set(key, state);
    void work().then(
      (r) => { state.result = r; },
      (err: unknown) => { state.error = (err as Error).message ?? String(err); },
    ).finally(() => { state.running = false; state.finishedAt = new Date().toISOString(); });
    return state;
  }
}
