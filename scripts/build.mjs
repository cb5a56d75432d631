#!/usr/bin/env node
// Build: AssemblyScript kernels (debug + release) -> build/*.wasm, esbuild bundles -> build/dist/,
// tsc declarations -> build/types/. `--if-needed` skips when build/.stamp is newer than every input.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
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
const esbuild = await import('esbuild');
const entries = ['node', 'browser', 'slim', 'js'].filter((e) => existsSync(join(root, 'src', `${e}.ts`)));
if (entries.length) {
  await esbuild.build({
    entryPoints: Object.fromEntries(entries.map((e) => [e, join(root, 'src', `${e}.ts`)])),
    outdir: join(build, 'dist'),
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    target: 'es2022',
    packages: 'external',
    splitting: true,
    chunkNames: 'chunks/[name]-[hash]',
    sourcemap: true,
    logLevel: 'warning',
  });
}
if (existsSync(join(root, 'src', 'browser.ts'))) {
  // self-contained browser bundle (dependencies included, wasm fetched by init())
  await esbuild.build({
    entryPoints: { 'async-state-sync.browser': join(root, 'src', 'browser.ts') },
    outdir: join(build, 'dist'),
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    sourcemap: true,
    minify: true,
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
