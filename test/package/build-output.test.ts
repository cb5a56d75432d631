/**
 * What scripts/build.mjs leaves in build/dist. The bundles keep the names of what they export: esbuild renames
 * a class whose name collides inside a bundle (`GCounter.name` was `'_GCounter'`) unless built with
 * `keepNames`, and users see those names in error messages, logs and `constructor.name` checks. And
 * build/dist/chunks holds only the chunks of the current build (old ones used to pile up there and in the
 * published package).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));

function run(code: string): string {
  if (!existsSync(`${root}/build/dist/node.js`)) throw new Error('build/dist/node.js missing: run npm run build');
  return execFileSync(process.execPath, ['--input-type=module', '-e', code], { cwd: root, encoding: 'utf8', timeout: 60_000 }).trim();
}

describe('built package names', () => {
  it('every exported class and function of every entry has its own name', () => {
    const out = run(`
      const entries = {
        main: await import('async-state-sync'),
        slim: await import('async-state-sync/slim'),
        js: await import('async-state-sync/js'),
        browserBundle: await import('./build/dist/async-state-sync.browser.js'),
      };
      const result = {};
      for (const [entry, m] of Object.entries(entries)) {
        const fns = Object.entries(m).filter(([, v]) => typeof v === 'function');
        result[entry] = { count: fns.length, wrong: fns.filter(([k, v]) => v.name !== k).map(([k, v]) => k + ' is named ' + JSON.stringify(v.name)) };
      }
      const { GCounter, ORMap, NovaCronIntegration } = entries.main;
      result.instances = [new GCounter('a').constructor.name, new ORMap('a').constructor.name, NovaCronIntegration.name];
      console.log(JSON.stringify(result));
    `);
    const r = JSON.parse(out);
    for (const entry of ['main', 'slim', 'js', 'browserBundle']) {
      expect(r[entry].count, entry).toBeGreaterThan(30);
      expect(r[entry].wrong, entry).toEqual([]);
    }
    expect(r.instances).toEqual(['GCounter', 'ORMap', 'NovaCronIntegration']);
  });

  it('build/dist/chunks holds only chunks the entries of this build import', () => {
    const dist = `${root}/build/dist`;
    const chunks = readdirSync(`${dist}/chunks`).filter((f) => f.endsWith('.js'));
    expect(chunks.length).toBeGreaterThan(0);
    const text = ['node.js', 'browser.js', 'slim.js'].map((f) => readFileSync(`${dist}/${f}`, 'utf8')).join('\n') + chunks.map((f) => readFileSync(`${dist}/chunks/${f}`, 'utf8')).join('\n');
    const imported = new Set([...text.matchAll(/["'](?:\.\/|\.\.\/)?(?:chunks\/)?(chunk-[A-Z0-9]+\.js)["']/g)].map((m) => m[1]));
    expect(chunks.filter((f) => !imported.has(f))).toEqual([]);
  });
});

describe('built package types', () => {
  it('the browser entry\'s types compile in a project without @types/node (strict, skipLibCheck off)', () => {
    if (!existsSync(`${root}/build/types/browser.d.ts`)) throw new Error('build/types missing: run npm run build');
    const dir = mkdtempSync(join(tmpdir(), 'ass-types-'));
    try {
      writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({
        compilerOptions: { strict: true, noEmit: true, types: [], lib: ['ES2022', 'DOM'], skipLibCheck: false, module: 'ESNext', moduleResolution: 'Bundler', target: 'ES2022' },
        files: ['consumer.ts'],
      }));
      const types = JSON.stringify(`${root}/build/types/browser.js`);
      writeFileSync(join(dir, 'consumer.ts'), [
        `import { ORMap, WebSocketTransport, SyncEngine, NovaCronIntegration, MemoryNetwork, init, type SharedHttpServer } from ${types};`,
        `const m = new ORMap<unknown>('a');`,
        `m.setLWW('k', { status: 'running' });`,
        `const net = new MemoryNetwork({ seed: 1 });`,
        `const e = new SyncEngine({ replicaId: 'a', transport: net.transport('a') });`,
        `const t = new WebSocketTransport({ host: '127.0.0.1', port: 0 });`,
        `const s: SharedHttpServer | undefined = undefined;`,
        `void [e, t, s, NovaCronIntegration, init];`,
        // times on write may be a Date or an ISO string; reads give epoch ms
        `export async function times(n: NovaCronIntegration): Promise<number | undefined> {`,
        `  await n.updateVMState('vm-1', { id: 'vm-1', status: 'running', createdAt: new Date(), updatedAt: '2026-05-01T12:00:00Z' });`,
        `  await n.updateNodeStatus({ id: 'a', region: 'r', status: 'up', lastHeartbeat: new Date() });`,
        `  await n.migrateFrom({ vms: [{ id: 'vm-2', status: 'stopped', createdAt: 5 }], nodes: { b: { id: 'b', region: 'r', status: 'up', lastHeartbeat: '2026-05-01T12:00:00+02:00' } } });`,
        `  return n.getVMState('vm-1')?.createdAt;`,
        `}`,
      ].join('\n'));
      let out = '';
      try {
        execFileSync(process.execPath, [`${root}/node_modules/typescript/bin/tsc`, '-p', dir], { encoding: 'utf8', timeout: 120_000 });
      } catch (err) {
        out = String((err as { stdout?: string }).stdout ?? err);
      }
      expect(out).toBe('');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
