#!/usr/bin/env node
// Build: AssemblyScript kernels (debug + release) -> build/*.wasm, esbuild bundles -> build/dist/,
// tsc declarations -> build/types/. `--if-needed` skips when build/.stamp is newer than every input.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const build = join(root, 'build');
const stamp = join(build, '.stamp');
const ifNeeded = process.argv.includes('--if-needed');
const skipTypes = process.argv.includes('--no-types');

function newest(path) {
  if (!existsSync(path)) return 0;
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  let m = st.mtimeMs;
  for (const e of readdirSync(path)) m = Math.max(m, newest(join(path, e)));
  return m;
}

if (ifNeeded && existsSync(stamp)) {
  const inputs = Math.max(
    ...['src', 'assembly', 'bench', 'asconfig.json', 'package.json', 'scripts/build.mjs', 'tsconfig.json'].map((p) => newest(join(root, p))),
  );
  if (statSync(stamp).mtimeMs >= inputs) process.exit(0);
}

mkdirSync(join(build, 'dist'), { recursive: true });
const bin = (name) => join(root, 'node_modules', '.bin', name);
const t0 = Date.now();

// 1. WebAssembly kernels
if (existsSync(join(root, 'assembly', 'index.ts'))) {
  for (const target of ['debug', 'release']) {
    execFileSync(bin('asc'), ['assembly/index.ts', '--config', 'asconfig.json', '--target', target], { cwd: root, stdio: 'inherit' });
  }
}

// 2. bundles
// the browser entry carries the release kernels in base64 (6 KB), so `await init()` needs no URL or loader
const wasmFile = join(build, 'release.wasm');
const wasmDefine = { __ASYNC_STATE_SYNC_WASM__: JSON.stringify(existsSync(wasmFile) ? readFileSync(wasmFile).toString('base64') : '') };
// `node`, `browser` and `slim` share chunks, hence one kernel module instance: a library on `./slim` uses the wasm
// that the application loaded through the main entry (or through `init()` on slim). `js` is built on its own,
// without shared chunks, so it has a private kernel module whose backend stays the pure-TS one even when the main
// entry has loaded the wasm in the same program (its classes are then distinct from the main entry's).
const esbuild = await import('esbuild');
// keepNames: esbuild renames a top-level class or function whose name collides with another module's in the
// bundle (`GCounter.name === '_GCounter'`); users see those names in errors, logs and `constructor.name`
// checks. Keeping them costs about 3% of the library bundles (see the commit that set it).
const bundleOptions = {
  keepNames: true,
  // paths in the bundles' comments and metafile are relative to this, whatever the caller's working dir
  absWorkingDir: root,
  outdir: join(build, 'dist'),
  bundle: true,
  format: 'esm',
  platform: 'neutral',
  target: 'es2022',
  packages: 'external',
  sourcemap: true,
  logLevel: 'warning',
};
const shared = ['node', 'browser', 'slim'].filter((e) => existsSync(join(root, 'src', `${e}.ts`)));
if (shared.length) {
  const result = await esbuild.build({
    ...bundleOptions,
    entryPoints: Object.fromEntries(shared.map((e) => [e, join(root, 'src', `${e}.ts`)])),
    define: wasmDefine,
    splitting: true,
    chunkNames: 'chunks/[name]-[hash]',
    metafile: true,
  });
  // chunk names carry a content hash: drop the chunks of earlier builds (else they pile up in build/dist and in
  // the published package), after the new ones are written so a running program never misses its chunk
  const chunks = join(build, 'dist', 'chunks');
  const current = new Set(Object.keys(result.metafile.outputs).map((p) => resolve(root, p)));
  for (const f of existsSync(chunks) ? readdirSync(chunks) : []) {
    const p = join(chunks, f);
    if (!current.has(p)) rmSync(p, { force: true });
  }
}
if (existsSync(join(root, 'src', 'js.ts'))) {
  await esbuild.build({ ...bundleOptions, entryPoints: { js: join(root, 'src', 'js.ts') }, splitting: false });
}
if (existsSync(join(root, 'src', 'browser.ts'))) {
  // self-contained browser bundle (dependencies and the wasm kernels included)
  await esbuild.build({
    entryPoints: { 'async-state-sync.browser': join(root, 'src', 'browser.ts') },
    define: wasmDefine,
    outdir: join(build, 'dist'),
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    sourcemap: true,
    minify: true,
    keepNames: true,
    // Node-only modules are imported lazily by the classes that need them (LmdbStorage is not in this entry;
    // WebSocketTransport uses the native WebSocket in browsers): never bundle them.
    external: ['ws', 'lmdb', 'node:*'],
    logLevel: 'warning',
  });
}
if (existsSync(join(root, 'src', 'cli', 'main.ts'))) {
  await esbuild.build({
    entryPoints: { cli: join(root, 'src', 'cli', 'main.ts') },
    outdir: join(build, 'dist'),
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    packages: 'external',
    sourcemap: true,
    logLevel: 'warning',
  });
}
if (existsSync(join(root, 'bench', 'run.ts'))) {
  await esbuild.build({
    entryPoints: { bench: join(root, 'bench', 'run.ts') },
    outdir: build,
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    packages: 'external',
    sourcemap: true,
    logLevel: 'warning',
  });
}

// 3. declarations
if (!skipTypes) {
  execFileSync(bin('tsc'), ['-p', 'tsconfig.json', '--emitDeclarationOnly'], { cwd: root, stdio: 'inherit' });
}

// the stamp means "everything built": a build without declarations leaves it alone
if (!skipTypes) writeFileSync(stamp, String(Date.now()));
console.log(`build done in ${Date.now() - t0} ms`);
