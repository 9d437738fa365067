// WebSocket client for `/api/live`: keeps the subscriptions, re-sends them after every
// reconnect, reconnects with capped exponential backoff, and exposes an immutable
// state for React's useSyncExternalStore. DOM-free so it can be unit tested.
//
// With a token, the first frame on every socket is `{"op":"auth","token":…}` and the
// subscriptions go out only after the server's `authenticated` answer. A close with code
// 4401 (bad, missing or expired token) ends the client: no reconnect, `unauthorized` set.
import { backoffDelay, DEFAULT_BACKOFF, type BackoffOptions } from './backoff';
import {
  applyServerMessage,
  EMPTY_LIVE_STATE,
  markSubscribed,
  markUnsubscribed,
  parseServerMessage,
  type LiveState,
} from './live';
import type { ClientMessage, ConnectionStatus } from './types';

/** The part of the browser WebSocket the client uses. */
export interface SocketLike {
  readonly readyState: number;
  onopen: ((ev: unknown) => void) | null;
  onclose: ((ev: unknown) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export interface LiveClientOptions {
  /** Bearer token sent as `{"op":"auth"}` right after each socket opens; null: no auth frame. */
  token?: string | null;
  createSocket?: (url: string) => SocketLike;
  backoff?: BackoffOptions;
  random?: () => number;
  /** Close and reconnect when an open socket is silent this long (server heartbeats ≤ 5 s). */
  watchdogMs?: number;
  /** Consecutive failed attempts after which the status reads "offline" (still retrying). */
  offlineAfter?: number;
  now?: () => number;
}

export interface LiveClientState {
  status: ConnectionStatus;
  /** Epoch ms of the next reconnect attempt, when one is scheduled. */
  retryAt: number | null;
  /** Consecutive failed connection attempts. */
  failures: number;
  live: LiveState;
  /** Set when the server refused the token (close 4401): the client has stopped for good. */
  unauthorized: AuthFailure | null;
}

export interface AuthFailure {
  /** `unauthorized`, `token_expired`, … from the error frame, or from the 4401 close's reason
   * before authentication (`unauthorized` for a bare 4401). */
  code: string;
  message: string;
}

/** Close code of the server for a missing, invalid or expired token. */
export const CLOSE_UNAUTHORIZED = 4401;
const AUTH_CODES = new Set(['unauthorized', 'token_expired']);

interface Subscription {
  section: string;
  params: Record<string, string>;
}

const OPEN = 1;

export class LiveClient {
  private readonly url: string;
  private readonly opts: Required<LiveClientOptions>;
  private ws: SocketLike | null = null;
  /** The server accepted this socket's auth frame (always true without a token). */
  private authed = false;
  /** An auth error frame arrived on this socket; the close that follows ends the client. */
  private authFailure: AuthFailure | null = null;
  private gotFrame = false;
  private everLive = false;
  /** Retries scheduled since the connection was last healthy: the backoff exponent. */
  private retries = 0;
  private stopped = true;
  private browserOnline = true;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private watchdogTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly subs = new Map<string, Subscription>();
  private readonly listeners = new Set<() => void>();
  private state: LiveClientState = { status: 'connecting', retryAt: null, failures: 0, live: EMPTY_LIVE_STATE, unauthorized: null };

  constructor(url: string, options: LiveClientOptions = {}) {
    this.url = url;
    this.opts = {
      token: options.token ?? null,
      createSocket: options.createSocket ?? ((u) => new WebSocket(u) as unknown as SocketLike),
      backoff: options.backoff ?? DEFAULT_BACKOFF,
      random: options.random ?? Math.random,
      watchdogMs: options.watchdogMs ?? 45_000,
      offlineAfter: options.offlineAfter ?? 5,
      now: options.now ?? Date.now,
    };
  }

  // --- store interface (useSyncExternalStore) ---------------------------------------

  readonly getState = (): LiveClientState => this.state;

  readonly onChange = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  private set(patch: Partial<LiveClientState>): void {
    this.state = { ...this.state, ...patch };
    for (const l of this.listeners) l();
  }

  // --- lifecycle -----------------------------------------------------------------------

  start(): void {
    if (!this.stopped || this.state.unauthorized) return;
    this.stopped = false;
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    this.clearTimers();
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onopen = ws.onclose = ws.onerror = null;
      ws.onmessage = null;
      try {
        ws.close(1000, 'client stopped');
      } catch {
        /* already closed */
      }
    }
  }

  /** Browser connectivity (window online/offline events). Offline pauses reconnecting. */
  setBrowserOnline(online: boolean): void {
    if (online === this.browserOnline) return;
    this.browserOnline = online;
    if (this.stopped) return;
    if (!online) {
      if (this.ws?.readyState !== OPEN) {
        this.clearRetry();
        this.set({ status: 'offline', retryAt: null });
      }
      return;
    }
    if (!this.ws) {
      // Back online: retry at once instead of waiting out the backoff.
      this.clearRetry();
      this.retries = 0;
      this.set({ failures: 0 });
      this.connect();
    }
  }

  // --- subscriptions -------------------------------------------------------------------

  /** Subscribes, or replaces the subscription with the same id (new range or filters). */
  subscribe(id: string, section: string, params: Record<string, string>): void {
    this.subs.set(id, { section, params: { ...params } });
    this.set({ live: markSubscribed(this.state.live, id) });
    this.send({ op: 'subscribe', id, section, params });
  }

  unsubscribe(id: string): void {
    if (!this.subs.delete(id)) return;
    this.set({ live: markUnsubscribed(this.state.live, id) });
    this.send({ op: 'unsubscribe', id });
  }

  private send(msg: ClientMessage): boolean {
    if (!this.ws || this.ws.readyState !== OPEN) return false;
    // Nothing but the auth frame before the server has accepted the token.
    if (msg.op !== 'auth' && !this.authed) return false;
    try {
      this.ws.send(JSON.stringify(msg));
      return true;
    } catch {
      return false;
    }
  }

  /** Connects at once instead of waiting out the backoff (the "Retry now" button). */
  retryNow(): void {
    if (this.stopped || this.ws) return;
    this.clearRetry();
    this.retries = 0;
    this.connect();
  }

  /** Asks again for a fresh snapshot of `id` (the "Retry" button of a failed section). */
  resubscribe(id: string): void {
    const sub = this.subs.get(id);
    if (!sub) return;
    this.set({ live: markSubscribed(this.state.live, id) });
    this.send({ op: 'subscribe', id, section: sub.section, params: sub.params });
  }

  // --- connection ----------------------------------------------------------------------

  private connect(): void {
    if (this.stopped) return;
    this.clearRetry();
    this.gotFrame = false;
    this.authed = this.opts.token == null;
    this.authFailure = null;
    this.set({ status: this.pendingStatus(), retryAt: null });
    let ws: SocketLike;
    try {
      ws = this.opts.createSocket(this.url);
    } catch {
      this.handleClose();
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      if (this.ws !== ws) return;
      if (this.opts.token != null) this.send({ op: 'auth', token: this.opts.token });
      else this.sendSubscriptions();
      this.armWatchdog();
    };
    ws.onmessage = (ev) => {
      if (this.ws !== ws) return;
      this.handleFrame(ev.data);
    };
    ws.onerror = () => {
      /* a close event always follows */
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      const close = ev as { code?: unknown; reason?: unknown } | null;
      this.handleClose(close?.code, typeof close?.reason === 'string' ? close.reason : '');
    };
  }

  private sendSubscriptions(): void {
    for (const [id, sub] of this.subs) {
      this.set({ live: markSubscribed(this.state.live, id) });
      this.send({ op: 'subscribe', id, section: sub.section, params: sub.params });
    }
  }

  private handleFrame(raw: unknown): void {
    this.armWatchdog();
    const msg = typeof raw === 'string' ? parseServerMessage(raw) : null;
    if (msg?.type === 'error' && msg.id == null && msg.code && AUTH_CODES.has(msg.code)) {
      // The server closes with 4401 next; remember why for the sign-in panel.
      this.authFailure = { code: msg.code, message: msg.message };
      return;
    }
    if (!this.gotFrame) {
      this.gotFrame = true;
      this.everLive = true;
      this.retries = 0;
      this.set({ status: 'live', failures: 0, retryAt: null });
    }
    if (!msg) return;
    if (msg.type === 'authenticated') {
      if (!this.authed) {
        this.authed = true;
        this.sendSubscriptions();
      }
      return;
    }
    const { state, resync } = applyServerMessage(this.state.live, msg);
    if (state !== this.state.live) this.set({ live: state });
    if (resync) this.resubscribe(resync);
  }

  private handleClose(code?: unknown, reason = ''): void {
    this.clearWatchdog();
    const ws = this.ws;
    this.ws = null;
    if (ws) ws.onopen = ws.onclose = ws.onerror = ws.onmessage = null;
    if (this.stopped) return;
    if (code === CLOSE_UNAUTHORIZED || this.authFailure) {
      // The token is bad or expired: reconnecting cannot help, the user must sign in.
      this.stopped = true;
      this.clearTimers();
      // Before authentication the server sends no error frame, only the close: its
      // reason says why (e.g. "token expired", "malformed token: not a JWT").
      const unauthorized = this.authFailure ?? {
        code: /expired/i.test(reason) ? 'token_expired' : 'unauthorized',
        message: reason || 'The server refused the access token.',
      };
      this.authFailure = null;
      this.set({ status: 'offline', retryAt: null, unauthorized });
      return;
    }
    // A socket that opened and streamed frames resets the backoff (on its first frame);
    // one that never delivered a frame counts as a failed attempt.
    const failures = this.gotFrame ? 0 : this.state.failures + 1;
    if (!this.browserOnline) {
      this.set({ status: 'offline', failures, retryAt: null });
      return;
    }
    const delay = backoffDelay(this.retries++, this.opts.backoff, this.opts.random);
    this.set({
      failures,
      status: failures >= this.opts.offlineAfter ? 'offline' : this.everLive ? 'reconnecting' : 'connecting',
      retryAt: this.opts.now() + delay,
    });
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.connect();
    }, delay);
  }

  private pendingStatus(): ConnectionStatus {
    if (!this.browserOnline || this.state.failures >= this.opts.offlineAfter) return 'offline';
    return this.everLive ? 'reconnecting' : 'connecting';
  }

  private armWatchdog(): void {
    this.clearWatchdog();
    if (this.opts.watchdogMs <= 0) return;
    this.watchdogTimer = setTimeout(() => {
      this.watchdogTimer = null;
      const ws = this.ws;
      if (!ws) return;
      // Silent for too long: treat as dead, do not wait for TCP to notice.
      this.handleClose();
      try {
        ws.close(4000, 'heartbeat timeout');
      } catch {
        /* ignore */
      }
    }, this.opts.watchdogMs);
  }

  private clearWatchdog(): void {
    if (this.watchdogTimer != null) clearTimeout(this.watchdogTimer);
    this.watchdogTimer = null;
  }

  private clearRetry(): void {
    if (this.retryTimer != null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }

  private clearTimers(): void {
    this.clearWatchdog();
    this.clearRetry();
  }
}

/** `ws(s)://<host>/api/live` for the page's own origin. */
export function liveUrl(loc: { protocol: string; host: string }): string {
  return `${loc.protocol === 'https:' ? 'wss' : 'ws'}://${loc.host}/api/live`;
}
