#!/usr/bin/env node
// Regenerates the API types from a running server's OpenAPI description:
//
//   CRMPULSE_URL=http://127.0.0.1:8080 npm run gen:api
//
// Writes src/api/openapi.json (the description, pretty-printed, committed so the diff
// shows API changes) and src/api/schema.d.ts (openapi-typescript). Without a server,
// `npm run gen:api -- --offline` regenerates schema.d.ts from the committed JSON.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const json = path.join(root, 'src/api/openapi.json');
const out = path.join(root, 'src/api/schema.d.ts');

if (!process.argv.includes('--offline')) {
  const base = (process.env.CRMPULSE_URL || 'http://127.0.0.1:8080').replace(/\/+$/, '');
  const res = await fetch(`${base}/api/openapi.json`);
  if (!res.ok) throw new Error(`GET ${base}/api/openapi.json: HTTP ${res.status}`);
  writeFileSync(json, `${JSON.stringify(await res.json(), null, 4)}\n`);
  console.log(`wrote ${path.relative(root, json)}`);
}
execFileSync(path.join(root, 'node_modules/.bin/openapi-typescript'), [json, '-o', out], { stdio: 'inherit' });
