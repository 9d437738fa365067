import { describe, expect, it } from 'vitest';
import { computeTrend, percentChange } from './trend';

describe('percentChange', () => {
  it('computes the relative change in percent', () => {
    expect(percentChange(220, 190)).toBeCloseTo(15.789, 3);
    expect(percentChange(120.5, 131)).toBeCloseTo(-8.0153, 3);
    expect(percentChange(0.95, 0.8889)).toBeCloseTo(6.8737, 3);
    expect(percentChange(50, 100)).toBe(-50);
    expect(percentChange(0, 10)).toBe(-100);
  });
  it('is null when previous is null, missing or zero', () => {
    expect(percentChange(10, null)).toBeNull();
    expect(percentChange(10, undefined)).toBeNull();
    expect(percentChange(10, 0)).toBeNull();
    expect(percentChange(0, 0)).toBeNull();
    expect(percentChange(null, 10)).toBeNull();
  });
});

describe('computeTrend', () => {
  it('shows an up arrow with one decimal', () => {
    const t = computeTrend(220, 190);
    expect(t.direction).toBe('up');
    expect(t.text).toBe('▲ 15.8%');
    expect(t.label).toBe('Up 15.8% vs the previous period');
    expect(t.tone).toBe('neutral');
  });
  it('treats a falling response time as good news', () => {
    const t = computeTrend(120.5, 131, 'lower-is-better');
    expect(t.direction).toBe('down');
    expect(t.text).toBe('▼ 8.0%');
    expect(t.tone).toBe('good');
    expect(computeTrend(150, 131, 'lower-is-better').tone).toBe('bad');
  });
  it('treats a rising delivery rate as good news', () => {
    expect(computeTrend(0.95, 0.8889, 'higher-is-better')).toMatchObject({ text: '▲ 6.9%', tone: 'good' });
    expect(computeTrend(0.85, 0.9, 'higher-is-better')).toMatchObject({ text: '▼ 5.6%', tone: 'bad' });
  });
  it('reports flat changes as 0.0% with a neutral tone', () => {
    expect(computeTrend(100, 100, 'higher-is-better')).toMatchObject({ direction: 'flat', text: '→ 0.0%', tone: 'neutral' });
    expect(computeTrend(100.01, 100)).toMatchObject({ direction: 'flat', text: '→ 0.0%' });
  });
  it('shows a dash without a usable previous value', () => {
    for (const prev of [null, undefined, 0]) {
      const t = computeTrend(42, prev, 'higher-is-better');
      expect(t.text).toBe('—');
      expect(t.pct).toBeNull();
      expect(t.direction).toBeNull();
      expect(t.tone).toBe('neutral');
      expect(t.label).toBe('No comparison with the previous period');
    }
    expect(computeTrend(null, 100).text).toBe('—');
  });
  it('names what it compares against', () => {
    expect(computeTrend(244, 190, 'neutral', 'the same time yesterday').label).toBe('Up 28.4% vs the same time yesterday');
    expect(computeTrend(5, 0, 'neutral', 'the same time yesterday').label).toBe('No comparison with the same time yesterday');
  });
});
