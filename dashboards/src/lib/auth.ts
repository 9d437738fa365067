// Access token handling: the JWT arrives in the URL fragment (`#token=<jwt>`, the link
// printed by `crmpulse demo`) or is pasted into the sign-in panel; it lives in
// sessionStorage and goes with every REST call as `Authorization: Bearer <jwt>` and as
// the first frame on `/api/live`. DOM-free (storage, location and history are passed
// in) so it can be unit tested.

export const TOKEN_KEY = 'crmpulse.token';

export type Role = 'admin' | 'supervisor' | 'agent' | 'analyst';
export const ROLES: readonly Role[] = ['admin', 'supervisor', 'agent', 'analyst'];

/**
 * Whose agent-level rows the server sends: every agent's (admin, analyst), the agents
 * of the token's teams (supervisor) or the token's own (agent). Totals are always
 * account-wide, so views label row-derived figures with it.
 */
export type RowScope = 'account' | 'teams' | 'self';

export function rowScope(role: Role): RowScope {
  return role === 'supervisor' ? 'teams' : role === 'agent' ? 'self' : 'account';
}

/** `GET /api/me`: the claims of the token the server accepted. */
export interface Me {
  sub: string;
  account_id: number;
  role: Role;
  team_ids: string[];
  agent_id: string | null;
  /** Expiry, unix seconds. */
  exp: number;
}

/** The part of `Storage` used here. */
export interface TokenStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

// ------------------------------------------------------------------ token storage

export function readToken(storage: TokenStorage | null | undefined): string | null {
  try {
    const t = storage?.getItem(TOKEN_KEY)?.trim();
    return t ? t : null;
  } catch {
    return null; // storage disabled
  }
}

export function storeToken(storage: TokenStorage | null | undefined, token: string): void {
  try {
    storage?.setItem(TOKEN_KEY, token);
  } catch {
    /* storage disabled: the token then lives only in memory */
  }
}

export function clearToken(storage: TokenStorage | null | undefined): void {
  try {
    storage?.removeItem(TOKEN_KEY);
  } catch {
    /* ignore */
  }
}

// ------------------------------------------------------------------ URL fragment

/** The token in a fragment (`#token=<jwt>`, possibly with other `&`-separated keys), or null. */
export function parseTokenFragment(hash: string): string | null {
  const raw = hash.startsWith('#') ? hash.slice(1) : hash;
  if (!raw) return null;
  const t = new URLSearchParams(raw).get('token')?.trim();
  return t ? t : null;
}

/** The fragment without its `token` key ('' when nothing else is left). */
export function fragmentWithoutToken(hash: string): string {
  const raw = hash.startsWith('#') ? hash.slice(1) : hash;
  if (!raw) return '';
  const q = new URLSearchParams(raw);
  if (!q.has('token')) return hash.startsWith('#') ? hash : `#${hash}`;
  q.delete('token');
  const rest = q.toString();
  return rest ? `#${rest}` : '';
}

export interface LocationLike {
  pathname: string;
  search: string;
  hash: string;
}

export interface HistoryLike {
  readonly state: unknown;
  replaceState(data: unknown, unused: string, url?: string | null): void;
}

/**
 * Moves a `#token=` from the address into storage and removes it from the address bar
 * (path and query string, i.e. the view state, are kept). Returns the token found, or null.
 */
export function takeTokenFromLocation(loc: LocationLike, storage: TokenStorage | null | undefined, history: HistoryLike): string | null {
  const token = parseTokenFragment(loc.hash);
  if (!token) return null;
  storeToken(storage, token);
  history.replaceState(history.state, '', `${loc.pathname}${loc.search}${fragmentWithoutToken(loc.hash)}`);
  return token;
}

/**
 * What a user pasted into the sign-in field: a bare JWT, `Bearer <jwt>`, or the whole
 * link printed by `crmpulse demo` (`http://…/#token=<jwt>`). Null when empty.
 */
export function extractToken(input: string): string | null {
  let s = input.trim();
  if (!s) return null;
  const hashAt = s.indexOf('#');
  if (hashAt >= 0) {
    const t = parseTokenFragment(s.slice(hashAt));
    if (t) return t;
  }
  s = s.replace(/^bearer\s+/i, '').trim();
  return s || null;
}

// ------------------------------------------------------------------ REST

/** A non-2xx answer of the API (body `{"error":{"code","message"}}`), or a network failure (status 0). */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  /** Seconds, from `Retry-After` on 429. */
  readonly retryAfter: number | null;
  constructor(status: number, code: string, message: string, retryAfter: number | null = null) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
  get unauthorized(): boolean {
    return this.status === 401;
  }
  get forbidden(): boolean {
    return this.status === 403;
  }
}

const DEFAULT_CODES: Record<number, string> = { 400: 'bad_request', 401: 'unauthorized', 403: 'forbidden', 404: 'not_found', 429: 'rate_limited' };

/** `Retry-After` in seconds (delta-seconds or an HTTP date), or null. */
export function parseRetryAfter(value: string | null | undefined, now: number = Date.now()): number | null {
  if (value == null || value.trim() === '') return null;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v);
  const at = Date.parse(v);
  return Number.isNaN(at) ? null : Math.max(0, Math.ceil((at - now) / 1000));
}

/** Turns an error response into an ApiError with the server's code and message. */
export async function errorFromResponse(res: Response): Promise<ApiError> {
  let code = DEFAULT_CODES[res.status] ?? 'error';
  let message = `${res.status} ${res.statusText}`.trim();
  try {
    const body: unknown = await res.json();
    const err = (body as { error?: { code?: unknown; message?: unknown } } | null)?.error;
    if (err && typeof err.code === 'string') code = err.code;
    if (err && typeof err.message === 'string' && err.message) message = err.message;
  } catch {
    /* not JSON */
  }
  return new ApiError(res.status, code, message, parseRetryAfter(res.headers.get('retry-after')));
}

/** Headers of `init` plus `Authorization: Bearer <token>` (when there is a token). */
export function withAuthorization(init: RequestInit | undefined, token: string | null): RequestInit {
  const headers = new Headers(init?.headers);
  if (token) headers.set('Authorization', `Bearer ${token}`);
  return { ...init, headers };
}

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

/** `fetch` with the bearer token; every REST call of the UI goes through it. */
export function authFetch(input: string, token: string | null, init?: RequestInit, fetchImpl: FetchLike = (i, o) => fetch(i, o)): Promise<Response> {
  return fetchImpl(input, withAuthorization(init, token));
}

/** GET a JSON body with the token; non-2xx answers and network failures throw ApiError. */
export async function getJson<T>(url: string, token: string | null, opts: { signal?: AbortSignal; fetch?: FetchLike } = {}): Promise<T> {
  let res: Response;
  try {
    res = await authFetch(url, token, { headers: { Accept: 'application/json' }, signal: opts.signal }, opts.fetch);
  } catch (e) {
    if ((e as { name?: string })?.name === 'AbortError') throw e;
    throw new ApiError(0, 'network', 'Could not reach the server.');
  }
  if (!res.ok) throw await errorFromResponse(res);
  return (await res.json()) as T;
}

/**
 * A POST, PUT or DELETE with the token and a JSON body (when given); non-2xx answers
 * and network failures throw ApiError. Resolves to the JSON answer, or null for one
 * without a body (204).
 */
export async function sendJson<T>(
  method: 'POST' | 'PUT' | 'DELETE',
  url: string,
  token: string | null,
  body?: unknown,
  opts: { signal?: AbortSignal; fetch?: FetchLike } = {},
): Promise<T | null> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res: Response;
  try {
    res = await authFetch(url, token, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: opts.signal }, opts.fetch);
  } catch (e) {
    if ((e as { name?: string })?.name === 'AbortError') throw e;
    throw new ApiError(0, 'network', 'Could not reach the server.');
  }
  if (!res.ok) throw await errorFromResponse(res);
  if (res.status === 204) return null;
  const text = await res.text();
  return text ? (JSON.parse(text) as T) : null;
}

function isMe(v: unknown): v is Me {
  if (typeof v !== 'object' || v === null) return false;
  const m = v as Record<string, unknown>;
  return (
    typeof m.sub === 'string' &&
    typeof m.account_id === 'number' &&
    typeof m.role === 'string' &&
    (ROLES as readonly string[]).includes(m.role) &&
    Array.isArray(m.team_ids) &&
    (m.agent_id === null || m.agent_id === undefined || typeof m.agent_id === 'string') &&
    typeof m.exp === 'number'
  );
}

/** `GET /api/me`: who the token belongs to. */
export async function fetchMe(token: string, opts: { signal?: AbortSignal; fetch?: FetchLike; base?: string } = {}): Promise<Me> {
  const body = await getJson<unknown>(`${opts.base ?? ''}/api/me`, token, opts);
  if (!isMe(body)) throw new ApiError(200, 'bad_response', 'Unexpected answer from /api/me.');
  return { ...body, team_ids: body.team_ids.map(String), agent_id: body.agent_id ?? null };
}

// ------------------------------------------------------------------ roles and filters

export interface FilterRules {
  /** The agent filter is fixed to this id (role agent); null: free (or hidden, see below). */
  fixedAgent: string | null;
  /** Hide the agent filter altogether (an agent without an agent_id). */
  hideAgent: boolean;
  /** Teams the team filter may offer; null: any team (free text). */
  teams: string[] | null;
}

/** Which filters the signed-in role can use. */
export function filterRules(me: Pick<Me, 'role' | 'team_ids' | 'agent_id'> | null): FilterRules {
  if (!me) return { fixedAgent: null, hideAgent: false, teams: null };
  switch (me.role) {
    case 'agent':
      return { fixedAgent: me.agent_id, hideAgent: !me.agent_id, teams: [...me.team_ids] };
    case 'supervisor':
      return { fixedAgent: null, hideAgent: false, teams: [...me.team_ids] };
    default:
      return { fixedAgent: null, hideAgent: false, teams: null };
  }
}

/**
 * Filters as the role may send them: an agent's agent filter is their own id, a team
 * outside the allowed ones is dropped. Returns the same object when nothing changes.
 */
export function restrictFilters<F extends { agent_id?: string; team_id?: string }>(filters: F, rules: FilterRules): F {
  const next: F = { ...filters };
  let changed = false;
  if (rules.fixedAgent) {
    if (next.agent_id !== rules.fixedAgent) {
      next.agent_id = rules.fixedAgent;
      changed = true;
    }
  } else if (rules.hideAgent && next.agent_id !== undefined) {
    delete next.agent_id;
    changed = true;
  }
  if (rules.teams && next.team_id !== undefined && !rules.teams.includes(next.team_id)) {
    delete next.team_id;
    changed = true;
  }
  return changed ? next : filters;
}

/** Seconds until `exp` (unix seconds), never negative. */
export function secondsLeft(exp: number, now: number = Date.now()): number {
  return Math.max(0, Math.floor(exp - now / 1000));
}
