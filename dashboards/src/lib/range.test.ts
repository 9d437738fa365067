import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { addLocalDays, daysBetween, parseIsoDay, presetDates, previousPeriod, toLocalIsoDate } from './range';

describe('presetDates', () => {
  const now = new Date(2026, 10, 24, 15, 30); // 24 Nov 2026, local time

  it('today is [today, tomorrow)', () => {
    expect(presetDates('today', now)).toEqual({ from: '2026-11-24', to: '2026-11-25' });
  });
  it('yesterday is [yesterday, today)', () => {
    expect(presetDates('yesterday', now)).toEqual({ from: '2026-11-23', to: '2026-11-24' });
  });
  it('last 7 days includes today', () => {
    expect(presetDates('last7', now)).toEqual({ from: '2026-11-18', to: '2026-11-25' });
  });
  it('crosses month and year boundaries', () => {
    expect(presetDates('today', new Date(2026, 11, 31, 23, 59))).toEqual({ from: '2026-12-31', to: '2027-01-01' });
    expect(presetDates('yesterday', new Date(2027, 0, 1, 0, 1))).toEqual({ from: '2026-12-31', to: '2027-01-01' });
    expect(presetDates('last7', new Date(2028, 2, 3, 8))).toEqual({ from: '2028-02-26', to: '2028-03-04' });
  });
});

describe('local dates across DST (Europe/Berlin)', () => {
  const saved = process.env.TZ;
  beforeEach(() => {
    process.env.TZ = 'Europe/Berlin';
  });
  afterEach(() => {
    process.env.TZ = saved;
  });

  it('handles the 25-hour autumn day', () => {
    // 25 Oct 2026 is 25 h long in Berlin; adding 24 h to midnight would stay on the 25th.
    const midnight = new Date(2026, 9, 25, 0, 0);
    expect(toLocalIsoDate(midnight)).toBe('2026-10-25');
    expect(toLocalIsoDate(new Date(midnight.getTime() + 24 * 3600_000))).toBe('2026-10-25');
    expect(toLocalIsoDate(addLocalDays(midnight, 1))).toBe('2026-10-26');
    expect(presetDates('today', midnight)).toEqual({ from: '2026-10-25', to: '2026-10-26' });
  });
  it('handles the 23-hour spring day', () => {
    const lateEvening = new Date(2026, 2, 29, 23, 30);
    expect(presetDates('today', lateEvening)).toEqual({ from: '2026-03-29', to: '2026-03-30' });
    expect(presetDates('yesterday', new Date(2026, 2, 30, 0, 30))).toEqual({ from: '2026-03-29', to: '2026-03-30' });
  });
});

describe('more presets and the previous period', () => {
  const now = new Date(2026, 10, 24, 15, 30);
  it('last 30 days and this month end tomorrow', () => {
    expect(presetDates('last30', now)).toEqual({ from: '2026-10-26', to: '2026-11-25' });
    expect(presetDates('month', now)).toEqual({ from: '2026-11-01', to: '2026-11-25' });
    expect(presetDates('month', new Date(2026, 11, 31, 23))).toEqual({ from: '2026-12-01', to: '2027-01-01' });
  });
  it('previous period has the same number of days and ends where the range starts', () => {
    expect(previousPeriod({ from: '2026-11-18', to: '2026-11-25' })).toEqual({ from: '2026-11-11', to: '2026-11-18' });
    expect(previousPeriod({ from: '2026-03-01', to: '2026-03-02' })).toEqual({ from: '2026-02-28', to: '2026-03-01' });
    expect(daysBetween({ from: '2026-11-01', to: '2026-11-25' })).toBe(24);
  });
  it('parseIsoDay rejects impossible dates', () => {
    expect(parseIsoDay('2026-02-29')).toBeNull();
    expect(parseIsoDay('2028-02-29')?.getDate()).toBe(29);
    expect(parseIsoDay('26-1-1')).toBeNull();
  });
});
