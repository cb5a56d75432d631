/**
 * Kernel benchmark (`npm run bench -- kernels`): every Kernel method at 16, 1,000 and 100,000 entries, the
 * pure-TS backend against the wasm backend in the same run, on the same inputs.
 *
 * Three columns per row:
 * - js: `jsKernel` on ordinary typed arrays;
 * - wasm: the wasm kernel called from ordinary typed arrays, i.e. including the copy of every input into
 *   linear memory and of the output back (what a caller pays today);
 * - wasm resident: the same wasm export with inputs and outputs already in linear memory (`residentF64()` and
 *   friends of WasmKernel), i.e. no copy at all: the shape the merge hot path takes once state lives in wasm.
 *
 * Sizes: "entries" are clock slots (vcCompare, vcMerge, vcDominates, counterMerge), clocks of 8 slots
 * (vcCompareMany, vcMergeMany), dots per side (dotMerge), entries per side (lwwMerge), bytes (xxhash64),
 * 32-byte ranges (xxhash64Many), (key, entry) pairs (hashTree, depth log2(n) - 2 clamped to 2..12), elements of
 * a text typed by 5 replicas (rgaOrder).
 * Small sizes repeat the call inside one sample so that timer overhead does not dominate.
 */
import { Bench } from 'tinybench';
import { jsKernel } from '../src/kernel/js.js';
import { loadWasmSync } from '../src/kernel/node-load.js';
import type { CausalContextColumns, DotColumns, Kernel, LwwColumns } from '../src/kernel/types.js';
import { createWasmKernel, kernelImports, type WasmKernel } from '../src/kernel/wasm.js';
import type { BenchSuite } from './suites.js';

const SIZES = [16, 1_000, 100_000];
const DIM = 8;

function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Allocates typed arrays either on the JS heap or resident in a wasm kernel's linear memory. */
interface Alloc {
  f64(n: number): Float64Array;
  u32(n: number): Uint32Array;
  i32(n: number): Int32Array;
  u8(n: number): Uint8Array;
}
const heap: Alloc = {
  f64: (n) => new Float64Array(n),
  u32: (n) => new Uint32Array(n),
  i32: (n) => new Int32Array(n),
  u8: (n) => new Uint8Array(n),
};
function residentAlloc(k: WasmKernel): Alloc {
  return { f64: (n) => k.residentF64(n), u32: (n) => k.residentU32(n), i32: (n) => k.residentI32(n), u8: (n) => k.residentU8(n) };
}

/** A benchmark case: builds its inputs with an allocator, returns the operation on a kernel. */
type Case = (n: number, al: Alloc, seed: number) => (k: Kernel) => unknown;

function fill(a: Float64Array, f: (i: number) => number): Float64Array {
  for (let i = 0; i < a.length; i++) a[i] = f(i);
  return a;
}

function sortedKeys(n: number, rnd: () => number, al: Alloc): Uint32Array {
  // distinct increasing 64-bit keys: hi = i (spread), lo random
  const k = al.u32(2 * n);
  for (let i = 0; i < n; i++) {
    k[2 * i] = (rnd() * 0x100000000) >>> 0;
    k[2 * i + 1] = Math.floor((i * 0xffffffff) / Math.max(1, n));
  }
  return k;
}

function dots(n: number, rnd: () => number, al: Alloc, shared: Uint32Array, replicaBias: number): DotColumns {
  // half the keys shared with the other side (same dot), half own keys
  const keys = al.u32(2 * n), replicas = al.u32(n), counters = al.f64(n);
  for (let i = 0; i < n; i++) {
    keys[2 * i] = shared[2 * i] + (i % 2 === 0 ? 0 : replicaBias);
    keys[2 * i + 1] = shared[2 * i + 1];
    replicas[i] = i % 2 === 0 ? i % 8 : (i + replicaBias) % 8;
    counters[i] = 1 + Math.floor(rnd() * 1000);
  }
  return { keys, replicas, counters, n };
}

function context(al: Alloc, rnd: () => number): CausalContextColumns {
  const vv = fill(al.f64(8), () => Math.floor(rnd() * 1000));
  const cloudReplicas = al.u32(16), cloudCounters = al.f64(16);
  for (let i = 0; i < 16; i++) {
    cloudReplicas[i] = i >> 1;
    cloudCounters[i] = 1000 + 2 * i + (i & 1);
  }
  return { vv, cloudReplicas, cloudCounters, cloudN: 16 };
}

function lww(n: number, rnd: () => number, al: Alloc, shared: Uint32Array, shift: number): LwwColumns {
  const keys = al.u32(2 * n), ts = al.f64(n), ranks = al.u32(n);
  for (let i = 0; i < n; i++) {
    keys[2 * i] = shared[2 * i] + (i % 2 === 0 ? 0 : shift);
    keys[2 * i + 1] = shared[2 * i + 1];
    ts[i] = 1_700_000_000_000 * 2048 + Math.floor(rnd() * 100);
    ranks[i] = shift;
  }
  return { keys, ts, ranks, n };
}

const CASES: Record<Exclude<keyof Kernel, 'name'>, Case> = {
  vcCompare(n, al, seed) {
    const rnd = prng(seed);
    const b = fill(al.f64(n), () => Math.floor(rnd() * 1e6));
    const a = fill(al.f64(n), (i) => b[i]);
    a[n - 1] += 1; // a after b: the whole clock is scanned
    return (k) => k.vcCompare(a, b);
  },
  vcMerge(n, al, seed) {
    const rnd = prng(seed);
    const a = fill(al.f64(n), () => Math.floor(rnd() * 1e6)), b = fill(al.f64(n), () => Math.floor(rnd() * 1e6));
    const out = al.f64(n);
    return (k) => k.vcMerge(a, b, out);
  },
  vcDominates(n, al, seed) {
    const rnd = prng(seed);
    const b = fill(al.f64(n), () => Math.floor(rnd() * 1e6));
    const a = fill(al.f64(n), (i) => b[i] + (i & 1));
    return (k) => k.vcDominates(a, b);
  },
  vcCompareMany(n, al, seed) {
    const rnd = prng(seed);
    const one = fill(al.f64(DIM), () => 500);
    const many = fill(al.f64(n * DIM), () => Math.floor(rnd() * 1000));
    const out = al.u8(n);
    return (k) => k.vcCompareMany(one, many, DIM, out);
  },
  vcMergeMany(n, al, seed) {
    const rnd = prng(seed);
    const many = fill(al.f64(n * DIM), () => Math.floor(rnd() * 1e6));
    const out = al.f64(DIM);
    return (k) => k.vcMergeMany(many, DIM, out);
  },
  counterMerge(n, al, seed) {
    const rnd = prng(seed);
    const a = fill(al.f64(n), () => Math.floor(rnd() * 1e6)), b = fill(al.f64(n), () => Math.floor(rnd() * 1e6));
    const out = al.f64(n);
    return (k) => k.counterMerge(a, b, out);
  },
  dotMerge(n, al, seed) {
    const rnd = prng(seed);
    const shared = sortedKeys(n, rnd, heap);
    const a = dots(n, rnd, al, shared, 0), b = dots(n, rnd, al, shared, 1);
    const actx = context(al, rnd), bctx = context(al, rnd);
    const out = al.i32(2 * n);
    return (k) => k.dotMerge(a, actx, b, bctx, out);
  },
  lwwMerge(n, al, seed) {
    const rnd = prng(seed);
    const shared = sortedKeys(n, rnd, heap);
    const a = lww(n, rnd, al, shared, 0), b = lww(n, rnd, al, shared, 1);
    const out = al.i32(2 * n);
    return (k) => k.lwwMerge(a, b, out);
  },
  xxhash64(n, al, seed) {
    const rnd = prng(seed);
    const bytes = al.u8(n);
    for (let i = 0; i < n; i++) bytes[i] = (rnd() * 256) | 0;
    const out = al.u32(2);
    return (k) => k.xxhash64(bytes, 0, n, 0, out);
  },
  xxhash64Many(n, al, seed) {
    const rnd = prng(seed);
    const bytes = al.u8(32 * n);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (rnd() * 256) | 0;
    const offsets = al.u32(n), lengths = al.u32(n);
    for (let i = 0; i < n; i++) {
      offsets[i] = 32 * i;
      lengths[i] = 32;
    }
    const out = al.u32(2 * n);
    return (k) => k.xxhash64Many(bytes, offsets, lengths, 0, out);
  },
  hashTree(n, al, seed) {
    const rnd = prng(seed);
    const keys = al.u32(2 * n), hashes = al.u32(2 * n);
    for (let i = 0; i < 2 * n; i++) {
      keys[i] = (rnd() * 0x100000000) >>> 0;
      hashes[i] = (rnd() * 0x100000000) >>> 0;
    }
    const depth = Math.min(12, Math.max(2, Math.round(Math.log2(n)) - 2));
    const out = al.u32(2 ** (depth + 2));
    return (k) => k.hashTree(keys, hashes, n, depth, out);
  },
  rgaOrder(n, al, seed) {
    // a text typed by 5 replicas: mostly runs (each element after the previous one), a fifth of the elements
    // inserted after a random earlier one or at the start; seq above the reference's, counters per replica
    const rnd = prng(seed);
    const parent = al.i32(n), rank = al.u32(n);
    const seq = al.f64(n), counter = al.f64(n);
    for (let i = 0; i < n; i++) {
      const p = i === 0 || rnd() < 0.02 ? -1 : rnd() < 0.8 ? i - 1 : Math.floor(rnd() * i);
      parent[i] = p;
      seq[i] = (p < 0 ? 0 : seq[p]) + 1 + Math.floor(rnd() * 3);
      rank[i] = Math.floor(rnd() * 5);
      counter[i] = i + 1;
    }
    const out = al.i32(n);
    return (k) => k.rgaOrder(parent, seq, rank, counter, n, out);
  },
};

function fmt(x: number): string {
  if (x >= 1e6) return `${(x / 1e6).toFixed(2)} M`;
  if (x >= 1e3) return `${(x / 1e3).toFixed(1)} k`;
  return x.toFixed(1);
}

export interface KernelRow {
  kernel: string;
  size: number;
  js: number;
  wasm: number;
  resident: number;
}

/** Runs every case; returns ops/s per (kernel, size, variant). */
export async function measure(timeMs = 250, sizes = SIZES, only?: string[]): Promise<KernelRow[]> {
  const bytes = loadWasmSync();
  if (bytes === undefined) throw new Error('build/release.wasm missing: run `node scripts/build.mjs`');
  const module = new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>);
  const copying = createWasmKernel(new WebAssembly.Instance(module, kernelImports));
  const resident = createWasmKernel(new WebAssembly.Instance(module, kernelImports));
  resident.reserve(64 << 20); // every resident input fits: no growth, no detached views during the run
  const rows: KernelRow[] = [];
  for (const [name, make] of Object.entries(CASES)) {
    if (only && !only.includes(name)) continue;
    for (const size of sizes) {
      const reps = Math.max(1, Math.round(20_000 / size));
      const seed = 0x6b726e6c ^ size;
      const onHeap = make(size, heap, seed);
      resident.releaseResident();
      const inWasm = make(size, residentAlloc(resident), seed);
      const bench = new Bench({ time: timeMs, warmupTime: 60, retainSamples: false });
      const variants: [string, Kernel, (k: Kernel) => unknown][] = [
        ['js', jsKernel, onHeap],
        ['wasm', copying, onHeap],
        ['resident', resident, inWasm],
      ];
      let sink = 0;
      for (const [v, k, op] of variants) {
        bench.add(v, () => {
          for (let r = 0; r < reps; r++) sink ^= Number(op(k)) | 0;
        });
      }
      await bench.run();
      const hz = (v: string) => {
        const t = bench.getTask(v)!;
        const res = t.result;
        if (res.state !== 'completed') throw new Error(`${name}/${size}/${v}: ${res.state}`);
        return (reps * 1000) / res.latency.p50;
      };
      rows.push({ kernel: name, size, js: hz('js'), wasm: hz('wasm'), resident: hz('resident') });
      if (sink === 0.5) console.log('unreachable');
      process.stdout.write('.');
    }
  }
  process.stdout.write('\n');
  return rows;
}

export function table(rows: KernelRow[]): string {
  const lines = [
    '| kernel | entries | js ops/s | wasm ops/s (with copies) | wasm / js | wasm resident ops/s | resident / js |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const r of rows) {
    lines.push(
      `| ${r.kernel} | ${r.size.toLocaleString('en-US')} | ${fmt(r.js)} | ${fmt(r.wasm)} | ${(r.wasm / r.js).toFixed(2)}x | ${fmt(r.resident)} | ${(r.resident / r.js).toFixed(2)}x |`,
    );
  }
  return lines.join('\n');
}

export const suite: BenchSuite = {
  name: 'kernels',
  title: 'Kernels: WASM vs pure TS',
  async run() {
    const rows = await measure(400);
    const large = rows.filter((r) => r.size === SIZES[SIZES.length - 1]);
    const below = large.filter((r) => r.wasm / r.js < 3).map((r) => `${r.kernel} ${(r.wasm / r.js).toFixed(2)}x (resident ${(r.resident / r.js).toFixed(2)}x)`);
    const summary = below.length
      ? `Below the 3x goal at 100,000 entries (with copies) in this run: ${below.join(', ')}.`
      : 'Every kernel reaches 3x at 100,000 entries (with copies) in this run.';
    return `${NOTES_BEFORE}\n\n${table(rows)}\n\n${summary}\n\n${NOTES_AFTER}`;
  },
};

const NOTES_BEFORE = `Every Kernel method at 16, 1,000 and 100,000 entries (see bench/kernels.ts for what an entry is per
kernel), median ops/s. \`js\`: the pure-TS twin (src/kernel/js.ts). \`wasm\`: the AssemblyScript kernels
(build/release.wasm, -O3, SIMD) called from ordinary typed arrays, so every call includes copying the inputs into
linear memory and the output back. \`wasm resident\`: the same export on arrays allocated inside linear memory
(\`WasmKernel.residentF64()\` etc.), no copies.`;

const NOTES_AFTER = `What was tried (A/B timings: best of 20 runs, 100,000 entries per side, same machine):
- SIMD (\`--enable simd\`): clock compare/dominates/merge and counter merge scan two f64 lanes per
  instruction (\`f64x2.lt/gt\` masks, \`f64x2.pmax\`, the same select as js's \`a < b ? b : a\`, so bytes
  match). vcCompareMany went from 1.5x (per-row scalar compare with early exit) to 8-17x with a whole-row SIMD
  branch-free path; vcMergeMany from 2.3-3.3x (load/store of \`out\` per row) to 8-16x with column blocks kept in
  four v128 accumulators while the rows stream past.
- Raw \`load<T>\`/\`store<T>\` on pointers (the equivalent of \`unchecked()\`: no bounds checks), \`@inline\`
  helpers, native u64 for xxHash64 (js emulates 64-bit multiplies with 16-bit limbs: 20-200x).
- Branch-free merge walks: dotMerge with a branch-free walk and fixed-step lower bound in the cloud took 4.6 ms
  against 2.7 ms for the branchy walk (js 6.0 ms); branch-free lwwMerge 1.65 ms against 0.78 ms (js 1.29 ms);
  a branch-free cloud search alone changed nothing. The branchy walks are kept.
- Avoiding copies: \`TypedArray.set\` into linear memory runs at about 34 GB/s here, yet for the scans that do one
  compare per slot (vcCompare, vcDominates) the copy of two 800 KB inputs costs as much as the SIMD scan itself,
  so "with copies" stays near 2-3x while the resident column shows the kernel at 5-7x. Callers that keep
  their state in resident arrays get the right-hand column.
- Batching: one boundary crossing per call; at 16 entries the fixed cost of a wasm call from JS arrays (arena
  placement, copies, about 0.2-0.4 us) loses to js for the clock and merge kernels. So the default kernel
  (src/kernel/auto.ts) routes each call by size: js below the measured crossover (128-512 entries depending on
  the kernel), wasm from it; hashing always wasm.
- The js twin was tuned too (results through a module-level Uint32Array instead of module \`let\`s, which boxed
  every u32 above 2^30: js xxHash64 3x faster), so the ratios compare against a fair js.`;
