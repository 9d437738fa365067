// Types mirroring docs/api.md (`GET /api/dashboard/kpi`) and docs/websocket.md.

export type SlaStatus = 'green' | 'yellow' | 'red';

export interface TimeRange {
  from: string;
  to: string;
}

export interface FirstResponseStats {
  count: number;
  avg_s: number | null;
  p50_s: number | null;
  p90_s: number | null;
}

export interface DeliveryStats {
  delivered: number;
  with_status: number;
  rate: number | null;
}

export interface MessageCounts {
  inbound: number;
  outbound: number;
  total: number;
}

export interface KpiData {
  section: 'kpi';
  account_id: number;
  timezone: string;
  range: TimeRange;
  previous_range: TimeRange;
  progress: number;
  active_conversations: { total: number; unassigned: number; bot: number; agent: number };
  first_response: {
    current: FirstResponseStats;
    previous: FirstResponseStats | null;
    sla_target_s: number;
    sla_status: SlaStatus | null;
  };
  whatsapp_delivery: {
    current: DeliveryStats;
    previous: DeliveryStats | null;
    alert_below: number;
    alert: boolean;
  };
  open_tickets: { total: number; low: number; medium: number; high: number; urgent: number };
  messages_today: {
    since: string;
    current: MessageCounts;
    previous: MessageCounts | null;
  };
}

/** RFC 6902 operation, as sent in `delta.patch`. */
export interface PatchOperation {
  op: 'add' | 'remove' | 'replace' | 'move' | 'copy' | 'test';
  path: string;
  value?: unknown;
  from?: string;
}

export type ServerMessage =
  | { type: 'snapshot'; id: string; progress: number; data: unknown }
  | { type: 'delta'; id: string; progress: number; patch: PatchOperation[] }
  | { type: 'progress'; progress: number }
  | { type: 'error'; id?: string; code?: string; message: string }
  | { type: 'authenticated'; sub: string; role: string; account_id: number; exp: number | null };

export type ClientMessage =
  | { op: 'auth'; token: string }
  | { op: 'subscribe'; id: string; section: string; params: Record<string, string> }
  | { op: 'unsubscribe'; id: string };

export type ConnectionStatus = 'connecting' | 'live' | 'reconnecting' | 'offline';
