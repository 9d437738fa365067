import { useMemo } from 'react';
import type { AutomationImpactBody } from '../api/types';
import { Chart } from '../components/Chart';
import { DataTable, type Column } from '../components/DataTable';
import { Stat } from '../components/Stat';
import { formatCount, formatDuration, formatPercent } from '../lib/format';
import { botHumanSlices, intentRows } from '../lib/sections/automation';
import { nonZero } from '../lib/sections/common';
import { COLORS, GRID, LEGEND, TOOLTIP_AXIS, TOOLTIP_ITEM, type ViewProps } from './shared';

type Intent = AutomationImpactBody['top_intents'][number];

export default function AutomationView({ data: d, ctx }: ViewProps<AutomationImpactBody>) {
  const slices = botHumanSlices(d);
  const intents = useMemo(() => intentRows(d), [d]);
  const c = d.conversations.current;
  const csat = d.csat.current;
  const saved = d.time_saved.current;
  const pieOption = useMemo(
    () => ({
      tooltip: TOOLTIP_ITEM,
      legend: { bottom: 0, data: slices.map((x) => x.name) },
      // Three slices with two-line labels: a smaller pie, higher up, keeps labels off the legend.
      series: [
        {
          type: 'pie',
          center: ['50%', '45%'],
          radius: ['34%', '60%'],
          minShowLabelAngle: 4,
          data: nonZero(slices, [COLORS.bot, COLORS.human, COLORS.previous]),
          label: { formatter: '{b}\n{c}', lineHeight: 15 },
        },
      ],
    }),
    [slices],
  );
  const csatOption = useMemo(
    () => ({
      tooltip: TOOLTIP_AXIS,
      legend: LEGEND,
      grid: GRID,
      xAxis: { type: 'category', data: ['Bot only', 'With humans'] },
      yAxis: [{ type: 'value', min: 0, max: 5, name: 'avg' }],
      series: [{ name: 'CSAT average', type: 'bar', data: [csat.bot_only.average, csat.with_humans.average], itemStyle: { color: COLORS.primary } }],
    }),
    [csat],
  );
  const rateCell = (r: { count: number; of: number; rate?: number | null }) => `${formatPercent(r.rate)} (${r.count}/${r.of})`;
  const cols: Column<Intent>[] = [
    { key: 'intent', label: 'Intent', value: (r) => r.intent },
    { key: 'count', label: 'Conversations', value: (r) => r.conversations, numeric: true },
    { key: 'prev', label: 'Previous period', value: (r) => r.previous_conversations, numeric: true },
    { key: 'bot', label: 'Bot resolution', value: (r) => r.bot_resolution.rate ?? null, render: (r) => rateCell(r.bot_resolution), numeric: true },
    { key: 'esc', label: 'Escalation', value: (r) => r.escalation.rate ?? null, render: (r) => rateCell(r.escalation), numeric: true },
  ];
  const rateStat = (label: string, testId: string, r: AutomationImpactBody['escalation'], polarity: 'higher-is-better' | 'lower-is-better', what: string) => (
    <Stat
      label={label}
      value={formatPercent(r.current.rate)}
      raw={r.current.rate}
      current={r.current.rate}
      previous={r.previous.rate}
      previousText={formatPercent(r.previous.rate)}
      polarity={polarity}
      testId={testId}
      hint={`${formatCount(r.current.count)} of ${formatCount(r.current.of)} ${what}`}
    />
  );
  return (
    <>
      <div className="stats">
        <Stat
          label="Bot only"
          value={formatCount(c.bot_only)}
          raw={c.bot_only}
          current={c.bot_only}
          previous={d.conversations.previous.bot_only}
          previousText={formatCount(d.conversations.previous.bot_only)}
          polarity="higher-is-better"
          testId="au-bot"
          hint={`${formatPercent(c.bot_only_share)} of ${formatCount(c.total)} · ${formatCount(c.with_humans)} with humans`}
        />
        {rateStat('Escalation rate', 'au-escalation', d.escalation, 'lower-is-better', 'bot conversations')}
        {rateStat('Drop-off rate', 'au-dropoff', d.drop_off, 'lower-is-better', 'closed for inactivity')}
        {rateStat('Auto-reply success', 'au-autoreply', d.auto_reply_success, 'higher-is-better', 'with an auto reply')}
        <Stat
          label="Time saved"
          value={formatDuration(saved.saved_s)}
          raw={saved.saved_s}
          current={saved.saved_s}
          previous={d.time_saved.previous.saved_s ?? null}
          previousText={formatDuration(d.time_saved.previous.saved_s)}
          polarity="higher-is-better"
          testId="au-saved"
          small
          hint={`${saved.bot_only_resolutions} bot resolutions × ${formatDuration(saved.avg_human_handling_s)} human handling`}
        />
        <Stat
          label="CSAT bot vs human"
          value={`${csat.bot_only.average?.toFixed(2) ?? '—'} / ${csat.with_humans.average?.toFixed(2) ?? '—'}`}
          testId="au-csat"
          small
          hint={`satisfied ${formatPercent(csat.bot_only.satisfaction)} / ${formatPercent(csat.with_humans.satisfaction)} · ${csat.bot_only.responses + csat.with_humans.responses} responses`}
        />
      </div>
      <div className="charts">
        <Chart title="Bot vs human" option={pieOption} ctx={ctx} testId="chart-bot-human" summary={`${c.bot_only} bot-only, ${c.with_humans} with humans and ${c.other} other conversations.`} height={260} />
        <Chart title="CSAT: bot vs human" option={csatOption} ctx={ctx} testId="chart-csat" summary="Average CSAT score for bot-only and human conversations." />
      </div>
      <DataTable title="Top intents" columns={cols} rows={intents} rowKey={(r) => r.intent} ctx={ctx} testId="table-intents" empty="No intents detected in this range." />
    </>
  );
}
