// The end-to-end tests (e2e/*.spec.mjs) on @playwright/test, in Debian's browsers only
// (nothing is downloaded: PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD is moot, no `playwright
// install` is ever run):
//
//   chromium  Debian's `chromium` (CHROMIUM_PATH, default /usr/bin/chromium), over CDP
//   firefox   Debian's `firefox-esr` (FIREFOX_PATH, default firefox-esr on PATH), over
//             WebDriver BiDi (Playwright's `moz-firefox` channel) through
//             e2e/firefox-bidi.mjs (see there why)
//
// at three widths: phone 390×844, tablet 820×1180, desktop 1440×900. The layout checks
// (e2e/layout.spec.mjs) run at every width in both engines; the functional suite
// (e2e/dashboard.spec.mjs) at desktop width in both.
//
//   CRMPULSE_BIN=../target/debug/crmpulse npx playwright test              # everything
//   CRMPULSE_BIN=… npx playwright test --project=firefox-desktop
//   CRMPULSE_URL=http://127.0.0.1:8080 CRMPULSE_DATA_DIR=… npx playwright test   # a running server
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from '@playwright/test';

const here = path.dirname(fileURLToPath(import.meta.url));
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

const engines = {
  chromium: {
    browserName: 'chromium',
    launchOptions: {
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    },
  },
  firefox: {
    browserName: 'firefox',
    // Stock Firefox (no Playwright patches) is driven over WebDriver BiDi: the `moz-*`
    // channels. The executable is the wrapper, which starts FIREFOX_PATH / firefox-esr.
    channel: 'moz-firefox',
    launchOptions: {
      executablePath: path.join(here, 'e2e', 'firefox-bidi.mjs'),
      firefoxUserPrefs: {
        // Playwright's colour-scheme emulation is the one command ESR lacks (the wrapper
        // answers it): light, by preference.
        'layout.css.prefers-color-scheme.content-override': 1,
        // A downloaded PDF is a file the tests read back: without this (and the wrapper's
        // handlers.json) Firefox opens every finished PDF download in a new tab of its
        // own viewer, and the page under test loses its execution context.
        'pdfjs.disabled': true,
      },
    },
  },
};
const widths = {
  desktop: { width: 1440, height: 900 },
  tablet: { width: 820, height: 1180 },
  phone: { width: 390, height: 844 },
};

const projects = [];
for (const [width, viewport] of Object.entries(widths)) {
  for (const [engine, use] of Object.entries(engines)) {
    projects.push({
      name: `${engine}-${width}`,
      // The functional suite at desktop width; the layout checks at every width.
      testMatch: width === 'desktop' ? ['dashboard.spec.mjs', 'layout.spec.mjs'] : ['layout.spec.mjs'],
      use: { ...use, viewport, headless: true },
      metadata: { engine, width },
    });
  }
}

export default defineConfig({
  testDir: 'e2e',
  outputDir: 'e2e/artifacts/test-results',
  // One server per worker (e2e/fixtures.mjs); each spec's tests run in order in one worker.
  fullyParallel: false,
  workers: Number(process.env.E2E_WORKERS || 2),
  forbidOnly: true,
  retries: 0,
  timeout: 90_000,
  globalTimeout: 15 * 60_000,
  expect: { timeout: 15_000 },
  reporter: [['list'], ['html', { outputFolder: 'e2e/artifacts/report', open: 'never' }]],
  use: {
    timezoneId: 'UTC',
    locale: 'en-US',
    acceptDownloads: true,
    actionTimeout: 15_000,
    navigationTimeout: 15_000,
    screenshot: 'only-on-failure',
    trace: 'off',
  },
  projects,
});
