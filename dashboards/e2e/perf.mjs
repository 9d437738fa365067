#!/usr/bin/env node
// Figures, not a test: production bundle sizes (gzip) and first-load times of the page
// in Chromium against a running server (e.g. `crmpulse demo --backfill-days 90`).
//
//   CRMPULSE_URL=http://127.0.0.1:8080 CRMPULSE_TOKEN=$(crmpulse token --account 1 --role admin) RUNS=5 node e2e/perf.mjs
//
// The dashboard needs a token (the demo prints a link with one): pages are opened with
// `#token=$CRMPULSE_TOKEN`, so the first data includes the sign-in check (`GET /api/me`).
//
// "first data" = navigation start until the first numbers of the section are on screen
// (the KPI strip's active count; a section's body with all its charts drawn). Each run
// uses a fresh browser context (cold HTTP cache). Prints medians and min/max.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const DIST = path.resolve(here, '..', 'dist');
const BASE = (process.env.CRMPULSE_URL || 'http://127.0.0.1:8080').replace(/\/+$/, '');
const RUNS = Number(process.env.RUNS || 5);
const RANGE = process.env.RANGE || 'last30';
const TOKEN = process.env.CRMPULSE_TOKEN || '';
if (!TOKEN) console.warn('CRMPULSE_TOKEN is not set: the pages will stop at the sign-in panel');

const kb = (n) => `${(n / 1024).toFixed(1)} KiB`;
function bundle() {
  const html = readFileSync(path.join(DIST, 'index.html'), 'utf8');
  const files = readdirSync(path.join(DIST, 'assets')).map((f) => {
    const buf = readFileSync(path.join(DIST, 'assets', f));
    return { f, raw: buf.length, gz: gzipSync(buf, { level: 9 }).length, initial: html.includes(`assets/${f}`) };
  });
  const sum = (xs, k) => xs.reduce((s, x) => s + x[k], 0);
  const initial = files.filter((x) => x.initial);
  console.log('bundle (gzip -9):');
  for (const x of files.sort((a, b) => b.gz - a.gz)) console.log(`  ${x.initial ? '*' : ' '} ${x.f.padEnd(40)} ${kb(x.raw).padStart(10)} ${kb(x.gz).padStart(10)}`);
  console.log(`  initial load (*, + index.html): ${kb(sum(initial, 'gz') + gzipSync(html).length)} gzip; everything: ${kb(sum(files, 'gz'))} gzip`);
}

const stats = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return `median ${s[Math.floor(s.length / 2)].toFixed(0)} ms (min ${s[0].toFixed(0)}, max ${s[s.length - 1].toFixed(0)}, n=${s.length})`;
};

async function main() {
  bundle();
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
  const targets = [
    ['overview', `?range=${RANGE}`, () => /^\d+$/.test(document.querySelector('[data-testid="kpi-active-total"]')?.textContent?.trim() ?? '')],
    ...['conversation-effectiveness', 'customer-load', 'agent-productivity', 'business-impact'].map((v) => [
      v,
      `?view=${v}&range=${RANGE}`,
      () => {
        const body = document.querySelector('[data-testid="section-body"]');
        const figs = body ? [...body.querySelectorAll('figure.chart')].filter((f) => f.getBoundingClientRect().top < window.innerHeight) : [];
        return !!body && body.querySelector('.stats') && figs.every((f) => f.querySelector('canvas'));
      },
    ]),
  ];
  for (const [name, search, ready] of targets) {
    const data = [];
    const fcp = [];
    for (let i = 0; i < RUNS; i++) {
      const ctx = await browser.newContext({ viewport: { width: 1440, height: 900 } });
      const page = await ctx.newPage();
      await page.goto(`${BASE}/${search}${TOKEN ? `#token=${encodeURIComponent(TOKEN)}` : ''}`, { waitUntil: 'commit' });
      await page.waitForFunction(ready, null, { timeout: 60_000, polling: 'raf' });
      const t = await page.evaluate(() => ({ now: performance.now(), fcp: performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? NaN }));
      data.push(t.now);
      fcp.push(t.fcp);
      await ctx.close();
    }
    console.log(`${name.padEnd(28)} first data: ${stats(data)}; first contentful paint: ${stats(fcp)}`);
  }
  await browser.close();
}
await main();
