import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { sampleKpi } from './fixtures';
import { LiveClient, liveUrl, type SocketLike } from './liveClient';
import type { KpiData } from './types';

class FakeSocket implements SocketLike {
  static all: FakeSocket[] = [];
  readyState = 0;
  sent: unknown[] = [];
  onopen: ((ev: unknown) => void) | null = null;
  onclose: ((ev: unknown) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  constructor(readonly url: string) {
    FakeSocket.all.push(this);
  }
  send(data: string) {
    this.sent.push(JSON.parse(data));
  }
  close() {
    this.readyState = 3;
  }
  // test helpers
  open() {
    this.readyState = 1;
    this.onopen?.({});
  }
  receive(msg: unknown) {
    this.onmessage?.({ data: JSON.stringify(msg) });
  }
  drop(code?: number, reason?: string) {
    this.readyState = 3;
    this.onclose?.(code == null ? {} : reason == null ? { code } : { code, reason });
  }
}

const last = () => FakeSocket.all[FakeSocket.all.length - 1]!;

function makeClient(opts: { watchdogMs?: number; token?: string } = {}) {
  return new LiveClient('ws://host/api/live', {
    token: opts.token ?? null,
    createSocket: (u) => new FakeSocket(u),
    backoff: { baseMs: 500, capMs: 10_000, jitter: 0 },
    watchdogMs: opts.watchdogMs ?? 0,
    offlineAfter: 5,
  });
}

beforeEach(() => {
  FakeSocket.all = [];
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('LiveClient', () => {
  it('subscribes on open, goes live on the first frame and applies deltas', () => {
    const c = makeClient();
    c.subscribe('kpi', 'kpi', { from: '2026-11-24', to: '2026-11-25' });
    c.start();
    expect(c.getState().status).toBe('connecting');
    const ws = last();
    expect(ws.url).toBe('ws://host/api/live');
    ws.open();
    expect(ws.sent).toEqual([{ op: 'subscribe', id: 'kpi', section: 'kpi', params: { from: '2026-11-24', to: '2026-11-25' } }]);
    ws.receive({ type: 'snapshot', id: 'kpi', progress: 10, data: sampleKpi() });
    expect(c.getState().status).toBe('live');
    ws.receive({ type: 'delta', id: 'kpi', progress: 11, patch: [{ op: 'replace', path: '/active_conversations/total', value: 13 }] });
    const data = c.getState().live.subs.kpi!.data as KpiData;
    expect(data.active_conversations.total).toBe(13);
    expect(c.getState().live.progress).toBe(11);
  });

  it('resubscribing with a new range sends a replacing subscribe with the same id', () => {
    const c = makeClient();
    c.start();
    const ws = last();
    ws.open();
    c.subscribe('kpi', 'kpi', { from: '2026-11-24', to: '2026-11-25' });
    c.subscribe('kpi', 'kpi', { from: '2026-11-23', to: '2026-11-24' });
    expect(ws.sent).toEqual([
      { op: 'subscribe', id: 'kpi', section: 'kpi', params: { from: '2026-11-24', to: '2026-11-25' } },
      { op: 'subscribe', id: 'kpi', section: 'kpi', params: { from: '2026-11-23', to: '2026-11-24' } },
    ]);
    c.unsubscribe('kpi');
    expect(ws.sent[2]).toEqual({ op: 'unsubscribe', id: 'kpi' });
  });

  it('reconnects with exponential backoff capped at 10 s and re-sends subscriptions', () => {
    const c = makeClient();
    c.subscribe('kpi', 'kpi', { from: '2026-11-24', to: '2026-11-25' });
    c.start();
    last().open();
    last().receive({ type: 'snapshot', id: 'kpi', progress: 1, data: sampleKpi() });
    last().drop();
    expect(c.getState().status).toBe('reconnecting');
    // Lost after streaming: first retry after the base delay.
    expect(c.getState().retryAt! - Date.now()).toBe(500);
    // Then every attempt fails before opening: the delay doubles up to the 10 s cap.
    const waits: number[] = [];
    for (let i = 0; i < 7; i++) {
      const before = FakeSocket.all.length;
      const wait = c.getState().retryAt! - Date.now();
      waits.push(wait);
      vi.advanceTimersByTime(wait - 1);
      expect(FakeSocket.all.length).toBe(before);
      vi.advanceTimersByTime(1);
      expect(FakeSocket.all.length).toBe(before + 1);
      last().drop();
    }
    expect(waits).toEqual([500, 1000, 2000, 4000, 8000, 10_000, 10_000]);
    expect(c.getState().status).toBe('offline'); // after 5 consecutive failures, still retrying
    expect(c.getState().retryAt! - Date.now()).toBe(10_000);
    vi.advanceTimersByTime(10_000);
    const ws = last();
    ws.open();
    expect(ws.sent).toEqual([{ op: 'subscribe', id: 'kpi', section: 'kpi', params: { from: '2026-11-24', to: '2026-11-25' } }]);
    ws.receive({ type: 'snapshot', id: 'kpi', progress: 2, data: sampleKpi() });
    expect(c.getState()).toMatchObject({ status: 'live', failures: 0, retryAt: null });
  });

  it('requests a fresh snapshot when a delta does not apply', () => {
    const c = makeClient();
    c.subscribe('kpi', 'kpi', { from: 'a' });
    c.start();
    const ws = last();
    ws.open();
    ws.receive({ type: 'snapshot', id: 'kpi', progress: 1, data: sampleKpi() });
    ws.receive({ type: 'delta', id: 'kpi', progress: 2, patch: [{ op: 'remove', path: '/nope' }] });
    expect(ws.sent).toHaveLength(2);
    expect(ws.sent[1]).toEqual({ op: 'subscribe', id: 'kpi', section: 'kpi', params: { from: 'a' } });
    expect((c.getState().live.subs.kpi!.data as KpiData).active_conversations.total).toBe(12);
  });

  it('pauses while the browser is offline and retries at once when back online', () => {
    const c = makeClient();
    c.start();
    last().drop();
    c.setBrowserOnline(false);
    expect(c.getState().status).toBe('offline');
    const count = FakeSocket.all.length;
    vi.advanceTimersByTime(60_000);
    expect(FakeSocket.all.length).toBe(count);
    c.setBrowserOnline(true);
    expect(FakeSocket.all.length).toBe(count + 1);
  });

  it('treats a silent socket as dead after the watchdog period', () => {
    const c = makeClient({ watchdogMs: 30_000 });
    c.start();
    const ws = last();
    ws.open();
    ws.receive({ type: 'progress', progress: 1 });
    vi.advanceTimersByTime(29_999);
    expect(c.getState().status).toBe('live');
    vi.advanceTimersByTime(1);
    expect(c.getState().status).toBe('reconnecting');
    vi.advanceTimersByTime(500);
    expect(FakeSocket.all.length).toBe(2);
  });

  it('stop() closes the socket and never reconnects', () => {
    const c = makeClient();
    c.start();
    last().open();
    c.stop();
    expect(last().readyState).toBe(3);
    vi.advanceTimersByTime(60_000);
    expect(FakeSocket.all.length).toBe(1);
  });
});

describe('LiveClient with a token', () => {
  const params = { from: '2026-11-24', to: '2026-11-25' };

  it('sends the auth frame first and subscribes only after "authenticated"', () => {
    const c = makeClient({ token: 'jwt-1' });
    c.subscribe('kpi', 'kpi', params);
    c.start();
    const ws = last();
    ws.open();
    expect(ws.sent).toEqual([{ op: 'auth', token: 'jwt-1' }]);
    // A subscription made before the answer waits for it too.
    c.subscribe('customer-load', 'customer-load', params);
    expect(ws.sent).toHaveLength(1);
    ws.receive({ type: 'authenticated', sub: 'demo', role: 'admin', account_id: 1, exp: 1798000000 });
    expect(ws.sent).toEqual([
      { op: 'auth', token: 'jwt-1' },
      { op: 'subscribe', id: 'kpi', section: 'kpi', params },
      { op: 'subscribe', id: 'customer-load', section: 'customer-load', params },
    ]);
    expect(c.getState().status).toBe('live');
    ws.receive({ type: 'snapshot', id: 'kpi', progress: 10, data: sampleKpi() });
    expect((c.getState().live.subs.kpi!.data as KpiData).active_conversations.total).toBe(12);
  });

  it('re-authenticates on every reconnect before re-sending subscriptions', () => {
    const c = makeClient({ token: 'jwt-1' });
    c.subscribe('kpi', 'kpi', params);
    c.start();
    last().open();
    last().receive({ type: 'authenticated', sub: 'demo', role: 'admin', account_id: 1, exp: 1 });
    last().drop(1006);
    expect(c.getState().status).toBe('reconnecting');
    vi.advanceTimersByTime(500);
    const ws = last();
    ws.open();
    expect(ws.sent).toEqual([{ op: 'auth', token: 'jwt-1' }]);
    ws.receive({ type: 'authenticated', sub: 'demo', role: 'admin', account_id: 1, exp: 1 });
    expect(ws.sent[1]).toEqual({ op: 'subscribe', id: 'kpi', section: 'kpi', params });
  });

  it('a refused token (error frame, close 4401) stops the client without reconnecting', () => {
    const c = makeClient({ token: 'bad' });
    c.subscribe('kpi', 'kpi', params);
    c.start();
    const ws = last();
    ws.open();
    ws.receive({ type: 'error', code: 'unauthorized', message: 'invalid token' });
    ws.drop(4401);
    expect(c.getState()).toMatchObject({ status: 'offline', retryAt: null, unauthorized: { code: 'unauthorized', message: 'invalid token' } });
    expect(ws.sent).toEqual([{ op: 'auth', token: 'bad' }]);
    vi.advanceTimersByTime(60_000);
    expect(FakeSocket.all).toHaveLength(1);
    c.retryNow();
    c.start();
    expect(FakeSocket.all).toHaveLength(1);
  });

  it('a token refused before authentication (close 4401 with a reason, no frame) says why', () => {
    for (const [reason, code] of [
      ['token expired', 'token_expired'],
      ['malformed token: not a JWT', 'unauthorized'],
    ] as const) {
      const c = makeClient({ token: 'bad' });
      c.start();
      const ws = last();
      ws.open();
      ws.drop(4401, reason);
      expect(c.getState()).toMatchObject({ status: 'offline', retryAt: null, unauthorized: { code, message: reason } });
      c.stop();
    }
  });

  it('an expiry during the connection (token_expired, 4401) also ends in the unauthorized state', () => {
    const c = makeClient({ token: 'jwt-1' });
    c.subscribe('kpi', 'kpi', params);
    c.start();
    const ws = last();
    ws.open();
    ws.receive({ type: 'authenticated', sub: 'demo', role: 'admin', account_id: 1, exp: 1 });
    ws.receive({ type: 'snapshot', id: 'kpi', progress: 10, data: sampleKpi() });
    ws.receive({ type: 'error', code: 'token_expired', message: 'token expired' });
    // The auth error is not a section error.
    expect(c.getState().live.error).toBeNull();
    ws.drop(4401);
    expect(c.getState().unauthorized).toEqual({ code: 'token_expired', message: 'token expired' });
    vi.advanceTimersByTime(60_000);
    expect(FakeSocket.all).toHaveLength(1);
  });

  it('a bare close 4401 (no error frame) is unauthorized too; other close codes reconnect', () => {
    const c = makeClient({ token: 'jwt-1' });
    c.start();
    last().open();
    last().drop(4000);
    expect(c.getState().unauthorized).toBeNull();
    vi.advanceTimersByTime(500);
    expect(FakeSocket.all).toHaveLength(2);
    last().open();
    last().drop(4401);
    expect(c.getState().unauthorized).toEqual({ code: 'unauthorized', message: 'The server refused the access token.' });
    vi.advanceTimersByTime(60_000);
    expect(FakeSocket.all).toHaveLength(2);
  });

  it('keeps the code of a section error frame (forbidden) and does not resubscribe by itself', () => {
    const c = makeClient({ token: 'jwt-1' });
    c.subscribe('agent-productivity', 'agent-productivity', { ...params, agent_id: 'a2' });
    c.start();
    const ws = last();
    ws.open();
    ws.receive({ type: 'authenticated', sub: 'a1', role: 'agent', account_id: 1, exp: 1 });
    ws.receive({ type: 'error', id: 'agent-productivity', code: 'forbidden', message: 'agents may only filter on their own agent_id' });
    expect(c.getState().live.subs['agent-productivity']).toMatchObject({ error: 'agents may only filter on their own agent_id', errorCode: 'forbidden', pending: false });
    vi.advanceTimersByTime(60_000);
    expect(ws.sent).toHaveLength(2);
    expect(c.getState().unauthorized).toBeNull();
  });
});

describe('liveUrl', () => {
  it('uses ws:// or wss:// on the page host', () => {
    expect(liveUrl({ protocol: 'http:', host: '127.0.0.1:8080' })).toBe('ws://127.0.0.1:8080/api/live');
    expect(liveUrl({ protocol: 'https:', host: 'crm.example.com' })).toBe('wss://crm.example.com/api/live');
  });
});
