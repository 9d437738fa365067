import { describe, expect, it } from 'vitest';
import { describeFilters, parseViewState, requestParams, serializeViewState, viewDates } from './viewState';

const now = new Date(2026, 10, 24, 15, 30);

describe('view state in the URL', () => {
  it('defaults: overview, today, no comparison, no filters', () => {
    const s = parseViewState('');
    expect(s).toMatchObject({ section: 'overview', preset: 'today', custom: null, compare: false, filters: {}, agent: null });
    expect(serializeViewState(s)).toBe('?range=today');
  });

  it('round-trips section, custom range, comparison, filters, drill-down and unknown parameters', () => {
    const search = '?view=agent-productivity&range=custom&from=2026-11-01&to=2026-11-08&compare=1&agent_id=a1&channel=whatsapp&agent=a1&account_id=7';
    const s = parseViewState(search);
    expect(s.section).toBe('agent-productivity');
    expect(s.custom).toEqual({ from: '2026-11-01', to: '2026-11-08' });
    expect(s.filters).toEqual({ agent_id: 'a1', channel: 'whatsapp' });
    expect(s.extra).toEqual({ account_id: '7' });
    expect(parseViewState(serializeViewState(s))).toEqual(s);
    expect(serializeViewState(s)).toBe(
      '?view=agent-productivity&range=custom&from=2026-11-01&to=2026-11-08&compare=1&agent_id=a1&channel=whatsapp&agent=a1&account_id=7',
    );
  });

  it('falls back to today for an unknown preset or a broken custom range', () => {
    expect(parseViewState('?range=forever').preset).toBe('today');
    expect(parseViewState('?range=custom&from=2026-11-08&to=2026-11-01').preset).toBe('today');
    expect(parseViewState('?range=custom&from=2026-02-30&to=2026-03-02').preset).toBe('today');
    expect(parseViewState('?view=nope').section).toBe('overview');
  });

  it('drops the agent drill-down outside the agents section and blank filters', () => {
    const s = parseViewState('?view=customer-load&agent=a1&team_id=%20%20');
    expect(s.filters).toEqual({});
    expect(serializeViewState(s)).toBe('?view=customer-load&range=today');
  });

  it('request parameters carry filters, extras and the days', () => {
    const s = parseViewState('?range=last7&team_id=t1&inbox_id=i9&account_id=2');
    expect(viewDates(s, now)).toEqual({ from: '2026-11-18', to: '2026-11-25' });
    expect(requestParams(s, now)).toEqual({ account_id: '2', team_id: 't1', inbox_id: 'i9', from: '2026-11-18', to: '2026-11-25' });
  });

  it('the reports page is view=reports, keeping range, filters and extras; a section link leaves it', () => {
    const s = parseViewState('?view=reports&range=last7&channel=sms&account_id=2');
    expect(s).toMatchObject({ page: 'reports', section: 'overview', preset: 'last7', filters: { channel: 'sms' }, extra: { account_id: '2' } });
    expect(serializeViewState(s)).toBe('?view=reports&range=last7&channel=sms&account_id=2');
    expect(parseViewState(serializeViewState(s))).toEqual(s);
    expect(serializeViewState({ ...s, page: 'dashboard', section: 'customer-load' })).toBe('?view=customer-load&range=last7&channel=sms&account_id=2');
    expect(serializeViewState({ ...s, section: 'agent-productivity', agent: 'a1' })).toBe('?view=reports&range=last7&channel=sms&account_id=2');
    expect(parseViewState('?view=customer-load').page).toBe('dashboard');
  });

  it('describes filters for the meta line', () => {
    expect(describeFilters({ channel: 'sms', agent_id: 'a1' })).toBe('agent a1, channel sms');
    expect(describeFilters({})).toBe('');
  });
});
