import { useCallback, useEffect, useMemo, useState, useSyncExternalStore } from 'react';
import { ConnectionStatus } from './components/ConnectionStatus';
import { KpiStrip } from './components/KpiStrip';
import { RangeSelector } from './components/RangeSelector';
import { formatClock, formatDayRange } from './lib/format';
import { LiveClient, liveUrl } from './lib/liveClient';
import { presetDates, RANGE_LABELS, rangeFromSearch, searchWithRange, type RangePreset } from './lib/range';
import type { KpiData } from './lib/types';

const SUB_ID = 'kpi';
/** Query parameters passed through to the subscription (docs/api.md), so links can carry filters. */
const PASSTHROUGH = ['account_id', 'channel', 'inbox_id', 'agent_id', 'team_id'] as const;
const HISTORY_POINTS = 60;

function subscriptionParams(range: RangePreset, search: string, now = new Date()): Record<string, string> {
  const q = new URLSearchParams(search);
  const params: Record<string, string> = {};
  for (const k of PASSTHROUGH) {
    const v = q.get(k);
    if (v) params[k] = v;
  }
  const { from, to } = presetDates(range, now);
  return { ...params, from, to };
}

export function App() {
  const client = useMemo(() => new LiveClient(liveUrl(window.location)), []);
  const state = useSyncExternalStore(client.onChange, client.getState);
  const [range, setRange] = useState<RangePreset>(() => rangeFromSearch(window.location.search));
  // Local day the current subscription was computed for; changes at local midnight.
  const [day, setDay] = useState(() => new Date().toDateString());
  const [history, setHistory] = useState<number[]>([]);

  useEffect(() => {
    client.start();
    const online = () => client.setBrowserOnline(true);
    const offline = () => client.setBrowserOnline(false);
    window.addEventListener('online', online);
    window.addEventListener('offline', offline);
    if (navigator.onLine === false) client.setBrowserOnline(false);
    return () => {
      window.removeEventListener('online', online);
      window.removeEventListener('offline', offline);
      client.stop();
    };
  }, [client]);

  // Back/forward between shared ranges.
  useEffect(() => {
    const onPop = () => setRange(rangeFromSearch(window.location.search));
    window.addEventListener('popstate', onPop);
    return () => window.removeEventListener('popstate', onPop);
  }, []);

  // Explicit YYYY-MM-DD ranges do not roll over by themselves: re-check the local day.
  useEffect(() => {
    const t = setInterval(() => setDay(new Date().toDateString()), 30_000);
    return () => clearInterval(t);
  }, []);

  useEffect(() => {
    client.subscribe(SUB_ID, 'kpi', subscriptionParams(range, window.location.search));
  }, [client, range, day]);

  const selectRange = useCallback((next: RangePreset) => {
    const search = searchWithRange(window.location.search, next);
    window.history.pushState(null, '', `${window.location.pathname}${search}${window.location.hash}`);
    setRange(next);
  }, []);

  const sub = state.live.subs[SUB_ID];
  const data = (sub?.data ?? null) as KpiData | null;
  const activeTotal = data?.active_conversations.total;
  const progress = state.live.progress ?? sub?.progress ?? null;

  // Client-side history of the active total for the sparkline (one point per update).
  useEffect(() => {
    if (activeTotal == null) return;
    setHistory((h) => [...h, activeTotal].slice(-HISTORY_POINTS));
  }, [activeTotal, progress]);

  const error = sub?.error ?? state.live.error;

  return (
    <>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <div className="topbar__inner">
          <div className="brand">
            <span className="brand__logo" aria-hidden="true" />
            <h1>
              crmpulse <span className="brand__sub">KPI overview</span>
            </h1>
          </div>
          <div className="topbar__controls">
            <RangeSelector value={range} onChange={selectRange} />
            <ConnectionStatus status={state.status} retryAt={state.retryAt} />
          </div>
        </div>
      </header>
      <main id="main" className="page">
        <div className="meta">
          <p>
            <span className="meta__label">Range</span>{' '}
            <span data-testid="kpi-range">{data ? formatDayRange(data.range, data.timezone) : RANGE_LABELS[range]}</span>
            {data && <span className="meta__tz"> · {data.timezone}</span>}
          </p>
          <p data-testid="kpi-updated">{progress != null ? `updated ${formatClock(progress)}` : 'waiting for data…'}</p>
        </div>
        {error && (
          <div className="banner" role="alert" data-testid="kpi-error">
            Could not load the KPI strip: {error}
          </div>
        )}
        <KpiStrip data={data} pending={!!sub?.pending && data != null} rangeLabel={RANGE_LABELS[range]} activeHistory={history} />
      </main>
    </>
  );
}
