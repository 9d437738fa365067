import { useMemo } from 'react';
import type { BusinessImpactBody, Campaign } from '../api/types';
import { Chart } from '../components/Chart';
import { DataTable, type Column } from '../components/DataTable';
import { Stat } from '../components/Stat';
import { formatCount, formatPercent } from '../lib/format';
import { campaignRows, currencies, formatRevenue, revenueByCampaign } from '../lib/sections/business';
import { formatMoney } from '../lib/sections/common';
import { COLORS, GRID, TOOLTIP_AXIS, type ViewProps } from './shared';

export default function BusinessView({ data: d, ctx }: ViewProps<BusinessImpactBody>) {
  const rows = useMemo(() => campaignRows(d), [d]);
  const curs = currencies(d);
  const cost = d.cost_per_conversation;
  // Amounts in different currencies cannot share an axis: one chart per currency.
  const revOptions = useMemo(
    () =>
      curs.map((cur) => {
        const rev = revenueByCampaign(d, cur);
        return {
          cur,
          option: {
            tooltip: TOOLTIP_AXIS,
            grid: { ...GRID, bottom: 72 },
            xAxis: { type: 'category', data: rev.campaigns, axisLabel: { rotate: 30 } },
            yAxis: { type: 'value', name: cur },
            series: [{ name: `Revenue (${cur})`, type: 'bar', data: rev.amounts, itemStyle: { color: COLORS.good } }],
          },
        };
      }),
    [d, curs.join()],
  );

  const cols: Column<Campaign>[] = [
    { key: 'campaign', label: 'Campaign', value: (r) => r.campaign_id },
    { key: 'recipients', label: 'Recipients', value: (r) => r.recipients ?? null, numeric: true },
    { key: 'conversations', label: 'Conversations', value: (r) => r.conversations, numeric: true },
    { key: 'leads', label: 'Leads', value: (r) => r.leads, numeric: true },
    { key: 'deals', label: 'Deals won', value: (r) => r.deals_won, numeric: true },
    { key: 'revenue', label: 'Revenue', value: (r) => formatRevenue(r.revenue) },
    { key: 'conversion', label: 'Conversion', value: (r) => r.conversion ?? null, render: (r) => formatPercent(r.conversion, 2), numeric: true },
  ];

  return (
    <>
      <div className="stats">
        <Stat label="Leads" value={formatCount(d.leads.current)} raw={d.leads.current} current={d.leads.current} previous={d.leads.previous} previousText={formatCount(d.leads.previous)} polarity="higher-is-better" testId="bi-leads" />
        <Stat label="Tickets resolved" value={formatCount(d.tickets_resolved.current)} raw={d.tickets_resolved.current} current={d.tickets_resolved.current} previous={d.tickets_resolved.previous} previousText={formatCount(d.tickets_resolved.previous)} polarity="higher-is-better" testId="bi-tickets" />
        <Stat
          label="Repeat customer rate"
          value={formatPercent(d.repeat_customers.current.rate)}
          raw={d.repeat_customers.current.rate}
          current={d.repeat_customers.current.rate}
          previous={d.repeat_customers.previous?.rate ?? null}
          previousText={formatPercent(d.repeat_customers.previous?.rate)}
          polarity="higher-is-better"
          testId="bi-repeat"
          hint={`${formatCount(d.repeat_customers.current.repeat)} of ${formatCount(d.repeat_customers.current.customers)} customers`}
        />
        <Stat
          label="Cost per conversation"
          value={formatMoney(cost.current.per_conversation_minor, cost.currency)}
          raw={cost.current.per_conversation_minor}
          current={cost.current.per_conversation_minor}
          previous={cost.previous?.per_conversation_minor ?? null}
          previousText={formatMoney(cost.previous?.per_conversation_minor, cost.currency)}
          polarity="lower-is-better"
          testId="bi-cost"
          hint={`${cost.current.agent_hours.toFixed(1)} agent hours · ${formatCount(cost.current.conversations)} conversations`}
        />
        <Stat label="Revenue" value={formatRevenue(d.revenue.current)} small testId="bi-revenue" hint={`previous: ${formatRevenue(d.revenue.previous)}`} />
      </div>
      <DataTable title="Campaign conversion" columns={cols} rows={rows} rowKey={(r) => r.campaign_id} ctx={ctx} testId="table-campaigns" empty="No campaign activity in this range." />
      <div className="charts">
        {revOptions.map(({ cur, option }) => (
          <Chart key={cur} title={`Revenue by campaign (${cur})`} option={option} ctx={ctx} testId={`chart-revenue-${cur}`} summary={`Revenue in ${cur} per campaign.`} />
        ))}
        {revOptions.length === 0 && (
          <section className="panel">
            <h3 className="panel__title">Revenue by campaign</h3>
            <p className="empty">No deals won in this range.</p>
          </section>
        )}
      </div>
    </>
  );
}
