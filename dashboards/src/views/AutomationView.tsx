import { useMemo } from 'react';
import type { AutomationImpactBody } from '../api/pending';
import { Chart } from '../components/Chart';
import { DataTable, type Column } from '../components/DataTable';
import { Stat } from '../components/Stat';
import { formatCount, formatDuration, formatPercent } from '../lib/format';
import { botHumanSlices, intentRows } from '../lib/sections/automation';
import { COLORS, GRID, LEGEND, TOOLTIP_AXIS, TOOLTIP_ITEM, type ViewProps } from './shared';
import { nonZero } from '../lib/sections/common';

type Intent = AutomationImpactBody['intents'][number];

export default function AutomationView({ data: d, ctx }: ViewProps<AutomationImpactBody>) {
  const slices = botHumanSlices(d);
  const intents = useMemo(() => intentRows(d), [d]);
  const pieOption = useMemo(
    () => ({ tooltip: TOOLTIP_ITEM, legend: { bottom: 0, data: slices.map((x) => x.name) }, series: [{ type: 'pie', radius: ['40%', '70%'], minShowLabelAngle: 4, data: nonZero(slices, [COLORS.bot, COLORS.human]), label: { formatter: '{b}\n{c}' } }] }),
    [slices],
  );
  const csatOption = useMemo(
    () => ({
      tooltip: TOOLTIP_AXIS,
      legend: LEGEND,
      grid: GRID,
      xAxis: { type: 'category', data: ['Bot only', 'With humans'] },
      yAxis: [{ type: 'value', min: 0, max: 5, name: 'avg' }],
      series: [{ name: 'CSAT average', type: 'bar', data: [d.csat.bot_only.average, d.csat.human.average], itemStyle: { color: COLORS.primary } }],
    }),
    [d.csat],
  );
  const cols: Column<Intent>[] = [
    { key: 'intent', label: 'Intent', value: (r) => r.intent },
    { key: 'count', label: 'Conversations', value: (r) => r.count, numeric: true },
    { key: 'bot', label: 'Bot resolution', value: (r) => r.bot_resolution_rate, render: (r) => formatPercent(r.bot_resolution_rate), numeric: true },
    { key: 'esc', label: 'Escalation', value: (r) => r.escalation_rate, render: (r) => formatPercent(r.escalation_rate), numeric: true },
  ];
  return (
    <>
      <div className="stats">
        <Stat label="Bot only" value={formatCount(d.conversations.bot_only)} raw={d.conversations.bot_only} current={d.conversations.bot_only} previous={d.conversations.previous_bot_only} previousText={formatCount(d.conversations.previous_bot_only)} testId="au-bot" hint={`${formatCount(d.conversations.with_humans)} with humans`} />
        <Stat label="Escalation rate" value={formatPercent(d.escalation.rate)} raw={d.escalation.rate} current={d.escalation.rate} previous={d.escalation.previous_rate} previousText={formatPercent(d.escalation.previous_rate)} polarity="lower-is-better" testId="au-escalation" hint={`${d.escalation.escalated} of ${d.escalation.assigned_to_bot} bot conversations`} />
        <Stat label="Drop-off rate" value={formatPercent(d.drop_off.rate)} raw={d.drop_off.rate} current={d.drop_off.rate} previous={d.drop_off.previous_rate} previousText={formatPercent(d.drop_off.previous_rate)} polarity="lower-is-better" testId="au-dropoff" hint="closed for inactivity" />
        <Stat label="Auto-reply success" value={formatPercent(d.auto_reply.success_rate)} raw={d.auto_reply.success_rate} current={d.auto_reply.success_rate} previous={d.auto_reply.previous_success_rate} previousText={formatPercent(d.auto_reply.previous_success_rate)} polarity="higher-is-better" testId="au-autoreply" />
        <Stat label="Time saved" value={formatDuration(d.time_saved.saved_s)} raw={d.time_saved.saved_s} testId="au-saved" hint={`${d.time_saved.bot_only_resolutions} bot resolutions × ${formatDuration(d.time_saved.avg_human_handling_s)}`} />
        <Stat
          label="CSAT bot vs human"
          value={`${d.csat.bot_only.average?.toFixed(2) ?? '—'} / ${d.csat.human.average?.toFixed(2) ?? '—'}`}
          testId="au-csat"
          hint={`satisfied ${formatPercent(d.csat.bot_only.satisfied_rate)} / ${formatPercent(d.csat.human.satisfied_rate)}`}
        />
      </div>
      <div className="charts">
        <Chart title="Bot vs human" option={pieOption} ctx={ctx} testId="chart-bot-human" summary={`${d.conversations.bot_only} bot-only and ${d.conversations.with_humans} with humans.`} height={220} />
        <Chart title="CSAT: bot vs human" option={csatOption} ctx={ctx} testId="chart-csat" summary="Average CSAT score for bot-only and human conversations." />
      </div>
      <DataTable title="Top intents" columns={cols} rows={intents} rowKey={(r) => r.intent} ctx={ctx} testId="table-intents" empty="No intents detected in this range." />
    </>
  );
}
