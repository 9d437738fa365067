// Shapes of the two sections the server does not serve yet (WhatsApp performance and
// automation impact), written from the design's metric catalog. When the server lists
// them in /api/openapi.json, `npm run gen:api` generates the real types and these go.
// Until then the views render against these types; the dev mock server serves them.

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

export interface Funnel {
  sent: number;
  delivered: number;
  read: number;
  failed: number;
}

export interface WhatsappPerformanceBody extends SectionHead {
  section: 'whatsapp-performance';
  /** Outbound WhatsApp messages created in the range, by the furthest status reached. */
  funnel: { current: Funnel; previous: Funnel | null };
  delivery_rate: { current: number | null; previous: number | null; alert_below: number; alert: boolean };
  broadcasts: { broadcast_id: string; campaign_id: string | null; recipients: number; delivered: number; read: number; failed: number; success_rate: number | null }[];
  failures: { error_code: string; error_title: string | null; category: string; count: number }[];
  channels: { channel_id: string; state: string; quality: string; queue_depth: number; sent_per_minute: number; at: string }[];
  queue: { depth: number; sent_per_minute: number };
}

export interface CsatStats {
  count: number;
  average: number | null;
  satisfied_rate: number | null;
}

export interface AutomationImpactBody extends SectionHead {
  section: 'automation-impact';
  conversations: { bot_only: number; with_humans: number; previous_bot_only: number | null; previous_with_humans: number | null };
  escalation: { escalated: number; assigned_to_bot: number; rate: number | null; previous_rate: number | null };
  drop_off: { dropped: number; bot_conversations: number; rate: number | null; previous_rate: number | null };
  auto_reply: { with_auto_reply: number; resolved_without_escalation: number; success_rate: number | null; previous_success_rate: number | null };
  intents: { intent: string; count: number; bot_resolution_rate: number | null; escalation_rate: number | null }[];
  time_saved: { bot_only_resolutions: number; avg_human_handling_s: number | null; saved_s: number | null };
  csat: { bot_only: CsatStats; human: CsatStats };
}
