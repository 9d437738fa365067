// Conversation effectiveness: series and rows for the charts and tables of that view.
import type { EffectivenessBody } from '../../api/types';
import { slotLabel } from './common';

export interface HandledBar {
  agent: string;
  current: number;
  previous: number;
}

/** Conversations handled per agent, most first, ties by agent id. */
export function handledBars(d: EffectivenessBody): HandledBar[] {
  return d.handled_per_agent
    .map((h) => ({ agent: h.agent_id, current: h.conversations, previous: h.previous }))
    .sort((a, b) => b.current - a.current || a.agent.localeCompare(b.agent));
}

export interface FrtSeries {
  labels: string[];
  avg: (number | null)[];
  p90: (number | null)[];
  counts: number[];
}

/** FRT trend: one label per slot; null where no reply fell in the slot (a gap, not 0). */
export function frtSeries(d: EffectivenessBody): FrtSeries {
  const { granularity, points } = d.frt_trend;
  return {
    labels: points.map((p) => slotLabel(p.start, granularity, d.timezone)),
    avg: points.map((p) => (p.count > 0 ? (p.avg_s ?? null) : null)),
    p90: points.map((p) => (p.count > 0 ? (p.p90_s ?? null) : null)),
    counts: points.map((p) => p.count),
  };
}

/** SLA compliance as a percentage 0..100 (null without any conversation due). */
export function slaPercent(d: EffectivenessBody): number | null {
  const c = d.sla.current.compliance;
  return c == null ? null : Math.round(c * 1000) / 10;
}

export interface PieSlice {
  name: string;
  value: number;
}

/** Conversations opened in the range: resolved vs still open. */
export function resolvedOpenSlices(d: EffectivenessBody): PieSlice[] {
  const o = d.resolution.opened_in_range;
  return [
    { name: 'Resolved', value: o.resolved },
    { name: 'Open', value: o.open },
  ];
}
