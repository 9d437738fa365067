// Helpers shared by the section transforms.

/** Local-time label of an RFC 3339 slot start in `timeZone`, by slot size. */
export function slotLabel(start: string, granularity: string, timeZone?: string): string {
  const opts: Intl.DateTimeFormatOptions =
    granularity === 'hour'
      ? { day: '2-digit', month: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }
      : { day: '2-digit', month: 'short' };
  try {
    return new Intl.DateTimeFormat('en-GB', { ...opts, timeZone }).format(Date.parse(start));
  } catch {
    return new Intl.DateTimeFormat('en-GB', opts).format(Date.parse(start));
  }
}

/** Trend slot size the dashboard asks for: hourly up to two days, daily beyond. */
export function granularityFor(days: number): 'hour' | 'day' {
  return days <= 2 ? 'hour' : 'day';
}

/** Digits after the decimal point of a currency (USD 2, JPY 0); 2 when unknown. */
export function minorDigits(currency: string): number {
  try {
    return new Intl.NumberFormat('en-US', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits ?? 2;
  } catch {
    return 2;
  }
}

/** Minor units to a currency string: (123456, 'USD') -> "$1,234.56". */
export function formatMoney(minor: number | null | undefined, currency: string, locale = 'en-US'): string {
  if (minor == null || !Number.isFinite(minor)) return '—';
  try {
    return new Intl.NumberFormat(locale, { style: 'currency', currency }).format(minor / 10 ** minorDigits(currency));
  } catch {
    return `${(minor / 100).toFixed(2)} ${currency}`;
  }
}

/** Threshold level -> CSS tone; unknown levels are neutral. */
export function levelTone(level: string | null | undefined): 'good' | 'ok' | 'attention' | 'neutral' {
  return level === 'good' || level === 'ok' || level === 'attention' ? level : 'neutral';
}

/** Ratio a ÷ b, null when b is 0. */
export const ratio = (a: number, b: number): number | null => (b > 0 ? a / b : null);

/**
 * Pie slices without the empty ones (a zero slice still draws a label on top of its
 * neighbour). Each kept slice keeps its colour through `itemStyle`, so a slice's colour does
 * not shift when another one is empty.
 */
export function nonZero<T extends { value: number }>(slices: readonly T[], colors?: readonly string[]): (T & { itemStyle?: { color: string } })[] {
  return slices.flatMap((s, i) => (s.value > 0 ? [colors ? { ...s, itemStyle: { color: colors[i % colors.length] } } : s] : []));
}
