// The dashboard's whole view state lives in the URL query string, so a link reproduces
// what the sender saw: section, range (preset or custom days), comparison and filters.
import { isRangePreset, parseIsoDay, presetDates, type DateRange, type RangePreset } from './range';

export const SECTIONS = [
  { id: 'overview', label: 'Overview', api: 'kpi', about: 'The KPI strip.' },
  { id: 'conversation-effectiveness', label: 'Conversations', api: 'conversation-effectiveness', about: 'SLA compliance, first response trend, handled per agent, resolved vs open, agent ranking.' },
  { id: 'whatsapp-performance', label: 'WhatsApp', api: 'whatsapp-performance', about: 'Sent → delivered → read, broadcasts, failures by reason, channel health and queue.' },
  { id: 'customer-load', label: 'Customer load', api: 'customer-load', about: 'Conversations per hour, peak hours, new vs returning, weekday × hour, next 24 hours.' },
  { id: 'agent-productivity', label: 'Agents', api: 'agent-productivity', about: 'Status now, active vs idle time, resolution, workload spread, one agent in detail.' },
  { id: 'automation-impact', label: 'Automation', api: 'automation-impact', about: 'Bot vs human, escalation, drop-off, auto-reply success, intents, time saved, CSAT.' },
  { id: 'business-impact', label: 'Business', api: 'business-impact', about: 'Leads, tickets resolved, campaign conversion, repeat customers, cost, revenue.' },
] as const;
export type SectionId = (typeof SECTIONS)[number]['id'];

export const FILTER_KEYS = ['agent_id', 'team_id', 'inbox_id', 'channel'] as const;
export type FilterKey = (typeof FILTER_KEYS)[number];
export type Filters = Partial<Record<FilterKey, string>>;

export const CHANNELS = ['whatsapp', 'webchat', 'email', 'instagram', 'messenger', 'sms'] as const;

/** The dashboard's sections, or the admins' scheduled reports (`?view=reports`). */
export type Page = 'dashboard' | 'reports';

export interface ViewState {
  page: Page;
  /** The section shown on the dashboard page (kept in memory while on the reports page). */
  section: SectionId;
  preset: RangePreset;
  /** Only for `preset === 'custom'`: inclusive first and exclusive last day. */
  custom: DateRange | null;
  /** Show the previous period next to the current one in charts and tables. */
  compare: boolean;
  filters: Filters;
  /** Agent opened in the drill-down of the agents section. */
  agent: string | null;
  /** Anything else in the query string (e.g. `account_id`), kept as is. */
  extra: Record<string, string>;
}

const KNOWN = new Set<string>(['view', 'range', 'from', 'to', 'compare', 'agent', ...FILTER_KEYS]);

export function isSectionId(v: unknown): v is SectionId {
  return typeof v === 'string' && SECTIONS.some((s) => s.id === v);
}

export function parseViewState(search: string): ViewState {
  const q = new URLSearchParams(search);
  const view = q.get('view');
  const range = q.get('range');
  let preset: RangePreset = isRangePreset(range) ? range : 'today';
  let custom: DateRange | null = null;
  if (preset === 'custom') {
    const from = q.get('from');
    const to = q.get('to');
    const a = parseIsoDay(from);
    const b = parseIsoDay(to);
    if (a && b && a < b) custom = { from: from!, to: to! };
    else preset = 'today';
  }
  const filters: Filters = {};
  for (const k of FILTER_KEYS) {
    const v = q.get(k)?.trim();
    if (v) filters[k] = v;
  }
  const extra: Record<string, string> = {};
  for (const [k, v] of q) if (!KNOWN.has(k)) extra[k] = v;
  return {
    page: view === 'reports' ? 'reports' : 'dashboard',
    section: isSectionId(view) ? view : 'overview',
    preset,
    custom,
    compare: q.get('compare') === '1',
    filters,
    agent: q.get('agent') || null,
    extra,
  };
}

/** Canonical query string for a state: stable key order, defaults left out. */
export function serializeViewState(s: ViewState): string {
  const q = new URLSearchParams();
  if (s.page === 'reports') q.set('view', 'reports');
  else if (s.section !== 'overview') q.set('view', s.section);
  q.set('range', s.preset);
  if (s.preset === 'custom' && s.custom) {
    q.set('from', s.custom.from);
    q.set('to', s.custom.to);
  }
  if (s.compare) q.set('compare', '1');
  for (const k of FILTER_KEYS) if (s.filters[k]) q.set(k, s.filters[k]!);
  if (s.agent && s.section === 'agent-productivity' && s.page === 'dashboard') q.set('agent', s.agent);
  for (const [k, v] of Object.entries(s.extra)) q.set(k, v);
  return `?${q.toString()}`;
}

/** The days the state asks for (custom days, or the preset evaluated now). */
export function viewDates(s: ViewState, now: Date = new Date()): DateRange {
  return s.preset === 'custom' && s.custom ? s.custom : presetDates(s.preset, now);
}

/** Parameters of a `/api/live` subscription or REST call for this state. */
export function requestParams(s: ViewState, now: Date = new Date()): Record<string, string> {
  const { from, to } = viewDates(s, now);
  const params: Record<string, string> = { ...s.extra };
  for (const k of FILTER_KEYS) if (s.filters[k]) params[k] = s.filters[k]!;
  return { ...params, from, to };
}

/** Short human description of active filters ("agent agent-01, channel whatsapp"), or "". */
export function describeFilters(f: Filters): string {
  const names: Record<FilterKey, string> = { agent_id: 'agent', team_id: 'team', inbox_id: 'inbox', channel: 'channel' };
  return FILTER_KEYS.filter((k) => f[k])
    .map((k) => `${names[k]} ${f[k]}`)
    .join(', ');
}
