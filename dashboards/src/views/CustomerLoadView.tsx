import { useMemo } from 'react';
import type { CustomerLoadBody } from '../api/types';
import { Chart } from '../components/Chart';
import { DataTable, type Column } from '../components/DataTable';
import { Stat } from '../components/Stat';
import { formatCount, formatDuration, formatPercent } from '../lib/format';
import { forecastSeries, heatmapCells, hourProfile, openedSeries, runs } from '../lib/sections/customerLoad';
import { ratio } from '../lib/sections/common';
import { COLORS, GRID, LEGEND, TOOLTIP_AXIS, TOOLTIP_ITEM, type ViewProps } from './shared';
import { nonZero } from '../lib/sections/common';

const HOURS = Array.from({ length: 24 }, (_, h) => String(h).padStart(2, '0'));

export default function CustomerLoadView({ data: d, ctx }: ViewProps<CustomerLoadBody>) {
  const opened = useMemo(() => openedSeries(d), [d]);
  const profile = useMemo(() => hourProfile(d), [d]);
  const heat = useMemo(() => heatmapCells(d), [d]);
  const forecast = useMemo(() => forecastSeries(d), [d]);
  const c = d.customers.current;
  const peakText = d.peak_hours.length ? [...d.peak_hours].sort((a, b) => a - b).map((h) => `${String(h).padStart(2, '0')}:00`).join(', ') : '—';

  const openedOption = useMemo(
    () => ({
      tooltip: TOOLTIP_AXIS,
      grid: GRID,
      xAxis: { type: 'category', data: opened.labels, boundaryGap: false },
      yAxis: { type: 'value', minInterval: 1 },
      series: [
        {
          name: 'Opened',
          type: 'line',
          data: opened.counts,
          showSymbol: false,
          areaStyle: { opacity: 0.2 },
          itemStyle: { color: COLORS.primary },
          markArea: {
            silent: true,
            itemStyle: { color: 'rgba(245, 158, 11, 0.15)' },
            data: runs(opened.peak).map(([a, b]) => [{ xAxis: opened.labels[a], name: 'Peak' }, { xAxis: opened.labels[b] }]),
          },
        },
      ],
    }),
    [opened],
  );
  const profileOption = useMemo(
    () => ({
      tooltip: TOOLTIP_AXIS,
      grid: GRID,
      xAxis: { type: 'category', data: profile.labels, name: 'hour' },
      yAxis: { type: 'value', minInterval: 1 },
      series: [
        {
          name: 'Opened',
          type: 'bar',
          data: profile.counts.map((v, i) => ({ value: v, itemStyle: { color: profile.peak[i] ? COLORS.warn : COLORS.primary } })),
        },
      ],
    }),
    [profile],
  );
  const heatOption = useMemo(
    () => ({
      tooltip: { ...TOOLTIP_ITEM, formatter: (p: { value: [number, number, number] }) => `${d.heatmap.weekdays[p.value[1]]} ${HOURS[p.value[0]]}:00 — ${p.value[2]}` },
      grid: { left: 48, right: 16, top: 16, bottom: 72 },
      xAxis: { type: 'category', data: HOURS, splitArea: { show: true } },
      yAxis: { type: 'category', data: d.heatmap.weekdays, inverse: true },
      visualMap: { min: 0, max: Math.max(1, heat.max), calculable: true, orient: 'horizontal', left: 'center', bottom: 0, itemHeight: 120 },
      series: [{ name: 'Opened', type: 'heatmap', data: heat.cells }],
    }),
    [heat, d.heatmap.weekdays],
  );
  const waitOption = useMemo(
    () => ({
      tooltip: { ...TOOLTIP_AXIS, valueFormatter: (v: number | null) => formatDuration(v) },
      legend: LEGEND,
      grid: GRID,
      xAxis: { type: 'category', data: ['Peak hours', 'Off-peak'] },
      yAxis: { type: 'value', name: 'seconds' },
      series: [
        { name: 'Average', type: 'bar', data: [d.wait_time.peak.avg_s ?? null, d.wait_time.off_peak.avg_s ?? null], itemStyle: { color: COLORS.primary } },
        { name: 'p90', type: 'bar', data: [d.wait_time.peak.p90_s ?? null, d.wait_time.off_peak.p90_s ?? null], itemStyle: { color: COLORS.warn } },
      ],
    }),
    [d.wait_time],
  );
  const newRetOption = useMemo(
    () => ({
      tooltip: TOOLTIP_ITEM,
      legend: { bottom: 0, data: ['New', 'Returning'] },
      series: [{ type: 'pie', radius: ['40%', '70%'], minShowLabelAngle: 4, data: nonZero([{ name: 'New', value: c.new }, { name: 'Returning', value: c.returning }], [COLORS.primary, COLORS.good]), label: { formatter: '{b}\n{c}' } }],
    }),
    [c.new, c.returning],
  );
  const forecastOption = useMemo(
    () => ({
      tooltip: TOOLTIP_AXIS,
      grid: GRID,
      xAxis: { type: 'category', data: forecast.labels },
      yAxis: { type: 'value' },
      series: [{ name: 'Expected', type: 'line', data: forecast.expected, lineStyle: { type: 'dashed' }, itemStyle: { color: COLORS.bot } }],
    }),
    [forecast],
  );

  type FRow = { label: string; expected: number | null };
  const forecastRows: FRow[] = forecast.labels.map((label, i) => ({ label, expected: forecast.expected[i] }));
  const forecastCols: Column<FRow>[] = [
    { key: 'hour', label: 'Hour', value: (r) => r.label },
    { key: 'expected', label: 'Expected conversations', value: (r) => r.expected ?? 'not enough history', numeric: true },
  ];

  return (
    <>
      <div className="stats">
        <Stat label="Conversations opened" value={formatCount(d.opened.total)} raw={d.opened.total} current={d.opened.total} previous={d.opened.previous} previousText={formatCount(d.opened.previous)} testId="cl-opened" />
        <Stat label="Peak hours" value={peakText} testId="cl-peak" hint="local time" small />
        <Stat
          label="New vs returning"
          value={`${formatCount(c.new)} / ${formatCount(c.returning)}`}
          raw={c.total}
          previousText={d.customers.previous ? `${formatCount(d.customers.previous.new)} / ${formatCount(d.customers.previous.returning)}` : '—'}
          testId="cl-customers"
          hint={`${formatPercent(ratio(c.returning, c.total))} returning of ${formatCount(c.total)}`}
        />
        <Stat
          label="Wait at peak vs off-peak"
          value={`${formatDuration(d.wait_time.peak.avg_s)} / ${formatDuration(d.wait_time.off_peak.avg_s)}`}
          small
          testId="cl-wait"
          hint="average first response"
        />
        <Stat
          label="Next 24 hours"
          value={forecast.enough ? formatCount(Math.round(forecast.total)) : 'not enough history'}
          raw={forecast.enough ? forecast.total : undefined}
          small={!forecast.enough}
          testId="cl-forecast"
          hint={forecast.enough ? 'expected conversations' : 'no earlier weeks to compare with yet'}
        />
      </div>
      <div className="charts">
        <Chart title="Conversations opened" option={openedOption} ctx={ctx} testId="chart-opened" summary={`${d.opened.total} conversations opened; peak hours ${peakText} are shaded.`} />
        <Chart title="Opened by hour of day" option={profileOption} ctx={ctx} testId="chart-hours" summary={`Conversations opened per local hour; peak hours ${peakText} in amber.`} />
        <Chart title="Weekday × hour" option={heatOption} ctx={ctx} testId="chart-heatmap" summary="Heatmap of conversations opened by local weekday and hour." height={300} />
        <Chart title="Wait time: peak vs off-peak" option={waitOption} ctx={ctx} testId="chart-wait" summary={`Average first response ${formatDuration(d.wait_time.peak.avg_s)} at peak and ${formatDuration(d.wait_time.off_peak.avg_s)} off-peak.`} />
        <Chart title="New vs returning customers" option={newRetOption} ctx={ctx} testId="chart-customers" summary={`${c.new} new and ${c.returning} returning customers.`} height={220} />
        <Chart title="Forecast: next 24 hours" option={forecastOption} ctx={ctx} testId="chart-forecast" summary={forecast.enough ? `About ${forecast.total} conversations expected in the next 24 hours.` : 'Not enough history for a forecast yet.'} />
      </div>
      <DataTable title="Forecast next 24 hours" columns={forecastCols} rows={forecastRows} rowKey={(r) => r.label} ctx={ctx} testId="table-forecast" />
      <p className="note">Forecast: {d.forecast.method}.</p>
    </>
  );
}
