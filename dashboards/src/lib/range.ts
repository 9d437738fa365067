// Range presets for the dashboard. Dates are computed in the browser's local zone and
// sent as YYYY-MM-DD; the server reads them as local midnight in the *account's* zone
// (docs/api.md), which is the same day as long as browser and account agree.

export const RANGE_PRESETS = ['today', 'yesterday', 'last7', 'last30', 'month', 'custom'] as const;
export type RangePreset = (typeof RANGE_PRESETS)[number];

export const RANGE_LABELS: Record<RangePreset, string> = {
  today: 'Today',
  yesterday: 'Yesterday',
  last7: 'Last 7 days',
  last30: 'Last 30 days',
  month: 'This month',
  custom: 'Custom',
};

export interface DateRange {
  /** Inclusive start day, YYYY-MM-DD. */
  from: string;
  /** Exclusive end day, YYYY-MM-DD. */
  to: string;
}

const pad2 = (n: number): string => String(n).padStart(2, '0');

/** Local calendar date of `d` as YYYY-MM-DD. */
export function toLocalIsoDate(d: Date): string {
  return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())}`;
}

/**
 * The local calendar day `days` away from `d`. Uses the Date(y, m, d + n) constructor
 * rather than adding 24 h so that 23 h / 25 h DST days cannot shift the date.
 */
export function addLocalDays(d: Date, days: number): Date {
  return new Date(d.getFullYear(), d.getMonth(), d.getDate() + days, 12, 0, 0, 0);
}

export function isRangePreset(v: unknown): v is RangePreset {
  return typeof v === 'string' && (RANGE_PRESETS as readonly string[]).includes(v);
}

/**
 * `from`/`to` for a preset; "last7"/"last30" are the 7/30 local days ending with today
 * (inclusive), "month" is the 1st of this month up to tomorrow. "custom" has no dates of
 * its own and falls back to today.
 */
export function presetDates(preset: RangePreset, now: Date = new Date()): DateRange {
  switch (preset) {
    case 'today':
      return { from: toLocalIsoDate(now), to: toLocalIsoDate(addLocalDays(now, 1)) };
    case 'yesterday':
      return { from: toLocalIsoDate(addLocalDays(now, -1)), to: toLocalIsoDate(now) };
    case 'last7':
      return { from: toLocalIsoDate(addLocalDays(now, -6)), to: toLocalIsoDate(addLocalDays(now, 1)) };
    case 'last30':
      return { from: toLocalIsoDate(addLocalDays(now, -29)), to: toLocalIsoDate(addLocalDays(now, 1)) };
    case 'month':
      return {
        from: toLocalIsoDate(new Date(now.getFullYear(), now.getMonth(), 1, 12)),
        to: toLocalIsoDate(addLocalDays(now, 1)),
      };
    case 'custom':
      return presetDates('today', now);
  }
}

const ISO_DAY = /^(\d{4})-(\d{2})-(\d{2})$/;

/** Parses YYYY-MM-DD as a local date at noon; null when malformed or not a real date. */
export function parseIsoDay(s: string | null | undefined): Date | null {
  const m = s ? ISO_DAY.exec(s) : null;
  if (!m) return null;
  const d = new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3]), 12);
  return toLocalIsoDate(d) === s ? d : null;
}

/** Whole local days in [from, to); 0 when either is malformed. */
export function daysBetween(range: DateRange): number {
  const a = parseIsoDay(range.from);
  const b = parseIsoDay(range.to);
  if (!a || !b) return 0;
  return Math.round((b.getTime() - a.getTime()) / 86_400_000);
}

/** The period of equal length right before `range` (what the server compares with). */
export function previousPeriod(range: DateRange): DateRange {
  const a = parseIsoDay(range.from);
  const n = daysBetween(range);
  if (!a || n <= 0) return range;
  return { from: toLocalIsoDate(addLocalDays(a, -n)), to: range.from };
}
