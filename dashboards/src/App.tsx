import { lazy, Suspense, type MouseEvent, useCallback, useEffect, useMemo, useRef, useState, useSyncExternalStore, type ComponentType } from 'react';
import { Brand } from './components/Brand';
import { ConnectionStatus } from './components/ConnectionStatus';
import { ErrorBoundary } from './components/ErrorBoundary';
import { FilterBar } from './components/FilterBar';
import { KpiStrip } from './components/KpiStrip';
import { RangeSelector } from './components/RangeSelector';
import { Checking, SignedIn, SignIn } from './components/SignIn';
import { CompareContext, RowScopeContext } from './components/Stat';
import { DashboardExport } from './components/DashboardExport';
import { SummaryExport } from './components/SummaryExport';
import type { ExportContext } from './lib/csv';
import { formatClock, formatDayRange } from './lib/format';
import { collectIds } from './lib/known';
import { ApiError, clearToken, fetchMe, filterRules, readToken, restrictFilters, rowScope, storeToken, takeTokenFromLocation, type FilterRules, type Me, type RowScope } from './lib/auth';
import { LiveClient, liveUrl, type AuthFailure } from './lib/liveClient';
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
/** The admins' scheduled reports (REST, no live subscription); its own chunk too. */
const ReportsView = lazy(() => import('./views/ReportsView'));

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

// ------------------------------------------------------------------ sign-in

type AuthState =
  /** No usable token: the sign-in panel (with why, after a refusal or sign-out). */
  | { phase: 'signed-out'; reason: string | null; focus: boolean }
  /** Checking a token against /api/me; `pasted` keeps the sign-in panel on screen meanwhile. */
  | { phase: 'checking'; token: string; pasted: boolean }
  /** /api/me could not answer (network, 5xx, 429): a notice, retried or retryable. */
  | { phase: 'failed'; token: string; notice: string; retryInS: number | null }
  | { phase: 'signed-in'; token: string; me: Me };

function session(): Storage | null {
  try {
    return window.sessionStorage;
  } catch {
    return null;
  }
}

/** The token of the address (`#token=`, moved to sessionStorage) or of sessionStorage. */
function initialToken(): string | null {
  return takeTokenFromLocation(window.location, session(), window.history) ?? readToken(session());
}

function refusal(e: { code: string; message: string }): string {
  if (e.code === 'token_expired' || /expired/i.test(e.message)) return `Your access token has expired (${e.message}). Paste a new one to continue.`;
  return `The server refused the access token: ${e.message}`;
}

/** Sign-in gate: the dashboard runs only with a token the server accepted (`/api/me`). */
export function App() {
  const [auth, setAuth] = useState<AuthState>(() => {
    const token = initialToken();
    return token ? { phase: 'checking', token, pasted: false } : { phase: 'signed-out', reason: null, focus: false };
  });

  // A link with a new `#token=` opened on this page (same document: no reload).
  useEffect(() => {
    const onHash = () => {
      const token = takeTokenFromLocation(window.location, session(), window.history);
      if (token) setAuth({ phase: 'checking', token, pasted: false });
    };
    window.addEventListener('hashchange', onHash);
    return () => window.removeEventListener('hashchange', onHash);
  }, []);

  useEffect(() => {
    if (auth.phase === 'failed' && auth.retryInS != null) {
      const t = setTimeout(() => setAuth({ phase: 'checking', token: auth.token, pasted: false }), auth.retryInS * 1000);
      return () => clearTimeout(t);
    }
    if (auth.phase !== 'checking') return;
    const ctl = new AbortController();
    const { token, pasted } = auth;
    fetchMe(token, { signal: ctl.signal }).then(
      (me) => setAuth({ phase: 'signed-in', token, me }),
      (e: unknown) => {
        if (ctl.signal.aborted) return;
        if (e instanceof ApiError && e.status === 401) {
          clearToken(session());
          setAuth({ phase: 'signed-out', reason: pasted ? `That token was refused: ${e.message}` : refusal(e), focus: !pasted });
        } else if (e instanceof ApiError && e.status === 429) {
          const s = Math.min(Math.max(e.retryAfter ?? 5, 1), 300);
          setAuth({ phase: 'failed', token, notice: `Too many requests; trying again in ${s} s.`, retryInS: s });
        } else {
          const msg = e instanceof Error ? e.message : String(e);
          setAuth({ phase: 'failed', token, notice: `Could not check the access token: ${msg}`, retryInS: null });
        }
      },
    );
    return () => ctl.abort();
  }, [auth]);

  const signOut = useCallback((reason: string | null = null) => {
    clearToken(session());
    setAuth({ phase: 'signed-out', reason, focus: true });
  }, []);
  const onUnauthorized = useCallback((f: AuthFailure) => signOut(refusal(f)), [signOut]);
  const acceptToken = useCallback((token: string) => {
    storeToken(session(), token);
    setAuth({ phase: 'checking', token, pasted: true });
  }, []);

  switch (auth.phase) {
    case 'signed-out':
      return <SignIn reason={auth.reason} busy={false} onToken={acceptToken} focusOnMount={auth.focus} />;
    case 'checking':
      return auth.pasted ? <SignIn reason={null} busy onToken={acceptToken} focusOnMount={false} /> : <Checking notice={null} onSignOut={() => signOut()} />;
    case 'failed':
      return (
        <Checking
          notice={auth.notice}
          onRetry={auth.retryInS == null ? () => setAuth({ phase: 'checking', token: auth.token, pasted: false }) : undefined}
          onSignOut={() => signOut()}
        />
      );
    case 'signed-in':
      // Keyed by the token: a new token starts a fresh connection and fresh state.
      return <Dashboard key={auth.token} token={auth.token} me={auth.me} onSignOut={() => signOut()} onUnauthorized={onUnauthorized} />;
  }
}

// ------------------------------------------------------------------ dashboard

interface DashboardProps {
  token: string;
  me: Me;
  onSignOut: () => void;
  onUnauthorized: (f: AuthFailure) => void;
}

/** The view state as the role may request it (an agent's own agent filter, a supervisor's teams). */
function allowedView(v: ViewState, rules: FilterRules): ViewState {
  const filters = restrictFilters(v.filters, rules);
  return filters === v.filters ? v : { ...v, filters };
}

function Dashboard({ token, me, onSignOut, onUnauthorized }: DashboardProps) {
  const client = useMemo(() => new LiveClient(liveUrl(window.location), { token }), [token]);
  const state = useSyncExternalStore(client.onChange, client.getState);
  const rules = useMemo(() => filterRules(me), [me]);
  const [view, setView] = useState<ViewState>(() => {
    const parsed = parseViewState(window.location.search);
    const v = allowedView(parsed, rules);
    // A filter the role may not use is replaced in the address too (no 403 on reload).
    if (v !== parsed) window.history.replaceState(window.history.state, '', `${window.location.pathname}${serializeViewState(v)}${window.location.hash}`);
    return v;
  });
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
    if (state.unauthorized) onUnauthorized(state.unauthorized);
  }, [state.unauthorized, onUnauthorized]);

  useEffect(() => {
    const onPop = () => setView(allowedView(parseViewState(window.location.search), rules));
    window.addEventListener('popstate', onPop);
    return () => window.removeEventListener('popstate', onPop);
  }, [rules]);

  useEffect(() => {
    const t = setInterval(() => setDay(new Date().toDateString()), 30_000);
    return () => clearInterval(t);
  }, []);

  // One subscription, for the visible section; the previous section's is dropped.
  // `day` is not read inside: it re-evaluates the preset's dates after local midnight.
  const sub = useMemo(() => subscriptionFor(view), [view, day]);
  const subKey = JSON.stringify(sub);
  const lastSubId = useRef<string | null>(null);
  const onReports = view.page === 'reports';
  useEffect(() => {
    // The reports page shows no section: nothing is subscribed meanwhile.
    if (onReports) {
      if (lastSubId.current) client.unsubscribe(lastSubId.current);
      lastSubId.current = null;
      return;
    }
    client.subscribe(sub.id, sub.section, sub.params);
    if (lastSubId.current && lastSubId.current !== sub.id) client.unsubscribe(lastSubId.current);
    lastSubId.current = sub.id;
    // Keyed by the serialized subscription: a new `sub` object with the same content
    // (any re-render of the view state) must not resubscribe.
  }, [client, subKey, onReports]);

  const update = useCallback((patch: Partial<ViewState>) => {
    setView((cur) => {
      const next = allowedView({ ...cur, ...patch }, rules);
      const search = serializeViewState(next);
      if (search !== window.location.search) window.history.pushState(null, '', `${window.location.pathname}${search}${window.location.hash}`);
      return next;
    });
  }, [rules]);

  const selectSection = (section: SectionId) => {
    update({ page: 'dashboard', section, agent: null });
    mainRef.current?.focus();
  };
  const openReports = () => {
    update({ page: 'reports' });
    mainRef.current?.focus();
  };
  const isAdmin = me.role === 'admin';
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
  const pageLabel = onReports ? 'Reports' : sectionLabel;
  const error = subState?.error ?? state.live.error;
  // 403: this role may not see the section with these filters. Retrying cannot help, and
  // data of an earlier request must not stay on screen under the message.
  const forbidden = subState?.error != null && subState.errorCode === 'forbidden';
  const disconnected = state.status !== 'live' && progress != null;
  const filterText = describeFilters(view.filters);

  useEffect(() => {
    document.title = `crmpulse · ${pageLabel}`;
  }, [pageLabel]);
  const linkClick = (go: () => void) => (e: MouseEvent) => {
    if (e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
    e.preventDefault();
    go();
  };

  return (
    <>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <div className="topbar__inner">
          <Brand sub={pageLabel} />
          <div className="topbar__end">
            <ConnectionStatus status={state.status} retryAt={state.retryAt} />
            <SignedIn me={me} onSignOut={onSignOut} />
          </div>
        </div>
        <div className="nav">
          <nav aria-label="Sections">
            <ul>
              {SECTIONS.map((s) => (
                <li key={s.id}>
                  <a
                    href={serializeViewState({ ...view, page: 'dashboard', section: s.id, agent: null })}
                    aria-current={!onReports && s.id === view.section ? 'page' : undefined}
                    data-testid={`nav-${s.id}`}
                    onClick={linkClick(() => selectSection(s.id))}
                  >
                    {s.label}
                  </a>
                </li>
              ))}
            </ul>
          </nav>
          {isAdmin && (
            <nav aria-label="Administration" className="nav__admin">
              <ul>
                <li>
                  <a href={serializeViewState({ ...view, page: 'reports' })} aria-current={onReports ? 'page' : undefined} data-testid="nav-reports" onClick={linkClick(openReports)}>
                    Reports
                  </a>
                </li>
              </ul>
            </nav>
          )}
        </div>
      </header>
      {onReports ? (
        <main id="main" className="page" ref={mainRef} tabIndex={-1}>
          {isAdmin ? (
            <Suspense fallback={<p className="empty" role="status">Loading…</p>}>
              <ErrorBoundary resetKey="reports">
                <ReportsView token={token} />
              </ErrorBoundary>
            </Suspense>
          ) : (
            <div className="reports" data-testid="reports-not-admin">
              <h2 className="reports__title">Scheduled reports</h2>
              <p className="empty">
                Scheduled email reports are managed by admins; your role is {me.role}. You can still export what you see with <em>Export dashboard (PDF)</em> on any section.
              </p>
            </div>
          )}
        </main>
      ) : (
        <>
          <div className="toolbar">
            <RangeSelector value={view.preset} dates={dates} compare={view.compare} onChange={selectRange} onCompare={(compare) => update({ compare })} />
            <FilterBar
              filters={view.filters}
              onChange={(filters) => update({ filters })}
              agents={[...known.current.agents].sort()}
              teams={[...known.current.teams].sort()}
              rules={rules}
            />
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
              <div className="exports">
                <SummaryExport token={token} params={requestParams(view)} />
                <DashboardExport token={token} params={requestParams(view)} section={view.section} />
              </div>
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
              <div className="banner" role="alert" data-testid="kpi-error" data-code={forbidden ? 'forbidden' : undefined}>
                {forbidden ? (
                  <span>
                    Your role ({me.role}) may not see {sectionLabel} with these settings: {error}
                  </span>
                ) : (
                  <>
                    <span>
                      Could not load {sectionLabel}: {error}
                    </span>
                    <button type="button" className="btn btn--small" onClick={() => client.resubscribe(sub.id)} data-testid="section-retry">
                      Retry
                    </button>
                  </>
                )}
              </div>
            )}
            {view.section === 'overview' ? (
              <>
                {forbidden ? (
                  <p className="empty" data-testid="section-failed">
                    Nothing to show with these settings.
                  </p>
                ) : (
                  <KpiStrip data={kpi} pending={!!subState?.pending && kpi != null} rangeLabel={RANGE_LABELS[view.preset]} activeHistory={history} />
                )}
                <nav className="section-cards" aria-label="Sections in detail">
                  {SECTIONS.filter((s) => s.id !== 'overview').map((s) => (
                    <a
                      key={s.id}
                      className="panel section-card"
                      href={serializeViewState({ ...view, page: 'dashboard', section: s.id, agent: null })}
                      onClick={linkClick(() => selectSection(s.id))}
                    >
                      <span className="section-card__title">{s.label} →</span>
                      <span className="section-card__about">{s.about}</span>
                    </a>
                  ))}
                </nav>
              </>
            ) : (
              <SectionBody scope={rowScope(me.role)} Section={VIEWS[view.section]} data={data} pending={!!subState?.pending} failed={!!error && (!data || forbidden)} ctx={ctx} view={view} update={update} />
            )}
          </main>
        </>
      )}
    </>
  );
}

interface BodyProps {
  /** Whose agent rows the body holds (from the token's role). */
  scope: RowScope;
  Section: AnyView;
  data: unknown;
  pending: boolean;
  failed: boolean;
  ctx: ExportContext;
  view: ViewState;
  update: (p: Partial<ViewState>) => void;
}

function SectionBody({ scope, Section, data, pending, failed, ctx, view, update }: BodyProps) {
  if (failed) return <p className="empty" data-testid="section-failed">Nothing to show until the section loads.</p>;
  if (data == null) return <SectionSkeleton />;
  return (
    <div className={`section${pending ? ' is-dim' : ''}`} aria-busy={pending || undefined} data-testid="section-body">
      <Suspense fallback={<SectionSkeleton />}>
        <ErrorBoundary resetKey={view.section}>
          <CompareContext.Provider value={view.compare}>
            <RowScopeContext.Provider value={scope}>
              <Section data={data} ctx={ctx} view={view} update={update} />
            </RowScopeContext.Provider>
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
