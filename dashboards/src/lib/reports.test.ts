import { describe, expect, it } from 'vitest';
import {
  cadenceText,
  choiceParts,
  dashboardPdfName,
  dashboardPdfUrl,
  emptyForm,
  errorField,
  fileNameFromDisposition,
  formatBytes,
  formatInstant,
  formatsText,
  formFromSchedule,
  inputFromForm,
  inputOfSchedule,
  isManual,
  orderParts,
  parseRecipients,
  periodText,
  REPORT_PARTS,
  runPdfName,
  scheduleFiltersText,
  sectionsText,
  type Schedule,
} from './reports';

const stored: Schedule = {
  id: '10f529e0d01321fd55f3b70a5da4930c',
  account_id: 2,
  name: 'Monday digest',
  cadence: 'weekly',
  weekday: 'mon',
  local_time: '08:30',
  recipients: ['ops@example.com', 'ceo@example.com'],
  sections: ['customer-load', 'summary'],
  filters: { channel: 'whatsapp' },
  formats: { pdf: true, html: false },
  paused: false,
  created_by: 'admin@2',
  created_at: 1796527411176,
  updated_at: 1796527411176,
};

describe('report parts', () => {
  it('are the summary and the seven sections, in the server print order', () => {
    expect(REPORT_PARTS.map((p) => p.id)).toEqual([
      'summary',
      'kpi',
      'conversation-effectiveness',
      'whatsapp-performance',
      'customer-load',
      'agent-productivity',
      'automation-impact',
      'business-impact',
    ]);
    expect(orderParts(['business-impact', 'nope', 'summary', 'kpi', 'summary'])).toEqual(['summary', 'kpi', 'business-impact']);
  });
});

describe('dashboard PDF', () => {
  const params = { account_id: '2', channel: 'webchat', from: '2026-12-06', to: '2026-12-07' };

  it('whole dashboard: no sections parameter (the server prints all seven)', () => {
    expect(choiceParts({ kind: 'whole' })).toBeNull();
    expect(dashboardPdfUrl(params, { kind: 'whole' })).toBe('/api/reports/dashboard.pdf?account_id=2&channel=webchat&from=2026-12-06&to=2026-12-07');
  });

  it('the section in view by its API name (overview is kpi); chosen ones in print order', () => {
    expect(dashboardPdfUrl(params, { kind: 'section', section: 'customer-load' })).toBe(
      '/api/reports/dashboard.pdf?account_id=2&channel=webchat&from=2026-12-06&to=2026-12-07&sections=customer-load',
    );
    expect(choiceParts({ kind: 'section', section: 'overview' })).toEqual(['kpi']);
    const url = dashboardPdfUrl(params, { kind: 'chosen', parts: ['customer-load', 'summary'] });
    expect(new URL(url, 'http://x').searchParams.get('sections')).toBe('summary,customer-load');
  });

  it('file names follow the server (one part by name, else "dashboard")', () => {
    expect(dashboardPdfName(null, '2026-12-06')).toBe('crmpulse-dashboard-2026-12-06.pdf');
    expect(dashboardPdfName(['customer-load'], '2026-12-06')).toBe('crmpulse-customer-load-2026-12-06.pdf');
    expect(dashboardPdfName(['summary', 'kpi'], '2026-12-06')).toBe('crmpulse-dashboard-2026-12-06.pdf');
    expect(dashboardPdfName(['kpi'], undefined)).toBe('crmpulse-kpi-report.pdf');
  });

  it('reads the name of Content-Disposition, never a path', () => {
    expect(fileNameFromDisposition('attachment; filename="crmpulse-dashboard-2026-12-06.pdf"')).toBe('crmpulse-dashboard-2026-12-06.pdf');
    expect(fileNameFromDisposition("attachment; filename*=UTF-8''report%20one.pdf")).toBe('report one.pdf');
    expect(fileNameFromDisposition('attachment; filename="../../etc/x.pdf"')).toBe('x.pdf');
    expect(fileNameFromDisposition('attachment')).toBeNull();
    expect(fileNameFromDisposition(null)).toBeNull();
  });
});

describe('schedule form -> ScheduleInput', () => {
  it('a new form is a daily summary at 08:00 with PDF and HTML', () => {
    const input = inputFromForm({ ...emptyForm(), name: ' Daily ', recipients: 'a@example.com' });
    expect(input).toEqual({
      name: 'Daily',
      cadence: 'daily',
      local_time: '08:00',
      recipients: ['a@example.com'],
      sections: ['summary'],
      filters: {},
      formats: { pdf: true, html: true },
      paused: false,
    });
    expect('weekday' in input).toBe(false);
  });

  it('weekly carries the weekday; daily never does (the server refuses it)', () => {
    const f = { ...emptyForm(), cadence: 'weekly' as const, weekday: 'fri' };
    expect(inputFromForm(f).weekday).toBe('fri');
    expect(inputFromForm({ ...f, cadence: 'daily' })).not.toHaveProperty('weekday');
  });

  it('recipients split on commas, semicolons, spaces and lines, once each', () => {
    expect(parseRecipients(' a@example.com, b@example.com;\nc@example.com  A@example.com\n\n')).toEqual(['a@example.com', 'b@example.com', 'c@example.com']);
    expect(parseRecipients('')).toEqual([]);
  });

  it('only filled filters are sent, trimmed; sections in print order', () => {
    const f = emptyForm();
    const input = inputFromForm({ ...f, sections: ['business-impact', 'summary'], filters: { ...f.filters, channel: 'sms', team_id: ' t1 ', agent_id: '  ' } });
    expect(input.filters).toEqual({ channel: 'sms', team_id: 't1' });
    expect(input.sections).toEqual(['summary', 'business-impact']);
  });

  it('a stored schedule fills the form and gives back the same input', () => {
    const form = formFromSchedule(stored);
    expect(form).toMatchObject({ name: 'Monday digest', cadence: 'weekly', weekday: 'mon', local_time: '08:30', recipients: 'ops@example.com\nceo@example.com', sections: ['summary', 'customer-load'], pdf: true, html: false });
    expect(form.filters).toEqual({ agent_id: '', team_id: '', inbox_id: '', channel: 'whatsapp' });
    expect(inputFromForm(form)).toEqual(inputOfSchedule(stored, { sections: ['summary', 'customer-load'] }));
  });

  it('pausing is the whole input with paused flipped, without the server-set fields', () => {
    const input = inputOfSchedule(stored, { paused: true });
    expect(input).toEqual({
      name: 'Monday digest',
      cadence: 'weekly',
      weekday: 'mon',
      local_time: '08:30',
      recipients: ['ops@example.com', 'ceo@example.com'],
      sections: ['customer-load', 'summary'],
      filters: { channel: 'whatsapp' },
      formats: { pdf: true, html: false },
      paused: true,
    });
    for (const k of ['id', 'account_id', 'created_by', 'created_at', 'updated_at']) expect(input).not.toHaveProperty(k);
    // A daily schedule as the server sends it (weekday absent, filters and formats maybe absent).
    const daily = inputOfSchedule({ ...stored, cadence: 'daily', weekday: null, filters: undefined, formats: undefined }, { paused: false });
    expect(daily).not.toHaveProperty('weekday');
    expect(daily.filters).toEqual({});
    expect(daily.formats).toEqual({ pdf: true, html: true });
  });

  it('finds the field a server message names', () => {
    expect(errorField('weekday: a weekly schedule needs one (mon … sun)')).toBe('weekday');
    expect(errorField('recipients: "x" is not a mail address (invalid input)')).toBe('recipients');
    expect(errorField('filters.channel: unknown channel "pigeon"')).toBe('filters.channel');
    expect(errorField('local_time: "9am" is not a time of day as HH:MM')).toBe('local_time');
    expect(errorField('schedule: unknown field `x`')).toBeNull();
    expect(errorField('Could not reach the server.')).toBeNull();
  });
});

describe('schedule and run texts', () => {
  it('cadence in the account zone', () => {
    expect(cadenceText(stored, 'Europe/Berlin')).toBe('Weekly on Monday at 08:30 (Europe/Berlin)');
    expect(cadenceText({ cadence: 'daily', local_time: '07:00' }, 'UTC')).toBe('Daily at 07:00 (UTC)');
    expect(cadenceText({ cadence: 'daily', local_time: '07:00' })).toBe('Daily at 07:00');
  });

  it('sections, formats and filters', () => {
    expect(sectionsText(stored.sections)).toBe('Executive summary, Customer load');
    expect(sectionsText(['kpi'])).toBe('Overview (KPIs)');
    expect(formatsText(stored.formats)).toBe('PDF');
    expect(formatsText(undefined)).toBe('PDF + HTML');
    expect(scheduleFiltersText({ channel: 'sms', team_id: 't1', agent_id: null })).toBe('team t1, channel sms');
    expect(scheduleFiltersText({})).toBe('');
  });

  it('a period [from, to) shows its last day inclusive', () => {
    expect(periodText(['2026-12-05', '2026-12-06'])).toBe('2026-12-05');
    expect(periodText(['2026-11-30', '2026-12-07'])).toBe('2026-11-30 – 2026-12-06');
    expect(periodText(['2026-12-31', '2027-01-01'])).toBe('2026-12-31');
  });

  it('sizes, manual runs, the PDF name and instants in a zone', () => {
    expect(formatBytes(0)).toBe('—');
    expect(formatBytes(812)).toBe('812 B');
    expect(formatBytes(5654)).toBe('5.5 KiB');
    expect(formatBytes(3 * 1024 * 1024)).toBe('3.0 MiB');
    expect(isManual({ slot: 'manual-1796527411176' })).toBe(true);
    expect(isManual({ slot: '2026-12-07' })).toBe(false);
    expect(runPdfName({ period: ['2026-11-30', '2026-12-07'] })).toBe('crmpulse-report-2026-11-30.pdf');
    const at = Date.parse('2026-12-07T07:30:00Z');
    expect(formatInstant(at, 'UTC')).toBe('2026-12-07 07:30');
    expect(formatInstant(at, 'Europe/Berlin')).toBe('2026-12-07 08:30');
    expect(formatInstant(at, 'Not/AZone')).toMatch(/^2026-12-07 \d\d:30$/);
    expect(formatInstant(0, 'UTC')).toBe('—');
  });
});
