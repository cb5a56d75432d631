#!/usr/bin/env node
// The node CLI: `async-state-sync node ...` runs one node, `async-state-sync demo ...` the multi-region demo.
import { existsSync } from 'node:fs';
const cli = new URL('../build/dist/cli.js', import.meta.url);
if (!existsSync(cli)) {
  console.error('async-state-sync: build/dist/cli.js is missing; run `npm run build` first');
  process.exit(1);
}
const { main } = await import(cli.href);
process.exitCode = await main(process.argv.slice(2));
