import type { KpiData } from './types';

/** The example body from docs/api.md. */
export function sampleKpi(): KpiData {
  return {
    section: 'kpi',
    account_id: 1,
    timezone: 'Asia/Kolkata',
    range: { from: '2026-11-23T18:30:00Z', to: '2026-11-24T18:30:00Z' },
    previous_range: { from: '2026-11-22T18:30:00Z', to: '2026-11-23T18:30:00Z' },
    progress: 1764000000000,
    active_conversations: { total: 12, unassigned: 2, bot: 5, agent: 5 },
    first_response: {
      current: { count: 40, avg_s: 120.5, p50_s: 90, p90_s: 300 },
      previous: { count: 38, avg_s: 131.0, p50_s: 95, p90_s: 320 },
      sla_target_s: 300,
      sla_status: 'green',
    },
    whatsapp_delivery: {
      current: { delivered: 95, with_status: 100, rate: 0.95 },
      previous: { delivered: 80, with_status: 90, rate: 0.8889 },
      alert_below: 0.9,
      alert: false,
    },
    open_tickets: { total: 7, low: 1, medium: 2, high: 3, urgent: 1 },
    messages_today: {
      since: '2026-11-23T18:30:00Z',
      current: { inbound: 100, outbound: 120, total: 220 },
      previous: { inbound: 90, outbound: 100, total: 190 },
    },
  };
}
