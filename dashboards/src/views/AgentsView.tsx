import { useContext, useMemo } from 'react';
import type { AgentProductivityBody, AgentRow } from '../api/types';
import { Chart } from '../components/Chart';
import { DataTable, type Column } from '../components/DataTable';
import { RowScopeContext, Stat } from '../components/Stat';
import { formatCount, formatDuration, formatPercent } from '../lib/format';
import { agentStatus, findAgent, spreadLabel, STATUS_LABEL, statusCounts, timeBreakdown, workloadBars } from '../lib/sections/agents';
import { levelTone } from '../lib/sections/common';
import { COLORS, GRID, LEGEND, ROW_SCOPE_LABEL, TOOLTIP_AXIS, type ViewProps } from './shared';

function StatusBadge({ status }: { status: string }) {
  return (
    <span className={`status status--${status}`}>
      <span className="status__dot" aria-hidden="true" />
      {STATUS_LABEL[status] ?? status}
    </span>
  );
}

export default function AgentsView({ data: d, ctx, view, update }: ViewProps<AgentProductivityBody>) {
  const time = useMemo(() => timeBreakdown(d), [d]);
  const load = useMemo(() => workloadBars(d), [d]);
  const counts = statusCounts(d);
  // Status counts come from the rows this token may see; workload is account-wide.
  const rows = ROW_SCOPE_LABEL[useContext(RowScopeContext)];
  const selected = findAgent(d, view.agent);

  const timeOption = useMemo(
    () => ({
      tooltip: { ...TOOLTIP_AXIS, valueFormatter: (v: number) => `${v} h` },
      legend: LEGEND,
      grid: { ...GRID, bottom: 72 },
      xAxis: { type: 'category', data: time.agents, axisLabel: { rotate: 40 } },
      yAxis: { type: 'value', name: 'hours' },
      series: [
        { name: 'Active', type: 'bar', stack: 't', data: time.active, itemStyle: { color: COLORS.good } },
        { name: 'Idle (away)', type: 'bar', stack: 't', data: time.idle, itemStyle: { color: COLORS.warn } },
      ],
    }),
    [time],
  );
  const loadOption = useMemo(
    () => ({
      tooltip: TOOLTIP_AXIS,
      grid: { ...GRID, bottom: 72 },
      xAxis: { type: 'category', data: load.agents, axisLabel: { rotate: 40 } },
      yAxis: { type: 'value', minInterval: 1 },
      series: [
        {
          name: 'Open conversations',
          type: 'bar',
          data: load.open,
          itemStyle: { color: COLORS.primary },
          ...(load.mean != null
            ? { markLine: { symbol: 'none', data: [{ yAxis: load.mean, name: 'mean' }], label: { formatter: 'mean on duty {c}', position: 'insideEndTop' } } }
            : {}),
        },
      ],
    }),
    [load],
  );

  const cols: Column<AgentRow>[] = [
    { key: 'agent', label: 'Agent', value: (r) => r.agent_id },
    { key: 'team', label: 'Team', value: (r) => r.team_id ?? null },
    { key: 'status', label: 'Status now', value: (r) => agentStatus(r), render: (r) => <StatusBadge status={agentStatus(r)} /> },
    { key: 'for', label: 'For', value: (r) => r.status_now?.for_s ?? null, render: (r) => formatDuration(r.status_now?.for_s), numeric: true },
    { key: 'handled', label: 'Handled', value: (r) => r.handled, numeric: true },
    ...(view.compare ? [{ key: 'handled_prev', label: 'Handled (previous)', value: (r: AgentRow) => r.handled_previous, numeric: true }] : []),
    { key: 'resolution', label: 'Resolution rate', value: (r) => r.resolution_rate ?? null, render: (r) => formatPercent(r.resolution_rate), numeric: true },
    { key: 'active', label: 'Active (h)', value: (r) => Math.round(r.active_s / 36) / 100, numeric: true },
    { key: 'idle', label: 'Idle (h)', value: (r) => Math.round(r.idle_s / 36) / 100, numeric: true },
    { key: 'open', label: 'Open now', value: (r) => r.open_conversations, numeric: true },
    {
      key: 'score',
      label: 'Score',
      value: (r) => r.productivity_score,
      render: (r) => <span className={`level level--${levelTone(r.level)}`}>{r.productivity_score}</span>,
      numeric: true,
    },
  ];

  return (
    <>
      <div className="stats">
        <Stat label={`Agents online / busy${rows}`} value={`${counts.online} / ${counts.busy}`} raw={counts.online + counts.busy} testId="ap-active" hint={`${counts.away} away · ${counts.offline} offline`} />
        <Stat
          label={rows ? 'Open conversations (all agents on duty)' : 'Open conversations (agents on duty)'}
          value={formatCount(d.workload.open_conversations)}
          raw={d.workload.open_conversations}
          testId="ap-open"
          hint={d.workload.agents ? `${d.workload.agents} agents online or busy · mean ${(d.workload.mean ?? 0).toFixed(1)}` : 'no agent online or busy now'}
        />
        <Stat
          label="Workload spread"
          value={spreadLabel(d.workload.coefficient_of_variation)}
          small
          testId="ap-spread"
          hint={`coefficient of variation ${d.workload.coefficient_of_variation == null ? '—' : d.workload.coefficient_of_variation.toFixed(2)}`}
        />
      </div>
      {selected && (
        <section className="panel drill" aria-labelledby="drill-title" data-testid="agent-drill">
          <div className="panel__head">
            <h3 id="drill-title" className="panel__title">
              Agent {selected.agent_id}
            </h3>
            <button type="button" className="btn btn--small" onClick={() => update({ agent: null })}>
              Close<span className="sr-only"> agent details</span>
            </button>
          </div>
          <dl className="drill__grid">
            <dt>Team</dt>
            <dd>{selected.team_id ?? '—'}</dd>
            <dt>Status</dt>
            <dd>
              <StatusBadge status={agentStatus(selected)} /> for {formatDuration(selected.status_now?.for_s)}
            </dd>
            <dt>Handled</dt>
            <dd>
              {formatCount(selected.handled)} (previous {formatCount(selected.handled_previous)})
            </dd>
            <dt>Resolved</dt>
            <dd>
              {formatCount(selected.resolved)} · {formatPercent(selected.resolution_rate)}
            </dd>
            <dt>Avg first response</dt>
            <dd>{formatDuration(selected.frt_avg_s)}</dd>
            <dt>SLA met</dt>
            <dd>{formatPercent(selected.sla_met_rate)}</dd>
            <dt>Time online / busy / away</dt>
            <dd>
              {formatDuration(selected.time_in_status_s.online)} / {formatDuration(selected.time_in_status_s.busy)} / {formatDuration(selected.time_in_status_s.away)}
            </dd>
            <dt>Utilisation</dt>
            <dd>{formatPercent(selected.utilisation)}</dd>
            <dt>Open conversations</dt>
            <dd>{formatCount(selected.open_conversations)}</dd>
            <dt>Productivity score</dt>
            <dd>
              <span className={`level level--${levelTone(selected.level)}`}>{selected.productivity_score}</span>
            </dd>
          </dl>
          <p>
            <button type="button" className="btn btn--small" onClick={() => update({ filters: { ...view.filters, agent_id: selected.agent_id }, section: 'conversation-effectiveness', agent: null })}>
              Filter the dashboard by this agent
            </button>
          </p>
        </section>
      )}
      <DataTable
        title="Agents"
        columns={cols}
        rows={d.agents}
        rowKey={(r) => r.agent_id}
        ctx={ctx}
        testId="table-agents"
        rowClass={(r) => (r.agent_id === view.agent ? 'is-selected' : `row--${levelTone(r.level)}`)}
        onRowClick={(r) => update({ agent: r.agent_id })}
      />
      <p className="note">
        {d.formula}. Rows open the agent's details. Ranking: sort by Score.
      </p>
      <div className="charts">
        <Chart title="Active vs idle time" option={timeOption} ctx={ctx} testId="chart-time" summary="Hours active (online or busy) and idle (away) per agent within the range." />
        <Chart title="Workload distribution" option={loadOption} ctx={ctx} testId="chart-workload" summary={`Open conversations per agent now; ${spreadLabel(d.workload.coefficient_of_variation).toLowerCase()} spread over agents on duty.`} />
      </div>
    </>
  );
}
