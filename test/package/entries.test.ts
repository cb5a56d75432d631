/**
 * The published entry points, imported by package name from a child Node process (the package references
 * itself through its `exports`), against the built files in build/dist: what a user of the package gets.
 */
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { transformSync } from 'esbuild';

const root = fileURLToPath(new URL('../..', import.meta.url));

function run(code: string): string {
  if (!existsSync(`${root}/build/dist/node.js`)) throw new Error('build/dist/node.js missing: run npm run build');
  return execFileSync(process.execPath, ['--input-type=module', '-e', code], { cwd: root, encoding: 'utf8', timeout: 60_000 }).trim();
}

describe('package entries', () => {
  it('the node entry loads the wasm on import; slim does not; js refuses wasm', () => {
    const out = run(`
      const main = await import('async-state-sync');
      const a = main.backend();
      const slim = await import('async-state-sync/slim');
      const js = await import('async-state-sync/js');
      let refused = false;
      try { js.useBackend('wasm'); } catch (e) { refused = e instanceof main.NotInitializedError || e.name === 'NotInitializedError'; }
      console.log(JSON.stringify({ a, slimHasInit: typeof slim.init, refused }));
    `);
    const r = JSON.parse(out);
    expect(r.a).toBe('wasm');
    expect(r.slimHasInit).toBe('function');
    expect(r.refused).toBe(true);
  });

  it('every public name of DESIGN.md is exported by the node entry', () => {
    const names = [
      'GCounter', 'PNCounter', 'GSet', 'TwoPSet', 'ORSet', 'LWWRegister', 'MVRegister', 'ORMap', 'RGA',
      'VectorClock', 'HLC', 'CausalBuffer', 'SyncEngine', 'MemoryNetwork', 'VirtualScheduler', 'RealScheduler',
      'WebSocketTransport', 'MemoryStorage', 'LmdbStorage', 'IndexedDbStorage', 'NovaCronIntegration', 'ClusterMetadata',
      'CrdtError', 'DecodeError', 'AuthError', 'ClockSkewError', 'TransportError', 'StorageError', 'TimeoutError',
      'NotInitializedError', 'init', 'initSync', 'useBackend', 'backend',
    ];
    const out = run(`const m = await import('async-state-sync'); console.log(JSON.stringify(${JSON.stringify(names)}.filter((n) => !(n in m))));`);
    expect(JSON.parse(out)).toEqual([]);
  });

  it('the README usage example runs as written', async () => {
    const readme = readFileSync(`${root}/README.md`, 'utf8');
    const block = /## Usage\s+```ts\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(block).toBeTruthy();
    // free ports and a temp data dir instead of the fixed ones shown in the README
    const ts = block!
      .replace("port: 7101 }", "port: 0 }")
      .replace("path: './data'", "path: process.env.DATA_DIR")
      .replace("a.get('vm-002');", "console.log(JSON.stringify(a.get('vm-002')));")
      .replace("node.listVMs();", "console.log(JSON.stringify(node.listVMs())); await node.stop();");
    const code = transformSync(ts, { loader: 'ts', format: 'esm' }).code;
    const dir = execFileSync('mktemp', ['-d'], { encoding: 'utf8' }).trim();
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', code], {
      cwd: root,
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, DATA_DIR: dir },
    }).trim().split('\n');
    expect(JSON.parse(out[0])).toEqual({ status: 'stopped', cpuCores: 2 });
    const vms = JSON.parse(out[1]);
    expect(vms.map((v: { id: string }) => v.id)).toEqual(['vm-001']);
    execFileSync('rm', ['-rf', dir]);
  });

  it('./js stays on the pure-TS kernels in a program that loaded the wasm through the main entry first', () => {
    // Every call into the wasm is counted: the instance's exported functions are wrapped before any entry loads.
    // The same workload (counters past the wasm crossover of counterMerge, OR-Sets past that of dotMerge) runs
    // through the main entry, then through ./js; only the first may reach the wasm, and both give the same state.
    const out = run(`
      const Instance = WebAssembly.Instance;
      let wasmCalls = 0;
      WebAssembly.Instance = function (module, imports) {
        const inst = new Instance(module, imports);
        const exports = {};
        for (const [k, v] of Object.entries(inst.exports)) exports[k] = typeof v === 'function' ? (...a) => (wasmCalls++, v(...a)) : v;
        return { exports };
      };
      function work(m) {
        const total = new m.GCounter('sum');
        for (let i = 0; i < 200; i++) { const c = new m.GCounter('r' + i); c.increment(i + 1); total.merge(c); }
        const again = m.GCounter.decode(total.encode(), 'again');
        again.increment(5);
        total.merge(again);
        const s = new m.ORSet('a'), t = new m.ORSet('b');
        for (let i = 0; i < 400; i++) { s.add('k' + i); t.add('j' + i); }
        s.merge(t);
        return { value: total.value(), size: s.size, counter: Buffer.from(total.encode()).toString('base64'), set: Buffer.from(s.encode()).toString('base64') };
      }
      const main = await import('async-state-sync');
      const slim = await import('async-state-sync/slim');
      wasmCalls = 0;
      const viaMain = work(main);
      const mainCalls = wasmCalls;
      const js = await import('async-state-sync/js');
      const before = { main: main.backend(), slim: slim.backend(), js: js.backend() };
      wasmCalls = 0;
      const viaJs = work(js);
      const jsCalls = wasmCalls;
      js.useBackend('js');
      let refused = false;
      try { js.useBackend('wasm'); } catch (e) { refused = e.name === 'NotInitializedError'; }
      console.log(JSON.stringify({ before, after: { main: main.backend(), js: js.backend() }, mainCalls, jsCalls, refused,
        sameState: JSON.stringify(viaMain) === JSON.stringify(viaJs), value: viaJs.value, size: viaJs.size }));
    `);
    const r = JSON.parse(out);
    // slim shares the main entry's kernels on purpose: a library on ./slim uses the wasm the application loaded
    expect(r.before).toEqual({ main: 'wasm', slim: 'wasm', js: 'js' });
    expect(r.after).toEqual({ main: 'wasm', js: 'js' });
    expect(r.mainCalls).toBeGreaterThan(0); // the workload does reach the wasm on the wasm backend
    expect(r.jsCalls).toBe(0);
    expect(r.refused).toBe(true);
    expect(r.sameState).toBe(true);
    expect(r.value).toBe((200 * 201) / 2 + 5);
    expect(r.size).toBe(800);
  });
  it('the browser entry\'s init() loads its built-in kernels once: a second call compiles nothing and keeps useBackend', () => {
    const r = JSON.parse(
      run(`
        const L = await import('./build/dist/browser.js');
        const before = L.backend();
        let compiles = 0;
        const orig = WebAssembly.compile;
        WebAssembly.compile = (...a) => (compiles++, orig(...a));
        await L.init();
        const first = compiles;
        L.useBackend('js');
        await L.init();
        console.log(JSON.stringify({ before, first, again: compiles - first, backend: L.backend() }));
      `),
    );
    expect(r).toEqual({ before: 'js', first: 1, again: 0, backend: 'js' });
  });
});
