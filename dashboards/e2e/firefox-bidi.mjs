#!/usr/bin/env node
// Debian's Firefox ESR, driven by Playwright over WebDriver BiDi (the `moz-firefox`
// channel: no patched Playwright build, nothing downloaded).
//
// Playwright 1.65's BiDi driver sends `emulation.setMediaFeaturesOverride` (the
// prefers-color-scheme emulation) for every new context, and Firefox ESR 153's remote
// agent does not have that command yet ("unknown command"): every `newContext` fails.
// This wrapper is the executable Playwright launches (playwright.config.mjs,
// `launchOptions.executablePath`): it starts firefox-esr with Playwright's arguments,
// sits between the two on the WebDriver BiDi WebSocket, answers that one command itself
// with an empty success and passes every other message through unchanged. The colour
// scheme is fixed to light by a preference instead
// (`layout.css.prefers-color-scheme.content-override`, set in the config).
//
// The second gap: for a download that is not a navigation (a `blob:` link clicked from
// script, how the dashboard saves CSV and PNG files), ESR 153 sends
// `browsingContext.downloadWillBegin` / `downloadEnd` with `navigation: null` and no
// `download` id, and Playwright drops such events (no `download` event, no file). The
// wrapper gives each such download an id of its own (`download`, as the current
// WebDriver BiDi spec has it) and puts the same id on its `downloadEnd` (matched by
// browsing context and URL). And a second file of the same name in Playwright's
// download folder is saved by Firefox as "name(1).ext" or "name-1.ext", which Playwright reports as the
// suggested name: the wrapper reports the page's name and moves the file to it when the
// download ends (replacing the earlier one: read a download before the next one of the
// same name, as the tests do).
//
// Downloaded PDFs are saved only: Firefox's default for application/pdf is to open the
// finished file in a tab of its own viewer, which takes the page under test's execution
// context with it. The wrapper writes the profile's handlers.json (saveToDisk for PDF)
// before starting Firefox; the config also sets `pdfjs.disabled`.
//
// FIREFOX_PATH picks the binary (default: firefox-esr on PATH).
import { spawn } from 'node:child_process';
import { existsSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import WebSocket, { WebSocketServer } from 'ws';

/** Commands the installed Firefox does not know, answered here with `{}`. */
const ANSWERED_HERE = new Set(['emulation.setMediaFeaturesOverride']);

const args = process.argv.slice(2);
const profile = args[args.indexOf('--profile') + 1];
if (args.includes('--profile') && profile && !existsSync(path.join(profile, 'handlers.json'))) {
  // action 0: nsIHandlerInfo.saveToDisk.
  writeFileSync(path.join(profile, 'handlers.json'), JSON.stringify({ defaultHandlersVersion: {}, mimeTypes: { 'application/pdf': { action: 0, extensions: ['pdf'] } }, schemes: {} }));
}

const firefox = spawn(process.env.FIREFOX_PATH || 'firefox-esr', args, {
  stdio: ['ignore', 'inherit', 'pipe'],
});
for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(signal, () => firefox.kill(signal));
firefox.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
firefox.on('error', (e) => {
  process.stderr.write(`firefox-bidi: cannot start firefox: ${e.message}\n`);
  process.exit(1);
});

/**
 * Per connection: download events made usable for Playwright (see the top). `folder` is
 * the destination Playwright set with `browser.setDownloadBehavior`.
 */
function downloadFixer() {
  const open = new Map(); // `${context} ${url}` -> ids of downloads begun, not ended
  const renamed = new Map(); // id -> { from, to } file names in the folder
  let next = 0;
  const state = { folder: null };
  state.fromFirefox = (text) => {
    let msg;
    try {
      msg = JSON.parse(text);
    } catch {
      return text;
    }
    const p = msg.params;
    if (msg.type !== 'event' || !p) return text;
    const key = `${p.context} ${p.url}`;
    if (msg.method === 'browsingContext.downloadWillBegin') {
      if (!p.download && !p.navigation) {
        p.download = `firefox-bidi-download-${++next}`;
        open.set(key, [...(open.get(key) ?? []), p.download]);
      }
      // "report(1).pdf" or "report-1.pdf" when "report.pdf" is in the folder already
      // (Firefox names it one way or the other): the page's name back.
      const m = /^(.+?)(?:\(\d+\)|-\d+)(\.[^.()]*)?$/.exec(p.suggestedFilename ?? '');
      const original = m && `${m[1]}${m[2] ?? ''}`;
      if (original && state.folder && existsSync(path.join(state.folder, original))) {
        renamed.set(p.download ?? p.navigation, { from: p.suggestedFilename, to: original });
        p.suggestedFilename = original;
      }
    } else if (msg.method === 'browsingContext.downloadEnd') {
      if (!p.download && !p.navigation) {
        const ids = open.get(key) ?? [];
        if (ids.length) p.download = ids.shift();
        if (!ids.length) open.delete(key);
      }
      const id = p.download ?? p.navigation;
      const r = renamed.get(id);
      if (r) {
        renamed.delete(id);
        const from = p.filepath ?? path.join(state.folder, r.from);
        const to = path.join(path.dirname(from), r.to);
        try {
          if (p.status === 'complete') renameSync(from, to);
          if (p.filepath) p.filepath = to;
        } catch (e) {
          process.stderr.write(`firefox-bidi: cannot rename ${from} to ${to}: ${e.message}\n`);
        }
      }
    } else return text;
    return JSON.stringify(msg);
  };
  return state;
}

function proxy(upstream) {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
  server.on('connection', (client, req) => {
    const up = new WebSocket(upstream + (req.url ?? ''), { perMessageDeflate: false, maxPayload: 256 * 1024 * 1024 });
    const pending = [];
    up.on('open', () => {
      for (const m of pending.splice(0)) up.send(m);
    });
    const downloads = downloadFixer();
    up.on('message', (data, isBinary) => {
      if (client.readyState !== WebSocket.OPEN) return;
      let out = data;
      if (!isBinary && data.includes('"browsingContext.download')) out = downloads.fromFirefox(data.toString());
      client.send(out, { binary: isBinary });
    });
    client.on('message', (data, isBinary) => {
      const text = data.toString();
      let msg = null;
      try {
        msg = JSON.parse(text);
      } catch {
        /* not JSON: passed on as it is */
      }
      if (msg?.method === 'browser.setDownloadBehavior') downloads.folder = msg.params?.downloadBehavior?.destinationFolder ?? downloads.folder;
      if (msg && ANSWERED_HERE.has(msg.method)) {
        client.send(JSON.stringify({ type: 'success', id: msg.id, result: {} }));
        return;
      }
      if (up.readyState === WebSocket.OPEN) up.send(text, { binary: isBinary });
      else pending.push(text);
    });
    const closeBoth = () => {
      client.close();
      up.close();
    };
    up.on('close', closeBoth);
    client.on('close', closeBoth);
    up.on('error', closeBoth);
    client.on('error', closeBoth);
  });
  return new Promise((resolve) => server.on('listening', () => resolve(server.address().port)));
}

const lines = createInterface({ input: firefox.stderr });
let ready = Promise.resolve();
lines.on('line', (line) => {
  const m = line.match(/^(.*WebDriver BiDi listening on )(ws:\/\/[^/\s]+)(.*)$/);
  if (!m) {
    ready = ready.then(() => process.stderr.write(`${line}\n`));
    return;
  }
  ready = ready.then(async () => {
    const port = await proxy(m[2]);
    process.stderr.write(`${m[1]}ws://127.0.0.1:${port}${m[3]}\n`);
  });
});
