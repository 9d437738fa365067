import { formatCount, formatDuration, formatPercent, formatPlainInt } from '../lib/format';
import { slaDisplay } from '../lib/sla';
import type { KpiData } from '../lib/types';
import { Breakdown, BreakdownItem, KpiCard, StackedBar } from './KpiCard';
import { Sparkline } from './Sparkline';
import { Trend } from './Trend';

const COLORS = {
  unassigned: '#f59e0b',
  bot: '#8b5cf6',
  agent: '#2563eb',
  urgent: '#dc2626',
  high: '#f97316',
  medium: '#eab308',
  low: '#94a3b8',
  inbound: '#0ea5e9',
  outbound: '#6366f1',
};

const YESTERDAY = 'the same time yesterday';

const CARDS = [
  { id: 'card-active', title: 'Active conversations', badge: 'now' },
  { id: 'card-frt', title: 'First response time', badge: 'range' },
  { id: 'card-wa', title: 'WhatsApp delivery rate', badge: 'range' },
  { id: 'card-tickets', title: 'Open tickets', badge: 'now' },
  { id: 'card-messages', title: 'Messages today', badge: 'today' },
] as const;

interface Props {
  data: KpiData | null;
  /** A new range was requested and its snapshot has not arrived yet. */
  pending: boolean;
  rangeLabel: string;
  activeHistory: number[];
}

export function KpiStrip({ data, pending, rangeLabel, activeHistory }: Props) {
  if (!data) return <KpiSkeleton rangeLabel={rangeLabel} />;
  const a = data.active_conversations;
  const fr = data.first_response;
  const wa = data.whatsapp_delivery;
  const t = data.open_tickets;
  const m = data.messages_today;
  const sla = slaDisplay(fr.sla_status);
  const waRate = wa.current.rate;

  return (
    <div className="grid" aria-busy={pending || undefined}>
      <KpiCard id="card-active" title="Active conversations" badge="now">
        <p className="value">
          <span className="value__main" data-testid="kpi-active-total" data-value={a.total}>
            {formatPlainInt(a.total)}
          </span>
          <span className="value__unit">open</span>
        </p>
        <StackedBar
          parts={[
            { key: 'unassigned', value: a.unassigned, color: COLORS.unassigned },
            { key: 'bot', value: a.bot, color: COLORS.bot },
            { key: 'agent', value: a.agent, color: COLORS.agent },
          ]}
        />
        <Breakdown>
          <BreakdownItem label="Unassigned" value={formatCount(a.unassigned)} raw={a.unassigned} testId="kpi-active-unassigned" swatch={COLORS.unassigned} />
          <BreakdownItem label="Bot" value={formatCount(a.bot)} raw={a.bot} testId="kpi-active-bot" swatch={COLORS.bot} />
          <BreakdownItem label="Agent" value={formatCount(a.agent)} raw={a.agent} testId="kpi-active-agent" swatch={COLORS.agent} />
        </Breakdown>
        {activeHistory.length >= 2 && (
          <Sparkline
            values={activeHistory}
            label={`Active conversations during this visit: from ${activeHistory[0]} to ${activeHistory[activeHistory.length - 1]}`}
          />
        )}
      </KpiCard>

      <KpiCard id="card-frt" title="First response time" badge={rangeLabel} busy={pending}>
        <p className="value">
          <span className="value__main" data-testid="kpi-frt-avg" data-value={fr.current.avg_s ?? undefined}>
            {formatDuration(fr.current.avg_s)}
          </span>
          <span className="value__unit">avg</span>
          <Trend current={fr.current.avg_s} previous={fr.previous?.avg_s} polarity="lower-is-better" testId="kpi-frt-trend" />
        </p>
        <div className="sla-row">
          <p className={`sla sla--${sla.status}`} data-testid="kpi-frt-sla" data-sla={sla.status}>
            <span className="sla__dot" style={{ background: sla.color }} aria-hidden="true" />
            {sla.label}
          </p>
          <span className="caption">p90 target {formatDuration(fr.sla_target_s)}</span>
        </div>
        <Breakdown>
          <BreakdownItem label="Median (p50)" value={formatDuration(fr.current.p50_s)} raw={fr.current.p50_s} testId="kpi-frt-p50" />
          <BreakdownItem label="p90" value={formatDuration(fr.current.p90_s)} raw={fr.current.p90_s} testId="kpi-frt-p90" />
          <BreakdownItem label="Conversations" value={formatCount(fr.current.count)} raw={fr.current.count} testId="kpi-frt-count" />
        </Breakdown>
      </KpiCard>

      <KpiCard id="card-wa" title="WhatsApp delivery rate" badge={rangeLabel} tone={wa.alert ? 'alert' : 'default'} busy={pending}>
        <p className="value">
          <span className="value__main" data-testid="kpi-wa-rate" data-value={waRate ?? undefined}>
            {formatPercent(waRate)}
          </span>
          <Trend current={waRate} previous={wa.previous?.rate} polarity="higher-is-better" testId="kpi-wa-trend" />
        </p>
        <p className="caption">
          {wa.current.with_status > 0
            ? `${formatCount(wa.current.delivered)} of ${formatCount(wa.current.with_status)} messages delivered`
            : 'No delivery statuses in this range'}
        </p>
        {wa.alert && (
          <p className="alert" role="alert" data-testid="kpi-wa-alert">
            <span aria-hidden="true">⚠</span> Below the {formatPercent(wa.alert_below)} alert threshold
          </p>
        )}
      </KpiCard>

      <KpiCard id="card-tickets" title="Open tickets" badge="now">
        <p className="value">
          <span className="value__main" data-testid="kpi-tickets-total" data-value={t.total}>
            {formatCount(t.total)}
          </span>
          <span className="value__unit">open</span>
        </p>
        <StackedBar
          parts={[
            { key: 'urgent', value: t.urgent, color: COLORS.urgent },
            { key: 'high', value: t.high, color: COLORS.high },
            { key: 'medium', value: t.medium, color: COLORS.medium },
            { key: 'low', value: t.low, color: COLORS.low },
          ]}
        />
        <Breakdown>
          <BreakdownItem label="Urgent" value={formatCount(t.urgent)} raw={t.urgent} testId="kpi-tickets-urgent" swatch={COLORS.urgent} />
          <BreakdownItem label="High" value={formatCount(t.high)} raw={t.high} testId="kpi-tickets-high" swatch={COLORS.high} />
          <BreakdownItem label="Medium" value={formatCount(t.medium)} raw={t.medium} testId="kpi-tickets-medium" swatch={COLORS.medium} />
          <BreakdownItem label="Low" value={formatCount(t.low)} raw={t.low} testId="kpi-tickets-low" swatch={COLORS.low} />
        </Breakdown>
      </KpiCard>

      <KpiCard id="card-messages" title="Messages today" badge="today">
        <p className="value">
          <span className="value__main" data-testid="kpi-messages-total" data-value={m.current.total}>
            {formatCount(m.current.total)}
          </span>
          <Trend current={m.current.total} previous={m.previous?.total} testId="kpi-messages-trend" comparedTo={YESTERDAY} />
        </p>
        <p className="caption">vs the same time yesterday</p>
        <Breakdown>
          <BreakdownItem
            label="Inbound"
            value={formatCount(m.current.inbound)}
            raw={m.current.inbound}
            testId="kpi-messages-inbound"
            swatch={COLORS.inbound}
            extra={<Trend current={m.current.inbound} previous={m.previous?.inbound} comparedTo={YESTERDAY} />}
          />
          <BreakdownItem
            label="Outbound"
            value={formatCount(m.current.outbound)}
            raw={m.current.outbound}
            testId="kpi-messages-outbound"
            swatch={COLORS.outbound}
            extra={<Trend current={m.current.outbound} previous={m.previous?.outbound} comparedTo={YESTERDAY} />}
          />
        </Breakdown>
      </KpiCard>
    </div>
  );
}

/** Same layout and card names as the real strip, with placeholder blocks. */
export function KpiSkeleton({ rangeLabel }: { rangeLabel: string }) {
  return (
    <div className="grid" aria-busy="true" data-testid="kpi-skeleton">
      {CARDS.map((c) => (
        <KpiCard key={c.id} id={c.id} title={c.title} badge={c.badge === 'range' ? rangeLabel : c.badge} busy dim={false}>
          <span className="sr-only">Loading…</span>
          <div className="skeleton skeleton--value" aria-hidden="true" />
          <div className="skeleton skeleton--line" aria-hidden="true" />
          <div className="skeleton skeleton--line short" aria-hidden="true" />
        </KpiCard>
      ))}
    </div>
  );
}
