import { describe, expect, it, vi } from 'vitest';
import {
  ApiError,
  authFetch,
  clearToken,
  extractToken,
  fetchMe,
  filterRules,
  fragmentWithoutToken,
  getJson,
  parseRetryAfter,
  parseTokenFragment,
  readToken,
  restrictFilters,
  sendJson,
  storeToken,
  takeTokenFromLocation,
  TOKEN_KEY,
  type TokenStorage,
} from './auth';
import { parseViewState } from './viewState';

const JWT = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJkZW1vIn0.c2ln-_x';

function memoryStorage(init: Record<string, string> = {}): TokenStorage & { data: Record<string, string> } {
  const data = { ...init };
  return {
    data,
    getItem: (k) => (k in data ? data[k]! : null),
    setItem: (k, v) => void (data[k] = v),
    removeItem: (k) => void delete data[k],
  };
}

function fakeHistory() {
  const calls: (string | null | undefined)[] = [];
  return { state: { s: 1 }, calls, replaceState: (_d: unknown, _u: string, url?: string | null) => void calls.push(url) };
}

describe('token fragment', () => {
  it('reads #token=<jwt> (alone or among other keys)', () => {
    expect(parseTokenFragment(`#token=${JWT}`)).toBe(JWT);
    expect(parseTokenFragment(`token=${JWT}`)).toBe(JWT);
    expect(parseTokenFragment(`#a=1&token=${JWT}&b=2`)).toBe(JWT);
    expect(parseTokenFragment('')).toBeNull();
    expect(parseTokenFragment('#')).toBeNull();
    expect(parseTokenFragment('#token=')).toBeNull();
    expect(parseTokenFragment('#section-2')).toBeNull();
  });

  it('removes only the token from the fragment', () => {
    expect(fragmentWithoutToken(`#token=${JWT}`)).toBe('');
    expect(fragmentWithoutToken(`#a=1&token=${JWT}`)).toBe('#a=1');
    expect(fragmentWithoutToken('#main')).toBe('#main');
    expect(fragmentWithoutToken('')).toBe('');
  });

  it('moves the token to sessionStorage and strips it from the address, keeping path and view state', () => {
    const storage = memoryStorage();
    const history = fakeHistory();
    const search = '?view=customer-load&range=custom&from=2026-11-01&to=2026-11-08&account_id=2';
    const got = takeTokenFromLocation({ pathname: '/dash/', search, hash: `#token=${JWT}` }, storage, history);
    expect(got).toBe(JWT);
    expect(storage.data[TOKEN_KEY]).toBe(JWT);
    expect(history.calls).toEqual([`/dash/${search}`]);
    // The view state read from the cleaned address is intact.
    const url = new URL(`http://x${history.calls[0]}`);
    expect(parseViewState(url.search)).toMatchObject({ section: 'customer-load', preset: 'custom', custom: { from: '2026-11-01', to: '2026-11-08' }, extra: { account_id: '2' } });
    expect(url.hash).toBe('');
  });

  it('leaves storage and address alone without a token in the fragment', () => {
    const storage = memoryStorage({ [TOKEN_KEY]: 'old' });
    const history = fakeHistory();
    expect(takeTokenFromLocation({ pathname: '/', search: '?range=today', hash: '' }, storage, history)).toBeNull();
    expect(history.calls).toEqual([]);
    expect(readToken(storage)).toBe('old');
  });

  it('a token in the fragment replaces the stored one', () => {
    const storage = memoryStorage({ [TOKEN_KEY]: 'old' });
    takeTokenFromLocation({ pathname: '/', search: '', hash: '#token=new' }, storage, fakeHistory());
    expect(readToken(storage)).toBe('new');
  });
});

describe('token storage', () => {
  it('stores, reads and clears', () => {
    const s = memoryStorage();
    expect(readToken(s)).toBeNull();
    storeToken(s, JWT);
    expect(readToken(s)).toBe(JWT);
    clearToken(s);
    expect(readToken(s)).toBeNull();
    expect(readToken(null)).toBeNull();
  });

  it('survives a storage that throws', () => {
    const broken: TokenStorage = {
      getItem: () => {
        throw new Error('denied');
      },
      setItem: () => {
        throw new Error('denied');
      },
      removeItem: () => {
        throw new Error('denied');
      },
    };
    expect(readToken(broken)).toBeNull();
    expect(() => storeToken(broken, 'x')).not.toThrow();
    expect(() => clearToken(broken)).not.toThrow();
  });
});

describe('extractToken (sign-in field)', () => {
  it('accepts a bare token, "Bearer <token>" or the whole demo link', () => {
    expect(extractToken(`  ${JWT}\n`)).toBe(JWT);
    expect(extractToken(`Bearer ${JWT}`)).toBe(JWT);
    expect(extractToken(`http://127.0.0.1:8080/#token=${JWT}`)).toBe(JWT);
    expect(extractToken(`http://127.0.0.1:8080/?view=customer-load#token=${JWT}`)).toBe(JWT);
    expect(extractToken('   ')).toBeNull();
  });
});

describe('authorized fetch', () => {
  const ok = (body: unknown) => new Response(JSON.stringify(body), { status: 200, headers: { 'content-type': 'application/json' } });

  it('adds Authorization: Bearer <token> and keeps the other headers', async () => {
    const f = vi.fn(async (_u: string, _i?: RequestInit) => ok({}));
    await authFetch('/api/dashboard/kpi?from=a', JWT, { headers: { Accept: 'application/json' } }, f);
    const [url, init] = f.mock.calls[0]!;
    expect(url).toBe('/api/dashboard/kpi?from=a');
    const h = new Headers(init!.headers);
    expect(h.get('authorization')).toBe(`Bearer ${JWT}`);
    expect(h.get('accept')).toBe('application/json');
  });

  it('sends no Authorization header without a token', async () => {
    const f = vi.fn(async (_u: string, _i?: RequestInit) => ok({}));
    await authFetch('/api/me', null, undefined, f);
    expect(new Headers(f.mock.calls[0]![1]!.headers).has('authorization')).toBe(false);
  });

  it('fetchMe sends the token to /api/me and returns the claims', async () => {
    const me = { sub: 'demo', account_id: 1, role: 'admin', team_ids: [], agent_id: null, exp: 1798000000 };
    const f = vi.fn(async (_u: string, _i?: RequestInit) => ok(me));
    await expect(fetchMe(JWT, { fetch: f })).resolves.toEqual(me);
    expect(f.mock.calls[0]![0]).toBe('/api/me');
    expect(new Headers(f.mock.calls[0]![1]!.headers).get('authorization')).toBe(`Bearer ${JWT}`);
  });

  it('turns the error body into an ApiError with code, message and Retry-After', async () => {
    const err = (status: number, code: string, message: string, headers: Record<string, string> = {}) =>
      vi.fn(async () => new Response(JSON.stringify({ error: { code, message } }), { status, headers: { 'content-type': 'application/json', ...headers } }));
    const e401 = await getJson('/api/me', 'bad', { fetch: err(401, 'unauthorized', 'token expired') }).catch((e) => e);
    expect(e401).toBeInstanceOf(ApiError);
    expect(e401).toMatchObject({ status: 401, code: 'unauthorized', message: 'token expired', unauthorized: true });
    const e403 = await getJson('/api/dashboard/agent-productivity', JWT, { fetch: err(403, 'forbidden', 'not your team') }).catch((e) => e);
    expect(e403).toMatchObject({ status: 403, code: 'forbidden', message: 'not your team', forbidden: true });
    const e429 = await getJson('/api/me', JWT, { fetch: err(429, 'rate_limited', 'slow down', { 'Retry-After': '7' }) }).catch((e) => e);
    expect(e429).toMatchObject({ status: 429, code: 'rate_limited', retryAfter: 7 });
    const plain = await getJson('/api/me', JWT, { fetch: vi.fn(async () => new Response('nope', { status: 500, statusText: 'Internal Server Error' })) }).catch((e) => e);
    expect(plain).toMatchObject({ status: 500, code: 'error', message: '500 Internal Server Error' });
    const net = await getJson('/api/me', JWT, { fetch: vi.fn(async () => Promise.reject(new TypeError('Failed to fetch'))) }).catch((e) => e);
    expect(net).toMatchObject({ status: 0, code: 'network' });
  });

  it('sendJson sends method, token and a JSON body; 204 is null; errors carry the server message', async () => {
    const f = vi.fn(async (_u: string, _i?: RequestInit) => new Response(JSON.stringify({ id: 's1' }), { status: 201, headers: { 'content-type': 'application/json' } }));
    await expect(sendJson('POST', '/api/reports/schedules', JWT, { name: 'Daily' }, { fetch: f })).resolves.toEqual({ id: 's1' });
    const [url, init] = f.mock.calls[0]!;
    expect(url).toBe('/api/reports/schedules');
    expect(init!.method).toBe('POST');
    expect(init!.body).toBe('{"name":"Daily"}');
    const h = new Headers(init!.headers);
    expect(h.get('authorization')).toBe(`Bearer ${JWT}`);
    expect(h.get('content-type')).toBe('application/json');
    const del = vi.fn(async (_u: string, _i?: RequestInit) => new Response(null, { status: 204 }));
    await expect(sendJson('DELETE', '/api/reports/schedules/s1', JWT, undefined, { fetch: del })).resolves.toBeNull();
    expect(del.mock.calls[0]![1]!.body).toBeUndefined();
    expect(new Headers(del.mock.calls[0]![1]!.headers).has('content-type')).toBe(false);
    const bad = vi.fn(async () => new Response(JSON.stringify({ error: { code: 'bad_request', message: 'weekday: a weekly schedule needs one (mon … sun)' } }), { status: 400 }));
    await expect(sendJson('PUT', '/api/reports/schedules/s1', JWT, {}, { fetch: bad })).rejects.toMatchObject({ status: 400, code: 'bad_request', message: 'weekday: a weekly schedule needs one (mon … sun)' });
    const net = vi.fn(async () => Promise.reject(new TypeError('Failed to fetch')));
    await expect(sendJson('POST', '/x', JWT, {}, { fetch: net })).rejects.toMatchObject({ status: 0, code: 'network' });
  });

  it('parses Retry-After as seconds or an HTTP date', () => {
    expect(parseRetryAfter('3')).toBe(3);
    expect(parseRetryAfter(null)).toBeNull();
    expect(parseRetryAfter('soon')).toBeNull();
    const now = Date.parse('2026-11-25T10:00:00Z');
    expect(parseRetryAfter('Wed, 25 Nov 2026 10:00:05 GMT', now)).toBe(5);
  });
});

describe('filters by role', () => {
  it('admin and analyst: everything', () => {
    for (const role of ['admin', 'analyst'] as const) {
      const r = filterRules({ role, team_ids: [], agent_id: null });
      expect(r).toEqual({ fixedAgent: null, hideAgent: false, teams: null });
      const f = { agent_id: 'a9', team_id: 't9' };
      expect(restrictFilters(f, r)).toBe(f);
    }
  });

  it('agent: the agent filter is their own id', () => {
    const r = filterRules({ role: 'agent', team_ids: ['t1'], agent_id: 'a1' });
    expect(r.fixedAgent).toBe('a1');
    expect(restrictFilters({}, r)).toEqual({ agent_id: 'a1' });
    expect(restrictFilters({ agent_id: 'a2', channel: 'sms' }, r)).toEqual({ agent_id: 'a1', channel: 'sms' });
    expect(restrictFilters({ agent_id: 'a1', team_id: 't2' }, r)).toEqual({ agent_id: 'a1' });
    // An agent token without an agent id: the filter is hidden and dropped.
    const none = filterRules({ role: 'agent', team_ids: [], agent_id: null });
    expect(none).toMatchObject({ fixedAgent: null, hideAgent: true });
    expect(restrictFilters({ agent_id: 'a2' }, none)).toEqual({});
  });

  it('supervisor: only their teams', () => {
    const r = filterRules({ role: 'supervisor', team_ids: ['t1', 't2'], agent_id: null });
    expect(r).toEqual({ fixedAgent: null, hideAgent: false, teams: ['t1', 't2'] });
    const ok = { team_id: 't2', agent_id: 'a7' };
    expect(restrictFilters(ok, r)).toBe(ok);
    expect(restrictFilters({ team_id: 't3', channel: 'email' }, r)).toEqual({ channel: 'email' });
  });
});
