/**
 * `npm run bench -- memory`: resident bytes per VM of a 100,000-VM map replica, value included.
 *
 * Method: each (system, mode) runs in a fresh `node --expose-gc` child. After a full GC the child reads
 * `heapUsed + external` (external counts ArrayBuffers, Buffers and WebAssembly memories at their byteLength, so the
 * linear memory of Loro, Automerge and our wasm kernel is included), builds the replica, lets the input records
 * become garbage, collects again and reads the same figure. Bytes per VM = growth / VMs. RSS growth is shown too
 * (it includes allocator slack and pages the GC has not returned). Modes:
 * - `built`: one replica writes the VMs (in transactions of 1,000), and its pending delta / sync point is taken.
 * - `loaded`: an empty replica merges a full-state encoding made by another process (what a new region holds).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runChild, serveChild } from './lib/child.js';
import { fmtBytes, heldBytes, ratio, table } from './lib/stats.js';
import { mapSystems, OUR_MAP_KEYS } from './lib/systems/index.js';
import type { MapReplica } from './lib/systems/types.js';
import { makeVMs } from './lib/vm.js';
import type { BenchSuite } from './suites.js';

const N = Number(process.env.BENCH_MEMORY_VMS ?? 100_000);
/**
 * Systems that build ~1,000-10,000 nested objects/s here (Automerge, and Loro and ours with a nested map per VM)
 * run at 10,000 VMs to keep the suite within its time budget; bytes per VM hardly depend on the count.
 */
const SMALL_N = Math.min(N, 10_000);
const SCALED_DOWN = new Set(['automerge', 'loro-nested', 'ours-nested']);
/**
 * The js backend holds the very same columns as the wasm one (the kernels only run during merges), so its row
 * would repeat the wasm row; it is left out to save time.
 */
const SKIP = new Set(['ours-js']);
const CHUNK = 1000;
const TARGET = 300;

function countFor(key: string): number {
  return SCALED_DOWN.has(key) ? SMALL_N : N;
}

function buildInto(rep: MapReplica, n: number): void {
  for (let s = 0; s < n; s += CHUNK) rep.write(makeVMs(Math.min(CHUNK, n - s), 5, s));
  rep.mark();
}

interface Measure {
  n: number;
  held: number;
  rss: number;
  heap: number;
  external: number;
}

await serveChild('memory', {
  snapshot(arg) {
    const { key, file } = arg as { key: string; file: string };
    const sys = mapSystems[key]!;
    sys.setup?.();
    const rep = sys.empty(0);
    buildInto(rep, countFor(key));
    writeFileSync(file, rep.encodeState());
    return { ok: true };
  },
  measure(arg): Measure {
    const { key, mode, file } = arg as { key: string; mode: 'built' | 'loaded'; file?: string };
    const sys = mapSystems[key]!;
    const n = countFor(key);
    sys.setup?.();
    // warm the library (first-use allocations, wasm instantiation) before the baseline
    const warm = sys.empty(9);
    warm.write(makeVMs(10, 5, 0));
    warm.mark();
    warm.free();
    let state: Uint8Array | undefined = mode === 'loaded' ? new Uint8Array(readFileSync(file!)) : undefined;
    const before = heldBytes();
    const rep = sys.empty(1);
    if (state) {
      rep.importAll([state]);
      rep.size();
      state = undefined;
    } else {
      buildInto(rep, n);
    }
    const after = heldBytes();
    if (rep.size() !== n) throw new Error(`${key}: replica has ${rep.size()} VMs, want ${n}`);
    // keep the replica alive through the measurement
    (globalThis as { __benchKeep?: unknown }).__benchKeep = rep;
    return { n, held: after.held - before.held, rss: after.rss - before.rss, heap: after.heap - before.heap, external: after.external - before.external };
  },
});

async function run(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'ass-bench-mem-'));
  const rows: { key: string; mode: string; m: Measure }[] = [];
  try {
    for (const key of Object.keys(mapSystems).filter((k) => !SKIP.has(k))) {
      rows.push({ key, mode: 'built', m: await runChild<Measure>('memory', 'measure', { key, mode: 'built' }) });
      const file = join(dir, `${key}.bin`);
      await runChild('memory', 'snapshot', { key, file });
      rows.push({ key, mode: 'loaded', m: await runChild<Measure>('memory', 'measure', { key, mode: 'loaded', file }) });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const per = (m: Measure) => m.held / m.n;
  const refBuilt = rows.find((r) => r.key === OUR_MAP_KEYS[0] && r.mode === 'built');
  const body = rows.map((r) => {
    const sys = mapSystems[r.key]!;
    const ours = OUR_MAP_KEYS.includes(r.key);
    const ref = rows.find((x) => x.key === OUR_MAP_KEYS[0] && x.mode === r.mode) ?? refBuilt;
    return [
      ours ? `**${sys.name}**` : sys.name,
      sys.variant,
      r.mode,
      r.m.n.toLocaleString('en-US'),
      `**${fmtBytes(per(r.m))}**`,
      ref ? ratio(per(r.m), per(ref.m)) : 'n/a',
      fmtBytes(r.m.heap / r.m.n),
      fmtBytes(r.m.external / r.m.n),
      fmtBytes(r.m.rss / r.m.n),
    ];
  });
  const goal = OUR_MAP_KEYS.filter((k) => rows.some((r) => r.key === k)).map((k) => {
    const b = rows.filter((r) => r.key === k);
    const what = k === OUR_MAP_KEYS[0] ? '' : ' (other storage shape, for reference)';
    return `- ${mapSystems[k]!.name}${what}: ${b.map((r) => `${r.mode} ${fmtBytes(per(r.m))}/VM`).join(', ')} vs target <= ${TARGET} B/VM: **${b.every((r) => per(r.m) <= TARGET) ? 'MET' : 'MISSED'}**`;
  });
  return `Bytes per VM held by one replica of a ${N.toLocaleString('en-US')}-VM map (VM record included). Method: fresh child
process per row; \`heapUsed + external\` growth after a full GC (external includes ArrayBuffers and WebAssembly memories,
so wasm linear memory is counted at its byteLength; a wasm memory never shrinks, so that column shows the library's
high-water mark), divided by the number of VMs. Input records are generated in chunks and dropped, so a library that
keeps the caller's objects (Yjs keeps them as values) pays for them. RSS growth per VM is shown for reference.
Automerge and the nested-map variants run at ${SMALL_N.toLocaleString('en-US')} VMs. Loro decodes lazily: a loaded
snapshot stays in its compact form until read, which is why its loaded nested variant is small. Our js backend holds
the same columns as the wasm one (kernels only run during merges) and is not repeated here. "vs us" = theirs / ours (above 1: we use less), same mode.

${table(['system', 'values', 'mode', 'VMs', '**bytes / VM**', 'vs us', 'JS heap / VM', 'external / VM', 'RSS / VM'], body)}

${goal.join('\n')}
`;
}

export const suite: BenchSuite = { name: 'memory', title: 'Memory per VM (100,000-VM map replica)', run };
