// Pure state transitions for the `/api/live` protocol (docs/websocket.md):
// a snapshot per subscription, then RFC 6902 deltas applied in order.
import { applyPatch } from 'fast-json-patch';
import type { Operation } from 'fast-json-patch';
import type { PatchOperation, ServerMessage } from './types';

export interface SubscriptionState<T = unknown> {
  /** Current section body; null until the first snapshot. */
  data: T | null;
  /** Progress of the last snapshot/delta applied to `data`. */
  progress: number | null;
  /** Last `error` frame for this subscription (cleared by the next snapshot). */
  error: string | null;
  /** `code` of that error frame (e.g. `forbidden`), when the server sent one. */
  errorCode?: string | null;
  /** Subscribed (or re-subscribed with new params) and waiting for the matching snapshot. */
  pending: boolean;
}

export interface LiveState {
  /** Highest progress seen in any frame: every view is complete up to here. */
  progress: number | null;
  subs: Readonly<Record<string, SubscriptionState>>;
  /** An `error` frame without an id. */
  error: string | null;
}

export interface ApplyResult {
  state: LiveState;
  /** Subscription id whose state could not be advanced and needs a fresh snapshot. */
  resync: string | null;
}

export const EMPTY_LIVE_STATE: LiveState = { progress: null, subs: {}, error: null };

const maxProgress = (a: number | null, b: number | null | undefined): number | null =>
  b == null || !Number.isFinite(b) ? a : a == null ? b : Math.max(a, b);

/** Records that `id` was (re)subscribed: keeps the old data on screen, marks it pending. */
export function markSubscribed(state: LiveState, id: string): LiveState {
  const prev = state.subs[id];
  const sub: SubscriptionState = prev
    ? { ...prev, pending: true, error: null, errorCode: null }
    : { data: null, progress: null, error: null, pending: true };
  return { ...state, subs: { ...state.subs, [id]: sub } };
}

export function markUnsubscribed(state: LiveState, id: string): LiveState {
  if (!(id in state.subs)) return state;
  const subs = { ...state.subs };
  delete subs[id];
  return { ...state, subs };
}

/**
 * Applies an RFC 6902 patch without mutating `doc`. Throws when the patch does not
 * apply (unresolvable path, failed `test`, malformed operation).
 */
export function applyJsonPatch<T>(doc: T, patch: readonly PatchOperation[]): T {
  return applyPatch(doc, patch as readonly Operation[], true, false).newDocument;
}

/** Folds one server frame into the state. Frames for unknown ids are ignored. */
export function applyServerMessage(state: LiveState, msg: ServerMessage): ApplyResult {
  switch (msg.type) {
    case 'snapshot': {
      if (!(msg.id in state.subs)) return { state, resync: null };
      const sub: SubscriptionState = { data: msg.data, progress: msg.progress, error: null, pending: false };
      return {
        state: { ...state, progress: maxProgress(state.progress, msg.progress), subs: { ...state.subs, [msg.id]: sub } },
        resync: null,
      };
    }
    case 'delta': {
      const prev = state.subs[msg.id];
      if (!prev) return { state, resync: null };
      if (prev.data == null) return { state, resync: msg.id };
      let data: unknown;
      try {
        data = applyJsonPatch(prev.data, msg.patch);
      } catch {
        return { state, resync: msg.id };
      }
      const sub: SubscriptionState = { ...prev, data, progress: msg.progress };
      return {
        state: { ...state, progress: maxProgress(state.progress, msg.progress), subs: { ...state.subs, [msg.id]: sub } },
        resync: null,
      };
    }
    case 'progress':
      return { state: { ...state, progress: maxProgress(state.progress, msg.progress) }, resync: null };
    case 'authenticated':
      return { state, resync: null };
    case 'error': {
      if (msg.id != null) {
        const prev = state.subs[msg.id];
        if (!prev) return { state, resync: null };
        return {
          state: { ...state, subs: { ...state.subs, [msg.id]: { ...prev, error: msg.message, errorCode: msg.code ?? null, pending: false } } },
          resync: null,
        };
      }
      return { state: { ...state, error: msg.message }, resync: null };
    }
  }
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** Parses and validates one text frame; returns null for anything not in the protocol. */
export function parseServerMessage(raw: string): ServerMessage | null {
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    return null;
  }
  if (!isObj(v)) return null;
  switch (v.type) {
    case 'snapshot':
      return typeof v.id === 'string' && isNum(v.progress) && 'data' in v
        ? { type: 'snapshot', id: v.id, progress: v.progress, data: v.data }
        : null;
    case 'delta':
      return typeof v.id === 'string' && isNum(v.progress) && Array.isArray(v.patch)
        ? { type: 'delta', id: v.id, progress: v.progress, patch: v.patch as PatchOperation[] }
        : null;
    case 'progress':
      return isNum(v.progress) ? { type: 'progress', progress: v.progress } : null;
    case 'error':
      return {
        type: 'error',
        ...(typeof v.id === 'string' ? { id: v.id } : {}),
        ...(typeof v.code === 'string' ? { code: v.code } : {}),
        message: typeof v.message === 'string' ? v.message : 'unknown error',
      };
    case 'authenticated':
      return typeof v.sub === 'string' && typeof v.role === 'string'
        ? { type: 'authenticated', sub: v.sub, role: v.role, account_id: isNum(v.account_id) ? v.account_id : 0, exp: isNum(v.exp) ? v.exp : null }
        : null;
    default:
      return null;
  }
}
