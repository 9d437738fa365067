// Shapes of the two sections the server on this branch does not serve yet (WhatsApp
// performance and automation impact), copied from the draft of docs/api.md on the
// `sections` branch (not committed there when this was written). When the server lists
// them in /api/openapi.json, `npm run gen:api` generates the real types and this file goes;
// any field named differently then becomes a compile error in the views and fixtures.

export interface RangeBody {
  from: string;
  to: string;
}

interface SectionHead {
  account_id: number;
  timezone: string;
  range: RangeBody;
  previous_range: RangeBody;
  progress: number;
}

/** Outbound WhatsApp messages created in the range, by the furthest status reached. */
export interface Funnel {
  created: number;
  sent: number;
  delivered: number;
  read: number;
  failed: number;
  with_status: number;
  read_rate: number | null;
}

export interface DeliveryCount {
  delivered: number;
  with_status: number;
  rate: number | null;
}

export interface BroadcastTotals {
  broadcasts: number;
  recipients: number;
  delivered: number;
  success_rate: number | null;
}

export interface WhatsappPerformanceBody extends SectionHead {
  section: 'whatsapp-performance';
  funnel: { current: Funnel; previous: Funnel | null };
  delivery: { current: DeliveryCount; previous: DeliveryCount | null; alert_below: number; alert: boolean };
  broadcasts: {
    rows: {
      broadcast_id: string;
      campaign_id: string | null;
      sent_at: string;
      recipients: number;
      messages: number;
      delivered: number;
      read: number;
      failed: number;
      success_rate: number | null;
    }[];
    current: BroadcastTotals;
    previous: BroadcastTotals | null;
  };
  failures: { error_code: number; error_title: string | null; category: string; count: number; previous: number }[];
  channels_now: {
    channels: { channel_id: string; state: string; quality: string; queue_depth: number; sent_per_minute: number; reported_at: string; age_s: number }[];
    queue_depth: number;
    sent_per_minute: number;
    unhealthy: number;
  };
}

export interface Rate {
  count: number;
  of: number;
  rate: number | null;
}

export interface BotSplit {
  total: number;
  bot_only: number;
  with_humans: number;
  other: number;
  bot_only_share: number | null;
}

export interface TimeSaved {
  bot_only_resolutions: number;
  human_conversations: number;
  avg_human_handling_s: number | null;
  saved_s: number | null;
}

export interface Csat {
  responses: number;
  average: number | null;
  satisfaction: number | null;
}

export interface AutomationImpactBody extends SectionHead {
  section: 'automation-impact';
  conversations: { current: BotSplit; previous: BotSplit | null };
  escalation: { current: Rate; previous: Rate | null };
  drop_off: { current: Rate; previous: Rate | null };
  auto_reply_success: { current: Rate; previous: Rate | null };
  top_intents: { intent: string; conversations: number; previous_conversations: number; bot_resolution: Rate; escalation: Rate }[];
  time_saved: { current: TimeSaved; previous: TimeSaved | null };
  csat: { current: { bot_only: Csat; with_humans: Csat }; previous: { bot_only: Csat; with_humans: Csat } | null };
}
