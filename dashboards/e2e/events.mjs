// Known events for the end-to-end tests (posted to a real crmpulse; every expected
// figure in the specs follows from these). Times are relative to the moment they are
// built (the server runs on the system clock, like the browser), never before today's
// UTC midnight for "today" events.
import { randomUUID } from 'node:crypto';

/** Account used for the seeded, exactly known events (account 1 gets the live test). */
export const SEED_ACCOUNT = 2;
/** Account of the layout checks at every width (layout.spec.mjs), its own copy of the seed. */
export const LAYOUT_ACCOUNT = 4;
/** Account for the WhatsApp and automation events (kept apart so their figures are exact). */
export const WA_ACCOUNT = 3;

export const DAY = 86_400_000;
export const iso = (ms) => new Date(ms).toISOString();
export const day = (ms) => iso(ms).slice(0, 10);

/**
 * Account 2, all times UTC (the account's default zone; the browser runs in UTC too):
 * yesterday 2 conversations opened (one answered by e2e-a1), today 3 (two answered by
 * e2e-a1, one by e2e-a2). The layout checks post the same events for LAYOUT_ACCOUNT.
 */
export function seedEvents(now, account = SEED_ACCOUNT) {
  const midnight = Math.floor(now / DAY) * DAY;
  // Today's events sit a little before now but never before midnight.
  const today = Math.max(midnight + 1_000, now - 120_000);
  const yesterday = midnight - DAY / 2;
  const run = randomUUID().slice(0, 8);
  const events = [];
  const open = (conv, at, channel) =>
    events.push({ event_id: `${conv}-open`, account_id: account, occurred_at: iso(at), type: 'conversation_opened', conversation_id: conv, customer_id: `cust-${conv}`, channel, inbox_id: 'inbox-e2e', origin: 'inbound' });
  const reply = (conv, at, agent) =>
    events.push({ event_id: `${conv}-reply`, account_id: account, occurred_at: iso(at), type: 'message_created', message_id: `${conv}-m1`, conversation_id: conv, direction: 'outbound', sender: 'agent', agent_id: agent, channel: 'webchat' });
  open(`y1-${run}`, yesterday, 'webchat');
  reply(`y1-${run}`, yesterday + 30_000, 'e2e-a1');
  open(`y2-${run}`, yesterday + 60_000, 'whatsapp');
  for (const [i, agent] of [['1', 'e2e-a1'], ['2', 'e2e-a1'], ['3', 'e2e-a2']]) {
    open(`t${i}-${run}`, today + Number(i) * 1_000, 'webchat');
    reply(`t${i}-${run}`, today + Number(i) * 1_000 + 10_000, agent);
  }
  return { events, today: day(now), tomorrow: day(midnight + DAY) };
}

/**
 * Account 3, UTC. WhatsApp today: six outbound messages w1 read, w2 read without
 * `delivered`, w3 delivered, w4 sent then failed 131047, w5 failed 131026, w6 no status;
 * w1 and w3 belong to broadcast b1 (4 recipients). Yesterday: w7 delivered. Expected
 * funnel today: 6 created -> 4 sent -> 3 delivered -> 2 read, 2 failed; delivery rate
 * 3/5 = 0.6 (below the 0.9 alert threshold); broadcast success 2/4 = 0.5; yesterday
 * 1 sent, rate 1. Channel wa-e2e reports degraded/yellow with a queue of 7.
 *
 * Automation today (webchat, so the WhatsApp funnel stays as above): a1 bot + auto reply + intent billing, resolved by the bot (bot only);
 * a2 bot + auto reply + billing, escalated, an agent writes and resolves (with humans);
 * a3 bot + order_status, closed by the system (drop-off); a4 with the bot, still open.
 * Expected: bot only 1 of 4, escalation 1/4 = 0.25, drop-off 1/4 = 0.25, auto-reply
 * success 1/2 = 0.5; intents billing 2 (bot resolution 1/2, escalation 1/2) and
 * order_status 1 (0/1, 0/1).
 */
export function waAutoEvents(now) {
  const midnight = Math.floor(now / DAY) * DAY;
  const base = Math.max(midnight + 1_000, now - 300_000);
  const yesterday = midnight - DAY / 2;
  const run = randomUUID().slice(0, 8);
  const events = [];
  let n = 0;
  const add = (at, body) => events.push({ event_id: `wa-${run}-${n++}`, account_id: WA_ACCOUNT, occurred_at: iso(at), ...body });
  let t = base;
  const next = () => (t += 1_000);
  const out = (m, at, broadcast) =>
    add(at, { type: 'message_created', message_id: `${m}-${run}`, conversation_id: `wa-conv-${run}`, direction: 'outbound', sender: 'agent', agent_id: 'e2e-wa', channel: 'whatsapp', ...(broadcast ? { broadcast_id: `${broadcast}-${run}` } : {}) });
  const status = (m, at, s, extra = {}) => add(at, { type: 'message_status', message_id: `${m}-${run}`, status: s, ...extra });
  add(next(), { type: 'broadcast_sent', broadcast_id: `b1-${run}`, campaign_id: 'e2e-spring', recipients: 4 });
  out('w1', next(), 'b1');
  status('w1', next(), 'sent');
  status('w1', next(), 'delivered');
  status('w1', next(), 'read');
  out('w2', next());
  status('w2', next(), 'read');
  out('w3', next(), 'b1');
  status('w3', next(), 'sent');
  status('w3', next(), 'delivered');
  out('w4', next());
  status('w4', next(), 'sent');
  status('w4', next(), 'failed', { error_code: 131047, error_title: 'Re-engagement message' });
  out('w5', next());
  status('w5', next(), 'failed', { error_code: 131026, error_title: 'Message undeliverable' });
  out('w6', next());
  out('w7', yesterday);
  status('w7', yesterday + 1_000, 'sent');
  status('w7', yesterday + 2_000, 'delivered');
  add(next(), { type: 'channel_health', channel_id: 'wa-e2e', state: 'degraded', quality: 'yellow', queue_depth: 7, sent_per_minute: 2.5 });

  const conv = (c) => `${c}-${run}`;
  const open = (c) => add(next(), { type: 'conversation_opened', conversation_id: conv(c), customer_id: `cust-${conv(c)}`, channel: 'webchat', inbox_id: 'inbox-bot', origin: 'inbound' });
  const bot = (c) => add(next(), { type: 'conversation_assigned', conversation_id: conv(c), assignee: 'bot' });
  const autoReply = (c) => add(next(), { type: 'message_created', message_id: `${conv(c)}-auto`, conversation_id: conv(c), direction: 'outbound', sender: 'bot', channel: 'webchat', auto_reply: true });
  const intent = (c, i) => add(next(), { type: 'intent_detected', conversation_id: conv(c), intent: i, confidence: 0.9 });
  const resolved = (c, by) => add(next(), { type: 'conversation_resolved', conversation_id: conv(c), resolved_by: by });
  for (const c of ['a1', 'a2', 'a3', 'a4']) {
    open(c);
    bot(c);
  }
  autoReply('a1');
  intent('a1', 'billing');
  resolved('a1', 'bot');
  autoReply('a2');
  intent('a2', 'billing');
  add(next(), { type: 'conversation_escalated', conversation_id: conv('a2') });
  add(next(), { type: 'conversation_assigned', conversation_id: conv('a2'), assignee: 'agent', agent_id: 'e2e-wa' });
  add(next(), { type: 'message_created', message_id: `${conv('a2')}-agent`, conversation_id: conv('a2'), direction: 'outbound', sender: 'agent', agent_id: 'e2e-wa', channel: 'webchat' });
  resolved('a2', 'agent');
  intent('a3', 'order_status');
  resolved('a3', 'system');
  return events;
}
