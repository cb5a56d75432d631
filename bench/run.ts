/**
 * `npm run bench [-- name ...]`: runs the benchmark suites and rewrites bench/RESULTS.md.
 * Each suite is a module exporting `name`, `title` and `run(): Promise<string>` (a markdown section).
 * With names given, only those suites run and only their sections are replaced in RESULTS.md.
 */
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { suites } from './suites.js';

// bundled to build/bench.js: RESULTS.md lives in bench/
const file = new URL('../bench/RESULTS.md', import.meta.url);
const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const selected = wanted.length ? suites.filter((s) => wanted.includes(s.name)) : suites;
if (wanted.length && selected.length !== wanted.length) {
  console.error(`unknown suite; available: ${suites.map((s) => s.name).join(', ')}`);
  process.exit(2);
}

const previous = existsSync(file) ? readFileSync(file, 'utf8') : '';
const sections = new Map<string, string>();
for (const m of previous.matchAll(/<!-- suite:(\S+) -->\n([\s\S]*?)<!-- \/suite:\1 -->/g)) sections.set(m[1], m[2]);

for (const s of selected) {
  console.log(`\n=== ${s.title} (${s.name}) ===`);
  const t0 = performance.now();
  const md = await s.run();
  const secs = ((performance.now() - t0) / 1000).toFixed(1);
  console.log(md);
  sections.set(s.name, `## ${s.title}\n\n_Ran ${new Date().toISOString()} in ${secs} s: \`npm run bench -- ${s.name}\`_\n\n${md.trim()}\n\n`);
}

const header = `# Benchmark results

Produced by \`npm run bench\` (all suites) or \`npm run bench -- <suite>\` (one suite; the other sections are
kept from their last run). Machine: ${cpus().length} x ${cpus()[0]?.model ?? 'unknown CPU'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB,
Node ${process.version}. The machine is shared and noisy: compare ratios measured side by side in one run, not
absolute figures across runs. Medians unless stated.

`;
let body = header;
for (const s of suites) {
  const sec = sections.get(s.name);
  if (sec) body += `<!-- suite:${s.name} -->\n${sec}<!-- /suite:${s.name} -->\n\n`;
}
writeFileSync(file, body.trimEnd() + '\n');
console.log(`\nwrote ${file.pathname}`);
