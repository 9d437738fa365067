import { describe, expect, it } from 'vitest';
import { formatClock, formatCount, formatDayRange, formatDuration, formatPercent, formatPlainInt } from './format';

describe('formatDuration', () => {
  it('formats minutes with zero-padded seconds', () => {
    expect(formatDuration(125)).toBe('2m 05s');
    expect(formatDuration(300)).toBe('5m 00s');
    expect(formatDuration(60)).toBe('1m 00s');
  });
  it('formats sub-minute values as seconds', () => {
    expect(formatDuration(0)).toBe('0s');
    expect(formatDuration(45)).toBe('45s');
  });
  it('rounds to whole seconds before splitting', () => {
    expect(formatDuration(120.5)).toBe('2m 01s');
    expect(formatDuration(59.6)).toBe('1m 00s');
    expect(formatDuration(89.4)).toBe('1m 29s');
  });
  it('formats hours', () => {
    expect(formatDuration(3600)).toBe('1h 00m 00s');
    expect(formatDuration(3725)).toBe('1h 02m 05s');
    expect(formatDuration(90061)).toBe('25h 01m 01s');
  });
  it('shows a dash for missing or invalid values', () => {
    expect(formatDuration(null)).toBe('—');
    expect(formatDuration(undefined)).toBe('—');
    expect(formatDuration(Number.NaN)).toBe('—');
    expect(formatDuration(-5)).toBe('—');
  });
});

describe('formatPercent / formatCount / formatPlainInt', () => {
  it('formats ratios as percentages', () => {
    expect(formatPercent(0.95)).toBe('95.0%');
    expect(formatPercent(0.8889)).toBe('88.9%');
    expect(formatPercent(1)).toBe('100.0%');
    expect(formatPercent(0)).toBe('0.0%');
    expect(formatPercent(null)).toBe('—');
  });
  it('groups counts but keeps plain integers plain', () => {
    expect(formatCount(12345, 'en-US')).toBe('12,345');
    expect(formatCount(7, 'en-US')).toBe('7');
    expect(formatCount(null)).toBe('—');
    expect(formatPlainInt(12345)).toBe('12345');
    expect(formatPlainInt(12)).toBe('12');
    expect(formatPlainInt(null)).toBe('—');
  });
});

describe('formatClock', () => {
  it('renders local HH:MM:SS with zero padding', () => {
    const ms = new Date(2026, 10, 24, 9, 5, 7).getTime();
    expect(formatClock(ms)).toBe('09:05:07');
    expect(formatClock(new Date(2026, 10, 24, 23, 59, 59, 999).getTime())).toBe('23:59:59');
    expect(formatClock(null)).toBe('—');
  });
});

describe('formatDayRange', () => {
  it('shows a single local day for a one-day range in the account zone', () => {
    const r = { from: '2026-11-23T18:30:00Z', to: '2026-11-24T18:30:00Z' };
    expect(formatDayRange(r, 'Asia/Kolkata')).toBe('Tue, 24 Nov 2026');
  });
  it('shows first and last day for a multi-day range (to is exclusive)', () => {
    const r = { from: '2026-11-18T00:00:00Z', to: '2026-11-25T00:00:00Z' };
    expect(formatDayRange(r, 'UTC')).toBe('18 Nov – 24 Nov 2026');
  });
  it('returns a dash for invalid ranges', () => {
    expect(formatDayRange(null)).toBe('—');
    expect(formatDayRange({ from: 'x', to: 'y' }, 'UTC')).toBe('—');
    expect(formatDayRange({ from: '2026-11-25T00:00:00Z', to: '2026-11-24T00:00:00Z' }, 'UTC')).toBe('—');
  });
});
