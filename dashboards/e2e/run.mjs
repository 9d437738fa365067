#!/usr/bin/env node
// End-to-end tests of the dashboard in Debian's Chromium (playwright-core, no downloaded
// browser) against a real crmpulse fed with known events.
//
//   CRMPULSE_BIN=../target/debug/crmpulse node e2e/run.mjs     # starts `crmpulse run` itself
//   CRMPULSE_URL=http://127.0.0.1:8080 node e2e/run.mjs        # an already running server
//
// With CRMPULSE_BIN the script owns the server (port 0-like free port, temporary data
// dir) and can stop it for the "API stops" test; with CRMPULSE_URL that test is skipped.
// Prints one line per step and ends with "N passed, M failed" (exit 1 on any failure).
//
// Credentials come from the same binary and data dir: `crmpulse token --data-dir DIR
// --account N --role R [--agent ID] [--team ID]…` (a dashboard JWT, opened as
// `/?<view>#token=<jwt>`) and `crmpulse ingest-key --data-dir DIR --account N` (the
// bearer key for POST /api/v1/events). With CRMPULSE_URL, set CRMPULSE_DATA_DIR to the
// running server's data dir (and CRMPULSE_CLI to the binary, default `crmpulse`).
import { execFile, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const ARTIFACTS = path.join(here, 'artifacts');
/**
 * Viewport screenshots go to the ignored artifacts folder, so a test run leaves the
 * checkout clean; `CRMPULSE_UPDATE_SCREENSHOTS=1` writes them into docs/images instead.
 */
const IMAGES = process.env.CRMPULSE_UPDATE_SCREENSHOTS === '1'
  ? path.resolve(here, '..', '..', 'docs', 'images')
  : ARTIFACTS;
const STEP_MS = 15_000;
const OVERALL_MS = 240_000;
/** Account used for the seeded, exactly known events (account 1 gets the live test). */
const SEED_ACCOUNT = 2;
/** Account for the WhatsApp and automation events (kept apart so their figures are exact). */
const WA_ACCOUNT = 3;

/** sessionStorage key of the dashboard's token (src/lib/auth.ts). */
const TOKEN_KEY = 'crmpulse.token';

const t0 = Date.now();
const log = (msg) => console.log(`[e2e +${((Date.now() - t0) / 1000).toFixed(1)}s] ${msg}`);

// ------------------------------------------------------------------ server
let server = null;
let BASE = (process.env.CRMPULSE_URL || 'http://127.0.0.1:8080').replace(/\/+$/, '');
/** Binary and data dir for `crmpulse token` / `crmpulse ingest-key`. */
let CLI = process.env.CRMPULSE_BIN || process.env.CRMPULSE_CLI || 'crmpulse';
let DATA_DIR = process.env.CRMPULSE_DATA_DIR || null;

const freePort = () =>
  new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });

async function startServer(bin) {
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'crmpulse-e2e-'));
  const out = [];
  CLI = bin;
  DATA_DIR = path.join(dir, 'log');
  const child = spawn(bin, ['run', '--listen', `127.0.0.1:${port}`, '--data-dir', DATA_DIR], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.on('data', (b) => out.push(b));
  child.stderr.on('data', (b) => out.push(b));
  server = { child, dir, out, exited: new Promise((r) => child.on('exit', r)) };
  BASE = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 150; i++) {
    try {
      if ((await fetch(`${BASE}/healthz`)).ok) return;
    } catch {
      /* not up yet */
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`crmpulse did not answer /healthz on ${BASE}:\n${Buffer.concat(out).toString()}`);
}

async function stopServer() {
  if (!server || server.child.exitCode != null) return;
  server.child.kill('SIGTERM');
  await Promise.race([server.exited, new Promise((r) => setTimeout(r, 5000))]);
  if (server.child.exitCode == null) server.child.kill('SIGKILL');
}

// ------------------------------------------------------------------ credentials
/** Runs `crmpulse <args> --data-dir DIR` and returns its single output line. */
function cli(args) {
  if (!DATA_DIR) throw new Error('credentials need the data dir: set CRMPULSE_BIN (or CRMPULSE_URL with CRMPULSE_DATA_DIR)');
  return new Promise((resolve, reject) => {
    execFile(CLI, [...args, '--data-dir', DATA_DIR], { timeout: STEP_MS }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`${CLI} ${args.join(' ')} failed: ${err.message}\n${stderr}`));
      const lines = String(stdout).split('\n').map((l) => l.trim()).filter(Boolean);
      if (lines.length !== 1) return reject(new Error(`${CLI} ${args.join(' ')}: expected one line, got ${JSON.stringify(String(stdout).slice(0, 300))}`));
      resolve(lines[0]);
    });
  });
}
const memo = new Map();
const once = (key, fn) => {
  if (!memo.has(key)) memo.set(key, fn().catch((e) => (memo.delete(key), Promise.reject(e))));
  return memo.get(key);
};
/** A dashboard token: `token(2)` admin of account 2, `token(2, 'agent', ['--agent', 'a1'])`. */
const token = (account, role = 'admin', extra = []) =>
  once(`token ${account} ${role} ${extra.join(' ')}`, () => cli(['token', '--account', String(account), '--role', role, ...extra]));
/** The account's ingest key (bearer of POST /api/v1/events). */
const ingestKey = (account) => once(`ingest-key ${account}`, () => cli(['ingest-key', '--account', String(account)]));

/** Events of one account, with that account's ingest key. */
async function postEvents(events) {
  const accounts = [...new Set(events.map((e) => e.account_id))];
  if (accounts.length !== 1) throw new Error(`postEvents: one account per request, got ${accounts.join(', ')}`);
  const res = await fetch(`${BASE}/api/v1/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${await ingestKey(accounts[0])}` },
    body: JSON.stringify(events),
    signal: AbortSignal.timeout(STEP_MS),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`POST /api/v1/events -> ${res.status}: ${text}`);
  const body = JSON.parse(text);
  if (body.accepted !== events.length) throw new Error(`expected accepted=${events.length}, got ${text}`);
  return body;
}

// ------------------------------------------------------------------ known events
const DAY = 86_400_000;
const iso = (ms) => new Date(ms).toISOString();
const day = (ms) => iso(ms).slice(0, 10);

/**
 * Account 2, all times UTC (the account's default zone; the browser runs in UTC too):
 * yesterday 2 conversations opened (one answered by e2e-a1), today 3 (two answered by
 * e2e-a1, one by e2e-a2).
 */
function seedEvents(now) {
  const midnight = Math.floor(now / DAY) * DAY;
  // Today's events sit a little before now but never before midnight.
  const today = Math.max(midnight + 1_000, now - 120_000);
  const yesterday = midnight - DAY / 2;
  const run = randomUUID().slice(0, 8);
  const events = [];
  const open = (conv, at, channel) =>
    events.push({ event_id: `${conv}-open`, account_id: SEED_ACCOUNT, occurred_at: iso(at), type: 'conversation_opened', conversation_id: conv, customer_id: `cust-${conv}`, channel, inbox_id: 'inbox-e2e', origin: 'inbound' });
  const reply = (conv, at, agent) =>
    events.push({ event_id: `${conv}-reply`, account_id: SEED_ACCOUNT, occurred_at: iso(at), type: 'message_created', message_id: `${conv}-m1`, conversation_id: conv, direction: 'outbound', sender: 'agent', agent_id: agent, channel: 'webchat' });
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
function waAutoEvents(now) {
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

// ------------------------------------------------------------------ harness
const results = [];
let page;

async function test(name, fn) {
  log(`${name} ...`);
  try {
    const out = await fn();
    log(`${name}: ok${out != null ? ` (${out})` : ''}`);
    results.push({ name, ok: true });
  } catch (e) {
    log(`${name}: FAILED: ${e?.message ?? e}`);
    results.push({ name, ok: false });
    const shot = path.join(ARTIFACTS, `failure-${results.length}.png`);
    await page?.screenshot({ path: shot, fullPage: true, timeout: 5000 }).catch(() => {});
    log(`  failure screenshot: ${path.relative(process.cwd(), shot)}`);
  }
}

const text = (id) => page.evaluate((id) => document.querySelector(`[data-testid="${id}"]`)?.textContent?.trim() ?? null, id);
const dataValue = (id) => page.evaluate((id) => document.querySelector(`[data-testid="${id}"]`)?.getAttribute('data-value') ?? null, id);

async function waitFor(desc, predicate, arg) {
  try {
    await page.waitForFunction(predicate, arg, { timeout: STEP_MS });
  } catch (e) {
    throw new Error(`timed out after ${STEP_MS / 1000} s waiting for ${desc}`, { cause: e });
  }
}
const waitValue = (id, want) =>
  waitFor(`${id} data-value = ${want}`, ([id, want]) => document.querySelector(`[data-testid="${id}"]`)?.getAttribute('data-value') === String(want), [id, want]);
/**
 * Opens `/?<query>#token=<jwt>` as a fresh page load. A target that differs from the
 * current address only by the fragment would be a same-document navigation (no reload),
 * so such a page goes through about:blank first.
 */
async function open(query, jwt) {
  const target = `${BASE}/?${query}`;
  if (page.url().split('#')[0] === target) await page.goto('about:blank');
  return page.goto(`${target}#token=${encodeURIComponent(jwt)}`, { waitUntil: 'domcontentloaded', timeout: STEP_MS });
}
/** The account of the events a section is checked with (see SEED_ACCOUNT, WA_ACCOUNT). */
const asAdmin = (account) => token(account, 'admin');
const waitLive = () =>
  waitFor('connection-status "live"', () => document.querySelector('[data-testid="connection-status"]')?.getAttribute('data-state') === 'live');
/** axe-core's `serious` and `critical` violations on the page as it is, one line each. */
async function axeViolations() {
  // Evaluated over the DevTools protocol: the page's content security policy
  // (script-src 'self') rightly refuses an injected inline script tag.
  await page.evaluate(readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8'));
  return page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ['violations'] });
    return r.violations
      .filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => `${n.target} ${n.any[0]?.message ?? ''}`).join(' | ')}`);
  });
}
/** Text of a PDF file (pdftotext, reading order). */
const pdfText = (file, layout = false) => execFileSync('pdftotext', [...(layout ? ['-layout'] : []), file, '-'], { encoding: 'utf8' });

async function main() {
  mkdirSync(ARTIFACTS, { recursive: true });
  mkdirSync(IMAGES, { recursive: true });
  if (process.env.CRMPULSE_BIN) {
    await startServer(process.env.CRMPULSE_BIN);
    log(`started ${process.env.CRMPULSE_BIN} run on ${BASE}`);
  } else log(`using the running server at ${BASE}`);

  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  try {
    const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, timezoneId: 'UTC', locale: 'en-US', acceptDownloads: true });
    page = await context.newPage();
    const pageErrors = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    const noPageErrors = () => {
      if (pageErrors.length) throw new Error(`uncaught errors in the page: ${[...new Set(pageErrors)].join('; ')}`);
    };

    await test('without a token: the sign-in panel; a refused token says so; a pasted token opens the dashboard', async () => {
      const admin = await asAdmin(1);
      // A new tab: empty sessionStorage.
      const main = page;
      page = await context.newPage();
      page.on('pageerror', (e) => pageErrors.push(e.message));
      try {
        const resp = await page.goto(`${BASE}/?range=today`, { waitUntil: 'domcontentloaded', timeout: STEP_MS });
        if (!resp?.ok()) throw new Error(`GET / -> ${resp?.status()}`);
        await waitFor('sign-in panel', () => !!document.querySelector('[data-testid="sign-in"]'));
        const panel = page.getByTestId('sign-in');
        if (!(await panel.getByRole('heading').first().isVisible())) throw new Error('the sign-in panel has no heading');
        const help = (await panel.textContent()) ?? '';
        for (const want of ['needs an access token', 'crmpulse demo', 'crmpulse token --account N --role R'])
          if (!help.includes(want)) throw new Error(`sign-in text lacks "${want}": ${help}`);
        if (await page.getByTestId('kpi-active-total').count()) throw new Error('dashboard data shown without a token');
        const anonymous = await fetch(`${BASE}/api/me`, { signal: AbortSignal.timeout(STEP_MS) });
        if (anonymous.status !== 401) throw new Error(`GET /api/me without a token -> ${anonymous.status}, expected 401`);
        const field = page.getByLabel('Access token');
        const submit = page.getByRole('button', { name: 'Use token' });
        // The server refuses a made-up token (401 on /api/me): the panel stays, with the reason.
        await field.fill('not-a-valid-token');
        await submit.click();
        await waitFor('refusal message', () => !!document.querySelector('[data-testid="sign-in-reason"]'));
        if (await page.evaluate((k) => sessionStorage.getItem(k), TOKEN_KEY)) throw new Error('a refused token was kept in sessionStorage');
        await field.fill(admin);
        await submit.click();
        await waitLive();
        await waitFor('kpi-active-total to be a number', () => /^\d+$/.test(document.querySelector('[data-testid="kpi-active-total"]')?.textContent?.trim() ?? ''));
        const role = (await page.getByTestId('role-badge').textContent())?.trim();
        if (role !== 'admin') throw new Error(`role badge "${role}"`);
        const sub = (await page.getByTestId('signed-in-sub').textContent())?.trim();
        if (!sub) throw new Error('no signed-in user in the header');
        if ((await page.evaluate((k) => sessionStorage.getItem(k), TOKEN_KEY)) !== admin) throw new Error('the pasted token is not in sessionStorage');
        if (new URL(page.url()).search !== '?range=today') throw new Error(`view state lost: ${page.url()}`);
        // Sign out: back to the panel, token gone.
        await page.getByTestId('sign-out').click();
        await waitFor('sign-in panel after sign-out', () => !!document.querySelector('[data-testid="sign-in"]') && !document.querySelector('[data-testid="kpi-active-total"]'));
        if (await page.evaluate((k) => sessionStorage.getItem(k), TOKEN_KEY)) throw new Error('sign-out left the token in sessionStorage');
        return `signed in as ${sub} (admin), signed out`;
      } finally {
        await page.close().catch(() => {});
        page = main;
      }
    });

    await test('page loads and goes live', async () => {
      const resp = await open('range=today', await asAdmin(1));
      if (!resp?.ok()) throw new Error(`GET / -> ${resp?.status()}`);
      await waitLive();
      // The token left the address bar for sessionStorage; the view state stayed.
      if (page.url() !== `${BASE}/?range=today`) throw new Error(`address after load: ${page.url()}`);
      if (!(await page.evaluate((k) => sessionStorage.getItem(k), TOKEN_KEY))) throw new Error('no token in sessionStorage');
      await waitFor('kpi-active-total to be a number', () => /^\d+$/.test(document.querySelector('[data-testid="kpi-active-total"]')?.textContent?.trim() ?? ''));
      const nav = await page.locator('nav[aria-label="Sections"] a').count();
      if (nav !== 7) throw new Error(`expected 7 section links, found ${nav}`);
      return `active ${await text('kpi-active-total')}, ${nav} sections`;
    });

    await test('keyboard: skip link first, sections reachable and opened with Enter', async () => {
      await page.keyboard.press('Tab');
      const first = await page.evaluate(() => document.activeElement?.textContent?.trim());
      if (first !== 'Skip to content') throw new Error(`first Tab stop is "${first}"`);
      await page.getByTestId('nav-agent-productivity').focus();
      await page.keyboard.press('Enter');
      await waitFor('agents section', () => new URL(location.href).searchParams.get('view') === 'agent-productivity');
      const current = await page.getByTestId('nav-agent-productivity').getAttribute('aria-current');
      if (current !== 'page') throw new Error(`aria-current=${current}`);
      await page.goBack();
      await waitFor('back to overview', () => !!document.querySelector('[data-testid="kpi-active-total"]'));
      return 'ok';
    });

    await test('a live event updates a KPI (active conversations N -> N+1)', async () => {
      const n = Number(await text('kpi-active-total'));
      const id = `e2e-live-${randomUUID().slice(0, 8)}`;
      await postEvents([{ event_id: id, account_id: 1, occurred_at: iso(Date.now()), type: 'conversation_opened', conversation_id: `conv-${id}`, customer_id: 'e2e-cust', channel: 'whatsapp', inbox_id: 'inbox-1', origin: 'inbound' }]);
      await waitFor(`kpi-active-total = ${n + 1}`, (want) => document.querySelector('[data-testid="kpi-active-total"]')?.textContent?.trim() === String(want), n + 1);
      return `${n} -> ${n + 1}`;
    });

    const seed = seedEvents(Date.now());
    await test('seed known events for account 2', async () => {
      const r = await postEvents(seed.events);
      return `accepted ${r.accepted}`;
    });

    await test('a date-range change changes the numbers (customer load: today 3, yesterday 2)', async () => {
      await open(`view=customer-load&range=today&account_id=${SEED_ACCOUNT}`, await asAdmin(SEED_ACCOUNT));
      await waitValue('cl-opened', 3);
      await page.getByTestId('range-yesterday').check();
      await waitValue('cl-opened', 2);
      if (!new URL(page.url()).search.includes('range=yesterday')) throw new Error(`URL did not keep the range: ${page.url()}`);
      // The previous period of "yesterday" is the day before: nothing was opened then.
      const trend = await page.getByTestId('cl-opened-trend').getAttribute('data-direction');
      await page.getByTestId('range-today').check();
      await waitValue('cl-opened', 3);
      return `3 -> 2 -> 3 (trend on yesterday: ${trend})`;
    });

    await test('a live event updates a section (customer load opened 3 -> 4)', async () => {
      const conv = `t4-${randomUUID().slice(0, 8)}`;
      await postEvents([{ event_id: `${conv}-open`, account_id: SEED_ACCOUNT, occurred_at: iso(Math.max(Date.now() - 1_000, Math.floor(Date.now() / DAY) * DAY)), type: 'conversation_opened', conversation_id: conv, customer_id: `cust-${conv}`, channel: 'sms', inbox_id: 'inbox-e2e', origin: 'inbound' }]);
      await waitValue('cl-opened', 4);
      return '3 -> 4 without reload';
    });

    await test('CSV download of a table carries range and filters, with the expected rows', async () => {
      // Switch sections in the app (customer load -> conversations), keeping range and account.
      await page.getByTestId('nav-conversation-effectiveness').click();
      await waitValue('ce-handled', 3);
      if (new URL(page.url()).searchParams.get('account_id') !== String(SEED_ACCOUNT)) throw new Error(`URL lost account_id: ${page.url()}`);
      const [download] = await Promise.all([page.waitForEvent('download', { timeout: STEP_MS }), page.getByTestId('table-handled-csv').click()]);
      const name = download.suggestedFilename();
      const wantName = `crmpulse_conversation-effectiveness_conversations-per-agent_${seed.today}_${seed.tomorrow}.csv`;
      if (name !== wantName) throw new Error(`file name ${name}, expected ${wantName}`);
      const body = readFileSync(await download.path(), 'utf8');
      const want = [
        '# crmpulse conversation-effectiveness: Conversations per agent',
        `# range: ${seed.today} to ${seed.tomorrow} (to exclusive, UTC)`,
        '# filters: none',
        'Agent,Conversations,Previous period',
        'e2e-a1,2,1',
        'e2e-a2,1,0',
        '',
      ].join('\r\n');
      if (body !== want) throw new Error(`CSV content:\n${body}\nexpected:\n${want}`);
      // A filter goes into the file name and the header.
      await page.getByTestId('filter-agent_id').fill('e2e-a2');
      await page.getByTestId('filter-agent_id').press('Enter');
      await waitValue('ce-handled', 1);
      const [d2] = await Promise.all([page.waitForEvent('download', { timeout: STEP_MS }), page.getByTestId('table-handled-csv').click()]);
      const body2 = readFileSync(await d2.path(), 'utf8');
      if (!d2.suggestedFilename().endsWith('_agent-e2e-a2.csv')) throw new Error(`filtered file name ${d2.suggestedFilename()}`);
      if (!body2.includes('# filters: agent_id=e2e-a2\r\n') || !body2.includes('e2e-a2,1,0')) throw new Error(`filtered CSV:\n${body2}`);
      noPageErrors();
      return `${name} (${body.length} bytes)`;
    });

    await test('summary PDF export: progress and cancel, a failure said plainly, then the file', async () => {
      await open(`view=kpi&range=today&account_id=${SEED_ACCOUNT}`, await asAdmin(SEED_ACCOUNT));
      const pdfRoute = '**/api/reports/summary.pdf*';
      // Hold the server's answer so the progress note shows, then cancel: no file.
      let release = () => {};
      await page.route(pdfRoute, async (route) => {
        await new Promise((r) => { release = r; });
        await route.continue().catch(() => {});
      });
      let downloads = 0;
      const count = () => { downloads += 1; };
      page.on('download', count);
      await page.getByTestId('export-summary').click();
      await page.getByTestId('export-progress').waitFor({ timeout: STEP_MS });
      await page.getByTestId('export-cancel').click();
      await page.getByTestId('export-summary').waitFor({ timeout: STEP_MS });
      release();
      await page.unroute(pdfRoute);
      // A failure names what the server said.
      await page.route(pdfRoute, (route) =>
        route.fulfill({ status: 503, contentType: 'application/json', body: JSON.stringify({ error: { code: 'unavailable', message: 'the view store is warming up' } }) }),
      );
      await page.getByTestId('export-summary').click();
      const error = page.getByTestId('export-error');
      await error.waitFor({ timeout: STEP_MS });
      const said = (await error.textContent()) ?? '';
      if (!said.includes('the view store is warming up')) throw new Error(`export error says: ${said}`);
      await page.unroute(pdfRoute);
      page.off('download', count);
      if (downloads !== 0) throw new Error(`${downloads} download(s) after a cancel and a failure`);
      // The real export: a PDF of the range on screen, whose text pdftotext reads.
      const [download] = await Promise.all([page.waitForEvent('download', { timeout: STEP_MS }), page.getByTestId('export-summary').click()]);
      const name = download.suggestedFilename();
      if (name !== `crmpulse-summary-${seed.today}.pdf`) throw new Error(`file name ${name}`);
      const file = await download.path();
      if (readFileSync(file).subarray(0, 5).toString() !== '%PDF-') throw new Error('not a PDF');
      const text = pdfText(file, true);
      for (const want of ['Executive summary', `Account ${SEED_ACCOUNT}`, `Range ${seed.today}T`, 'Conversations opened', 'Highest agent score: e2e-a1']) {
        if (!text.includes(want)) throw new Error(`${JSON.stringify(want)} not in the PDF:\n${text}`);
      }
      noPageErrors();
      return `${name} (${readFileSync(file).length} bytes)`;
    });

    await test('dashboard PDF export: the section in view, chosen sections and the whole dashboard; progress, cancel and a failure', async () => {
      await open(`view=customer-load&range=today&account_id=${SEED_ACCOUNT}`, await asAdmin(SEED_ACCOUNT));
      await waitValue('cl-opened', 4);
      const pdfRoute = '**/api/reports/dashboard.pdf*';
      const asked = [];
      const onRequest = (r) => r.url().includes('/api/reports/dashboard.pdf') && asked.push(r);
      page.on('request', onRequest);
      // Held: the progress note and Cancel replace the button; cancelling leaves no file.
      let release = () => {};
      await page.route(pdfRoute, async (route) => {
        await new Promise((r) => { release = r; });
        await route.continue().catch(() => {});
      });
      let downloads = 0;
      const count = () => { downloads += 1; };
      page.on('download', count);
      await page.getByLabel('Dashboard PDF of').selectOption('section');
      await page.getByTestId('export-dashboard').click();
      const progress = page.getByTestId('export-dashboard-progress');
      await progress.waitFor({ timeout: STEP_MS });
      if (!((await progress.textContent()) ?? '').includes('Preparing the dashboard PDF')) throw new Error(`progress says: ${await progress.textContent()}`);
      if ((await progress.getAttribute('role')) !== 'status') throw new Error('the progress note is not a status');
      await page.locator('.meta').screenshot({ path: path.join(ARTIFACTS, 'export-dashboard-progress.png') });
      await page.getByTestId('export-dashboard-cancel').click();
      await page.getByTestId('export-dashboard').waitFor({ timeout: STEP_MS });
      release();
      await page.unroute(pdfRoute);
      // The request was for the section in view, with the range and the account on screen.
      const q = new URL(asked[0].url()).searchParams;
      const wantQ = { sections: 'customer-load', from: seed.today, to: seed.tomorrow, account_id: String(SEED_ACCOUNT) };
      for (const [k, v] of Object.entries(wantQ)) if (q.get(k) !== v) throw new Error(`dashboard.pdf ${k}=${q.get(k)}, expected ${v} (${asked[0].url()})`);
      if (!(await asked[0].allHeaders()).authorization?.startsWith('Bearer ')) throw new Error('dashboard.pdf was asked without the bearer token');
      // A failure names what the server said.
      await page.route(pdfRoute, (route) =>
        route.fulfill({ status: 503, contentType: 'application/json', body: JSON.stringify({ error: { code: 'unavailable', message: 'the view store is warming up' } }) }),
      );
      await page.getByTestId('export-dashboard').click();
      const error = page.getByTestId('export-dashboard-error');
      await error.waitFor({ timeout: STEP_MS });
      if (!((await error.textContent()) ?? '').includes('the view store is warming up')) throw new Error(`export error says: ${await error.textContent()}`);
      await page.unroute(pdfRoute);
      page.off('download', count);
      if (downloads !== 0) throw new Error(`${downloads} download(s) after a cancel and a failure`);
      const save = async (want, mustHave) => {
        const [download] = await Promise.all([page.waitForEvent('download', { timeout: STEP_MS }), page.getByTestId('export-dashboard').click()]);
        const name = download.suggestedFilename();
        if (name !== want) throw new Error(`file name ${name}, expected ${want}`);
        const file = await download.path();
        if (readFileSync(file).subarray(0, 5).toString() !== '%PDF-') throw new Error(`${name} is not a PDF`);
        const text = pdfText(file);
        for (const w of mustHave) if (!text.includes(w)) throw new Error(`${JSON.stringify(w)} not in ${name}:\n${text.slice(0, 2000)}`);
        return { name, text, bytes: readFileSync(file).length };
      };
      // The section in view.
      const one = await save(`crmpulse-customer-load-${seed.today}.pdf`, ['Customer load report', `Account ${SEED_ACCOUNT}`, 'Section: Customer load']);
      if (one.text.includes('Section: Business impact')) throw new Error('the section PDF holds other sections');
      // Chosen sections: the one in view is ticked already; add the executive summary.
      await page.getByLabel('Dashboard PDF of').selectOption('chosen');
      if (!(await page.getByTestId('export-part-customer-load').isChecked())) throw new Error('the section in view is not ticked in the list');
      await page.getByTestId('export-part-summary').check();
      await page.locator('.exports').screenshot({ path: path.join(ARTIFACTS, 'export-dashboard.png') });
      const chosen = await save(`crmpulse-dashboard-${seed.today}.pdf`, ['Dashboard report', 'Highlights', 'Section: Customer load']);
      if (new URL(asked.at(-1).url()).searchParams.get('sections') !== 'summary,customer-load') throw new Error(`chosen sections asked as ${asked.at(-1).url()}`);
      // Nothing ticked: the button is disabled and says why.
      await page.getByTestId('export-part-summary').uncheck();
      await page.getByTestId('export-part-customer-load').uncheck();
      if (!(await page.getByTestId('export-dashboard').isDisabled())) throw new Error('export enabled with no section ticked');
      // The whole dashboard: no sections parameter, all seven sections in the file.
      await page.getByLabel('Dashboard PDF of').selectOption('whole');
      const all = await save(`crmpulse-dashboard-${seed.today}.pdf`, ['Dashboard report', ...['Kpi', 'Conversation effectiveness', 'Whatsapp performance', 'Customer load', 'Agent productivity', 'Automation impact', 'Business impact'].map((s) => `Section: ${s}`)]);
      if (new URL(asked.at(-1).url()).searchParams.has('sections')) throw new Error(`the whole dashboard was asked with sections: ${asked.at(-1).url()}`);
      page.off('request', onRequest);
      noPageErrors();
      return `${one.name} ${one.bytes} B, chosen ${chosen.bytes} B, whole ${all.bytes} B`;
    });

    await test('Reports view: delivery-off notice, create (server message shown), listed, pause, edit, history with a download, delete; hidden for other roles', async () => {
      const admin = await asAdmin(SEED_ACCOUNT);
      const api = async (url, init = {}) => {
        const res = await fetch(`${BASE}${url}`, { ...init, headers: { authorization: `Bearer ${init.jwt ?? admin}`, ...(init.headers ?? {}) }, signal: AbortSignal.timeout(STEP_MS) });
        return { status: res.status, body: res.status === 204 ? null : await res.json().catch(() => null) };
      };
      await open(`view=customer-load&range=today&account_id=${SEED_ACCOUNT}`, admin);
      await waitLive();
      await page.getByTestId('nav-reports').click();
      await page.getByTestId('reports').waitFor({ timeout: STEP_MS });
      const url = new URL(page.url());
      if (url.searchParams.get('view') !== 'reports' || url.searchParams.get('account_id') !== String(SEED_ACCOUNT)) throw new Error(`address ${page.url()}`);
      if ((await page.getByTestId('nav-reports').getAttribute('aria-current')) !== 'page') throw new Error('the Reports link is not the current page');
      // No SMTP server in this e2e server: delivery is off, and the page says so.
      const listed = await api('/api/reports/schedules');
      if (listed.body?.delivery !== 'off') throw new Error(`delivery ${listed.body?.delivery}`);
      const notice = (await page.getByTestId('reports-delivery-off').textContent()) ?? '';
      for (const want of ['Mail delivery is off', 'smtp_url', 'nothing is sent']) if (!notice.includes(want)) throw new Error(`notice lacks "${want}": ${notice}`);
      if (!((await text('reports-timezone')) ?? '').includes(listed.body.timezone)) throw new Error(`time zone not shown: ${await text('reports-timezone')}`);
      await page.getByTestId('table-runs-empty').waitFor({ timeout: STEP_MS });
      if (!((await text('table-runs-empty')) ?? '').includes('No runs in the last 90 days')) throw new Error(`history: ${await text('table-runs-empty')}`);
      // Create: a wrong address first, so the server's message is shown next to the form.
      const name = `e2e weekly ${randomUUID().slice(0, 6)}`;
      await page.getByLabel('Name').fill(name);
      await page.getByLabel('Weekly').check();
      await page.getByLabel('Weekday').selectOption('fri');
      await page.getByLabel(`Time (${listed.body.timezone})`).fill('07:30');
      await page.getByLabel('Recipients').fill('ops@example.com, not-an-address');
      await page.getByTestId('schedule-part-customer-load').check();
      await page.getByLabel('Channel').selectOption('webchat');
      await page.getByTestId('schedule-submit').click();
      const error = page.getByTestId('schedule-error');
      await error.waitFor({ timeout: STEP_MS });
      const said = (await error.textContent()) ?? '';
      if (!said.includes('recipients:') || !said.includes('not-an-address')) throw new Error(`form error says: ${said}`);
      if ((await page.getByLabel('Recipients').getAttribute('aria-invalid')) !== 'true') throw new Error('the recipients field is not marked invalid');
      await page.getByLabel('Recipients').fill('ops@example.com\nlead@example.com');
      await page.getByTestId('schedule-submit').click();
      const row = page.locator(`[data-testid^="schedule-"][data-name="${name}"]`);
      await row.waitFor({ timeout: STEP_MS });
      const rowText = (await row.textContent()) ?? '';
      for (const want of ['Weekly on Friday at 07:30', 'ops@example.com, lead@example.com', 'Executive summary, Customer load', 'channel webchat', 'Active'])
        if (!rowText.includes(want)) throw new Error(`schedule row lacks "${want}": ${rowText}`);
      const made = (await api('/api/reports/schedules')).body.schedules.find((s) => s.name === name);
      const wantMade = { cadence: 'weekly', weekday: 'fri', local_time: '07:30', recipients: ['ops@example.com', 'lead@example.com'], sections: ['summary', 'customer-load'], filters: { channel: 'webchat' }, formats: { pdf: true, html: true }, paused: false };
      // Compared with sorted keys (the server's field order is its own).
      const canon = (v) => JSON.stringify(v, (_k, x) => (x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => a.localeCompare(b))) : x));
      for (const [k, v] of Object.entries(wantMade)) if (canon(made?.[k]) !== canon(v)) throw new Error(`stored ${k} = ${canon(made?.[k])}, expected ${canon(v)}`);
      // Send now needs mail delivery.
      if (!(await row.getByTestId('schedule-send').isDisabled())) throw new Error('Send now is enabled with delivery off');
      // Pause: a PUT of the whole schedule with paused flipped.
      await row.getByTestId('schedule-pause').click();
      await waitFor('the row paused', (n) => document.querySelector(`[data-name="${n}"]`)?.getAttribute('data-paused') === 'true', name);
      if ((await row.getByTestId('schedule-state').textContent())?.trim() !== 'Paused') throw new Error('the state does not read Paused');
      if ((await row.getByTestId('schedule-pause').textContent())?.trim().startsWith('Resume') !== true) throw new Error('no Resume button on a paused schedule');
      const paused = (await api(`/api/reports/schedules/${made.id}`)).body;
      if (paused.paused !== true || paused.weekday !== 'fri' || paused.local_time !== '07:30' || paused.recipients.length !== 2) throw new Error(`after pausing: ${JSON.stringify(paused)}`);
      // Edit: the form holds the schedule; a new time is saved, the rest (paused too) kept.
      await row.getByTestId('schedule-edit').click();
      await waitFor('the edit form', (n) => document.querySelector('#schedule-form-title')?.textContent?.includes(n), name);
      if ((await page.getByLabel('Name').inputValue()) !== name) throw new Error('the edit form does not hold the name');
      await page.getByLabel(`Time (${listed.body.timezone})`).fill('09:15');
      await page.getByTestId('schedule-submit').click();
      await waitFor('the row at 09:15', (n) => document.querySelector(`[data-name="${n}"]`)?.textContent?.includes('Weekly on Friday at 09:15'), name);
      const edited = (await api(`/api/reports/schedules/${made.id}`)).body;
      if (edited.local_time !== '09:15' || edited.paused !== true || edited.sections.join() !== 'summary,customer-load') throw new Error(`after editing: ${JSON.stringify(edited)}`);
      // The history table with runs: nothing is sent here (no SMTP), so the list and the PDF
      // are served by a stub in the browser; the download goes with the token.
      const pdf = await fetch(`${BASE}/api/reports/dashboard.pdf?sections=summary&account_id=${SEED_ACCOUNT}`, { headers: { authorization: `Bearer ${admin}` }, signal: AbortSignal.timeout(STEP_MS) });
      const pdfBytes = Buffer.from(await pdf.arrayBuffer());
      const now = Date.now();
      const runs = [
        { run_id: 'run-sent', schedule_id: made.id, schedule_name: name, account_id: SEED_ACCOUNT, slot: '2026-12-04', due_at: now - DAY, period: ['2026-11-27', '2026-12-04'], recipients: ['ops@example.com', 'lead@example.com'], status: 'sent', attempts: 1, message_bytes: 48_211, pdf_bytes: pdfBytes.length, finished_at: now - DAY + 4_000 },
        { run_id: 'run-failed', schedule_id: made.id, schedule_name: name, account_id: SEED_ACCOUNT, slot: 'manual-1', due_at: now - 2 * DAY, period: ['2026-11-26', '2026-12-03'], recipients: ['ops@example.com'], status: 'failed', error: 'smtp: 550 mailbox unavailable', attempts: 3, message_bytes: 0, pdf_bytes: 0, finished_at: now - 2 * DAY },
      ];
      const runsRoute = /\/api\/reports\/runs(\?[^/]*)?$/;
      const pdfRoute = /\/api\/reports\/runs\/[^/?]+\/pdf$/;
      let pdfAuth = null;
      await page.route(runsRoute, (route) => route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify({ history_days: 90, runs }) }));
      await page.route(pdfRoute, async (route) => {
        pdfAuth = (await route.request().allHeaders()).authorization ?? null;
        await route.fulfill({ status: 200, headers: { 'content-type': 'application/pdf', 'content-disposition': 'attachment; filename="crmpulse-report-2026-11-27.pdf"' }, body: pdfBytes });
      });
      try {
        await page.getByTestId('runs-refresh').click();
        await waitFor('two runs in the history', () => document.querySelectorAll('[data-testid="table-runs"] tbody tr').length === 2);
        const history = (await page.getByTestId('table-runs').textContent()) ?? '';
        for (const want of ['Schedule', 'Period', 'Status', 'Attempts', 'Error', 'Mail size', '2026-11-27 – 2026-12-03', 'Sent', 'Failed', 'smtp: 550 mailbox unavailable', '47.1 KiB', '(sent by hand)'])
          if (!history.includes(want)) throw new Error(`history lacks "${want}": ${history}`);
        if ((await page.getByTestId('run-download').count()) !== 1) throw new Error('expected one Download button (the failed run has no PDF)');
        const [download] = await Promise.all([page.waitForEvent('download', { timeout: STEP_MS }), page.getByTestId('run-download').click()]);
        if (download.suggestedFilename() !== 'crmpulse-report-2026-11-27.pdf') throw new Error(`run PDF named ${download.suggestedFilename()}`);
        if (!readFileSync(await download.path()).equals(pdfBytes)) throw new Error('the run PDF is not the bytes served');
        if (pdfAuth !== `Bearer ${admin}`) throw new Error(`the run PDF was fetched with authorization ${pdfAuth}`);
        await page.screenshot({ path: path.join(ARTIFACTS, 'reports-view.png'), fullPage: true });
        const violations = await axeViolations();
        if (violations.length) throw new Error(`axe on the Reports view:\n  ${violations.join('\n  ')}`);
        await page.setViewportSize({ width: 390, height: 844 });
        await page.waitForTimeout(300);
        const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
        await page.screenshot({ path: path.join(ARTIFACTS, 'reports-phone.png'), fullPage: true });
        if (overflow > 0) throw new Error(`the Reports view scrolls sideways by ${overflow}px on a phone`);
      } finally {
        await page.setViewportSize({ width: 1440, height: 900 });
        await page.unroute(runsRoute);
        await page.unroute(pdfRoute);
      }
      // Delete asks first; Keep keeps it.
      await row.getByTestId('schedule-delete').click();
      await row.getByTestId('schedule-confirm').waitFor({ timeout: STEP_MS });
      await row.getByTestId('schedule-delete-keep').click();
      await row.getByTestId('schedule-delete').waitFor({ timeout: STEP_MS });
      if ((await api(`/api/reports/schedules/${made.id}`)).status !== 200) throw new Error('Keep deleted the schedule');
      await row.getByTestId('schedule-delete').click();
      await row.getByTestId('schedule-delete-confirm').click();
      await row.waitFor({ state: 'detached', timeout: STEP_MS });
      if (!((await text('reports-message')) ?? '').includes('Deleted')) throw new Error(`message after delete: ${await text('reports-message')}`);
      const gone = await api(`/api/reports/schedules/${made.id}`);
      if (gone.status !== 404) throw new Error(`GET the deleted schedule -> ${gone.status}`);
      // Other roles: no Reports link; the page (opened by address) says who manages them.
      const analyst = await token(SEED_ACCOUNT, 'analyst');
      await open(`view=reports&account_id=${SEED_ACCOUNT}`, analyst);
      await page.getByTestId('reports-not-admin').waitFor({ timeout: STEP_MS });
      if (await page.getByTestId('nav-reports').count()) throw new Error('an analyst sees the Reports link');
      if (!((await text('reports-not-admin')) ?? '').includes('managed by admins')) throw new Error(`note: ${await text('reports-not-admin')}`);
      const refused = await api('/api/reports/schedules', { jwt: analyst });
      if (refused.status !== 403) throw new Error(`GET schedules as an analyst -> ${refused.status}`);
      noPageErrors();
      return `${name}: created, paused, edited, deleted; delivery off noticed; history rows and a PDF download`;
    });

    await test('previous-period comparison and a chart PNG named after range and filters', async () => {
      await open(`view=conversation-effectiveness&range=today&account_id=${SEED_ACCOUNT}&channel=webchat`, await asAdmin(SEED_ACCOUNT));
      await waitValue('ce-handled', 3);
      await page.getByTestId('compare-toggle').check();
      // Yesterday e2e-a1 answered one conversation.
      await waitFor('ce-handled-previous', () => document.querySelector('[data-testid="ce-handled-previous"]')?.textContent?.includes('previous period: 1'));
      if (!new URL(page.url()).searchParams.has('compare')) throw new Error(`URL lacks compare=1: ${page.url()}`);
      const png = page.getByTestId('chart-handled-png');
      await waitFor('PNG button enabled', () => !document.querySelector('[data-testid="chart-handled-png"]')?.disabled);
      const [download] = await Promise.all([page.waitForEvent('download', { timeout: STEP_MS }), png.click()]);
      const want = `crmpulse_conversation-effectiveness_conversations-per-agent_${seed.today}_${seed.tomorrow}_channel-webchat.png`;
      if (download.suggestedFilename() !== want) throw new Error(`PNG name ${download.suggestedFilename()}, expected ${want}`);
      const bytes = readFileSync(await download.path());
      await download.saveAs(path.join(ARTIFACTS, want));
      if (bytes.subarray(1, 4).toString() !== 'PNG' || bytes.length < 2000) throw new Error(`not a PNG image (${bytes.length} bytes)`);
      // Back to an already loaded section in the app: its view must never get this one's body.
      await page.getByTestId('compare-toggle').uncheck();
      await page.getByTestId('filters-clear').click();
      // Both views' chunks are loaded now, so nothing suspends while the next snapshot is
      // on its way: switch back and forth.
      for (let i = 0; i < 2; i++) {
        await page.getByTestId('nav-customer-load').click();
        await waitValue('cl-opened', 4);
        await page.getByTestId('nav-conversation-effectiveness').click();
        await waitValue('ce-handled', 3);
      }
      noPageErrors();
      return `${want} (${bytes.length} bytes)`;
    });

    await test('WhatsApp performance: funnel, delivery rate, alert, broadcast and failures from known events', async () => {
      const events = waAutoEvents(Date.now());
      await postEvents(events);
      await open(`view=whatsapp-performance&range=today&account_id=${WA_ACCOUNT}`, await asAdmin(WA_ACCOUNT));
      await waitValue('wa-sent', 4);
      const got = {};
      for (const id of ['wa-sent', 'wa-delivered', 'wa-read', 'wa-failed', 'wa-rate', 'wa-broadcast', 'wa-queue']) got[id] = await dataValue(id);
      const want = { 'wa-sent': '4', 'wa-delivered': '3', 'wa-read': '2', 'wa-failed': '2', 'wa-rate': '0.6', 'wa-broadcast': '0.5', 'wa-queue': '7' };
      if (JSON.stringify(got) !== JSON.stringify(want)) throw new Error(`got ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`);
      const alert = await text('wa-alert');
      if (!alert?.includes('60.0%') || !alert.includes('90%')) throw new Error(`wa-alert: ${alert}`);
      const [download] = await Promise.all([page.waitForEvent('download', { timeout: STEP_MS }), page.getByTestId('table-failures-csv').click()]);
      const body = readFileSync(await download.path(), 'utf8').split('\r\n').filter((l) => l && !l.startsWith('#'));
      const wantCsv = ['Error code,Reason,Category,Messages,Previous period', '131026,Message undeliverable,recipient,1,0', '131047,Re-engagement message,policy,1,0'];
      if (body.join('\n') !== wantCsv.join('\n')) throw new Error(`failures CSV:\n${body.join('\n')}\nexpected:\n${wantCsv.join('\n')}`);
      const health = await text('wa-channels');
      if (!health?.includes('wa-e2e: degraded') || !health.includes('1 unhealthy')) throw new Error(`channel health: ${health}`);
      await page.getByTestId('range-yesterday').check();
      await waitValue('wa-sent', 1);
      if ((await dataValue('wa-rate')) !== '1') throw new Error(`yesterday's rate ${await dataValue('wa-rate')}`);
      if (await text('wa-alert')) throw new Error('the alert stays on for a 100% day');
      noPageErrors();
      return `today sent 4, delivered 3, read 2, failed 2, rate 0.6 with alert; yesterday sent 1, rate 1`;
    });

    await test('automation impact: bot only, escalation, drop-off, auto replies and intents from known events', async () => {
      await open(`view=automation-impact&range=today&account_id=${WA_ACCOUNT}`, await asAdmin(WA_ACCOUNT));
      await waitValue('au-escalation', 0.25);
      const got = {};
      for (const id of ['au-bot', 'au-escalation', 'au-dropoff', 'au-autoreply']) got[id] = await dataValue(id);
      const want = { 'au-bot': '1', 'au-escalation': '0.25', 'au-dropoff': '0.25', 'au-autoreply': '0.5' };
      if (JSON.stringify(got) !== JSON.stringify(want)) throw new Error(`got ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`);
      const [download] = await Promise.all([page.waitForEvent('download', { timeout: STEP_MS }), page.getByTestId('table-intents-csv').click()]);
      const body = readFileSync(await download.path(), 'utf8').split('\r\n').filter((l) => l && !l.startsWith('#'));
      const wantCsv = ['Intent,Conversations,Previous period,Bot resolution,Escalation', 'billing,2,0,0.5,0.5', 'order_status,1,0,0,0'];
      if (body.join('\n') !== wantCsv.join('\n')) throw new Error(`intents CSV:\n${body.join('\n')}\nexpected:\n${wantCsv.join('\n')}`);
      noPageErrors();
      return 'bot only 1, escalation 0.25, drop-off 0.25, auto-reply 0.5, intents billing 2 / order_status 1';
    });

    await test('screenshots at phone, tablet and desktop widths', async () => {
      const shots = [];
      for (const [name, width, height] of [['phone', 390, 844], ['tablet', 820, 1180], ['desktop', 1440, 900]]) {
        await page.setViewportSize({ width, height });
        await open(`view=conversation-effectiveness&range=last7&account_id=${SEED_ACCOUNT}`, await asAdmin(SEED_ACCOUNT));
        await waitValue('ce-handled', 4);
        // Charts load when scrolled near the viewport: scroll through the page once.
        await page.evaluate(async () => {
          for (let y = 0; y < document.body.scrollHeight; y += window.innerHeight / 2) {
            window.scrollTo(0, y);
            await new Promise((r) => setTimeout(r, 50));
          }
        });
        await waitFor('charts rendered', () => [...document.querySelectorAll('figure.chart')].every((f) => f.querySelector('canvas')));
        await page.evaluate(() => window.scrollTo(0, 0));
        await page.waitForTimeout(300);
        const file = path.join(IMAGES, `dashboard-${name}.png`);
        await page.screenshot({ path: file, fullPage: true });
        const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
        if (overflow > 0) throw new Error(`${name}: page scrolls sideways by ${overflow}px`);
        shots.push(path.basename(file));
      }
      await page.setViewportSize({ width: 1440, height: 900 });
      return shots.join(', ');
    });

    await test('axe-core: no serious or critical violations in any section', async () => {
      const found = [];
      for (const view of ['overview', 'conversation-effectiveness', 'whatsapp-performance', 'customer-load', 'agent-productivity', 'automation-impact', 'business-impact']) {
        // The WhatsApp and automation sections are audited with their known events (account 3).
        const account = ['whatsapp-performance', 'automation-impact'].includes(view) ? WA_ACCOUNT : SEED_ACCOUNT;
        await open(`view=${view}&range=today&account_id=${account}`, await asAdmin(account));
        await waitFor(`${view} settled`, () => !document.querySelector('[data-testid="section-skeleton"],[data-testid="kpi-skeleton"]') && document.querySelector('[data-testid="connection-status"]')?.getAttribute('data-state') === 'live');
        await page.waitForTimeout(500);
        const violations = await axeViolations();
        for (const v of violations) found.push(`${view}: ${v}`);
      }
      if (found.length) throw new Error(`\n  ${found.join('\n  ')}`);
      return '7 sections audited';
    });

    await test('an agent token sees only its own agent row and no other agent id', async () => {
      const me = 'e2e-a1';
      const others = ['e2e-a2', 'e2e-wa'];
      await open(`view=agent-productivity&range=today&account_id=${SEED_ACCOUNT}`, await token(SEED_ACCOUNT, 'agent', ['--agent', me]));
      await waitLive();
      await waitFor('the agents table with a row', () => !!document.querySelector('[data-testid="table-agents"] tbody tr:not([aria-hidden]) td'));
      const role = (await page.getByTestId('role-badge').textContent())?.trim();
      if (role !== 'agent') throw new Error(`role badge "${role}"`);
      // The agent filter is fixed to the agent's own id (or not offered at all).
      const filter = page.getByTestId('filter-agent_id');
      if (await filter.count()) {
        const value = await filter.inputValue();
        if (value !== me || !(await filter.evaluate((el) => el.readOnly || el.disabled))) throw new Error(`agent filter "${value}" is not fixed to ${me}`);
      }
      const check = async () => {
        const rows = await page.evaluate(() =>
          [...document.querySelectorAll('[data-testid="table-agents"] tbody tr:not([aria-hidden])')].map((tr) => tr.querySelector('td')?.textContent?.trim()),
        );
        if (rows.length !== 1 || rows[0] !== me) throw new Error(`agent rows ${JSON.stringify(rows)}, expected only ${me}`);
        const pageText = await page.evaluate(() => `${document.title}\n${document.body.textContent ?? ''}`);
        const leaked = others.filter((id) => pageText.includes(id));
        if (leaked.length) throw new Error(`the page text names other agents: ${leaked.join(', ')}`);
      };
      await check();
      // Still true once deltas had time to arrive.
      await page.waitForTimeout(2_500);
      await check();
      // The server filters by itself (the page adds agent_id=<own id>; the REST body without it).
      const jwt = await token(SEED_ACCOUNT, 'agent', ['--agent', me]);
      const res = await fetch(`${BASE}/api/dashboard/agent-productivity?account_id=${SEED_ACCOUNT}&from=${seed.today}&to=${seed.tomorrow}`, {
        headers: { authorization: `Bearer ${jwt}` },
        signal: AbortSignal.timeout(STEP_MS),
      });
      if (res.status !== 200) throw new Error(`GET agent-productivity as ${me} -> ${res.status}: ${await res.text()}`);
      const ids = (await res.json()).agents?.map((a) => a.agent_id) ?? [];
      if (ids.some((id) => id !== me)) throw new Error(`REST agent-productivity for ${me} lists ${ids.join(', ')}`);
      // Filtering on another agent is forbidden.
      const other = await fetch(`${BASE}/api/dashboard/agent-productivity?account_id=${SEED_ACCOUNT}&agent_id=e2e-a2`, { headers: { authorization: `Bearer ${jwt}` }, signal: AbortSignal.timeout(STEP_MS) });
      if (other.status !== 403) throw new Error(`agent_id=e2e-a2 as ${me} -> ${other.status}, expected 403`);
      noPageErrors();
      return `only ${me}`;
    });

    await test('error state when the API stops, with the last data kept', async () => {
      if (!server) return 'skipped: the server was not started by this script (set CRMPULSE_BIN)';
      await open(`view=customer-load&range=today&account_id=${SEED_ACCOUNT}`, await asAdmin(SEED_ACCOUNT));
      await waitValue('cl-opened', 4);
      await stopServer();
      await waitFor('connection-lost alert', () => !!document.querySelector('[role="alert"][data-testid="connection-lost"]'));
      const state = await page.getByTestId('connection-status').getAttribute('data-state');
      if (!['reconnecting', 'offline'].includes(state)) throw new Error(`connection-status is ${state}`);
      if ((await dataValue('cl-opened')) !== '4') throw new Error('the last data was not kept on screen');
      const retry = page.getByTestId('connection-retry');
      if (!(await retry.isVisible())) throw new Error('no Retry button');
      await retry.click();
      await page.screenshot({ path: path.join(ARTIFACTS, 'api-stopped.png'), fullPage: true });
      return `status ${state}, "${(await text('connection-lost'))?.slice(0, 60)}…"`;
    });

    if (pageErrors.length) log(`browser reported (not fatal):\n  ${[...new Set(pageErrors)].join('\n  ')}`);
  } finally {
    await browser.close().catch(() => {});
  }
}

const overall = setTimeout(() => {
  console.log(`[e2e] FAILED: overall timeout of ${OVERALL_MS / 1000} s exceeded`);
  process.exit(1);
}, OVERALL_MS);

try {
  await main();
} catch (e) {
  log(`FAILED: ${e?.message ?? e}`);
  results.push({ name: 'setup', ok: false });
} finally {
  if (server) {
    await stopServer();
    if (results.some((r) => !r.ok)) console.log(`--- crmpulse log ---\n${Buffer.concat(server.out).toString().slice(-4000)}`);
    rmSync(server.dir, { recursive: true, force: true });
  }
  clearTimeout(overall);
}
const passed = results.filter((r) => r.ok).length;
const failed = results.length - passed;
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
