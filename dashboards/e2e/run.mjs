#!/usr/bin/env node
// End-to-end check of the KPI strip against an ALREADY RUNNING crmpulse server.
//
//   CRMPULSE_URL=http://127.0.0.1:8080 CHROMIUM_PATH=/usr/bin/chromium node e2e/run.mjs
//
// Loads the page, waits for the live feed, POSTs one `conversation_opened` event and
// waits for "Active conversations" to go from N to N+1. Prints one line per step and
// finally `1 passed, 0 failed` (exit 0) or `0 passed, 1 failed` (exit 1).
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const BASE = (process.env.CRMPULSE_URL || 'http://127.0.0.1:8080').replace(/\/+$/, '');
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const ARTIFACTS = path.join(here, 'artifacts');
const SCREENSHOT = path.join(ARTIFACTS, 'kpi.png');
const STEP_TIMEOUT_MS = 15_000;
const OVERALL_TIMEOUT_MS = 90_000;

const t0 = Date.now();
const log = (msg) => console.log(`[e2e +${((Date.now() - t0) / 1000).toFixed(1)}s] ${msg}`);

let browser;
const pageErrors = [];

async function step(name, fn) {
  log(`${name} ...`);
  const out = await fn();
  const shown = typeof out === 'string' || typeof out === 'number' ? ` (${out})` : '';
  log(`${name}: ok${shown}`);
  return out;
}

async function main() {
  mkdirSync(ARTIFACTS, { recursive: true });

  browser = await step(`launch chromium ${CHROMIUM}`, () =>
    chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
    }),
  );
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, deviceScaleFactor: 1 });
  const page = await context.newPage();
  page.on('pageerror', (e) => pageErrors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') pageErrors.push(`console.error: ${m.text()}`);
  });

  const url = `${BASE}/?range=today`;
  await step(`open ${url}`, async () => {
    const resp = await page.goto(url, { waitUntil: 'domcontentloaded', timeout: STEP_TIMEOUT_MS });
    if (!resp || !resp.ok()) throw new Error(`GET ${url} -> ${resp ? resp.status() : 'no response'}`);
    return `HTTP ${resp.status()}`;
  });

  const status = page.getByTestId('connection-status');
  await step('wait for connection-status "live"', async () => {
    await page.waitForFunction(
      () => {
        const el = document.querySelector('[data-testid="connection-status"]');
        return !!el && /\blive\b/i.test(el.textContent ?? '');
      },
      null,
      { timeout: STEP_TIMEOUT_MS },
    );
    return (await status.textContent())?.trim();
  });

  const readTotal = () =>
    page.evaluate(() => document.querySelector('[data-testid="kpi-active-total"]')?.textContent?.trim() ?? null);

  const n = await step('wait for kpi-active-total to show a number N', async () => {
    await page.waitForFunction(
      () => /^\d+$/.test(document.querySelector('[data-testid="kpi-active-total"]')?.textContent?.trim() ?? ''),
      null,
      { timeout: STEP_TIMEOUT_MS },
    );
    return Number(await readTotal());
  });
  log(`N = ${n}`);

  const id = `e2e-${Date.now()}-${randomUUID().slice(0, 8)}`;
  const event = {
    event_id: id,
    account_id: 1,
    occurred_at: new Date().toISOString(),
    type: 'conversation_opened',
    conversation_id: `conv-${id}`,
    customer_id: 'e2e-cust',
    channel: 'whatsapp',
    inbox_id: 'inbox-1',
    origin: 'inbound',
  };
  await step(`POST ${BASE}/api/v1/events (conversation_opened ${event.conversation_id})`, async () => {
    const res = await fetch(`${BASE}/api/v1/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify([event]),
      signal: AbortSignal.timeout(STEP_TIMEOUT_MS),
    });
    const text = await res.text();
    if (res.status !== 200) throw new Error(`POST /api/v1/events -> ${res.status}: ${text}`);
    let body;
    try {
      body = JSON.parse(text);
    } catch {
      throw new Error(`POST /api/v1/events: response is not JSON: ${text.slice(0, 200)}`);
    }
    if (body.accepted !== 1) throw new Error(`POST /api/v1/events: expected accepted=1, got ${text}`);
    return `HTTP 200 ${text}`;
  });

  await step(`wait for kpi-active-total to show N+1 = ${n + 1}`, async () => {
    try {
      await page.waitForFunction(
        (want) => document.querySelector('[data-testid="kpi-active-total"]')?.textContent?.trim() === String(want),
        n + 1,
        { timeout: STEP_TIMEOUT_MS },
      );
    } catch (e) {
      throw new Error(`kpi-active-total is "${await readTotal()}" after ${STEP_TIMEOUT_MS / 1000} s, expected "${n + 1}"`, { cause: e });
    }
    return await readTotal();
  });

  await step(`screenshot ${path.relative(process.cwd(), SCREENSHOT)}`, () => page.screenshot({ path: SCREENSHOT, fullPage: true }));

  if (pageErrors.length) log(`browser reported (not fatal):\n  ${pageErrors.join('\n  ')}`);
}

const overall = setTimeout(() => {
  console.log(`[e2e] FAILED: overall timeout of ${OVERALL_TIMEOUT_MS / 1000} s exceeded`);
  console.log('0 passed, 1 failed');
  process.exit(1);
}, OVERALL_TIMEOUT_MS);

let ok = false;
try {
  await main();
  ok = true;
} catch (e) {
  log(`FAILED: ${e?.message ?? e}`);
  if (pageErrors.length) log(`browser errors:\n  ${pageErrors.join('\n  ')}`);
  try {
    const page = browser?.contexts()[0]?.pages()[0];
    if (page) {
      const failShot = path.join(ARTIFACTS, 'kpi-failure.png');
      await page.screenshot({ path: failShot, fullPage: true, timeout: 5000 });
      log(`failure screenshot: ${path.relative(process.cwd(), failShot)}`);
    }
  } catch {
    /* best effort */
  }
} finally {
  await browser?.close().catch(() => {});
  clearTimeout(overall);
}
console.log(ok ? '1 passed, 0 failed' : '0 passed, 1 failed');
process.exit(ok ? 0 : 1);
