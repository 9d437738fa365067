import { useMemo } from 'react';
import type { WhatsappPerformanceBody } from '../api/types';
import { Chart } from '../components/Chart';
import { DataTable, type Column } from '../components/DataTable';
import { Stat } from '../components/Stat';
import { formatCount, formatDuration, formatPercent } from '../lib/format';
import { channelRows, failureRows, funnelSteps } from '../lib/sections/whatsapp';
import { COLORS, TOOLTIP_ITEM, type ViewProps } from './shared';

type Broadcast = WhatsappPerformanceBody['broadcasts']['rows'][number];
type Failure = WhatsappPerformanceBody['failures'][number];

/** Messages per minute: the server keeps 0.001, so a slow but non-zero rate never reads 0.0. */
const perMinute = (x: number) => (x === 0 || x >= 0.1 ? x.toFixed(1) : x.toFixed(3));

const when = (iso: string, timeZone: string) => {
  try {
    return new Intl.DateTimeFormat('en-GB', { day: '2-digit', month: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23', timeZone }).format(Date.parse(iso));
  } catch {
    return iso;
  }
};

export default function WhatsappView({ data: d, ctx }: ViewProps<WhatsappPerformanceBody>) {
  const steps = useMemo(() => funnelSteps(d.funnel.current), [d]);
  const failures = useMemo(() => failureRows(d), [d]);
  const channels = useMemo(() => channelRows(d), [d]);
  const rate = d.delivery;
  const bc = d.broadcasts;

  const funnelOption = useMemo(
    () => ({
      tooltip: TOOLTIP_ITEM,
      series: [
        {
          type: 'funnel',
          sort: 'none',
          left: '10%',
          width: '80%',
          minSize: '10%',
          label: { position: 'inside', formatter: '{b}: {c}', color: '#fff', fontWeight: 600 },
          data: steps.slice(0, 3).map((s) => ({ name: s.name, value: s.value })),
          color: [COLORS.primary, COLORS.human, COLORS.good],
        },
      ],
    }),
    [steps],
  );

  const bcCols: Column<Broadcast>[] = [
    { key: 'id', label: 'Broadcast', value: (r) => r.broadcast_id },
    { key: 'campaign', label: 'Campaign', value: (r) => r.campaign_id ?? null },
    { key: 'sent', label: 'Sent at', value: (r) => r.sent_at, render: (r) => when(r.sent_at, d.timezone) },
    { key: 'recipients', label: 'Recipients', value: (r) => r.recipients, numeric: true },
    { key: 'delivered', label: 'Delivered', value: (r) => r.delivered, numeric: true },
    { key: 'read', label: 'Read', value: (r) => r.read, numeric: true },
    { key: 'failed', label: 'Failed', value: (r) => r.failed, numeric: true },
    { key: 'success', label: 'Success', value: (r) => r.success_rate ?? null, render: (r) => formatPercent(r.success_rate), numeric: true },
  ];
  const failCols: Column<Failure>[] = [
    { key: 'code', label: 'Error code', value: (r) => r.error_code ?? null, render: (r) => r.error_code ?? 'none' },
    { key: 'title', label: 'Reason', value: (r) => r.error_title ?? null },
    { key: 'category', label: 'Category', value: (r) => r.category },
    { key: 'count', label: 'Messages', value: (r) => r.count, numeric: true },
    { key: 'previous', label: 'Previous period', value: (r) => r.previous, numeric: true },
  ];

  return (
    <>
      {rate.alert && (
        <div className="banner banner--alert" role="alert" data-testid="wa-alert">
          WhatsApp delivery rate is {formatPercent(rate.current.rate)}, below the {formatPercent(rate.alert_below, 0)} alert threshold.
        </div>
      )}
      <div className="stats">
        <Stat
          label="Delivery rate"
          value={formatPercent(rate.current.rate)}
          raw={rate.current.rate}
          current={rate.current.rate}
          previous={rate.previous.rate}
          previousText={formatPercent(rate.previous.rate)}
          polarity="higher-is-better"
          tone={rate.alert ? 'alert' : undefined}
          testId="wa-rate"
          hint={`${formatCount(rate.current.delivered)} of ${formatCount(rate.current.with_status)} with a status`}
        />
        {steps.map((s) => (
          <Stat key={s.name} label={s.name} value={formatCount(s.value)} raw={s.value} testId={`wa-${s.name.toLowerCase()}`} hint={s.of === 'created' ? `${formatPercent(s.share)} of ${formatCount(d.funnel.current.created)} created` : `${formatPercent(s.share)} of sent`} />
        ))}
        <Stat
          label="Broadcast success"
          value={formatPercent(bc.current.success_rate)}
          raw={bc.current.success_rate}
          current={bc.current.success_rate}
          previous={bc.previous.success_rate}
          previousText={formatPercent(bc.previous.success_rate)}
          polarity="higher-is-better"
          testId="wa-broadcast"
          hint={`${formatCount(bc.current.delivered)} delivered to ${formatCount(bc.current.recipients)} recipients`}
        />
        <Stat label="Queue depth now" value={formatCount(d.channels_now.queue_depth)} raw={d.channels_now.queue_depth} testId="wa-queue" hint={`${perMinute(d.channels_now.sent_per_minute)} sent / min`} />
      </div>
      <div className="charts">
        <Chart title="Sent → delivered → read" option={funnelOption} ctx={ctx} testId="chart-funnel" summary={steps.map((s) => `${s.name} ${s.value}`).join(', ')} />
        <section className="panel" aria-labelledby="health-title" data-testid="wa-channels">
          <div className="panel__head">
            <h3 id="health-title" className="panel__title">
              Channel health now {d.channels_now.unhealthy > 0 && <span className="level level--attention">{d.channels_now.unhealthy} unhealthy</span>}
            </h3>
          </div>
          {channels.length === 0 ? (
            <p className="empty">No channel has reported its health yet.</p>
          ) : (
            <ul className="health">
              {channels.map((c) => (
                <li key={c.channel_id} className="health__item">
                  <span className={`status status--${c.state === 'connected' ? 'online' : c.state === 'degraded' ? 'away' : 'offline'}`}>
                    <span className="status__dot" aria-hidden="true" />
                    {c.channel_id}: {c.state}
                  </span>
                  <span className="health__meta">
                    quality {c.quality} · queue {formatCount(c.queue_depth)} · {perMinute(c.sent_per_minute)}/min · reported {formatDuration(c.age_s)} ago
                  </span>
                </li>
              ))}
            </ul>
          )}
        </section>
      </div>
      <DataTable title="Broadcast success" columns={bcCols} rows={bc.rows} rowKey={(r) => r.broadcast_id} ctx={ctx} testId="table-broadcasts" empty="No broadcasts in this range." />
      <DataTable title="Failed messages" columns={failCols} rows={failures} rowKey={(r) => String(r.error_code ?? 'none')} ctx={ctx} testId="table-failures" empty="No failed messages in this range." />
    </>
  );
}
