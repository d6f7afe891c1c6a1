/** Numbers, sizes and dates in the page's language, for the views. */
export interface Formatters {
  bytes(n: number): string;
  number(n: number): string;
  dateTime(iso: string): string;
  time(iso: string): string;
  day(iso: string): string;
  /** A stable key for grouping by calendar day (server time). */
  dayKey(iso: string): string;
  /** To the second: snapshots of the same minute told apart. */
  timeSeconds(iso: string): string;
  dateTimeSeconds(iso: string): string;
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** Made once per language (Intl formatters are costly to make, cheap to use); a few dozen languages at most are kept. */
const made = new Map<string, Formatters>();
const MADE_MAX = 32;

export function formatters(lng: string): Formatters {
  let f = made.get(lng);
  if (!f) {
    f = makeFormatters(lng);
    if (made.size >= MADE_MAX) made.delete(made.keys().next().value!);
    made.set(lng, f);
  }
  return f;
}

function makeFormatters(lng: string): Formatters {
  const num = new Intl.NumberFormat(lng, { maximumFractionDigits: 1 });
  const dateTime = new Intl.DateTimeFormat(lng, { dateStyle: 'medium', timeStyle: 'short' });
  const time = new Intl.DateTimeFormat(lng, { timeStyle: 'short' });
  const timeSeconds = new Intl.DateTimeFormat(lng, { timeStyle: 'medium' });
  const dateTimeSeconds = new Intl.DateTimeFormat(lng, { dateStyle: 'medium', timeStyle: 'medium' });
  const day = new Intl.DateTimeFormat(lng, { weekday: 'long', year: 'numeric', month: 'long', day: 'numeric' });
  const pad = (n: number): string => String(n).padStart(2, '0');
  return {
    bytes(n) {
      let v = n;
      let i = 0;
      while (v >= 1024 && i < UNITS.length - 1) { v /= 1024; i++; }
      return `${num.format(i === 0 ? v : Math.round(v * 10) / 10)} ${UNITS[i]}`;
    },
    number: (n) => num.format(n),
    dateTime: (iso) => dateTime.format(new Date(iso)),
    time: (iso) => time.format(new Date(iso)),
    day: (iso) => day.format(new Date(iso)),
    timeSeconds: (iso) => timeSeconds.format(new Date(iso)),
    dateTimeSeconds: (iso) => dateTimeSeconds.format(new Date(iso)),
    dayKey: (iso) => { const d = new Date(iso); return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`; },
  };
}
