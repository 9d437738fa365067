import { describe, expect, it } from 'vitest';
import { sampleKpi } from './fixtures';
import {
  applyJsonPatch,
  applyServerMessage,
  EMPTY_LIVE_STATE,
  markSubscribed,
  markUnsubscribed,
  parseServerMessage,
  type LiveState,
} from './live';
import type { KpiData, ServerMessage } from './types';

const subscribed = (): LiveState => markSubscribed(EMPTY_LIVE_STATE, 'kpi');

function run(state: LiveState, msgs: ServerMessage[]): { state: LiveState; resyncs: string[] } {
  const resyncs: string[] = [];
  for (const m of msgs) {
    const r = applyServerMessage(state, m);
    state = r.state;
    if (r.resync) resyncs.push(r.resync);
  }
  return { state, resyncs };
}

describe('snapshot followed by deltas', () => {
  it('applies patches in order on top of the snapshot', () => {
    const { state, resyncs } = run(subscribed(), [
      { type: 'snapshot', id: 'kpi', progress: 1000, data: sampleKpi() },
      { type: 'delta', id: 'kpi', progress: 2000, patch: [{ op: 'replace', path: '/active_conversations/total', value: 13 }] },
      {
        type: 'delta',
        id: 'kpi',
        progress: 3000,
        patch: [
          { op: 'replace', path: '/active_conversations/total', value: 14 },
          { op: 'replace', path: '/active_conversations/unassigned', value: 4 },
          { op: 'replace', path: '/first_response/sla_status', value: 'red' },
          { op: 'replace', path: '/whatsapp_delivery/current', value: { delivered: 80, with_status: 100, rate: 0.8 } },
          { op: 'replace', path: '/whatsapp_delivery/alert', value: true },
          { op: 'replace', path: '/progress', value: 3000 },
        ],
      },
      { type: 'progress', progress: 5000 },
    ]);
    expect(resyncs).toEqual([]);
    const sub = state.subs.kpi!;
    const data = sub.data as KpiData;
    expect(data.active_conversations).toEqual({ total: 14, unassigned: 4, bot: 5, agent: 5 });
    expect(data.first_response.sla_status).toBe('red');
    expect(data.whatsapp_delivery.current.rate).toBe(0.8);
    expect(data.whatsapp_delivery.alert).toBe(true);
    expect(data.progress).toBe(3000);
    expect(data.open_tickets.total).toBe(7); // untouched
    expect(sub.progress).toBe(3000);
    expect(sub.pending).toBe(false);
    expect(state.progress).toBe(5000); // heartbeat advances the global progress
  });

  it('does not mutate the previous state (React relies on new references)', () => {
    const snap = sampleKpi();
    const s1 = run(subscribed(), [{ type: 'snapshot', id: 'kpi', progress: 1, data: snap }]).state;
    const s2 = applyServerMessage(s1, {
      type: 'delta',
      id: 'kpi',
      progress: 2,
      patch: [{ op: 'replace', path: '/open_tickets/total', value: 8 }],
    }).state;
    expect((s1.subs.kpi!.data as KpiData).open_tickets.total).toBe(7);
    expect(snap.open_tickets.total).toBe(7);
    expect((s2.subs.kpi!.data as KpiData).open_tickets.total).toBe(8);
    expect(s2.subs.kpi!.data).not.toBe(s1.subs.kpi!.data);
  });

  it('supports add/remove/test and nullable fields', () => {
    const doc = sampleKpi();
    const out = applyJsonPatch(doc, [
      { op: 'test', path: '/first_response/current/count', value: 40 },
      { op: 'replace', path: '/first_response/current', value: { count: 0, avg_s: null, p50_s: null, p90_s: null } },
      { op: 'replace', path: '/first_response/sla_status', value: null },
      { op: 'remove', path: '/messages_today/previous' },
      { op: 'add', path: '/messages_today/previous', value: null },
    ]);
    expect(out.first_response.current.avg_s).toBeNull();
    expect(out.first_response.sla_status).toBeNull();
    expect(out.messages_today.previous).toBeNull();
  });

  it('a new snapshot replaces the data wholesale', () => {
    const next = sampleKpi();
    next.active_conversations.total = 99;
    const { state } = run(subscribed(), [
      { type: 'snapshot', id: 'kpi', progress: 1, data: sampleKpi() },
      { type: 'snapshot', id: 'kpi', progress: 2, data: next },
    ]);
    expect((state.subs.kpi!.data as KpiData).active_conversations.total).toBe(99);
  });
});

describe('failure handling', () => {
  it('asks for a resync when a patch does not apply, keeping the last good data', () => {
    const base = run(subscribed(), [{ type: 'snapshot', id: 'kpi', progress: 1, data: sampleKpi() }]).state;
    const bad = applyServerMessage(base, {
      type: 'delta',
      id: 'kpi',
      progress: 2,
      patch: [{ op: 'replace', path: '/no/such/path', value: 1 }],
    });
    expect(bad.resync).toBe('kpi');
    expect(bad.state).toBe(base);
    const failedTest = applyServerMessage(base, {
      type: 'delta',
      id: 'kpi',
      progress: 2,
      patch: [
        { op: 'test', path: '/active_conversations/total', value: 999 },
        { op: 'replace', path: '/active_conversations/total', value: 13 },
      ],
    });
    expect(failedTest.resync).toBe('kpi');
    expect((failedTest.state.subs.kpi!.data as KpiData).active_conversations.total).toBe(12);
  });

  it('asks for a resync on a delta before any snapshot', () => {
    const r = applyServerMessage(subscribed(), { type: 'delta', id: 'kpi', progress: 1, patch: [] });
    expect(r.resync).toBe('kpi');
  });

  it('ignores frames for ids it is not subscribed to', () => {
    const s = subscribed();
    expect(applyServerMessage(s, { type: 'snapshot', id: 'other', progress: 1, data: {} }).state).toBe(s);
    expect(applyServerMessage(s, { type: 'delta', id: 'other', progress: 1, patch: [] })).toEqual({ state: s, resync: null });
  });

  it('records subscription errors and clears them on the next snapshot', () => {
    let s = applyServerMessage(subscribed(), { type: 'error', id: 'kpi', message: 'from: bad date' }).state;
    expect(s.subs.kpi).toMatchObject({ error: 'from: bad date', pending: false, data: null });
    s = applyServerMessage(s, { type: 'snapshot', id: 'kpi', progress: 1, data: sampleKpi() }).state;
    expect(s.subs.kpi!.error).toBeNull();
    s = applyServerMessage(s, { type: 'error', message: 'server shutting down' }).state;
    expect(s.error).toBe('server shutting down');
  });

  it('never moves progress backwards', () => {
    const s = run(subscribed(), [
      { type: 'progress', progress: 5000 },
      { type: 'snapshot', id: 'kpi', progress: 4000, data: sampleKpi() },
    ]).state;
    expect(s.progress).toBe(5000);
    expect(s.subs.kpi!.progress).toBe(4000);
  });
});

describe('resubscribe', () => {
  it('keeps showing old data while pending, and unsubscribing drops it', () => {
    let s = run(subscribed(), [{ type: 'snapshot', id: 'kpi', progress: 1, data: sampleKpi() }]).state;
    s = markSubscribed(s, 'kpi');
    expect(s.subs.kpi!.pending).toBe(true);
    expect((s.subs.kpi!.data as KpiData).active_conversations.total).toBe(12);
    s = markUnsubscribed(s, 'kpi');
    expect(s.subs.kpi).toBeUndefined();
  });
});

describe('parseServerMessage', () => {
  it('parses each frame type of the protocol', () => {
    expect(parseServerMessage('{"type":"progress","progress":1764000002000}')).toEqual({ type: 'progress', progress: 1764000002000 });
    expect(
      parseServerMessage('{"type":"delta","id":"kpi","progress":2,"patch":[{"op":"replace","path":"/a","value":1}]}'),
    ).toEqual({ type: 'delta', id: 'kpi', progress: 2, patch: [{ op: 'replace', path: '/a', value: 1 }] });
    expect(parseServerMessage('{"type":"snapshot","id":"kpi","progress":1,"data":{"x":1}}')).toEqual({
      type: 'snapshot',
      id: 'kpi',
      progress: 1,
      data: { x: 1 },
    });
    expect(parseServerMessage('{"type":"error","id":"kpi","message":"nope"}')).toEqual({ type: 'error', id: 'kpi', message: 'nope' });
  });
  it('rejects malformed frames', () => {
    expect(parseServerMessage('not json')).toBeNull();
    expect(parseServerMessage('[1,2]')).toBeNull();
    expect(parseServerMessage('{"type":"delta","id":"kpi","progress":2}')).toBeNull();
    expect(parseServerMessage('{"type":"progress","progress":"soon"}')).toBeNull();
    expect(parseServerMessage('{"type":"hello"}')).toBeNull();
  });
});
