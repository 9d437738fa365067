// Customer load: opened-per-slot area with peak hours marked, heatmap cells, forecast.
import type { CustomerLoadBody } from '../../api/types';
import { slotLabel } from './common';

export interface OpenedSeries {
  labels: string[];
  counts: number[];
  /** Per slot: its local hour is one of the peak hours (only for hourly slots). */
  peak: boolean[];
}

/** Local hour (0..23) of an instant in `timeZone`. */
export function localHour(iso: string, timeZone?: string): number {
  const fmt = (tz?: string) => new Intl.DateTimeFormat('en-GB', { hour: '2-digit', hourCycle: 'h23', timeZone: tz });
  let f: Intl.DateTimeFormat;
  try {
    f = fmt(timeZone);
  } catch {
    f = fmt();
  }
  return Number(f.format(Date.parse(iso))) % 24;
}

export function openedSeries(d: CustomerLoadBody): OpenedSeries {
  const peaks = new Set(d.peak_hours);
  const hourly = d.opened.granularity === 'hour';
  return {
    labels: d.opened.points.map((p) => slotLabel(p.start, d.opened.granularity, d.timezone)),
    counts: d.opened.points.map((p) => p.count),
    peak: d.opened.points.map((p) => hourly && peaks.has(localHour(p.start, d.timezone))),
  };
}

/** Consecutive runs of `true` as [first, last] index pairs (for ECharts markArea). */
export function runs(flags: readonly boolean[]): [number, number][] {
  const out: [number, number][] = [];
  let start = -1;
  flags.forEach((f, i) => {
    if (f && start < 0) start = i;
    if (!f && start >= 0) {
      out.push([start, i - 1]);
      start = -1;
    }
  });
  if (start >= 0) out.push([start, flags.length - 1]);
  return out;
}

/** Heatmap cells as ECharts `[hour, weekdayIndex, count]` triples, and the largest count. */
export function heatmapCells(d: CustomerLoadBody): { cells: [number, number, number][]; max: number } {
  const cells: [number, number, number][] = [];
  let max = 0;
  d.heatmap.cells.forEach((row, wd) =>
    row.forEach((count, hour) => {
      cells.push([hour, wd, count]);
      if (count > max) max = count;
    }),
  );
  return { cells, max };
}

/** Hour-of-day profile: labels "00".."23", counts, and which hours are peak. */
export function hourProfile(d: CustomerLoadBody): { labels: string[]; counts: number[]; peak: boolean[] } {
  const byHour = new Map(d.hour_of_day.map((h) => [h.hour, h]));
  const hours = Array.from({ length: 24 }, (_, h) => h);
  return {
    labels: hours.map((h) => String(h).padStart(2, '0')),
    counts: hours.map((h) => byHour.get(h)?.count ?? 0),
    peak: hours.map((h) => byHour.get(h)?.peak ?? false),
  };
}

/**
 * Next-24-hours forecast: hour labels and expected conversations (one decimal; `null`
 * for an hour without history). `enough` is false when no hour has any history: the
 * view then says "not enough history" instead of a total of 0.
 */
export function forecastSeries(d: CustomerLoadBody): { labels: string[]; expected: (number | null)[]; total: number; enough: boolean } {
  const expected = d.forecast.points.map((p) => (p.expected == null ? null : Math.round(p.expected * 10) / 10));
  return {
    labels: d.forecast.points.map((p) => slotLabel(p.start, 'hour', d.timezone)),
    expected,
    total: Math.round(d.forecast.points.reduce((s, p) => s + (p.expected ?? 0), 0) * 10) / 10,
    enough: d.forecast.points.some((p) => p.expected != null),
  };
}
