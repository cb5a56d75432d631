/**
 * The pure-TypeScript kernel backend: the same algorithms as assembly/index.ts over the same typed arrays,
 * giving byte-identical outputs (checked by test/kernel/*.test.ts).
 *
 * Design choices:
 * - 64-bit arithmetic (xxHash64, the hash-tree mix) runs on (hi, lo) u32 pairs held in locals, multiplies are
 *   split into 16-bit limbs plus `Math.imul`, and two-word results come back through a module-level
 *   `Uint32Array` R (R[0] hi, R[1] lo) instead of allocated tuples. Not module `let`s: a u32 above 2^30 is
 *   not a small integer, so every write to a module variable would allocate a heap number (measured 3x
 *   slower). No BigInt anywhere on the hot path.
 * - Maxima use `a < b ? b : a` (the wasm side uses `f64x2.pmax`, the same select), so even -0/+0 or NaN
 *   give the same bytes on both backends.
 * - Vector-clock order is the pair (some slot less, some slot greater) => ORD bits 1 | 2.
 */
import {
  checkContext,
  checkDots,
  checkLww,
  checkMergeMany,
  checkOut,
  checkRange,
  checkRanges,
  checkRga,
  checkRows,
  checkTree,
} from './check.js';
import type { CausalContextColumns, DotColumns, Kernel, LwwColumns, Ord } from './types.js';

// --- 64-bit helpers on (hi, lo) u32 pairs; results in R[0] (hi), R[1] (lo) ------------------------------

/** The (hi, lo) result of the last 64-bit helper; a typed array so writes never box numbers on the heap. */
const R = new Uint32Array(2);

// xxHash64 primes as (hi, lo)
const P1H = 0x9e3779b1, P1L = 0x85ebca87;
const P2H = 0xc2b2ae3d, P2L = 0x27d4eb4f;
const P3H = 0x165667b1, P3L = 0x9e3779f9;
const P4H = 0x85ebca77, P4L = 0xc2b2ae63;
const P5H = 0x27d4eb2f, P5L = 0x165667c5;

/** (ah, al) * (bh, bl) mod 2^64 -> R[0], R[1]. */
function mul(ah: number, al: number, bh: number, bl: number): void {
  const a0 = al & 0xffff, a1 = al >>> 16, b0 = bl & 0xffff, b1 = bl >>> 16;
  const p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0;
  const mid = (p00 >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
  const hi = a1 * b1 + (p01 >>> 16) + (p10 >>> 16) + (mid >>> 16);
  R[1] = ((mid << 16) | (p00 & 0xffff)) >>> 0;
  R[0] = (hi + Math.imul(al, bh) + Math.imul(ah, bl)) >>> 0;
}

/** (ah, al) + (bh, bl) mod 2^64 -> R[0], R[1]. */
function add(ah: number, al: number, bh: number, bl: number): void {
  const lo = al + bl;
  R[1] = lo >>> 0;
  R[0] = (ah + bh + (lo > 0xffffffff ? 1 : 0)) >>> 0;
}

/** rotl64 by r in 1..31 -> R[0], R[1]. */
function rotl(h: number, l: number, r: number): void {
  R[0] = ((h << r) | (l >>> (32 - r))) >>> 0;
  R[1] = ((l << r) | (h >>> (32 - r))) >>> 0;
}

/** acc = rotl(acc + lane * P2, 31) * P1 (the xxHash64 round) -> R[0], R[1]. */
function round(ah: number, al: number, ih: number, il: number): void {
  mul(ih, il, P2H, P2L);
  add(ah, al, R[0], R[1]);
  rotl(R[0], R[1], 31);
  mul(R[0], R[1], P1H, P1L);
}

/** h = (h ^ round(0, v)) * P1 + P4 -> R[0], R[1]. */
function mergeRound(hh: number, hl: number, vh: number, vl: number): void {
  round(0, 0, vh, vl);
  mul((hh ^ R[0]) >>> 0, (hl ^ R[1]) >>> 0, P1H, P1L);
  add(R[0], R[1], P4H, P4L);
}

/** xxHash64 final avalanche -> R[0], R[1]. */
function avalanche(h: number, l: number): void {
  l = (l ^ (h >>> 1)) >>> 0; // >> 33
  mul(h, l, P2H, P2L);
  h = R[0];
  l = (R[1] ^ ((R[1] >>> 29) | (h << 3))) >>> 0; // >> 29
  h = (h ^ (h >>> 29)) >>> 0;
  mul(h, l, P3H, P3L);
  R[1] = (R[1] ^ R[0]) >>> 0; // >> 32
}

/** xxHash64 of bytes[p, end) with a u32 seed -> R[0], R[1]. */
function xxh64(bytes: Uint8Array, dv: DataView, p: number, end: number, seed: number): void {
  const len = end - p;
  let hh: number, hl: number;
  if (len >= 32) {
    add(0, seed, P1H, P1L);
    add(R[0], R[1], P2H, P2L);
    let v1h = R[0], v1l = R[1];
    add(0, seed, P2H, P2L);
    let v2h = R[0], v2l = R[1];
    let v3h = 0, v3l = seed;
    // seed - P1 = seed + (2^64 - P1)
    add(0, seed, 0x61c8864e, 0x7a143579);
    let v4h = R[0], v4l = R[1];
    const limit = end - 32;
    do {
      round(v1h, v1l, dv.getUint32(p + 4, true), dv.getUint32(p, true));
      v1h = R[0]; v1l = R[1];
      round(v2h, v2l, dv.getUint32(p + 12, true), dv.getUint32(p + 8, true));
      v2h = R[0]; v2l = R[1];
      round(v3h, v3l, dv.getUint32(p + 20, true), dv.getUint32(p + 16, true));
      v3h = R[0]; v3l = R[1];
      round(v4h, v4l, dv.getUint32(p + 28, true), dv.getUint32(p + 24, true));
      v4h = R[0]; v4l = R[1];
      p += 32;
    } while (p <= limit);
    rotl(v1h, v1l, 1);
    hh = R[0]; hl = R[1];
    rotl(v2h, v2l, 7);
    add(hh, hl, R[0], R[1]);
    hh = R[0]; hl = R[1];
    rotl(v3h, v3l, 12);
    add(hh, hl, R[0], R[1]);
    hh = R[0]; hl = R[1];
    rotl(v4h, v4l, 18);
    add(hh, hl, R[0], R[1]);
    mergeRound(R[0], R[1], v1h, v1l);
    mergeRound(R[0], R[1], v2h, v2l);
    mergeRound(R[0], R[1], v3h, v3l);
    mergeRound(R[0], R[1], v4h, v4l);
    hh = R[0]; hl = R[1];
  } else {
    add(0, seed, P5H, P5L);
    hh = R[0]; hl = R[1];
  }
  add(hh, hl, 0, len);
  hh = R[0]; hl = R[1];
  while (p + 8 <= end) {
    round(0, 0, dv.getUint32(p + 4, true), dv.getUint32(p, true));
    rotl((hh ^ R[0]) >>> 0, (hl ^ R[1]) >>> 0, 27);
    mul(R[0], R[1], P1H, P1L);
    add(R[0], R[1], P4H, P4L);
    hh = R[0]; hl = R[1];
    p += 8;
  }
  if (p + 4 <= end) {
    mul(0, dv.getUint32(p, true), P1H, P1L);
    rotl((hh ^ R[0]) >>> 0, (hl ^ R[1]) >>> 0, 23);
    mul(R[0], R[1], P2H, P2L);
    add(R[0], R[1], P3H, P3L);
    hh = R[0]; hl = R[1];
    p += 4;
  }
  while (p < end) {
    mul(0, bytes[p], P5H, P5L);
    rotl((hh ^ R[0]) >>> 0, (hl ^ R[1]) >>> 0, 11);
    mul(R[0], R[1], P1H, P1L);
    hh = R[0]; hl = R[1];
    p++;
  }
  avalanche(hh, hl);
}

/** xxHash64 (seed 0) of the 16 bytes lo(a) hi(a) lo(b) hi(b), the hash-tree inner node -> R[0], R[1]. */
function xxh64Pair(ah: number, al: number, bh: number, bl: number): void {
  // seed 0, len 16: h = P5 + 16
  let hh = P5H, hl = (P5L + 16) >>> 0; // P5L + 16 does not carry
  round(0, 0, ah, al);
  rotl((hh ^ R[0]) >>> 0, (hl ^ R[1]) >>> 0, 27);
  mul(R[0], R[1], P1H, P1L);
  add(R[0], R[1], P4H, P4L);
  hh = R[0]; hl = R[1];
  round(0, 0, bh, bl);
  rotl((hh ^ R[0]) >>> 0, (hl ^ R[1]) >>> 0, 27);
  mul(R[0], R[1], P1H, P1L);
  add(R[0], R[1], P4H, P4L);
  avalanche(R[0], R[1]);
}

function dataView(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

// --- vector clocks -------------------------------------------------------------------------------------

function compare(a: Float64Array, an: number, b: Float64Array, boff: number, bn: number): Ord {
  const n = an < bn ? an : bn;
  let lt = 0, gt = 0;
  for (let i = 0; i < n; i++) {
    const x = a[i], y = b[boff + i];
    if (x < y) lt = 1;
    else if (x > y) gt = 2;
  }
  for (let i = n; i < an; i++) if (a[i] > 0) { gt = 2; break; }
  for (let i = n; i < bn; i++) if (b[boff + i] > 0) { lt = 1; break; }
  return (lt | gt) as Ord;
}

function merge(a: Float64Array, b: Float64Array, out: Float64Array): number {
  const an = a.length, bn = b.length, on = out.length;
  let changed = 0;
  const n = Math.min(an, bn, on);
  for (let i = 0; i < n; i++) {
    const x = a[i], y = b[i];
    if (x < y) { out[i] = y; changed++; } else out[i] = x;
  }
  for (let i = n; i < on; i++) {
    const x = i < an ? a[i] : 0;
    const y = i < bn ? b[i] : 0;
    if (x < y) { out[i] = y; changed++; } else out[i] = x;
  }
  return changed;
}

// --- dot sets ------------------------------------------------------------------------------------------

/** Has the context seen dot (r, c)? vv covers c <= vv[r]; else binary search in the (replica, counter) cloud. */
function seen(ctx: CausalContextColumns, r: number, c: number): boolean {
  const vv = ctx.vv;
  if (r < vv.length && c <= vv[r]) return true;
  const reps = ctx.cloudReplicas, cnts = ctx.cloudCounters;
  let lo = 0, hi = ctx.cloudN;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const mr = reps[mid];
    if (mr < r || (mr === r && cnts[mid] < c)) lo = mid + 1;
    else hi = mid;
  }
  return lo < ctx.cloudN && reps[lo] === r && cnts[lo] === c;
}

// --- the kernel ----------------------------------------------------------------------------------------

export const jsKernel: Kernel = {
  name: 'js',

  vcCompare(a, b) {
    return compare(a, a.length, b, 0, b.length);
  },

  vcMerge(a, b, out) {
    merge(a, b, out);
  },

  vcDominates(a, b) {
    const an = a.length, bn = b.length;
    const n = an < bn ? an : bn;
    for (let i = 0; i < n; i++) if (a[i] < b[i]) return false;
    for (let i = n; i < bn; i++) if (0 < b[i]) return false;
    return true;
  },

  vcCompareMany(one, many, dim, out) {
    const rows = out.length;
    checkRows(many.length, dim, rows);
    const on = one.length;
    for (let r = 0, off = 0; r < rows; r++, off += dim) out[r] = compare(one, on, many, off, dim);
  },

  vcMergeMany(many, dim, out) {
    const rows = checkMergeMany(many.length, dim);
    const on = out.length;
    const m = dim < on ? dim : on;
    out.fill(0);
    for (let r = 0, off = 0; r < rows; r++, off += dim) {
      for (let i = 0; i < m; i++) {
        const x = out[i], y = many[off + i];
        out[i] = x < y ? y : x;
      }
    }
  },

  counterMerge(a, b, out) {
    return merge(a, b, out);
  },

  dotMerge(a: DotColumns, actx: CausalContextColumns, b: DotColumns, bctx: CausalContextColumns, out: Int32Array) {
    checkDots(a, 'a');
    checkDots(b, 'b');
    checkContext(actx, 'actx');
    checkContext(bctx, 'bctx');
    checkOut(out.length, a.n + b.n);
    const ak = a.keys, ar = a.replicas, ac = a.counters, an = a.n;
    const bk = b.keys, br = b.replicas, bc = b.counters, bn = b.n;
    let i = 0, j = 0, k = 0;
    while (i < an && j < bn) {
      // compare (key hi, key lo, replica, counter)
      let d = 0;
      const ah = ak[2 * i + 1], bh = bk[2 * j + 1];
      if (ah !== bh) d = ah < bh ? -1 : 1;
      else {
        const al = ak[2 * i], bl = bk[2 * j];
        if (al !== bl) d = al < bl ? -1 : 1;
        else {
          const ra = ar[i], rb = br[j];
          if (ra !== rb) d = ra < rb ? -1 : 1;
          else {
            const ca = ac[i], cb = bc[j];
            if (ca !== cb) d = ca < cb ? -1 : 1;
          }
        }
      }
      if (d === 0) {
        out[k++] = i++;
        j++;
      } else if (d < 0) {
        if (!seen(bctx, ar[i], ac[i])) out[k++] = i;
        i++;
      } else {
        if (!seen(actx, br[j], bc[j])) out[k++] = -(j + 1);
        j++;
      }
    }
    for (; i < an; i++) if (!seen(bctx, ar[i], ac[i])) out[k++] = i;
    for (; j < bn; j++) if (!seen(actx, br[j], bc[j])) out[k++] = -(j + 1);
    return k;
  },

  lwwMerge(a: LwwColumns, b: LwwColumns, out: Int32Array) {
    checkLww(a, 'a');
    checkLww(b, 'b');
    checkOut(out.length, a.n + b.n);
    const ak = a.keys, at = a.ts, ar = a.ranks, an = a.n;
    const bk = b.keys, bt = b.ts, br = b.ranks, bn = b.n;
    let i = 0, j = 0, k = 0;
    while (i < an && j < bn) {
      const ah = ak[2 * i + 1], bh = bk[2 * j + 1];
      let d: number;
      if (ah !== bh) d = ah < bh ? -1 : 1;
      else {
        const al = ak[2 * i], bl = bk[2 * j];
        d = al === bl ? 0 : al < bl ? -1 : 1;
      }
      if (d < 0) out[k++] = i++;
      else if (d > 0) { out[k++] = -(j + 1); j++; }
      else {
        const ta = at[i], tb = bt[j];
        out[k++] = ta > tb || (ta === tb && ar[i] >= br[j]) ? i : -(j + 1);
        i++;
        j++;
      }
    }
    while (i < an) out[k++] = i++;
    while (j < bn) { out[k++] = -(j + 1); j++; }
    return k;
  },

  xxhash64(bytes, start, end, seed, out) {
    checkRange(bytes.length, start, end);
    checkOut(out.length, 2);
    xxh64(bytes, dataView(bytes), start, end, seed >>> 0);
    out[0] = R[1];
    out[1] = R[0];
  },

  xxhash64Many(bytes, offsets, lengths, seed, out) {
    checkRanges(bytes.length, offsets, lengths, out.length);
    const dv = dataView(bytes);
    const s = seed >>> 0;
    for (let k = 0, n = offsets.length; k < n; k++) {
      const p = offsets[k];
      xxh64(bytes, dv, p, p + lengths[k], s);
      out[2 * k] = R[1];
      out[2 * k + 1] = R[0];
    }
  },

  hashTree(keys, entryHashes, n, depth, out) {
    checkTree(keys.length, entryHashes.length, n, depth, out.length);
    const leaves = 1 << depth;
    out.fill(0, 0, 4 * leaves);
    const shift = 32 - depth;
    for (let e = 0; e < n; e++) {
      const kh = keys[2 * e + 1], kl = keys[2 * e];
      const bucket = depth === 0 ? 0 : kh >>> shift;
      // x = key ^ rotl64(entry, 29)
      rotl(entryHashes[2 * e + 1], entryHashes[2 * e], 29);
      avalanche((kh ^ R[0]) >>> 0, (kl ^ R[1]) >>> 0);
      const w = 2 * (leaves + bucket);
      add(out[w + 1], out[w], R[0], R[1]);
      out[w] = R[1];
      out[w + 1] = R[0];
    }
    for (let node = leaves - 1; node >= 1; node--) {
      const l = 4 * node, r = l + 2;
      const ll = out[l], lh = out[l + 1], rl = out[r], rh = out[r + 1];
      if ((ll | lh | rl | rh) === 0) {
        out[2 * node] = 0;
        out[2 * node + 1] = 0;
      } else {
        xxh64Pair(lh, ll, rh, rl);
        out[2 * node] = R[1];
        out[2 * node + 1] = R[0];
      }
    }
    out[0] = 0;
    out[1] = 0;
  },
  rgaOrder(parent, seq, rank, counter, n, out) {
    checkRga(parent, seq.length, rank.length, counter.length, n, out.length);
    const start = new Uint32Array(n + 3), kids = new Uint32Array(n), stack = new Uint32Array(n), tmp = new Uint32Array(n);
    // group the elements by reference: group g = parent + 1 (0: the start), counted at start[g + 1]
    for (let i = 0; i < n; i++) {
      const p = parent[i];
      if (p >= -1) start[p + 2]++;
    }
    for (let g = 1; g < n + 3; g++) start[g] += start[g - 1];
    // filled backwards, each group keeps its elements in index order; group g ends up at [start[g+1], start[g+2])
    for (let i = n - 1; i >= 0; i--) {
      const p = parent[i];
      if (p < -1) continue;
      kids[--start[p + 2]] = i;
    }
    for (let g = 0; g <= n; g++) {
      const lo = start[g + 1], hi = start[g + 2];
      if (hi - lo > 1) rgaSortGroup(seq, rank, counter, kids, tmp, lo, hi);
    }
    // pre-order walk from the start; an element not stamped after its reference is skipped with its subtree
    let sp = 0, k = 0;
    let lo = start[1], hi = start[2];
    while (hi > lo) stack[sp++] = kids[--hi];
    while (sp > 0) {
      const i = stack[--sp];
      const p = parent[i];
      if (p >= 0 && !(seq[i] > seq[p])) continue;
      out[k++] = i;
      lo = start[i + 2];
      hi = start[i + 3];
      while (hi > lo) stack[sp++] = kids[--hi];
    }
    return k;
  },
};

/** Sibling order: a before b when (seq, rank, counter) is larger. */
function rgaBefore(seq: Float64Array, rank: Uint32Array, ctr: Float64Array, a: number, b: number): boolean {
  const sa = seq[a], sb = seq[b];
  if (sa !== sb) return sa > sb;
  const ra = rank[a], rb = rank[b];
  if (ra !== rb) return ra > rb;
  return ctr[a] > ctr[b];
}

/** Sort kids[lo, hi) (element indices) into sibling order: insertion sort below 16, else bottom-up merge sort. */
function rgaSortGroup(seq: Float64Array, rank: Uint32Array, ctr: Float64Array, kids: Uint32Array, tmp: Uint32Array, lo: number, hi: number): void {
  const len = hi - lo;
  if (len < 16) {
    for (let i = lo + 1; i < hi; i++) {
      const x = kids[i];
      let j = i;
      while (j > lo) {
        const y = kids[j - 1];
        if (!rgaBefore(seq, rank, ctr, x, y)) break;
        kids[j] = y;
        j--;
      }
      kids[j] = x;
    }
    return;
  }
  let src = kids, dst = tmp;
  for (let width = 1; width < len; width *= 2) {
    for (let s = lo; s < hi; s += 2 * width) {
      const mid = Math.min(s + width, hi), end = Math.min(s + 2 * width, hi);
      let i = s, j = mid, k = s;
      while (i < mid && j < end) {
        const x = src[i], y = src[j];
        if (rgaBefore(seq, rank, ctr, y, x)) {
          dst[k++] = y;
          j++;
        } else {
          dst[k++] = x;
          i++;
        }
      }
      while (i < mid) dst[k++] = src[i++];
      while (j < end) dst[k++] = src[j++];
    }
    const t = src;
    src = dst;
    dst = t;
  }
  if (src !== kids) kids.set(src.subarray(lo, hi), lo);
}
