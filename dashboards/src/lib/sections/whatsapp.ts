// WhatsApp performance: funnel steps with their share of sent, failures and channel health order.
import type { Funnel, WhatsappPerformanceBody } from '../../api/pending';
import { ratio } from './common';

export interface FunnelStep {
  name: string;
  value: number;
  /** Share of the first step (sent), null when nothing was sent. */
  ofSent: number | null;
}

/** Sent → delivered → read, plus failed, each with its share of sent. */
export function funnelSteps(f: Funnel): FunnelStep[] {
  return [
    { name: 'Sent', value: f.sent },
    { name: 'Delivered', value: f.delivered },
    { name: 'Read', value: f.read },
    { name: 'Failed', value: f.failed },
  ].map((s) => ({ ...s, ofSent: ratio(s.value, f.sent) }));
}

/** Failed messages by error code, most first, ties by code. */
export function failureRows(d: WhatsappPerformanceBody) {
  return [...d.failures].sort((a, b) => b.count - a.count || a.error_code - b.error_code);
}

/** Channel health rows, worst first (disconnected, degraded, connected; red before green). */
export function channelRows(d: WhatsappPerformanceBody) {
  const rank: Record<string, number> = { disconnected: 0, degraded: 1, connected: 2, red: 0, yellow: 1, green: 2 };
  return [...d.channels_now.channels].sort(
    (a, b) =>
      (rank[a.state] ?? 9) - (rank[b.state] ?? 9) ||
      (rank[a.quality] ?? 9) - (rank[b.quality] ?? 9) ||
      a.channel_id.localeCompare(b.channel_id),
  );
}
