import { lazy, Suspense, useCallback, useEffect, useMemo, useRef, useState, useSyncExternalStore, type ComponentType } from 'react';
import { ConnectionStatus } from './components/ConnectionStatus';
import { ErrorBoundary } from './components/ErrorBoundary';
import { FilterBar } from './components/FilterBar';
import { KpiStrip } from './components/KpiStrip';
import { RangeSelector } from './components/RangeSelector';
import { CompareContext } from './components/Stat';
import type { ExportContext } from './lib/csv';
import { formatClock, formatDayRange } from './lib/format';
import { collectIds } from './lib/known';
import { LiveClient, liveUrl } from './lib/liveClient';
import { daysBetween, RANGE_LABELS, type DateRange, type RangePreset } from './lib/range';
import { granularityFor } from './lib/sections/common';
import { useThrottled } from './lib/throttle';
import type { KpiData } from './lib/types';
import { describeFilters, parseViewState, requestParams, SECTIONS, serializeViewState, viewDates, type SectionId, type ViewState } from './lib/viewState';
import type { ViewProps } from './views/shared';

const HISTORY_POINTS = 60;
/** Live data re-renders at most this often (the server already coalesces to ~1/s). */
const RENDER_EVERY_MS = 500;

// Each section's view (and the chart library) is its own chunk, loaded when opened.
// Each view takes its own section body; the shell only knows it is the subscription's data.
type AnyView = ComponentType<ViewProps<any>>;
const VIEWS: Record<Exclude<SectionId, 'overview'>, AnyView> = {
  'conversation-effectiveness': lazy(() => import('./views/EffectivenessView')),
  'whatsapp-performance': lazy(() => import('./views/WhatsappView')),
  'customer-load': lazy(() => import('./views/CustomerLoadView')),
  'agent-productivity': lazy(() => import('./views/AgentsView')),
  'automation-impact': lazy(() => import('./views/AutomationView')),
  'business-impact': lazy(() => import('./views/BusinessView')),
};

/** Sections with a trend chart get an hourly or daily slot size to fit the range. */
const WITH_GRANULARITY = new Set<SectionId>(['conversation-effectiveness', 'customer-load']);

function subscriptionFor(view: ViewState, now = new Date()): { id: string; section: string; params: Record<string, string> } {
  const params = requestParams(view, now);
  if (WITH_GRANULARITY.has(view.section)) params.granularity = granularityFor(daysBetween(viewDates(view, now)));
  const api = SECTIONS.find((s) => s.id === view.section)!.api;
  // One id per section: a subscription's data is only ever that section's body, even
  // while the next section's first snapshot is on its way.
  return { id: api, section: api, params };
}

export function App() {
  const client = useMemo(() => new LiveClient(liveUrl(window.location)), []);
  const state = useSyncExternalStore(client.onChange, client.getState);
  const [view, setView] = useState<ViewState>(() => parseViewState(window.location.search));
  // Local day the subscription was computed for; presets move on at local midnight.
  const [day, setDay] = useState(() => new Date().toDateString());
  const [history, setHistory] = useState<number[]>([]);
  const known = useRef({ agents: new Set<string>(), teams: new Set<string>() });
  const mainRef = useRef<HTMLElement>(null);

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

  useEffect(() => {
    const onPop = () => setView(parseViewState(window.location.search));
    window.addEventListener('popstate', onPop);
    return () => window.removeEventListener('popstate', onPop);
  }, []);

  useEffect(() => {
    const t = setInterval(() => setDay(new Date().toDateString()), 30_000);
    return () => clearInterval(t);
  }, []);

  // One subscription, for the visible section; the previous section's is dropped.
  // `day` is not read inside: it re-evaluates the preset's dates after local midnight.
  const sub = useMemo(() => subscriptionFor(view), [view, day]);
  const subKey = JSON.stringify(sub);
  const lastSubId = useRef<string | null>(null);
  useEffect(() => {
    client.subscribe(sub.id, sub.section, sub.params);
    if (lastSubId.current && lastSubId.current !== sub.id) client.unsubscribe(lastSubId.current);
    lastSubId.current = sub.id;
    // Keyed by the serialized subscription: a new `sub` object with the same content
    // (any re-render of the view state) must not resubscribe.
  }, [client, subKey]);

  const update = useCallback((patch: Partial<ViewState>) => {
    setView((cur) => {
      const next = { ...cur, ...patch };
      const search = serializeViewState(next);
      if (search !== window.location.search) window.history.pushState(null, '', `${window.location.pathname}${search}${window.location.hash}`);
      return next;
    });
  }, []);

  const selectSection = (section: SectionId) => {
    update({ section, agent: null });
    mainRef.current?.focus();
  };
  const selectRange = (preset: RangePreset, custom?: DateRange) => update({ preset, custom: custom ?? null });

  const subState = state.live.subs[sub.id];
  const rawData = subState?.data ?? null;
  // Throttle (id, data) together so a switch of section never shows the old body.
  const latest = useMemo(() => ({ id: sub.id, data: rawData }), [sub.id, rawData]);
  const shown = useThrottled(latest, RENDER_EVERY_MS);
  const data = shown.id === sub.id ? shown.data : rawData;
  const progress = state.live.progress ?? subState?.progress ?? null;
  const body = data as { range?: { from: string; to: string }; timezone?: string } | null;

  const kpi = sub.id === 'kpi' ? (rawData as KpiData | null) : null;
  const activeTotal = kpi?.active_conversations.total;
  useEffect(() => {
    if (activeTotal == null) return;
    setHistory((h) => [...h, activeTotal].slice(-HISTORY_POINTS));
  }, [activeTotal, progress]);

  if (rawData) collectIds(rawData, known.current);

  const dates = viewDates(view);
  const ctx: ExportContext = { section: view.section, range: dates, filters: view.filters, timezone: body?.timezone ?? null };
  const sectionLabel = SECTIONS.find((s) => s.id === view.section)!.label;
  const error = subState?.error ?? state.live.error;
  const disconnected = state.status !== 'live' && progress != null;
  const filterText = describeFilters(view.filters);

  useEffect(() => {
    document.title = `crmpulse · ${sectionLabel}`;
  }, [sectionLabel]);

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
              crmpulse <span className="brand__sub">{sectionLabel}</span>
            </h1>
          </div>
          <ConnectionStatus status={state.status} retryAt={state.retryAt} />
        </div>
        <nav className="nav" aria-label="Sections">
          <ul>
            {SECTIONS.map((s) => (
              <li key={s.id}>
                <a
                  href={serializeViewState({ ...view, section: s.id, agent: null })}
                  aria-current={s.id === view.section ? 'page' : undefined}
                  data-testid={`nav-${s.id}`}
                  onClick={(e) => {
                    if (e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
                    e.preventDefault();
                    selectSection(s.id);
                  }}
                >
                  {s.label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
      </header>
      <div className="toolbar">
        <RangeSelector value={view.preset} dates={dates} compare={view.compare} onChange={selectRange} onCompare={(compare) => update({ compare })} />
        <FilterBar filters={view.filters} onChange={(filters) => update({ filters })} agents={[...known.current.agents].sort()} teams={[...known.current.teams].sort()} />
      </div>
      <main id="main" className="page" ref={mainRef} tabIndex={-1}>
        <h2 className="sr-only">{sectionLabel}</h2>
        <div className="meta">
          <p>
            <span className="meta__label">Range</span>{' '}
            <span data-testid="kpi-range">{body?.range ? formatDayRange(body.range, body.timezone) : RANGE_LABELS[view.preset]}</span>
            {body?.timezone && <span className="meta__tz"> · {body.timezone}</span>}
            {filterText && <span className="meta__tz" data-testid="active-filters"> · {filterText}</span>}
          </p>
          <p data-testid="kpi-updated">{progress != null ? `updated ${formatClock(progress)}` : 'waiting for data…'}</p>
        </div>
        {disconnected && (
          <div className="banner" role="alert" data-testid="connection-lost">
            <span>
              Connection to the server lost; showing data as of {formatClock(progress)}.{' '}
              {state.retryAt != null ? 'Reconnecting automatically.' : 'Connecting…'}
            </span>
            <button type="button" className="btn btn--small" onClick={() => client.retryNow()} data-testid="connection-retry">
              Retry now
            </button>
          </div>
        )}
        {error && (
          <div className="banner" role="alert" data-testid="kpi-error">
            <span>
              Could not load {sectionLabel}: {error}
            </span>
            <button type="button" className="btn btn--small" onClick={() => client.resubscribe(sub.id)} data-testid="section-retry">
              Retry
            </button>
          </div>
        )}
        {view.section === 'overview' ? (
          <>
            <KpiStrip data={kpi} pending={!!subState?.pending && kpi != null} rangeLabel={RANGE_LABELS[view.preset]} activeHistory={history} />
            <nav className="section-cards" aria-label="Sections in detail">
              {SECTIONS.filter((s) => s.id !== 'overview').map((s) => (
                <a
                  key={s.id}
                  className="panel section-card"
                  href={serializeViewState({ ...view, section: s.id, agent: null })}
                  onClick={(e) => {
                    if (e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
                    e.preventDefault();
                    selectSection(s.id);
                  }}
                >
                  <span className="section-card__title">{s.label} →</span>
                  <span className="section-card__about">{s.about}</span>
                </a>
              ))}
            </nav>
          </>
        ) : (
          <SectionBody Section={VIEWS[view.section]} data={data} pending={!!subState?.pending} failed={!!error && !data} ctx={ctx} view={view} update={update} />
        )}
      </main>
    </>
  );
}

interface BodyProps {
  Section: AnyView;
  data: unknown;
  pending: boolean;
  failed: boolean;
  ctx: ExportContext;
  view: ViewState;
  update: (p: Partial<ViewState>) => void;
}

function SectionBody({ Section, data, pending, failed, ctx, view, update }: BodyProps) {
  if (failed) return <p className="empty" data-testid="section-failed">Nothing to show until the section loads.</p>;
  if (data == null) return <SectionSkeleton />;
  return (
    <div className={`section${pending ? ' is-dim' : ''}`} aria-busy={pending || undefined} data-testid="section-body">
      <Suspense fallback={<SectionSkeleton />}>
        <ErrorBoundary resetKey={view.section}>
          <CompareContext.Provider value={view.compare}>
            <Section data={data} ctx={ctx} view={view} update={update} />
          </CompareContext.Provider>
        </ErrorBoundary>
      </Suspense>
    </div>
  );
}

function SectionSkeleton() {
  return (
    <div className="section" aria-busy="true" data-testid="section-skeleton">
      <p className="sr-only">Loading…</p>
      <div className="stats">
        {[0, 1, 2, 3].map((i) => (
          <div key={i} className="panel stat">
            <div className="skeleton skeleton--line short" />
            <div className="skeleton skeleton--value" />
          </div>
        ))}
      </div>
      <div className="charts">
        {[0, 1].map((i) => (
          <div key={i} className="panel">
            <div className="skeleton chart__skeleton" style={{ height: 220 }} />
          </div>
        ))}
      </div>
    </div>
  );
}
