/**
 * Tiny, obviously-correct reference models of the kernel semantics (loops, Sets, Maps, BigInt), used by the
 * kernel tests to check what both backends compute, independently of how they compute it.
 */
import type { CausalContextColumns, DotColumns, LwwColumns, Ord } from '../../src/kernel/types.js';

const get = (a: ArrayLike<number>, i: number): number => (i < a.length ? a[i] : 0);

export function refCompare(a: ArrayLike<number>, b: ArrayLike<number>): Ord {
  let allLe = true, allGe = true;
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (get(a, i) > get(b, i)) allLe = false;
    if (get(a, i) < get(b, i)) allGe = false;
  }
  if (allLe && allGe) return 0;
  if (allLe) return 1;
  if (allGe) return 2;
  return 3;
}

export function refDominates(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  for (let i = 0; i < Math.max(a.length, b.length); i++) if (!(get(a, i) >= get(b, i))) return false;
  return true;
}

export function refMerge(a: ArrayLike<number>, b: ArrayLike<number>, n: number): number[] {
  return Array.from({ length: n }, (_, i) => Math.max(get(a, i), get(b, i)));
}

export function refMergeMany(rows: number[][], n: number): number[] {
  return Array.from({ length: n }, (_, i) => Math.max(0, ...rows.map((r) => get(r, i))));
}

// --- dots --------------------------------------------------------------------------------------------

export interface Dot {
  key: bigint;
  replica: number;
  counter: number;
}

export function dotId(d: Dot): string {
  return `${d.key}/${d.replica}/${d.counter}`;
}

export function dotsOf(c: DotColumns): Dot[] {
  const out: Dot[] = [];
  for (let i = 0; i < c.n; i++) {
    out.push({ key: (BigInt(c.keys[2 * i + 1]) << 32n) | BigInt(c.keys[2 * i]), replica: c.replicas[i], counter: c.counters[i] });
  }
  return out;
}

export function refSeen(ctx: CausalContextColumns, r: number, c: number): boolean {
  if (c <= get(ctx.vv, r)) return true;
  const cloud = new Set<string>();
  for (let i = 0; i < ctx.cloudN; i++) cloud.add(`${ctx.cloudReplicas[i]}/${ctx.cloudCounters[i]}`);
  return cloud.has(`${r}/${c}`);
}

/** Surviving dots as a Set of ids: in both, or in one and unseen by the other's context. */
export function refDotMerge(a: DotColumns, actx: CausalContextColumns, b: DotColumns, bctx: CausalContextColumns): Set<string> {
  const A = new Set(dotsOf(a).map(dotId));
  const B = new Set(dotsOf(b).map(dotId));
  const out = new Set<string>();
  for (const d of dotsOf(a)) if (B.has(dotId(d)) || !refSeen(bctx, d.replica, d.counter)) out.add(dotId(d));
  for (const d of dotsOf(b)) if (A.has(dotId(d)) || !refSeen(actx, d.replica, d.counter)) out.add(dotId(d));
  return out;
}

export function compareDots(x: Dot, y: Dot): number {
  if (x.key !== y.key) return x.key < y.key ? -1 : 1;
  if (x.replica !== y.replica) return x.replica - y.replica;
  return x.counter - y.counter;
}

// --- LWW ---------------------------------------------------------------------------------------------

/** key -> ['a' | 'b', index] of the winner; entries with larger (ts, rank) win, A on a full tie. */
export function refLww(a: LwwColumns, b: LwwColumns): Map<bigint, ['a' | 'b', number]> {
  const key = (c: LwwColumns, i: number) => (BigInt(c.keys[2 * i + 1]) << 32n) | BigInt(c.keys[2 * i]);
  const m = new Map<bigint, ['a' | 'b', number]>();
  for (let i = 0; i < a.n; i++) m.set(key(a, i), ['a', i]);
  for (let j = 0; j < b.n; j++) {
    const k = key(b, j);
    const cur = m.get(k);
    if (cur === undefined) m.set(k, ['b', j]);
    else {
      const i = cur[1];
      const bWins = b.ts[j] > a.ts[i] || (b.ts[j] === a.ts[i] && b.ranks[j] > a.ranks[i]);
      if (bWins) m.set(k, ['b', j]);
    }
  }
  return m;
}

// --- xxHash64 in BigInt ----------------------------------------------------------------------------

const M = (1n << 64n) - 1n;
const P1 = 0x9e3779b185ebca87n, P2 = 0xc2b2ae3d27d4eb4fn, P3 = 0x165667b19e3779f9n;
const P4 = 0x85ebca77c2b2ae63n, P5 = 0x27d4eb2f165667c5n;
const rotl = (x: bigint, r: bigint) => ((x << r) | (x >> (64n - r))) & M;
const round = (acc: bigint, lane: bigint) => (rotl((acc + lane * P2) & M, 31n) * P1) & M;
const lane64 = (b: Uint8Array, p: number) => {
  let x = 0n;
  for (let i = 7; i >= 0; i--) x = (x << 8n) | BigInt(b[p + i]);
  return x;
};
const lane32 = (b: Uint8Array, p: number) => BigInt(b[p] | (b[p + 1] << 8) | (b[p + 2] << 16)) + (BigInt(b[p + 3]) << 24n);

export function mix64(h: bigint): bigint {
  h ^= h >> 33n;
  h = (h * P2) & M;
  h ^= h >> 29n;
  h = (h * P3) & M;
  h ^= h >> 32n;
  return h;
}

/** The xxHash64 specification, transcribed. */
export function refXxh64(b: Uint8Array, seed = 0n): bigint {
  const len = b.length;
  let p = 0;
  let h: bigint;
  if (len >= 32) {
    let v = [(seed + P1 + P2) & M, (seed + P2) & M, seed, (seed - P1) & M];
    for (; p + 32 <= len; p += 32) v = v.map((acc, i) => round(acc, lane64(b, p + 8 * i)));
    h = (rotl(v[0], 1n) + rotl(v[1], 7n) + rotl(v[2], 12n) + rotl(v[3], 18n)) & M;
    for (const x of v) h = (((h ^ round(0n, x)) * P1) + P4) & M;
  } else h = (seed + P5) & M;
  h = (h + BigInt(len)) & M;
  for (; p + 8 <= len; p += 8) h = ((rotl(h ^ round(0n, lane64(b, p)), 27n) * P1) + P4) & M;
  if (p + 4 <= len) {
    h = ((rotl(h ^ ((lane32(b, p) * P1) & M), 23n) * P2) + P3) & M;
    p += 4;
  }
  for (; p < len; p++) h = (rotl(h ^ ((BigInt(b[p]) * P5) & M), 11n) * P1) & M;
  return mix64(h);
}

/** The hash tree by its definition in src/kernel/types.ts. */
export function refHashTree(keys: bigint[], entries: bigint[], depth: number): bigint[] {
  const leaves = 1 << depth;
  const tree: bigint[] = new Array(2 * leaves).fill(0n);
  for (let e = 0; e < keys.length; e++) {
    const bucket = depth === 0 ? 0 : Number(keys[e] >> BigInt(64 - depth));
    tree[leaves + bucket] = (tree[leaves + bucket] + mix64(keys[e] ^ rotl(entries[e], 29n))) & M;
  }
  for (let node = leaves - 1; node >= 1; node--) {
    const l = tree[2 * node], r = tree[2 * node + 1];
    if (l === 0n && r === 0n) continue;
    const bytes = new Uint8Array(16);
    const dv = new DataView(bytes.buffer);
    dv.setBigUint64(0, l, true);
    dv.setBigUint64(8, r, true);
    tree[node] = refXxh64(bytes);
  }
  return tree;
}
