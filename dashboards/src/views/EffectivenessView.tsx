import { useMemo } from 'react';
import type { EffectivenessBody, RankedAgent } from '../api/types';
import { Chart } from '../components/Chart';
import { DataTable, type Column } from '../components/DataTable';
import { Stat } from '../components/Stat';
import { formatCount, formatDuration, formatPercent } from '../lib/format';
import { levelTone } from '../lib/sections/common';
import { frtSeries, handledBars, resolvedOpenSlices, slaPercent, type HandledBar } from '../lib/sections/effectiveness';
import { COLORS, GRID, LEGEND, TOOLTIP_AXIS, TOOLTIP_ITEM, type ViewProps } from './shared';
import { nonZero } from '../lib/sections/common';

const LEVEL_TEXT: Record<string, string> = { good: 'Good', ok: 'OK', attention: 'Needs attention' };

export default function EffectivenessView({ data: d, ctx, view }: ViewProps<EffectivenessBody>) {
  const bars = useMemo(() => handledBars(d), [d]);
  const frt = useMemo(() => frtSeries(d), [d]);
  const sla = slaPercent(d);
  const slices = resolvedOpenSlices(d);
  const handledTotal = bars.reduce((s, b) => s + b.current, 0);
  const handledPrev = bars.reduce((s, b) => s + b.previous, 0);

  const handledOption = useMemo(
    () => ({
      tooltip: TOOLTIP_AXIS,
      legend: view.compare ? LEGEND : { show: false },
      grid: { ...GRID, bottom: 72 },
      xAxis: { type: 'category', data: bars.map((b) => b.agent), axisLabel: { rotate: 40 } },
      yAxis: { type: 'value', minInterval: 1 },
      series: [
        { name: 'This period', type: 'bar', data: bars.map((b) => b.current), itemStyle: { color: COLORS.primary } },
        ...(view.compare ? [{ name: 'Previous period', type: 'bar', data: bars.map((b) => b.previous), itemStyle: { color: COLORS.previous } }] : []),
      ],
    }),
    [bars, view.compare],
  );
  const frtOption = useMemo(
    () => ({
      tooltip: { ...TOOLTIP_AXIS, valueFormatter: (v: number | null) => formatDuration(v) },
      legend: LEGEND,
      grid: GRID,
      xAxis: { type: 'category', data: frt.labels },
      yAxis: { type: 'value', name: 'seconds' },
      series: [
        {
          name: 'Average',
          type: 'line',
          data: frt.avg,
          connectNulls: false,
          itemStyle: { color: COLORS.primary },
          markLine: { symbol: 'none', data: [{ yAxis: d.sla.target_s, name: 'SLA target' }], label: { formatter: 'SLA target', position: 'insideEndTop' }, lineStyle: { color: COLORS.bad } },
        },
        { name: 'p90', type: 'line', data: frt.p90, connectNulls: false, itemStyle: { color: COLORS.warn } },
      ],
    }),
    [frt, d.sla.target_s],
  );
  const gaugeOption = useMemo(
    () => ({
      series: [
        {
          type: 'gauge',
          min: 0,
          max: 100,
          startAngle: 200,
          endAngle: -20,
          radius: '95%',
          center: ['50%', '60%'],
          pointer: { show: false },
          progress: { show: true, width: 16, itemStyle: { color: COLORS.primary } },
          axisLine: { lineStyle: { width: 16, color: [[1, '#e2e8f0']] } },
          axisTick: { show: false },
          splitLine: { show: false },
          axisLabel: { distance: -34, fontSize: 10, formatter: (v: number) => (v % 50 === 0 ? `${v}` : '') },
          title: { show: false },
          detail: { valueAnimation: false, formatter: sla == null ? 'No data' : '{value}%', fontSize: 24, fontWeight: 600, offsetCenter: [0, '0%'] },
          data: [{ value: sla ?? 0, name: 'SLA met' }],
        },
      ],
    }),
    [sla],
  );
  const pieOption = useMemo(
    () => ({
      tooltip: TOOLTIP_ITEM,
      legend: { bottom: 0, data: slices.map((x) => x.name) },
      series: [{ type: 'pie', radius: ['40%', '70%'], minShowLabelAngle: 4, data: nonZero(slices, [COLORS.good, COLORS.warn]), label: { formatter: '{b}\n{c}' } }],
    }),
    [slices],
  );

  const rankingCols: Column<RankedAgent>[] = [
    { key: 'rank', label: 'Rank', value: (r) => r.rank, numeric: true },
    { key: 'agent', label: 'Agent', value: (r) => r.agent_id },
    { key: 'score', label: 'Score', value: (r) => r.score, numeric: true },
    {
      key: 'level',
      label: 'Level',
      value: (r) => r.level,
      render: (r) => <span className={`level level--${levelTone(r.level)}`}>{LEVEL_TEXT[r.level] ?? r.level}</span>,
    },
    { key: 'handled', label: 'Handled', value: (r) => r.handled, numeric: true },
    { key: 'resolved', label: 'Resolved', value: (r) => r.resolved, numeric: true },
    { key: 'resolution', label: 'Resolution rate', value: (r) => r.resolution_rate ?? null, render: (r) => formatPercent(r.resolution_rate), numeric: true },
    { key: 'frt', label: 'Avg FRT (s)', value: (r) => r.frt_avg_s ?? null, render: (r) => formatDuration(r.frt_avg_s), numeric: true },
    { key: 'sla', label: 'SLA met', value: (r) => r.sla_met_rate ?? null, render: (r) => formatPercent(r.sla_met_rate), numeric: true },
  ];
  const handledCols: Column<HandledBar>[] = [
    { key: 'agent', label: 'Agent', value: (r) => r.agent },
    { key: 'current', label: 'Conversations', value: (r) => r.current, numeric: true },
    { key: 'previous', label: 'Previous period', value: (r) => r.previous, numeric: true },
  ];

  const o = d.resolution.opened_in_range;
  const ev = d.resolution.resolve_events;
  return (
    <>
      <div className="stats">
        <Stat
          label="SLA compliance"
          value={formatPercent(d.sla.current.compliance)}
          raw={d.sla.current.compliance}
          current={d.sla.current.compliance}
          previous={d.sla.previous?.compliance ?? null}
          previousText={formatPercent(d.sla.previous?.compliance)}
          polarity="higher-is-better"
          testId="ce-sla"
          hint={`${formatCount(d.sla.current.met)} met of ${formatCount(d.sla.current.replied + d.sla.current.breached_unanswered)} due · target ${formatDuration(d.sla.target_s)}`}
        />
        <Stat label="Conversations handled" value={formatCount(handledTotal)} raw={handledTotal} current={handledTotal} previous={handledPrev} previousText={formatCount(handledPrev)} testId="ce-handled" hint="by agents who replied in the range" />
        <Stat
          label="Opened in range: resolved / open"
          value={`${formatCount(o.resolved)} / ${formatCount(o.open)}`}
          raw={o.total}
          testId="ce-opened"
          hint={`${formatCount(o.total)} opened`}
        />
        <Stat
          label="Resolve events in range"
          value={formatCount(ev.total)}
          raw={ev.total}
          current={ev.total}
          previous={d.resolution.resolve_events_previous?.total ?? null}
          previousText={formatCount(d.resolution.resolve_events_previous?.total)}
          testId="ce-resolve-events"
          hint={`agent ${ev.by_agent} · bot ${ev.by_bot} · system ${ev.by_system}`}
        />
        <Stat
          label="Waiting past target now"
          value={formatCount(d.sla.waiting_now.past_target)}
          raw={d.sla.waiting_now.past_target}
          testId="ce-waiting"
          tone={d.sla.waiting_now.past_target > 0 ? 'alert' : undefined}
          hint={`${formatCount(d.sla.waiting_now.within_target)} within target`}
        />
      </div>
      <div className="charts">
        <Chart title="Conversations per agent" option={handledOption} ctx={ctx} testId="chart-handled" summary={`${bars.length} agents handled ${handledTotal} conversations.`} />
        <Chart title="First response time trend" option={frtOption} ctx={ctx} testId="chart-frt" summary={`First response time per ${d.frt_trend.granularity}, average and 90th percentile, against the ${formatDuration(d.sla.target_s)} target.`} />
        <Chart title="SLA compliance" option={gaugeOption} ctx={ctx} testId="chart-sla" summary={`SLA compliance ${formatPercent(d.sla.current.compliance)}.`} height={220} />
        <Chart title="Resolved vs open (opened in range)" option={pieOption} ctx={ctx} testId="chart-resolved" summary={`${o.resolved} resolved and ${o.open} open of ${o.total} conversations opened in the range.`} height={220} />
      </div>
      <DataTable
        title="Agent ranking"
        columns={rankingCols}
        rows={d.agent_ranking.agents}
        rowKey={(r) => r.agent_id}
        ctx={ctx}
        testId="table-ranking"
        rowClass={(r) => `row--${levelTone(r.level)}`}
      />
      <p className="note">
        {d.agent_ranking.formula}. Good ≥ {d.agent_ranking.thresholds.good}, needs attention &lt; {d.agent_ranking.thresholds.attention}.
      </p>
      <DataTable title="Conversations per agent" columns={handledCols} rows={bars} rowKey={(r) => r.agent} ctx={ctx} testId="table-handled" />
    </>
  );
}
