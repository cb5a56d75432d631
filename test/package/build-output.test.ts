/**
 * What scripts/build.mjs leaves in build/dist. The bundles keep the names of what they export: esbuild renames
 * a class whose name collides inside a bundle (`GCounter.name` was `'_GCounter'`) unless built with
 * `keepNames`, and users see those names in error messages, logs and `constructor.name` checks. And
 * build/dist/chunks holds only the chunks of the current build (old ones used to pile up there and in the
 * published package).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
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
