import { defineConfig } from 'vitest/config';

// The Rust server serves dist/ at http://127.0.0.1:8080/ ; `base: './'` keeps every
// asset URL relative so the UI also works when mounted under a sub-path.
const backend = process.env.CRMPULSE_URL ?? 'http://127.0.0.1:8080';

export default defineConfig({
  base: './',
  // Vite 8 transforms TS/JSX with oxc (esbuild in Vite <= 7): automatic React runtime,
  // so no @vitejs/plugin-react is needed.
  oxc: { jsx: { runtime: 'automatic' } },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
  },
  server: {
    // `npm run dev` against a running crmpulse (or dev/mock-server.mjs).
    proxy: {
      '/api': { target: backend, ws: true, changeOrigin: true },
      '/healthz': { target: backend },
    },
  },
  test: {
    include: ['src/**/*.test.ts'],
    environment: 'node',
  },
});
