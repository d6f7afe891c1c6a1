import { minutesOf, type ScheduleRecord } from '../store/schedules.js';

export type Timing = Pick<ScheduleRecord, 'kind' | 'at' | 'weekday' | 'monthday'>;

const hhmm = (at: string | null): [number, number] => {
  const [h, m] = (at ?? '00:00').split(':').map(Number);
  return [h ?? 0, m ?? 0];
};

/**
 * The first time strictly after `after` (ms since the epoch) at which a timed schedule is
 * due, in the server's local time. 'after' schedules have no time of their own: null.
 */
export function nextRun(s: Timing, after: number): number | null {
  const [hour, minute] = hhmm(s.at);
  const d = new Date(after);
  const every = minutesOf(s.kind);
  if (every !== null) {
    // On the minutes of the hour that are multiples of N (60 divides by each N): :00, :05, … in every time zone.
    d.setSeconds(0, 0);
    d.setMinutes(Math.floor(d.getMinutes() / every) * every + every);
    return d.getTime();
  }
  switch (s.kind) {
    case 'hourly': {
      d.setMinutes(minute, 0, 0);
      if (d.getTime() <= after) d.setHours(d.getHours() + 1, minute, 0, 0);
      return d.getTime();
    }
    case 'daily':
    case 'weekly': {
      // Day by day (setDate keeps the wall-clock time across daylight-saving changes).
      d.setHours(hour, minute, 0, 0);
      for (let i = 0; i < 8; i++) {
        if (d.getTime() > after && (s.kind === 'daily' || d.getDay() === s.weekday)) return d.getTime();
        d.setDate(d.getDate() + 1);
        d.setHours(hour, minute, 0, 0);
      }
      throw new Error(`weekly schedule without a valid weekday (${String(s.weekday)})`);
    }
    case 'monthly': {
      const day = s.monthday ?? 1;
      d.setDate(day);
      d.setHours(hour, minute, 0, 0);
      if (d.getTime() <= after) {
        d.setMonth(d.getMonth() + 1, day);
        d.setHours(hour, minute, 0, 0);
      }
      return d.getTime();
    }
    case 'after':
      return null;
    default:
      return null;
  }
}

/** When a timed schedule that last ran (or was created) at `since` is due next; a time in the past is a missed run. */
export function dueAt(s: Timing & Pick<ScheduleRecord, 'lastRunAt' | 'createdAt'>): number | null {
  return nextRun(s, s.lastRunAt ?? s.createdAt);
}
