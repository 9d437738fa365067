#!/usr/bin/env node
// Development stand-in for the crmpulse server: serves dist/ and speaks the /api/live
// protocol (docs/websocket.md) with fake numbers. POST /api/v1/events with a
// `conversation_opened` event bumps the active-conversation count, like the real thing.
//
//   node dev/mock-server.mjs [--port 8080] [--host 127.0.0.1]
//
// Dev-only extras: POST /__mock/drop closes every WebSocket (to watch reconnects);
// POST /__mock/alert toggles the WhatsApp delivery alert; POST /__mock/expire ends every
// WebSocket as an expired token would (error frame `token_expired`, close 4401).
//
// Auth as the real server (docs: dashboards/README.md, "Sign-in"), without signatures:
// any JWT-shaped token whose payload has the claims is accepted until its `exp`
// (`alg: none`, nothing is verified: development only). The start-up line prints a link
// with an admin token; `?role=agent&agent=a1` etc. on /__mock/token makes others.
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocketServer } from 'ws';
import jsonpatch from 'fast-json-patch';

const here = path.dirname(fileURLToPath(import.meta.url));
const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1] : def;
};
const PORT = Number(arg('port', process.env.PORT ?? 8080));
const HOST = arg('host', '127.0.0.1');
const DIST = path.resolve(arg('dist', path.join(here, '..', 'dist')));
const TICK_MS = 1000;

// ---------------------------------------------------------------- auth (unverified)
const b64url = (obj) => Buffer.from(JSON.stringify(obj)).toString('base64url');
function mockToken({ role = 'admin', agent = null, teams = [], account = 1, ttl = 86_400 } = {}) {
  const claims = { sub: `mock-${role}${agent ? `-${agent}` : ''}`, account_id: account, role, team_ids: teams, agent_id: agent, exp: Math.floor(Date.now() / 1000) + ttl };
  return `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url(claims)}.`;
}
/** The claims of a usable token, or null. */
function claimsOf(token) {
  const parts = typeof token === 'string' ? token.split('.') : [];
  if (parts.length !== 3) return null;
  try {
    const c = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
    if (typeof c.sub !== 'string' || !['admin', 'supervisor', 'agent', 'analyst'].includes(c.role)) return null;
    if (typeof c.exp !== 'number' || c.exp * 1000 <= Date.now()) return null;
    return { sub: c.sub, account_id: Number(c.account_id ?? 1), role: c.role, team_ids: Array.isArray(c.team_ids) ? c.team_ids : [], agent_id: c.agent_id ?? null, exp: c.exp };
  } catch {
    return null;
  }
}
const bearer = (req) => /^Bearer\s+(.+)$/i.exec(String(req.headers.authorization ?? ''))?.[1]?.trim() ?? null;
const unauthorized = (res) => sendJson(res, 401, { error: { code: 'unauthorized', message: 'missing, invalid or expired bearer token' } });
const HEARTBEAT_MS = 5000;

// ---------------------------------------------------------------- fake view state
const state = {
  active: { total: 12, unassigned: 2, bot: 5, agent: 5 },
  tickets: { low: 1, medium: 2, high: 3, urgent: 1 },
  inbound: 100,
  outbound: 120,
  waAlert: false,
  seenEvents: new Set(),
  logEvents: 0,
};
let ticks = 0;

const DAY_MS = 86_400_000;

// Only the KPI strip is faked; every section is served by the real server (run
// `crmpulse demo` for data), so the mock answers them with the server's error frame.
function sectionBody(section, params) {
  if (section === 'kpi') return kpiBody(params);
  return { error: `section: unknown "${section}" (the mock serves only kpi; use crmpulse demo)` };
}
const DATE_RE = /^\d{4}-\d{2}-\d{2}$/;

function parseBound(v, name) {
  if (v == null || v === '') return { value: null };
  if (DATE_RE.test(v)) {
    const t = Date.parse(`${v}T00:00:00Z`);
    if (Number.isFinite(t)) return { value: t };
  } else if (/^\d{4}-\d{2}-\d{2}T/.test(v) && Number.isFinite(Date.parse(v))) {
    return { value: Date.parse(v) };
  }
  return { error: `${name}: expected RFC 3339 instant or YYYY-MM-DD` };
}

/** Resolves params to a range, or an error string. The mock's account zone is UTC. */
function resolveRange(params) {
  const f = parseBound(params.from, 'from');
  if (f.error) return { error: f.error };
  const t = parseBound(params.to, 'to');
  if (t.error) return { error: t.error };
  const today = Math.floor(Date.now() / DAY_MS) * DAY_MS;
  const from = f.value ?? today;
  const to = t.value ?? from + DAY_MS;
  if (to <= from) return { error: 'to: must be after from' };
  return { from, to };
}

/** Deterministic pseudo-random in [0,1) from a number, so each range has stable numbers. */
const noise = (n) => {
  const x = Math.sin(n / DAY_MS + 1.2345) * 10000;
  return x - Math.floor(x);
};

function kpiBody(params) {
  const r = resolveRange(params);
  if (r.error) return r;
  const { from, to } = r;
  const days = (to - from) / DAY_MS;
  const prevFrom = from - (to - from);
  const iso = (t) => new Date(t).toISOString().replace('.000Z', 'Z');
  const frt = (seed, scale) => {
    const count = Math.round((30 + 20 * noise(seed)) * scale);
    const p50 = Math.round(60 + 90 * noise(seed + 1));
    const p90 = Math.round(p50 * (2 + 2 * noise(seed + 2)));
    return { count, avg_s: Math.round((p50 * 1.3 + 7) * 10) / 10, p50_s: p50, p90_s: p90 };
  };
  const wa = (seed, scale) => {
    const with_status = Math.round((100 + 40 * noise(seed + 3)) * scale);
    const delivered = Math.round(with_status * (0.86 + 0.12 * noise(seed + 4)));
    return { delivered, with_status, rate: Math.round((delivered / with_status) * 10000) / 10000 };
  };
  const cur = frt(from, days);
  const prev = frt(prevFrom, days);
  const slaTarget = 300;
  const sla = cur.p90_s <= slaTarget ? 'green' : cur.p90_s <= 2 * slaTarget ? 'yellow' : 'red';
  let waCur = wa(from, days);
  if (state.waAlert) waCur = { delivered: 80, with_status: 100, rate: 0.8 };
  const waPrev = wa(prevFrom, days);
  const midnight = Math.floor(Date.now() / DAY_MS) * DAY_MS;
  const t = state.tickets;
  return {
    section: 'kpi',
    account_id: Number(params.account_id ?? 1),
    timezone: 'UTC',
    range: { from: iso(from), to: iso(to) },
    previous_range: { from: iso(prevFrom), to: iso(from) },
    progress: Date.now(),
    active_conversations: { ...state.active },
    first_response: { current: cur, previous: prev, sla_target_s: slaTarget, sla_status: sla },
    whatsapp_delivery: { current: waCur, previous: waPrev, alert_below: 0.9, alert: waCur.rate != null && waCur.rate < 0.9 },
    open_tickets: { total: t.low + t.medium + t.high + t.urgent, ...t },
    messages_today: {
      since: iso(midnight),
      current: { inbound: state.inbound, outbound: state.outbound, total: state.inbound + state.outbound },
      previous: { inbound: 90, outbound: 100, total: 190 },
    },
  };
}

// ---------------------------------------------------------------- events
function applyEvent(ev) {
  const required = ['event_id', 'account_id', 'occurred_at', 'type'];
  for (const k of required) if (ev == null || ev[k] == null) return `${k}: missing`;
  if (state.seenEvents.has(ev.event_id)) return 'duplicate';
  state.seenEvents.add(ev.event_id);
  state.logEvents++;
  switch (ev.type) {
    case 'conversation_opened':
      state.active.total++;
      state.active.unassigned++;
      break;
    case 'conversation_resolved':
    case 'conversation_closed':
      if (state.active.total > 0) {
        state.active.total--;
        if (state.active.unassigned > 0) state.active.unassigned--;
        else if (state.active.agent > 0) state.active.agent--;
        else if (state.active.bot > 0) state.active.bot--;
      }
      break;
    case 'message_created':
      if (ev.direction === 'outbound') state.outbound++;
      else state.inbound++;
      break;
    default:
      break;
  }
  return null;
}

function handleEvents(req, res, body) {
  let events;
  try {
    const ct = String(req.headers['content-type'] ?? '');
    events = ct.includes('ndjson')
      ? body.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l))
      : JSON.parse(body);
    if (!Array.isArray(events)) throw new Error('expected a JSON array');
  } catch (e) {
    return sendJson(res, 400, { error: { code: 'bad_request', message: String(e.message ?? e) } });
  }
  let accepted = 0;
  let duplicates = 0;
  const rejected = [];
  events.forEach((ev, index) => {
    const err = applyEvent(ev);
    if (err === 'duplicate') duplicates++;
    else if (err) rejected.push({ index, event_id: ev?.event_id ?? null, error: err });
    else accepted++;
  });
  if (accepted > 0) pushUpdates();
  sendJson(res, rejected.length ? 422 : 200, { accepted, duplicates, rejected });
}

// ---------------------------------------------------------------- http
const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.json': 'application/json',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
};

function sendJson(res, status, obj) {
  const body = JSON.stringify(obj);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function serveStatic(req, res, pathname) {
  const rel = pathname === '/' ? 'index.html' : decodeURIComponent(pathname).replace(/^\/+/, '');
  const file = path.resolve(DIST, rel);
  if (!file.startsWith(DIST + path.sep)) return sendJson(res, 404, { error: { code: 'not_found', message: 'not found' } });
  fs.readFile(file, (err, data) => {
    if (err) {
      if (pathname === '/') {
        res.writeHead(503, { 'content-type': 'text/plain' });
        return res.end('dist/ not built: run `npm run build` first\n');
      }
      return sendJson(res, 404, { error: { code: 'not_found', message: 'not found' } });
    }
    res.writeHead(200, {
      'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream',
      'cache-control': rel === 'index.html' ? 'no-cache' : 'public, max-age=31536000, immutable',
    });
    res.end(data);
  });
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks).toString('utf8');
    if (req.method === 'POST' && url.pathname === '/api/v1/events') return handleEvents(req, res, body);
    if (req.method === 'GET' && url.pathname === '/api/me') {
      const me = claimsOf(bearer(req));
      return me ? sendJson(res, 200, me) : unauthorized(res);
    }
    if (req.method === 'GET' && url.pathname === '/__mock/token') {
      const q = url.searchParams;
      const token = mockToken({ role: q.get('role') ?? 'admin', agent: q.get('agent'), teams: q.getAll('team'), ttl: Number(q.get('ttl') ?? 86_400) });
      return sendJson(res, 200, { token, link: `http://${HOST}:${PORT}/#token=${token}` });
    }
    if (req.method === 'POST' && url.pathname === '/__mock/expire') {
      for (const ws of wss.clients) {
        send(ws, { type: 'error', code: 'token_expired', message: 'token expired' });
        ws.close(4401, 'token expired');
      }
      return sendJson(res, 200, { expired: true });
    }
    if (req.method === 'GET' && url.pathname.startsWith('/api/dashboard/') && !claimsOf(bearer(req))) return unauthorized(res);
    if (req.method === 'GET' && url.pathname === '/api/dashboard/kpi') {
      const out = kpiBody(Object.fromEntries(url.searchParams));
      return out.error
        ? sendJson(res, 400, { error: { code: 'bad_request', message: out.error } })
        : sendJson(res, 200, out);
    }
    if (req.method === 'GET' && url.pathname === '/healthz')
      return sendJson(res, 200, { status: 'ok', progress: Date.now(), log_events: state.logEvents, caught_up: true });
    if (req.method === 'POST' && url.pathname === '/__mock/drop') {
      for (const ws of wss.clients) ws.terminate();
      return sendJson(res, 200, { dropped: true });
    }
    if (req.method === 'POST' && url.pathname === '/__mock/alert') {
      state.waAlert = !state.waAlert;
      pushUpdates();
      return sendJson(res, 200, { wa_alert: state.waAlert });
    }
    if (req.method === 'GET' || req.method === 'HEAD') return serveStatic(req, res, url.pathname);
    sendJson(res, 405, { error: { code: 'method_not_allowed', message: 'method not allowed' } });
  });
});

// ---------------------------------------------------------------- websocket
const wss = new WebSocketServer({ server, path: '/api/live' });

/** ws -> Map<id, {params, last}> */
const clients = new Map();

function send(ws, msg) {
  if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(msg));
}

wss.on('connection', (ws) => {
  const subs = new Map();
  let authed = false;
  // Like the server: no auth frame soon after opening -> refused.
  const authTimer = setTimeout(() => {
    if (authed) return;
    send(ws, { type: 'error', code: 'unauthorized', message: 'auth: expected {"op":"auth","token":...} first' });
    ws.close(4401, 'unauthorized');
  }, 5000);
  clients.set(ws, { subs, lastFrame: Date.now(), authed: () => authed });
  ws.on('message', (raw) => {
    let msg;
    try {
      msg = JSON.parse(String(raw));
    } catch {
      return send(ws, { type: 'error', message: 'invalid JSON' });
    }
    if (!authed) {
      const me = msg.op === 'auth' ? claimsOf(msg.token) : null;
      if (!me) {
        send(ws, { type: 'error', code: 'unauthorized', message: msg.op === 'auth' ? 'invalid or expired token' : 'auth: expected {"op":"auth","token":...} first' });
        return ws.close(4401, 'unauthorized');
      }
      authed = true;
      clearTimeout(authTimer);
      return send(ws, { type: 'authenticated', sub: me.sub, role: me.role, account_id: me.account_id, exp: me.exp });
    }
    if (msg.op === 'subscribe') {
      if (typeof msg.id !== 'string') return send(ws, { type: 'error', message: 'id: required' });
      const body = sectionBody(msg.section, msg.params ?? {});
      if (body.error) {
        subs.delete(msg.id);
        return send(ws, { type: 'error', id: msg.id, message: body.error });
      }
      subs.set(msg.id, { section: msg.section, params: msg.params ?? {}, last: body });
      send(ws, { type: 'snapshot', id: msg.id, progress: body.progress, data: body });
      clients.get(ws).lastFrame = Date.now();
    } else if (msg.op === 'unsubscribe') {
      subs.delete(msg.id);
    } else {
      send(ws, { type: 'error', message: `op: unknown "${msg.op}"` });
    }
  });
  ws.on('close', () => {
    clearTimeout(authTimer);
    clients.delete(ws);
  });
});

/** One tick: send a delta per changed subscription, else a heartbeat at most every 5 s. */
function pushUpdates() {
  const now = Date.now();
  for (const [ws, c] of clients) {
    if (!c.authed()) continue;
    let sent = false;
    for (const [id, sub] of c.subs) {
      if (sub.section !== 'kpi') continue;
      const next = kpiBody(sub.params);
      if (next.error) continue;
      const strip = ({ progress: _p, ...rest }) => rest;
      const patch = jsonpatch.compare(strip(sub.last), strip(next));
      if (patch.length === 0) continue;
      patch.push({ op: 'replace', path: '/progress', value: next.progress });
      sub.last = next;
      send(ws, { type: 'delta', id, progress: next.progress, patch });
      sent = true;
    }
    if (sent) c.lastFrame = now;
    else if (now - c.lastFrame >= HEARTBEAT_MS) {
      send(ws, { type: 'progress', progress: now });
      c.lastFrame = now;
    }
  }
}

setInterval(() => {
  ticks++;
  // Some background traffic so deltas flow; the active count only moves on POSTed events.
  if (ticks % 3 === 0) state.inbound++;
  if (ticks % 4 === 0) state.outbound++;
  pushUpdates();
}, TICK_MS).unref();

server.listen(PORT, HOST, () => {
  console.log(`mock crmpulse on http://${HOST}:${PORT}/ (serving ${DIST})`);
  console.log(`open http://${HOST}:${PORT}/#token=${mockToken()}`);
});

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    for (const ws of wss.clients) ws.terminate();
    server.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 500).unref();
  });
}
