// Reports: the dashboard PDF's query and file name, and the scheduled reports' form
// (what an admin types -> the ScheduleInput the server validates) and their display
// texts. Pure functions, unit tested; the server's shapes are in
// query-api/src/reports/schedule.rs and book.rs (and src/api/schema.d.ts).
import type { components } from '../api/schema';
import { FILTER_KEYS, SECTIONS, type FilterKey, type SectionId } from './viewState';

/** The executive summary's name among a report's parts. */
export const SUMMARY = 'summary';

/** Every part a report can print, in the server's print order: the summary, then the sections. */
export const REPORT_PARTS: readonly { id: string; label: string }[] = [
  { id: SUMMARY, label: 'Executive summary' },
  ...SECTIONS.map((s) => ({ id: s.api as string, label: s.id === 'overview' ? 'Overview (KPIs)' : s.label })),
];

const PART_ORDER = new Map(REPORT_PARTS.map((p, i) => [p.id, i]));

export function partLabel(id: string): string {
  return REPORT_PARTS.find((p) => p.id === id)?.label ?? id;
}

/** Known parts of `ids`, once each, in print order. */
export function orderParts(ids: Iterable<string>): string[] {
  return [...new Set(ids)].filter((id) => PART_ORDER.has(id)).sort((a, b) => PART_ORDER.get(a)! - PART_ORDER.get(b)!);
}

/** The API name of a dashboard section (`overview` is the KPI strip, `kpi`). */
export function sectionPart(section: SectionId): string {
  return SECTIONS.find((s) => s.id === section)!.api;
}

// ------------------------------------------------------------------ dashboard PDF

/** What "Export dashboard (PDF)" prints. */
export type PdfChoice =
  | { kind: 'whole' }
  | { kind: 'section'; section: SectionId }
  | { kind: 'chosen'; parts: readonly string[] };

/** The parts a choice names; null for the whole dashboard (the server's default: all seven sections). */
export function choiceParts(choice: PdfChoice): string[] | null {
  switch (choice.kind) {
    case 'whole':
      return null;
    case 'section':
      return [sectionPart(choice.section)];
    case 'chosen':
      return orderParts(choice.parts);
  }
}

/** `/api/reports/dashboard.pdf?…` for the range and filters on screen (`params`) and the choice. */
export function dashboardPdfUrl(params: Record<string, string>, choice: PdfChoice): string {
  const q = new URLSearchParams(params);
  const parts = choiceParts(choice);
  if (parts) q.set('sections', parts.join(','));
  return `/api/reports/dashboard.pdf?${q}`;
}

/** The server's name for it (`crmpulse-<part or "dashboard">-<from>.pdf`), used when the answer has none. */
export function dashboardPdfName(parts: readonly string[] | null, from: string | undefined): string {
  const what = parts && parts.length === 1 ? parts[0] : 'dashboard';
  return `crmpulse-${what}-${from || 'report'}.pdf`;
}

/** The file name of a `Content-Disposition: attachment; filename="…"` header, or null. */
export function fileNameFromDisposition(header: string | null | undefined): string | null {
  const m = /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(header ?? '');
  if (!m) return null;
  let name = m[1].trim();
  try {
    name = decodeURIComponent(name);
  } catch {
    /* keep it as sent */
  }
  // Never a path: only the last segment.
  name = name.split(/[\\/]/).pop() ?? '';
  return name || null;
}

// ------------------------------------------------------------------ schedules

export type Cadence = components['schemas']['Cadence'];
export type RunStatus = components['schemas']['Status'];
export type Run = components['schemas']['Run'];
export type RunList = components['schemas']['RunList'];

export const WEEKDAYS = [
  { id: 'mon', label: 'Monday' },
  { id: 'tue', label: 'Tuesday' },
  { id: 'wed', label: 'Wednesday' },
  { id: 'thu', label: 'Thursday' },
  { id: 'fri', label: 'Friday' },
  { id: 'sat', label: 'Saturday' },
  { id: 'sun', label: 'Sunday' },
] as const;

/** Most recipients one schedule sends to (the server's MAX_RECIPIENTS). */
export const MAX_RECIPIENTS = 50;

/** Filters of a schedule: the dashboard's query parameters (absent keys are not sent). */
export type ScheduleFilters = Partial<Record<FilterKey, string | null>>;

/** What `POST` / `PUT /api/reports/schedules` take (the server refuses unknown fields). */
export interface ScheduleInput {
  name: string;
  cadence: Cadence;
  /** Weekly only (`mon` … `sun`); absent for daily. */
  weekday?: string;
  local_time: string;
  recipients: string[];
  sections: string[];
  filters: ScheduleFilters;
  formats: { pdf: boolean; html: boolean };
  paused: boolean;
}

/** A stored schedule: the input's fields plus the server's. */
export interface Schedule extends Omit<ScheduleInput, 'weekday' | 'filters' | 'formats' | 'paused'> {
  id: string;
  account_id: number;
  weekday?: string | null;
  filters?: ScheduleFilters;
  formats?: { pdf: boolean; html: boolean };
  paused?: boolean;
  created_by: string;
  created_at: number;
  updated_at: number;
}

/** `GET /api/reports/schedules`. */
export interface ScheduleList {
  /** `smtp`, or `off` when no SMTP server is configured (nothing is sent). */
  delivery: string;
  timezone: string;
  schedules: Schedule[];
}

/** The schedule form's fields, as typed. */
export interface ScheduleForm {
  name: string;
  cadence: Cadence;
  weekday: string;
  local_time: string;
  /** Addresses separated by commas, semicolons, spaces or lines. */
  recipients: string;
  sections: string[];
  filters: Record<FilterKey, string>;
  pdf: boolean;
  html: boolean;
  paused: boolean;
}

export function emptyForm(): ScheduleForm {
  return {
    name: '',
    cadence: 'daily',
    weekday: 'mon',
    local_time: '08:00',
    recipients: '',
    sections: [SUMMARY],
    filters: { agent_id: '', team_id: '', inbox_id: '', channel: '' },
    pdf: true,
    html: true,
    paused: false,
  };
}

/** The form filled with a stored schedule (to edit it). */
export function formFromSchedule(s: Schedule): ScheduleForm {
  const base = emptyForm();
  const filters = { ...base.filters };
  for (const k of FILTER_KEYS) filters[k] = s.filters?.[k] ?? '';
  return {
    name: s.name,
    cadence: s.cadence,
    weekday: s.weekday || base.weekday,
    local_time: s.local_time,
    recipients: s.recipients.join('\n'),
    sections: orderParts(s.sections),
    filters,
    pdf: s.formats?.pdf ?? true,
    html: s.formats?.html ?? true,
    paused: !!s.paused,
  };
}

/** Addresses of the recipients field: split on commas, semicolons and white space, once each. */
export function parseRecipients(text: string): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const raw of text.split(/[\s,;]+/)) {
    const a = raw.trim();
    if (!a || seen.has(a.toLowerCase())) continue;
    seen.add(a.toLowerCase());
    out.push(a);
  }
  return out;
}

/**
 * The ScheduleInput of the form. It is not validated here: the server checks every
 * field and names the one at fault, and that message is shown next to the form.
 */
export function inputFromForm(f: ScheduleForm): ScheduleInput {
  const filters: ScheduleFilters = {};
  for (const k of FILTER_KEYS) {
    const v = f.filters[k].trim();
    if (v) filters[k] = v;
  }
  const input: ScheduleInput = {
    name: f.name.trim(),
    cadence: f.cadence,
    local_time: f.local_time.trim(),
    recipients: parseRecipients(f.recipients),
    sections: orderParts(f.sections),
    filters,
    formats: { pdf: f.pdf, html: f.html },
    paused: f.paused,
  };
  if (f.cadence === 'weekly') input.weekday = f.weekday;
  return input;
}

/** A stored schedule's input (what a PUT takes), optionally changed: pausing is `{ paused: true }`. */
export function inputOfSchedule(s: Schedule, change: Partial<ScheduleInput> = {}): ScheduleInput {
  const filters: ScheduleFilters = {};
  for (const k of FILTER_KEYS) {
    const v = s.filters?.[k];
    if (v) filters[k] = v;
  }
  const input: ScheduleInput = {
    name: s.name,
    cadence: s.cadence,
    local_time: s.local_time,
    recipients: [...s.recipients],
    sections: [...s.sections],
    filters,
    formats: { pdf: s.formats?.pdf ?? true, html: s.formats?.html ?? true },
    paused: !!s.paused,
    ...change,
  };
  if (input.cadence === 'weekly') input.weekday = change.weekday ?? s.weekday ?? undefined;
  else delete input.weekday;
  return input;
}

/** The form field a server message names (`weekday: …` -> `weekday`, `filters.channel: …` -> `filters.channel`), or null. */
export function errorField(message: string): string | null {
  const m = /^([a-z_]+(?:\.[a-z_]+)?):\s/.exec(message);
  if (!m) return null;
  const known = ['name', 'cadence', 'weekday', 'local_time', 'recipients', 'sections', 'formats', 'paused', ...FILTER_KEYS.map((k) => `filters.${k}`)];
  return known.includes(m[1]) ? m[1] : null;
}

export function weekdayLabel(id: string | null | undefined): string {
  return WEEKDAYS.find((w) => w.id === id?.toLowerCase().slice(0, 3))?.label ?? id ?? '';
}

/** "Daily at 08:00 (Europe/Berlin)", "Weekly on Monday at 08:00 (UTC)". */
export function cadenceText(s: Pick<Schedule, 'cadence' | 'weekday' | 'local_time'>, timezone?: string | null): string {
  const zone = timezone ? ` (${timezone})` : '';
  if (s.cadence === 'weekly') return `Weekly on ${weekdayLabel(s.weekday)} at ${s.local_time}${zone}`;
  return `Daily at ${s.local_time}${zone}`;
}

/** What each report covers: the day before the slot, or the seven days before it. */
export function coverageText(cadence: Cadence): string {
  return cadence === 'weekly' ? 'the 7 days before' : 'the day before';
}

export function sectionsText(sections: readonly string[]): string {
  return orderParts(sections).map(partLabel).join(', ');
}

export function formatsText(f: { pdf: boolean; html: boolean } | undefined): string {
  const pdf = f?.pdf ?? true;
  const html = f?.html ?? true;
  return [pdf ? 'PDF' : null, html ? 'HTML' : null].filter(Boolean).join(' + ');
}

/** "channel whatsapp, team t1", or "" without filters. */
export function scheduleFiltersText(f: ScheduleFilters | undefined): string {
  const names: Record<FilterKey, string> = { agent_id: 'agent', team_id: 'team', inbox_id: 'inbox', channel: 'channel' };
  return FILTER_KEYS.filter((k) => f?.[k])
    .map((k) => `${names[k]} ${f![k]}`)
    .join(', ');
}

// ------------------------------------------------------------------ history

const DAY_MS = 86_400_000;

/** A run's period `[from, to)` as days: "2026-12-05", or "2026-11-29 – 2026-12-05" (last day inclusive). */
export function periodText(period: readonly string[]): string {
  const [from, to] = period;
  if (!from || !to) return from ?? '';
  const a = Date.parse(`${from}T00:00:00Z`);
  const b = Date.parse(`${to}T00:00:00Z`);
  if (!Number.isFinite(a) || !Number.isFinite(b) || b <= a) return `${from} – ${to}`;
  const last = new Date(b - DAY_MS).toISOString().slice(0, 10);
  return last === from ? from : `${from} – ${last}`;
}

export const STATUS_LABELS: Record<RunStatus, string> = {
  sent: 'Sent',
  failed: 'Failed',
  interrupted: 'Interrupted',
  sending: 'Sending…',
};

/** A manual run ("Send now") has a slot `manual-…`. */
export function isManual(run: Pick<Run, 'slot'>): boolean {
  return run.slot.startsWith('manual-');
}

/** Bytes as "812 B", "5.5 KiB", "1.2 MiB"; 0 -> "—". */
export function formatBytes(n: number | null | undefined): string {
  if (n == null || !Number.isFinite(n) || n <= 0) return '—';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/** The PDF a run made, as the server names it (`crmpulse-report-<from>.pdf`). */
export function runPdfName(run: Pick<Run, 'period'>): string {
  return `crmpulse-report-${run.period[0] ?? 'run'}.pdf`;
}

/** Epoch ms as "2026-12-05 08:00" in `timeZone` (the account's), falling back to the browser's. */
export function formatInstant(ms: number | null | undefined, timeZone?: string | null): string {
  if (ms == null || !Number.isFinite(ms) || ms <= 0) return '—';
  const opts: Intl.DateTimeFormatOptions = { year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' };
  let fmt: Intl.DateTimeFormat;
  try {
    fmt = new Intl.DateTimeFormat('en-CA', { ...opts, timeZone: timeZone ?? undefined });
  } catch {
    fmt = new Intl.DateTimeFormat('en-CA', opts);
  }
  const p = Object.fromEntries(fmt.formatToParts(ms).map((x) => [x.type, x.value]));
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}`;
}
