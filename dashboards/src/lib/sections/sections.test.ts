import { describe, expect, it } from 'vitest';
import { findAgent, spreadLabel, statusCounts, timeBreakdown, workloadBars } from './agents';
import { botHumanSlices, intentRows } from './automation';
import { campaignRows, currencies, formatRevenue, revenueByCampaign } from './business';
import { formatMoney, granularityFor, levelTone, minorDigits, nonZero, ratio, slotLabel } from './common';
import { forecastSeries, heatmapCells, hourProfile, localHour, openedSeries, runs } from './customerLoad';
import { frtSeries, handledBars, resolvedOpenSlices, slaPercent } from './effectiveness';
import { agents, automation, business, customerLoad, effectiveness, whatsapp } from './fixtures';
import { channelRows, failureRows, funnelSteps } from './whatsapp';

describe('common', () => {
  it('slot labels are local to the account zone', () => {
    expect(slotLabel('2026-11-19T18:30:00.000Z', 'hour', 'Asia/Kolkata')).toBe('20 Nov, 00:00');
    expect(slotLabel('2026-11-19T18:30:00.000Z', 'day', 'Asia/Kolkata')).toBe('20 Nov');
    expect(slotLabel('2026-11-19T18:30:00.000Z', 'hour', 'Not/AZone')).toMatch(/Nov/);
  });
  it('hourly slots up to two days, daily beyond', () => {
    expect(granularityFor(1)).toBe('hour');
    expect(granularityFor(2)).toBe('hour');
    expect(granularityFor(7)).toBe('day');
  });
  it('money from minor units by the currency exponent', () => {
    expect(formatMoney(123456, 'USD')).toBe('$1,234.56');
    expect(formatMoney(500, 'JPY')).toBe('¥500');
    expect(minorDigits('JPY')).toBe(0);
    expect(formatMoney(null, 'USD')).toBe('—');
  });
  it('levels and ratios', () => {
    expect(levelTone('attention')).toBe('attention');
    expect(levelTone('weird')).toBe('neutral');
    expect(ratio(1, 4)).toBe(0.25);
    expect(ratio(1, 0)).toBeNull();
  });
});

describe('conversation effectiveness', () => {
  it('handled per agent: most first, ties by id', () => {
    expect(handledBars(effectiveness)).toEqual([
      { agent: 'c3', current: 5, previous: 2 },
      { agent: 'a1', current: 3, previous: 0 },
      { agent: 'b2', current: 3, previous: 1 },
    ]);
  });
  it('FRT trend leaves gaps where no reply fell', () => {
    const s = frtSeries(effectiveness);
    expect(s.labels).toEqual(['20 Nov, 00:00', '20 Nov, 01:00', '20 Nov, 02:00']);
    expect(s.avg).toEqual([660, null, 90.5]);
    expect(s.p90).toEqual([660, null, 121]);
    expect(s.counts).toEqual([1, 0, 2]);
  });
  it('SLA gauge percent and resolved/open slices', () => {
    expect(slaPercent(effectiveness)).toBe(33.3);
    expect(slaPercent({ ...effectiveness, sla: { ...effectiveness.sla, current: { ...effectiveness.sla.current, compliance: null } } })).toBeNull();
    expect(resolvedOpenSlices(effectiveness)).toEqual([
      { name: 'Resolved', value: 5 },
      { name: 'Open', value: 2 },
    ]);
  });
});

describe('customer load', () => {
  it('local hours in the account zone (+05:30)', () => {
    expect(localHour('2026-11-20T04:30:00.000Z', 'Asia/Kolkata')).toBe(10);
    expect(localHour('2026-11-19T18:30:00.000Z', 'Asia/Kolkata')).toBe(0);
  });
  it('opened series marks slots in peak hours; runs become shaded areas', () => {
    const s = openedSeries(customerLoad);
    expect(s.counts).toEqual([3, 2, 1, 3]);
    expect(s.peak).toEqual([true, true, false, true]);
    expect(runs(s.peak)).toEqual([
      [0, 1],
      [3, 3],
    ]);
    expect(runs([false, false])).toEqual([]);
    const daily = openedSeries({ ...customerLoad, opened: { ...customerLoad.opened, granularity: 'day' } });
    expect(daily.peak).toEqual([false, false, false, false]);
  });
  it('heatmap cells are [hour, weekday, count] with the maximum', () => {
    const h = heatmapCells(customerLoad);
    expect(h.cells).toHaveLength(7 * 24);
    expect(h.cells).toContainEqual([10, 4, 3]);
    expect(h.cells[0]).toEqual([0, 0, 0]);
    expect(h.max).toBe(3);
  });
  it('hour profile fills missing hours with 0', () => {
    const p = hourProfile(customerLoad);
    expect(p.labels[0]).toBe('00');
    expect(p.counts[10]).toBe(3);
    expect(p.counts[0]).toBe(0);
    expect(p.peak.filter(Boolean)).toHaveLength(3);
    expect(p.peak[16]).toBe(true);
  });
  it('forecast rounds to one decimal and sums', () => {
    const f = forecastSeries(customerLoad);
    expect(f.expected).toEqual([0.3, 1.3]);
    expect(f.total).toBe(1.5);
    expect(f.labels).toEqual(['25 Nov, 00:00', '25 Nov, 01:00']);
    expect(f.enough).toBe(true);
  });
  it('forecast without history says so instead of 0', () => {
    const none = { ...customerLoad, forecast: { ...customerLoad.forecast, points: customerLoad.forecast.points.map((p) => ({ ...p, expected: null, weeks: 0 })) } };
    const f = forecastSeries(none);
    expect(f.enough).toBe(false);
    expect(f.expected).toEqual([null, null]);
  });
});

describe('agent productivity', () => {
  it('active / idle / offline hours', () => {
    expect(timeBreakdown(agents)).toEqual({ agents: ['a1', 'a2', 'a3'], active: [7.5, 1, 0], idle: [0.5, 0, 0], offline: [16, 23, 24] });
  });
  it('workload: most open first, mean', () => {
    expect(workloadBars(agents)).toEqual({ agents: ['a2', 'a1', 'a3'], open: [4, 1, 0], mean: 2.5 });
    expect(workloadBars({ ...agents, workload: { ...agents.workload, agents: 0, mean: null } }).mean).toBeNull();
  });
  it('status counts treat agents without a status as offline', () => {
    expect(statusCounts(agents)).toEqual({ online: 1, busy: 1, away: 0, offline: 1 });
  });
  it('spread words and drill-down lookup', () => {
    expect(spreadLabel(0.2)).toBe('Even');
    expect(spreadLabel(0.5)).toBe('Uneven');
    expect(spreadLabel(0.6)).toBe('Skewed');
    expect(spreadLabel(null)).toBe('No data');
    expect(findAgent(agents, 'a2')?.open_conversations).toBe(4);
    expect(findAgent(agents, 'zz')).toBeNull();
    expect(findAgent(agents, null)).toBeNull();
  });
});

describe('business impact', () => {
  it('campaigns by deals, then leads, then id', () => {
    expect(campaignRows(business).map((c) => c.campaign_id)).toEqual(['spring', 'diwali', 'autumn']);
  });
  it('revenue per currency, never added across currencies', () => {
    expect(formatRevenue(business.campaigns[2].revenue)).toBe('₹2,000.00 · $7.00');
    expect(formatRevenue([])).toBe('—');
    expect(currencies(business)).toEqual(['INR', 'USD']);
    expect(revenueByCampaign(business, 'USD')).toEqual({ campaigns: ['spring', 'diwali'], amounts: [60, 7] });
    expect(revenueByCampaign(business, 'INR')).toEqual({ campaigns: ['diwali'], amounts: [2000] });
    expect(revenueByCampaign(business, 'EUR')).toEqual({ campaigns: [], amounts: [] });
  });
});

describe('whatsapp performance', () => {
  it('funnel steps: sent of created, delivered and read of sent, failed of created', () => {
    const s = funnelSteps(whatsapp.funnel.current);
    expect(s.map((x) => [x.name, x.value, x.share, x.of])).toEqual([
      ['Sent', 6, 0.6, 'created'],
      ['Delivered', 5, 5 / 6, 'sent'],
      ['Read', 3, 0.5, 'sent'],
      ['Failed', 4, 0.4, 'created'],
    ]);
    const none = funnelSteps({ created: 0, sent: 0, delivered: 0, read: 0, failed: 0, with_status: 0, read_rate: null });
    expect(none.map((x) => x.share)).toEqual([null, null, null, null]);
  });
  it('failures most first, ties by code, no code last; channels worst first', () => {
    expect(failureRows(whatsapp).map((f) => f.error_code)).toEqual([131026, 131047, null]);
    expect(channelRows(whatsapp).map((c) => c.channel_id)).toEqual(['wa-1', 'wa-0']);
  });
});

describe('automation impact', () => {
  it('bot vs human vs other, and intents by conversations', () => {
    expect(botHumanSlices(automation)).toEqual([
      { name: 'Bot only', value: 2 },
      { name: 'With humans', value: 2 },
      { name: 'Other', value: 2 },
    ]);
    expect(intentRows(automation).map((i) => i.intent)).toEqual(['refund', 'billing', 'order_status']);
  });
});

describe('pie slices', () => {
  it('drops empty slices and keeps each slice its colour', () => {
    const out = nonZero(
      [
        { name: 'New', value: 0 },
        { name: 'Returning', value: 4 },
      ],
      ['#111', '#222'],
    );
    expect(out).toEqual([{ name: 'Returning', value: 4, itemStyle: { color: '#222' } }]);
  });
});
