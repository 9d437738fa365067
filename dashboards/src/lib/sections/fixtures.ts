// Section bodies for the transform tests, typed with the generated API types so that a
// change of the server's shapes fails `tsc` here first.
import type {
  AgentProductivityBody,
  AutomationImpactBody,
  BusinessImpactBody,
  CustomerLoadBody,
  EffectivenessBody,
  WhatsappPerformanceBody,
} from '../../api/types';

const head = {
  account_id: 1,
  timezone: 'Asia/Kolkata',
  range: { from: '2026-11-19T18:30:00.000Z', to: '2026-11-20T18:30:00.000Z' },
  previous_range: { from: '2026-11-18T18:30:00.000Z', to: '2026-11-19T18:30:00.000Z' },
  progress: 1795546954104,
};

export const effectiveness: EffectivenessBody = {
  ...head,
  section: 'conversation-effectiveness',
  sla: {
    target_s: 300,
    current: { met: 2, replied: 4, breached_unanswered: 2, compliance: 0.3333 },
    previous: { met: 0, replied: 0, breached_unanswered: 0, compliance: null },
    waiting_now: { within_target: 0, past_target: 1 },
  },
  handled_per_agent: [
    { agent_id: 'b2', conversations: 3, previous: 1 },
    { agent_id: 'a1', conversations: 3, previous: 0 },
    { agent_id: 'c3', conversations: 5, previous: 2 },
  ],
  frt_trend: {
    granularity: 'hour',
    points: [
      { start: '2026-11-19T18:30:00.000Z', count: 1, avg_s: 660.0, p50_s: 660, p90_s: 660 },
      { start: '2026-11-19T19:30:00.000Z', count: 0, avg_s: null, p50_s: null, p90_s: null },
      { start: '2026-11-19T20:30:00.000Z', count: 2, avg_s: 90.5, p50_s: 60, p90_s: 121 },
    ],
  },
  resolution: {
    opened_in_range: { total: 7, resolved: 5, open: 2 },
    resolve_events: { total: 5, by_agent: 2, by_bot: 1, by_system: 2 },
    resolve_events_previous: { total: 0, by_agent: 0, by_bot: 0, by_system: 0 },
  },
  agent_ranking: {
    formula: 'score = …',
    thresholds: { good: 80, attention: 50 },
    agents: [{ rank: 1, agent_id: 'a1', score: 63, level: 'ok', handled: 3, resolved: 1, resolution_rate: 0.3333, frt_avg_s: 320.0, sla_met_rate: 0.6667 }],
  },
};

const row = (hour: number, count: number) => ({ hour, count, peak: [10, 11, 16].includes(hour) });
export const customerLoad: CustomerLoadBody = {
  ...head,
  section: 'customer-load',
  opened: {
    total: 9,
    previous: 1,
    granularity: 'hour',
    // 18:30Z = 00:00 IST, so these are local hours 10, 11, 12, 16.
    points: [
      { start: '2026-11-20T04:30:00.000Z', count: 3 },
      { start: '2026-11-20T05:30:00.000Z', count: 2 },
      { start: '2026-11-20T06:30:00.000Z', count: 1 },
      { start: '2026-11-20T10:30:00.000Z', count: 3 },
    ],
  },
  hour_of_day: [row(10, 3), row(11, 2), row(12, 1), row(16, 3)],
  peak_hours: [16, 10, 11],
  customers: { current: { total: 8, new: 7, returning: 1 }, previous: { total: 1, new: 1, returning: 0 } },
  wait_time: { peak: { count: 1, avg_s: 120.0, p50_s: 120, p90_s: 120 }, off_peak: { count: 1, avg_s: 300.0, p50_s: 300, p90_s: 300 } },
  heatmap: {
    weekdays: ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'],
    cells: Array.from({ length: 7 }, (_, wd) => Array.from({ length: 24 }, (_, h) => (wd === 4 && h === 10 ? 3 : wd === 4 && h === 16 ? 3 : 0))),
  },
  forecast: {
    method: 'mean of the same weekday-hour over the previous 4 weeks',
    points: [
      { start: '2026-11-24T18:30:00.000Z', expected: 0.25, weeks: 4 },
      { start: '2026-11-24T19:30:00.000Z', expected: 1.26, weeks: 4 },
    ],
  },
};

const agent = (id: string, open: number, status: string | null, active: number, idle: number) => ({
  agent_id: id,
  team_id: 't1',
  handled: 2,
  handled_previous: 0,
  resolved: 1,
  resolution_rate: 0.5,
  time_in_status_s: { online: active, busy: 0, away: idle, offline: 86400 - active - idle },
  active_s: active,
  idle_s: idle,
  utilisation: active / (active + idle || 1),
  status_now: status ? { status, since: '2026-11-21T01:00:00.000Z', for_s: 3600 } : null,
  open_conversations: open,
  frt_avg_s: 360.0,
  sla_met_rate: 0.5,
  productivity_score: 63,
  level: 'ok',
});
export const agents: AgentProductivityBody = {
  ...head,
  section: 'agent-productivity',
  formula: 'score = …',
  thresholds: { good: 80, attention: 50 },
  agents: [agent('a1', 1, 'online', 27000, 1800), agent('a2', 4, 'busy', 3600, 0), agent('a3', 0, null, 0, 0)],
  workload: { agents: 2, open_conversations: 5, mean: 2.5, std_dev: 1.5, coefficient_of_variation: 0.6 },
};

export const business: BusinessImpactBody = {
  ...head,
  section: 'business-impact',
  leads: { current: 2, previous: 1 },
  tickets_resolved: { current: 2, previous: 1 },
  campaigns: [
    { campaign_id: 'autumn', recipients: 100, conversations: 1, leads: 1, deals_won: 0, revenue: [], conversion: 0.01 },
    { campaign_id: 'spring', recipients: 1200, conversations: 2, leads: 1, deals_won: 2, revenue: [{ currency: 'USD', amount_minor: 6000, deals: 2 }], conversion: 0.0008 },
    { campaign_id: 'diwali', recipients: 50, conversations: 3, leads: 2, deals_won: 1, revenue: [{ currency: 'INR', amount_minor: 200000, deals: 1 }, { currency: 'USD', amount_minor: 700, deals: 1 }], conversion: 0.04 },
  ],
  repeat_customers: { current: { customers: 3, repeat: 1, rate: 0.3333 }, previous: { customers: 0, repeat: 0, rate: null } },
  cost_per_conversation: {
    currency: 'USD',
    current: { agent_hours: 5.0, agent_cost_minor: 6000, channel_fees_minor: 160, conversations: 4, per_conversation_minor: 1540 },
    previous: { agent_hours: 0.0, agent_cost_minor: 0, channel_fees_minor: 0, conversations: 0, per_conversation_minor: null },
  },
  revenue: {
    current: [{ currency: 'USD', amount_minor: 6700, deals: 3 }, { currency: 'INR', amount_minor: 200000, deals: 1 }],
    previous: [],
  },
};

const utcHead = {
  account_id: 1,
  timezone: 'UTC',
  range: { from: '2026-11-20T00:00:00.000Z', to: '2026-11-21T00:00:00.000Z' },
  previous_range: { from: '2026-11-19T00:00:00.000Z', to: '2026-11-20T00:00:00.000Z' },
  progress: 1795546954104,
};

// The body of the server's golden test (tests/whatsapp_performance.rs, docs/api.md), plus a
// failure without an error code and a second, healthy channel to exercise the ordering.
export const whatsapp: WhatsappPerformanceBody = {
  ...utcHead,
  section: 'whatsapp-performance',
  funnel: {
    current: { created: 10, sent: 6, delivered: 5, read: 3, failed: 4, with_status: 9, read_rate: 0.6 },
    previous: { created: 3, sent: 2, delivered: 2, read: 0, failed: 1, with_status: 3, read_rate: 0.0 },
  },
  delivery: {
    current: { delivered: 5, with_status: 9, rate: 0.5556 },
    previous: { delivered: 2, with_status: 3, rate: 0.6667 },
    alert_below: 0.9,
    alert: true,
  },
  broadcasts: {
    rows: [
      { broadcast_id: 'b1', campaign_id: 'spring', sent_at: '2026-11-20T14:00:00.000Z', recipients: 4, messages: 3, delivered: 2, read: 1, failed: 1, success_rate: 0.5 },
    ],
    current: { broadcasts: 1, recipients: 4, delivered: 2, success_rate: 0.5 },
    previous: { broadcasts: 1, recipients: 10, delivered: 1, success_rate: 0.1 },
  },
  failures: [
    { error_code: null, error_title: null, category: 'unknown', count: 1, previous: 0 },
    { error_code: 131047, error_title: 'Re-engagement message', category: 'policy', count: 1, previous: 1 },
    { error_code: 131026, error_title: 'Message undeliverable', category: 'recipient', count: 2, previous: 0 },
  ],
  channels_now: {
    channels: [
      { channel_id: 'wa-0', state: 'connected', quality: 'green', queue_depth: 2, sent_per_minute: 1.0, reported_at: '2026-11-20T15:00:00.000Z', age_s: 60 },
      { channel_id: 'wa-1', state: 'degraded', quality: 'yellow', queue_depth: 40, sent_per_minute: 3.25, reported_at: '2026-11-20T15:00:00.000Z', age_s: 120 },
    ],
    queue_depth: 42,
    sent_per_minute: 4.25,
    unhealthy: 1,
  },
};

// The body of tests/automation_impact.rs (docs/api.md), with two more intents.
export const automation: AutomationImpactBody = {
  ...utcHead,
  section: 'automation-impact',
  conversations: {
    current: { total: 6, bot_only: 2, with_humans: 2, other: 2, bot_only_share: 0.3333 },
    previous: { total: 2, bot_only: 1, with_humans: 1, other: 0, bot_only_share: 0.5 },
  },
  escalation: { current: { count: 1, of: 5, rate: 0.2 }, previous: { count: 1, of: 2, rate: 0.5 } },
  drop_off: { current: { count: 1, of: 5, rate: 0.2 }, previous: { count: 0, of: 2, rate: 0.0 } },
  auto_reply_success: { current: { count: 1, of: 3, rate: 0.3333 }, previous: { count: 0, of: 0, rate: null } },
  top_intents: [
    { intent: 'order_status', conversations: 2, previous_conversations: 0, bot_resolution: { count: 1, of: 2, rate: 0.5 }, escalation: { count: 0, of: 2, rate: 0.0 } },
    { intent: 'refund', conversations: 3, previous_conversations: 1, bot_resolution: { count: 0, of: 3, rate: 0.0 }, escalation: { count: 2, of: 3, rate: 0.6667 } },
    { intent: 'billing', conversations: 2, previous_conversations: 0, bot_resolution: { count: 1, of: 2, rate: 0.5 }, escalation: { count: 1, of: 2, rate: 0.5 } },
  ],
  time_saved: {
    current: { bot_only_resolutions: 2, human_conversations: 2, avg_human_handling_s: 1500.0, saved_s: 3000 },
    previous: { bot_only_resolutions: 1, human_conversations: 1, avg_human_handling_s: 600.0, saved_s: 600 },
  },
  csat: {
    current: { bot_only: { responses: 2, average: 4.5, satisfaction: 1.0 }, with_humans: { responses: 2, average: 3.5, satisfaction: 0.5 } },
    previous: { bot_only: { responses: 0, average: null, satisfaction: null }, with_humans: { responses: 0, average: null, satisfaction: null } },
  },
};
