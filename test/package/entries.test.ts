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
});
