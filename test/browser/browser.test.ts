/**
 * The browser bundle in headless Chromium (Debian's chromium through playwright-core; never a downloaded
 * browser): `await init()` loads the wasm with compileStreaming, both backends give identical bytes,
 * IndexedDbStorage persists across a page reload.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { closeServer, launchChromium, listenLoopback } from './harness.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const types: Record<string, string> = { '.js': 'text/javascript', '.wasm': 'application/wasm', '.html': 'text/html', '.map': 'application/json' };

let server: Server;
let browser: Browser;
let base: string;
let wasmRequests = 0;

beforeAll(async () => {
  const bundle = join(root, 'build/dist/async-state-sync.browser.js');
  if (!existsSync(bundle)) throw new Error(`missing ${bundle}: run npm run build`);
  // an application bundled from the package's browser entry by a bundler that knows nothing of wasm (no
  // loader, no copied file): what a user's esbuild/webpack/vite build of `import ... from 'async-state-sync'` is
  const esbuild = await import('esbuild');
  const app = await esbuild.build({
    stdin: { contents: `export { init, backend, GCounter } from ${JSON.stringify(join(root, 'build/dist/browser.js'))};`, resolveDir: root, loader: 'js' },
    bundle: true,
    format: 'esm',
    platform: 'browser',
    write: false,
    logLevel: 'silent',
  });
  const appJs = app.outputFiles[0]!.text;
  server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname.endsWith('.wasm')) wasmRequests++;
    // /bare/: the standalone bundle and the application, with no wasm file anywhere beside them
    if (url.pathname === '/bare/app.js' || url.pathname === '/bare/async-state-sync.browser.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' });
      res.end(url.pathname === '/bare/app.js' ? appJs : await readFile(join(root, 'build/dist/async-state-sync.browser.js')));
      return;
    }
    if (url.pathname.startsWith('/bare/')) {
      res.writeHead(404).end();
      return;
    }
    if (url.pathname === '/') {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<!doctype html><meta charset="utf-8"><title>async-state-sync</title><body></body>');
      return;
    }
    const path = normalize(join(root, 'build', url.pathname));
    if (!path.startsWith(join(root, 'build'))) {
      res.writeHead(403).end();
      return;
    }
    try {
      const body = await readFile(path);
      res.writeHead(200, { 'content-type': types[extname(path)] ?? 'application/octet-stream' });
      res.end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  base = await listenLoopback(server);
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await closeServer(server);
});

/** Runs `body` (an async function body) in the page; a string, so the test runner never rewrites its import(). */
function inPage<T>(page: Page, body: string): Promise<T> {
  return page.evaluate(`(async () => {${body}})()`) as Promise<T>;
}

async function openPage(): Promise<Page> {
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(`${base}/`);
  (page as unknown as { errors: string[] }).errors = errors;
  return page;
}

describe('browser bundle', () => {
  it('loads the wasm with init(), and both backends give byte-identical CRDT states', async () => {
    const page = await openPage();
    const result = await inPage<{ before: string; after: string; w: string; j: string }>(page, `
      const lib = await import('/dist/async-state-sync.browser.js');
      const before = lib.backend();
      await lib.init();
      const after = lib.backend();
      function history() {
        let t = 1_700_000_000_000;
        const clock = new lib.HLC({ now: () => t++ });
        const a = new lib.ORMap('a', { clock });
        const b = new lib.ORMap('b', { clock });
        for (let i = 0; i < 200; i++) {
          a.setLWW('vm-' + i, { id: 'vm-' + i, status: 'running', cpuCores: i % 8 });
          if (i % 3 === 0) b.setLWW('vm-' + i, { id: 'vm-' + i, status: 'stopped', cpuCores: 1 });
        }
        a.delete('vm-7');
        a.merge(b);
        b.merge(a);
        const c = new lib.PNCounter('a');
        c.increment(41);
        c.decrement(2);
        const s = new lib.ORSet('b');
        s.add('x');
        s.add('y');
        s.remove('x');
        return JSON.stringify({
          map: Array.from(a.encode()),
          same: Array.from(a.encode()).join() === Array.from(b.encode()).join(),
          size: a.size,
          counter: c.value(),
          set: s.values(),
        });
      }
      lib.useBackend('wasm');
      const w = history();
      lib.useBackend('js');
      const j = history();
      // in a browser every encoding owns its buffer (postMessage(x, [x.buffer]) detaches nothing else)
      const s = new lib.ORSet('o');
      for (let i = 0; i < 20; i++) s.add('element-' + i);
      const enc = s.encode();
      const owns = enc.length > 64 && enc.byteOffset === 0 && enc.buffer.byteLength === enc.length;
      return { before, after, w, j, owns };
    `);
    expect((result as unknown as { owns: boolean }).owns).toBe(true);
    expect(result.before).toBe('js');
    expect(result.after).toBe('wasm');
    expect(result.w).toBe(result.j);
    const parsed = JSON.parse(result.w);
    expect(parsed.same).toBe(true);
    expect(parsed.size).toBe(199);
    expect(parsed.counter).toBe(39);
    expect(parsed.set).toEqual(['y']);
    expect((page as unknown as { errors: string[] }).errors).toEqual([]);
    await page.close();
  });

  it('init() loads the kernels built into the bundle: no wasm file served or fetched, bundled by a bundler knowing nothing of wasm', async () => {
    const page = await openPage();
    const before = wasmRequests;
    const got = await inPage<string[]>(page, `
      const out = [];
      for (const path of ['/bare/async-state-sync.browser.js', '/bare/app.js']) {
        const lib = await import(path);
        const was = lib.backend();
        await lib.init();
        const g = new lib.GCounter('a');
        g.increment(3);
        out.push(was + '->' + lib.backend() + ':' + g.value());
      }
      return out;
    `);
    // each bundle has its own kernel module: both start on js and switch to wasm
    expect(got).toEqual(['js->wasm:3', 'js->wasm:3']);
    expect(wasmRequests).toBe(before);
    expect((page as unknown as { errors: string[] }).errors).toEqual([]);
    await page.close();
  });

  it('IndexedDbStorage keeps data across a page reload', async () => {
    const page = await openPage();
    await inPage(page, `
      const lib = await import('/dist/async-state-sync.browser.js');
      const st = new lib.IndexedDbStorage({ name: 'ass-test' });
      await st.put('crdt/a', new Uint8Array([1, 2, 3]));
      await st.batch([
        { type: 'put', key: 'crdt/b', value: new Uint8Array([4]) },
        { type: 'put', key: 'other/c', value: new Uint8Array([5]) },
      ]);
      await st.delete('crdt/b');
      await st.close();
    `);
    await page.reload();
    const got = await inPage<{ out: [string, number[]][]; c: number[] | null }>(page, `
      const lib = await import('/dist/async-state-sync.browser.js');
      const st = new lib.IndexedDbStorage({ name: 'ass-test' });
      const out = [];
      for await (const [k, v] of st.entries('crdt/')) out.push([k, Array.from(v)]);
      const c = await st.get('other/c');
      await st.close();
      return { out, c: c ? Array.from(c) : null };
    `);
    expect(got.out).toEqual([['crdt/a', [1, 2, 3]]]);
    expect(got.c).toEqual([5]);
    await page.close();
  });
});
