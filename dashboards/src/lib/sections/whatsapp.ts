// WhatsApp performance: funnel steps with their shares, failures and channel health order.
import type { Funnel, WhatsappPerformanceBody } from '../../api/types';
import { ratio } from './common';

export interface FunnelStep {
  name: string;
  value: number;
  /** `value` ÷ the step it is a share of (`of`); null when that is 0. */
  share: number | null;
  of: 'created' | 'sent';
}

/**
 * Sent (of created) → delivered → read (of sent), plus failed (of created: a message can
 * fail without ever being sent, so a share of sent could exceed 100 %).
 */
export function funnelSteps(f: Funnel): FunnelStep[] {
  const step = (name: string, value: number, of: 'created' | 'sent'): FunnelStep => ({
    name,
    value,
    share: ratio(value, of === 'created' ? f.created : f.sent),
    of,
  });
  return [step('Sent', f.sent, 'created'), step('Delivered', f.delivered, 'sent'), step('Read', f.read, 'sent'), step('Failed', f.failed, 'created')];
}

/** Failed messages by error code, most first, ties by code, failures without a code last. */
export function failureRows(d: WhatsappPerformanceBody) {
  const code = (c: number | null | undefined) => c ?? Number.MAX_SAFE_INTEGER;
  return [...d.failures].sort((a, b) => b.count - a.count || code(a.error_code) - code(b.error_code));
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
