// Playwright fixtures of the end-to-end tests (playwright.config.mjs).
//
// `server` (one per worker): `crmpulse run` from $CRMPULSE_BIN on a free loopback port
// with a temporary data dir, stopped and removed when the worker ends; its log is
// printed (and attached to the report) under every test that fails. With CRMPULSE_URL
// instead, an already running server is used (CRMPULSE_DATA_DIR: its data dir, for the
// credentials; CRMPULSE_CLI: the binary, default `crmpulse`), and the test that stops
// the server is skipped.
//
// Time is an input: every server a run starts, the CLI calls against it and every page
// run on one time line that starts at E2E_NOW (midday UTC, so that no run crosses a
// day, whatever the machine's date) and advances with real time: the server with
// `CRMPULSE_NOW` (its one clock, docs/operations.md "The clock"), the CLI the same,
// the pages with Playwright's clock (`page.clock.install`). `server.now()` reads that
// line; the events are placed relative to it (events.mjs), and the browser runs in
// UTC like the accounts. Against an already running server (CRMPULSE_URL) the line is
// the system clock, as that server's is.
//
// Credentials come from the same binary and data dir: `crmpulse token --data-dir DIR
// --account N --role R [--agent ID]` (a dashboard JWT, opened as
// `/?<view>#token=<jwt>`) and `crmpulse ingest-key --data-dir DIR --account N` (the
// bearer key for POST /api/v1/events).
import { execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { test as base, expect } from '@playwright/test';

export { expect };
const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
export const STEP_MS = 15_000;
/** Where the run's time line starts (CRMPULSE_E2E_NOW overrides it): a Wednesday, 12:00 UTC. */
export const E2E_NOW = Date.parse(process.env.CRMPULSE_E2E_NOW || '2026-11-18T12:00:00Z');
if (Number.isNaN(E2E_NOW)) throw new Error(`CRMPULSE_E2E_NOW is not an instant: ${process.env.CRMPULSE_E2E_NOW}`);
export const ARTIFACTS = path.join(here, 'artifacts');
/**
 * Viewport screenshots go to the ignored artifacts folder, so a test run leaves the
 * checkout clean; `CRMPULSE_UPDATE_SCREENSHOTS=1` writes Chromium's into docs/images.
 */
export const IMAGES = process.env.CRMPULSE_UPDATE_SCREENSHOTS === '1' ? path.resolve(here, '..', '..', 'docs', 'images') : ARTIFACTS;
mkdirSync(ARTIFACTS, { recursive: true });
mkdirSync(IMAGES, { recursive: true });
/** sessionStorage key of the dashboard's token (src/lib/auth.ts). */
export const TOKEN_KEY = 'crmpulse.token';

const freePort = () =>
  new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });

/**
 * Credentials and event posting against one server (`cli`: binary, `dataDir`: its data
 * dir, `now`: the server's time line, ms; the CLI runs on it too).
 */
function client(base, cli, dataDir, now = Date.now) {
  const run = (args) => {
    if (!dataDir) throw new Error('credentials need the data dir: set CRMPULSE_BIN (or CRMPULSE_URL with CRMPULSE_DATA_DIR)');
    const env = { ...process.env, CRMPULSE_NOW: new Date(now()).toISOString() };
    return new Promise((resolve, reject) => {
      execFile(cli, [...args, '--data-dir', dataDir], { timeout: STEP_MS, env }, (err, stdout, stderr) => {
        if (err) return reject(new Error(`${cli} ${args.join(' ')} failed: ${err.message}\n${stderr}`));
        const lines = String(stdout).split('\n').map((l) => l.trim()).filter(Boolean);
        if (lines.length !== 1) return reject(new Error(`${cli} ${args.join(' ')}: expected one line, got ${JSON.stringify(String(stdout).slice(0, 300))}`));
        resolve(lines[0]);
      });
    });
  };
  const memo = new Map();
  const once = (key, fn) => {
    if (!memo.has(key)) memo.set(key, fn().catch((e) => (memo.delete(key), Promise.reject(e))));
    return memo.get(key);
  };
  /** A dashboard token: `token(2)` admin of account 2, `token(2, 'agent', ['--agent', 'a1'])`. */
  const token = (account, role = 'admin', extra = []) =>
    once(`token ${account} ${role} ${extra.join(' ')}`, () => run(['token', '--account', String(account), '--role', role, ...extra]));
  /** The account's ingest key (bearer of POST /api/v1/events). */
  const ingestKey = (account) => once(`ingest-key ${account}`, () => run(['ingest-key', '--account', String(account)]));
  /** Events of one account, with that account's ingest key; all must be accepted. */
  async function postEvents(events) {
    const accounts = [...new Set(events.map((e) => e.account_id))];
    if (accounts.length !== 1) throw new Error(`postEvents: one account per request, got ${accounts.join(', ')}`);
    const res = await fetch(`${base}/api/v1/events`, {
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
  return { base, now, token, ingestKey, postEvents };
}

/** Starts `bin run` on a free port with a temporary data dir; `stop()` ends it, `remove()` deletes the dir. */
export async function startServer(bin) {
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'crmpulse-e2e-'));
  const dataDir = path.join(dir, 'log');
  const out = [];
  const child = spawn(bin, ['run', '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, CRMPULSE_NOW: new Date(E2E_NOW).toISOString() },
  });
  child.stdout.on('data', (b) => out.push(b));
  child.stderr.on('data', (b) => out.push(b));
  const exited = new Promise((r) => child.on('exit', r));
  const base = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode != null || child.signalCode != null) return;
    child.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    if (child.exitCode == null && child.signalCode == null) child.kill('SIGKILL');
  };
  // The server's clock started at E2E_NOW a little after the spawn; this line starts
  // once it answers, so it is behind the server's by at most the start-up (events
  // placed "now" are never in the server's future).
  let ready = null;
  const now = () => E2E_NOW + (ready == null ? 0 : performance.now() - ready);
  const server = {
    ...client(base, bin, dataDir, now),
    owned: true,
    stop,
    log: () => Buffer.concat(out).toString(),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
  for (let i = 0; i < 150; i++) {
    try {
      if ((await fetch(`${base}/healthz`)).ok) {
        ready = performance.now();
        return server;
      }
    } catch {
      /* not up yet */
    }
    if (child.exitCode != null) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  await stop();
  server.remove();
  throw new Error(`crmpulse did not answer /healthz on ${base}:\n${server.log()}`);
}

/** Prints a server's log (its tail) under a failed test and attaches it to the report. */
async function logOnFailure(server, testInfo) {
  if (!server?.log || testInfo.status === testInfo.expectedStatus) return;
  const log = server.log();
  console.log(`--- crmpulse log (${testInfo.project.name}: ${testInfo.title}) ---\n${log.slice(-4000)}`);
  await testInfo.attach('crmpulse.log', { body: log, contentType: 'text/plain' });
}

/** Helpers bound to one page and one server. */
function helpers(page, server, pageErrors) {
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
   * current address only by the fragment would be a same-document navigation (no
   * reload), so such a page goes through about:blank first.
   */
  async function open(query, jwt) {
    const target = `${server.base}/?${query}`;
    if (page.url().split('#')[0] === target) await page.goto('about:blank');
    return page.goto(`${target}#token=${encodeURIComponent(jwt)}`, { waitUntil: 'domcontentloaded', timeout: STEP_MS });
  }
  const waitLive = () =>
    waitFor('connection-status "live"', () => document.querySelector('[data-testid="connection-status"]')?.getAttribute('data-state') === 'live');
  /** axe-core's `serious` and `critical` violations on the page as it is, one line each. */
  async function axeViolations() {
    // Evaluated over the browser's automation protocol: the page's content security
    // policy (script-src 'self') rightly refuses an injected inline script tag.
    await page.evaluate(readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8'));
    return page.evaluate(async () => {
      const r = await window.axe.run(document, { resultTypes: ['violations'] });
      return r.violations
        .filter((v) => v.impact === 'serious' || v.impact === 'critical')
        .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => `${n.target} ${n.any[0]?.message ?? ''}`).join(' | ')}`);
    });
  }
  /** Horizontal overflow of the page in CSS pixels (0: nothing scrolls sideways). */
  const overflow = () => page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  const noPageErrors = () => {
    if (pageErrors.length) throw new Error(`uncaught errors in the page: ${[...new Set(pageErrors)].join('; ')}`);
  };
  const asAdmin = (account) => server.token(account, 'admin');
  /**
   * Types a value into a field. Firefox: Playwright 1.65's WebDriver BiDi `fill` (and
   * `insertText`) sets the element's `value` from script and dispatches `input`, which
   * React's controlled inputs never see (their value tracker is updated by the same
   * assignment, so onChange does not fire: the sign-in form then reads "Paste a token
   * first."). There the value goes in through the prototype's setter, as a browser's own
   * editing does, followed by the `input` event.
   */
  async function fill(locator, value) {
    if (page.context().browser()?.browserType().name() !== 'firefox') return locator.fill(value);
    await locator.focus();
    await locator.evaluate((el, v) => {
      const set = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(el), 'value').set;
      set.call(el, v);
      el.dispatchEvent(new Event('input', { bubbles: true }));
      el.dispatchEvent(new Event('change', { bubbles: true }));
    }, value);
  }
  return { fill, text, dataValue, waitFor, waitValue, open, waitLive, axeViolations, overflow, noPageErrors, asAdmin, pageErrors };
}

export const test = base.extend({
  server: [
    // eslint-disable-next-line no-empty-pattern
    async ({}, use) => {
      if (process.env.CRMPULSE_BIN) {
        const server = await startServer(process.env.CRMPULSE_BIN);
        try {
          await use(server);
        } finally {
          await server.stop();
          server.remove();
        }
      } else {
        const url = (process.env.CRMPULSE_URL || 'http://127.0.0.1:8080').replace(/\/+$/, '');
        await use({ ...client(url, process.env.CRMPULSE_CLI || 'crmpulse', process.env.CRMPULSE_DATA_DIR || null), owned: false });
      }
    },
    { scope: 'worker', timeout: 30_000 },
  ],
  /** The server's log under a failed test (auto: every test). */
  serverLog: [
    async ({ server }, use, testInfo) => {
      await use(undefined);
      await logOnFailure(server, testInfo);
    },
    { auto: true },
  ],
  /** Every page on the server's time line (Playwright's clock, installed before any script runs). */
  page: async ({ page, server }, use) => {
    await page.clock.install({ time: server.now() });
    await use(page);
  },
  app: async ({ page, server }, use) => {
    const pageErrors = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await use(helpers(page, server, pageErrors));
    if (pageErrors.length) console.log(`browser reported (not fatal):\n  ${[...new Set(pageErrors)].join('\n  ')}`);
  },
});

export { helpers, logOnFailure };
