// Layout checks at every width (playwright.config.mjs: phone 390×844, tablet 820×1180,
// desktop 1440×900, in Chromium and Firefox): the page never scrolls sideways, the KPI
// strip is on screen, every section link can be reached and opened, and a section with
// its charts drawn is photographed.
import path from 'node:path';
import { test, expect, ARTIFACTS, IMAGES } from './fixtures.mjs';
import { LAYOUT_ACCOUNT, seedEvents } from './events.mjs';

test.describe.configure({ mode: 'serial' });

const SECTIONS = ['overview', 'conversation-effectiveness', 'whatsapp-performance', 'customer-load', 'agent-productivity', 'automation-impact', 'business-impact'];
/** Servers (by address) that already hold this account's events: a worker may run this file after another. */
const seeded = new Set();

test.beforeAll(async ({ server }) => {
  if (seeded.has(server.base)) return;
  await server.postEvents(seedEvents(server.now(), LAYOUT_ACCOUNT).events);
  seeded.add(server.base);
});

const settled = () =>
  !document.querySelector('[data-testid="section-skeleton"],[data-testid="kpi-skeleton"]') &&
  document.querySelector('[data-testid="connection-status"]')?.getAttribute('data-state') === 'live';

test('KPI strip on screen, no sideways scroll in any section, every section link reachable and opened', async ({ page, app }) => {
  const { open, waitFor, waitValue, waitLive, overflow, noPageErrors, asAdmin } = app;
  const { width } = page.viewportSize();
  await open(`range=today&account_id=${LAYOUT_ACCOUNT}`, await asAdmin(LAYOUT_ACCOUNT));
  await waitLive();
  const active = page.getByTestId('kpi-active-total');
  await expect(active).toBeVisible();
  await expect(active).toHaveText(/^\d+$/);
  // The KPI strip starts within the first screen, and fits across it.
  const box = await active.boundingBox();
  expect(box.y, 'the KPI strip is below the first screen').toBeLessThan(page.viewportSize().height);
  expect(box.x + box.width).toBeLessThanOrEqual(width);
  await waitFor('overview settled', settled);
  expect(await overflow(), 'the overview scrolls sideways').toBeLessThanOrEqual(0);

  const links = page.locator('nav[aria-label="Sections"] a');
  await expect(links).toHaveCount(SECTIONS.length);
  const seen = [];
  for (const id of SECTIONS) {
    const link = page.getByTestId(`nav-${id}`);
    // Reachable: on screen once scrolled to (a narrow bar may scroll inside itself), and
    // not covered by anything (the click lands on the link).
    await link.scrollIntoViewIfNeeded();
    await expect(link).toBeVisible();
    const b = await link.boundingBox();
    expect(b.x >= 0 && b.x + b.width <= width + 0.5, `${id} link within the screen (x ${b.x}, width ${b.width})`).toBe(true);
    expect(b.height, `${id} link tall enough to tap`).toBeGreaterThanOrEqual(24);
    await link.click();
    await waitFor(`${id} open`, (id) => (new URL(location.href).searchParams.get('view') ?? 'overview') === id, id);
    await expect(link).toHaveAttribute('aria-current', 'page');
    await waitFor(`${id} settled`, settled);
    const over = await overflow();
    if (over > 0) seen.push(`${id} scrolls sideways by ${over}px`);
  }
  expect(seen, 'sections wider than the screen').toEqual([]);
  // Back to a section with the account's known figures: today 3 opened.
  await page.getByTestId('nav-customer-load').click();
  await waitValue('cl-opened', 3);
  noPageErrors();
});

test('screenshot of a section with its charts drawn, no sideways scroll', async ({ page, app }, testInfo) => {
  const { open, waitFor, waitValue, overflow, noPageErrors, asAdmin } = app;
  const { engine, width: name } = testInfo.project.metadata;
  await open(`view=conversation-effectiveness&range=last7&account_id=${LAYOUT_ACCOUNT}`, await asAdmin(LAYOUT_ACCOUNT));
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
  // Chromium's are the ones in docs/images (CRMPULSE_UPDATE_SCREENSHOTS=1 writes them there).
  const file = engine === 'chromium' ? path.join(IMAGES, `dashboard-${name}.png`) : path.join(ARTIFACTS, `dashboard-${name}-${engine}.png`);
  await page.screenshot({ path: file, fullPage: true });
  expect(await overflow(), `${name}: the page scrolls sideways`).toBeLessThanOrEqual(0);
  noPageErrors();
  testInfo.annotations.push({ type: 'result', description: path.basename(file) });
});
