import type { PolicyWindow, Weekday } from './schema.js';

/**
 * Time windows of policy rules. A rule's `when` matches if any window matches; a window matches if
 * all its fields do. `days` and `between` are read on the wall clock of `timezone` (DST included,
 * via Intl); `from`/`to` are absolute instants. `between: ['18:00', '08:00']` spans midnight, and
 * `days` is checked against the local day of the moment itself.
 */
export function windowsMatch(when: { timezone: string; windows: PolicyWindow[] }, at: Date): boolean {
  const local = wallClock(at, when.timezone);
  return when.windows.some((w) => windowMatches(w, at, local));
}

function windowMatches(w: PolicyWindow, at: Date, local: { day: Weekday; minutes: number }): boolean {
  if (w.from && at.getTime() < Date.parse(w.from)) return false;
  if (w.to && at.getTime() >= Date.parse(w.to)) return false;
  if (w.days && !w.days.includes(local.day)) return false;
  if (w.between) {
    const [start, end] = w.between.map(toMinutes) as [number, number];
    const inside = start < end ? local.minutes >= start && local.minutes < end : local.minutes >= start || local.minutes < end;
    if (!inside) return false;
  }
  return true;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function wallClock(at: Date, timeZone: string): { day: Weekday; minutes: number } {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone, weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
    formatters.set(timeZone, f);
  }
  const parts = Object.fromEntries(f.formatToParts(at).map((p) => [p.type, p.value]));
  return {
    day: String(parts.weekday).toLowerCase().slice(0, 3) as Weekday,
    minutes: Number(parts.hour) * 60 + Number(parts.minute),
  };
}

function toMinutes(hhmm: string): number {
  const [h, m] = hhmm.split(':').map(Number) as [number, number];
  return h * 60 + m;
}
