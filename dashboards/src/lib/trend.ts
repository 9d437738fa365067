import { DASH } from './format';

export type TrendDirection = 'up' | 'down' | 'flat';
/** Whether an increase is good news (delivery rate), bad news (response time) or neither. */
export type TrendPolarity = 'higher-is-better' | 'lower-is-better' | 'neutral';
export type TrendTone = 'good' | 'bad' | 'neutral';

export interface Trend {
  /** Percent change vs previous (e.g. 12.5 for +12.5 %); null when not computable. */
  pct: number | null;
  direction: TrendDirection | null;
  tone: TrendTone;
  /** Short visible text: "▲ 12.5%", "▼ 3.0%", "→ 0.0%" or "—". */
  text: string;
  /** Sentence for assistive technology. */
  label: string;
}

/** Changes smaller than this (in percent) count as flat. */
const FLAT_EPSILON_PCT = 0.05;

/**
 * Percent change of `current` vs `previous`. Returns null when either side is missing
 * or the previous value is zero (the change is undefined, shown as "—").
 */
export function percentChange(
  current: number | null | undefined,
  previous: number | null | undefined,
): number | null {
  if (current == null || previous == null) return null;
  if (!Number.isFinite(current) || !Number.isFinite(previous)) return null;
  if (previous === 0) return null;
  return ((current - previous) / Math.abs(previous)) * 100;
}

export function computeTrend(
  current: number | null | undefined,
  previous: number | null | undefined,
  polarity: TrendPolarity = 'neutral',
  comparedTo = 'the previous period',
): Trend {
  const pct = percentChange(current, previous);
  if (pct == null) {
    return {
      pct: null,
      direction: null,
      tone: 'neutral',
      text: DASH,
      label: `No comparison with ${comparedTo}`,
    };
  }
  const direction: TrendDirection =
    Math.abs(pct) < FLAT_EPSILON_PCT ? 'flat' : pct > 0 ? 'up' : 'down';
  let tone: TrendTone = 'neutral';
  if (direction !== 'flat' && polarity !== 'neutral') {
    const better = polarity === 'higher-is-better' ? direction === 'up' : direction === 'down';
    tone = better ? 'good' : 'bad';
  }
  const magnitude = direction === 'flat' ? '0.0' : Math.abs(pct).toFixed(1);
  const arrow = direction === 'up' ? '▲' : direction === 'down' ? '▼' : '→';
  const word = direction === 'up' ? 'Up' : direction === 'down' ? 'Down' : 'Unchanged,';
  return {
    pct,
    direction,
    tone,
    text: `${arrow} ${magnitude}%`,
    label: `${word} ${magnitude}% vs ${comparedTo}`,
  };
}
