export const DASH = '—';

const pad2 = (n: number): string => String(n).padStart(2, '0');

/**
 * Human duration from seconds: 45 -> "45s", 125 -> "2m 05s", 3725 -> "1h 02m 05s".
 * Rounded to whole seconds; null / NaN / negative -> "—".
 */
export function formatDuration(seconds: number | null | undefined): string {
  if (seconds == null || !Number.isFinite(seconds) || seconds < 0) return DASH;
  const total = Math.round(seconds);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  if (h > 0) return `${h}h ${pad2(m)}m ${pad2(s)}s`;
  if (m > 0) return `${m}m ${pad2(s)}s`;
  return `${s}s`;
}

/** Ratio 0..1 -> "95.0%"; null -> "—". */
export function formatPercent(ratio: number | null | undefined, digits = 1): string {
  if (ratio == null || !Number.isFinite(ratio)) return DASH;
  return `${(ratio * 100).toFixed(digits)}%`;
}

/** Count with digit grouping ("12,345"); null -> "—". */
export function formatCount(n: number | null | undefined, locale?: string): string {
  if (n == null || !Number.isFinite(n)) return DASH;
  return new Intl.NumberFormat(locale, { maximumFractionDigits: 0 }).format(n);
}

/** Plain integer, no grouping ("12345"); used where tests read the text as a number. */
export function formatPlainInt(n: number | null | undefined): string {
  if (n == null || !Number.isFinite(n)) return DASH;
  return String(Math.round(n));
}

/** Epoch milliseconds -> "HH:MM:SS" in the browser's local zone (24 h). */
export function formatClock(epochMs: number | null | undefined): string {
  if (epochMs == null || !Number.isFinite(epochMs)) return DASH;
  const d = new Date(epochMs);
  return `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
}

/**
 * Effective range echoed by the server (`to` exclusive), as days in `timeZone`:
 * "Tue, 24 Nov 2026" for one day, "18 Nov – 24 Nov 2026" for several.
 * Falls back to the browser's zone when `timeZone` is unknown to Intl.
 */
export function formatDayRange(
  range: { from: string; to: string } | null | undefined,
  timeZone?: string,
  locale = 'en-GB',
): string {
  if (!range) return DASH;
  const from = Date.parse(range.from);
  const to = Date.parse(range.to);
  if (!Number.isFinite(from) || !Number.isFinite(to) || to <= from) return DASH;
  const fmt = (opts: Intl.DateTimeFormatOptions): Intl.DateTimeFormat => {
    try {
      return new Intl.DateTimeFormat(locale, { ...opts, timeZone });
    } catch {
      return new Intl.DateTimeFormat(locale, opts);
    }
  };
  const lastMs = to - 1; // `to` is exclusive
  const dayKey = fmt({ year: 'numeric', month: '2-digit', day: '2-digit' });
  if (dayKey.format(from) === dayKey.format(lastMs)) {
    return fmt({ weekday: 'short', day: 'numeric', month: 'short', year: 'numeric' }).format(from);
  }
  const start = fmt({ day: 'numeric', month: 'short' }).format(from);
  const end = fmt({ day: 'numeric', month: 'short', year: 'numeric' }).format(lastMs);
  return `${start} – ${end}`;
}
