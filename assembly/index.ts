// Hot-path kernels over flat linear memory (see src/kernel/types.ts for the contract and src/kernel/js.ts
// for the TypeScript twin). Every export takes raw pointers (byte offsets) and counts; the host copies inputs
// into a scratch arena above `heapBase()` (or hands over arrays already resident there), calls once per batch,
// and reads the outputs back. Nothing is allocated here: no GC, no leak across calls.
//
// Layouts: f64 slots for counters/clocks/timestamps, u32 for replica indices/ranks/offsets, 64-bit hashes as
// little-endian u64 (= the host's (lo, hi) u32 pairs), u8 for Ord results, i32 for merge picks.
// Maxima use f64x2.pmax / `a < b ? b : a`, the same select as the host twin, so results are byte-identical.
//
// Runtime: asconfig.json builds with `runtime: "stub"` because this module never allocates (no managed
// objects, no GC); the only memory management is the host's arena above `heapBase()` (src/kernel/wasm.ts),
// which restarts at the same offset on every call and grows memory only for a larger batch.

// ---------------------------------------------------------------------------------------------------------
// memory

/** First byte the host may use for its arena (everything below belongs to the module's static data). */
export function heapBase(): usize {
  return __heap_base;
}

// ---------------------------------------------------------------------------------------------------------
// 1. vector clocks

// Ord bits: 1 = a has a slot below b (a before), 2 = a has a slot above b (a after); 3 = concurrent.

// @ts-ignore: decorator
@inline function cmp(a: usize, an: i32, b: usize, bn: i32): i32 {
  const n = min(an, bn);
  let lt = 0;
  let gt = 0;
  let i = 0;
  // blocks of 16 slots with SIMD, leaving early once both directions were seen
  while (i + 16 <= n) {
    let vl = i64x2.splat(0);
    let vg = i64x2.splat(0);
    const end = i + 16;
    for (; i < end; i += 2) {
      const off = <usize>i << 3;
      const x = v128.load(a + off);
      const y = v128.load(b + off);
      vl = v128.or(vl, f64x2.lt(x, y));
      vg = v128.or(vg, f64x2.gt(x, y));
    }
    if (v128.any_true(vl)) lt = 1;
    if (v128.any_true(vg)) gt = 2;
    if ((lt | gt) == 3) return 3;
  }
  for (; i < n; i++) {
    const off = <usize>i << 3;
    const x = load<f64>(a + off);
    const y = load<f64>(b + off);
    lt |= <i32>(x < y);
    gt |= <i32>(x > y) << 1;
  }
  for (i = n; i < an; i++) {
    if (load<f64>(a + (<usize>i << 3)) > 0) {
      gt = 2;
      break;
    }
  }
  for (i = n; i < bn; i++) {
    if (load<f64>(b + (<usize>i << 3)) > 0) {
      lt = 1;
      break;
    }
  }
  return lt | gt;
}

export function vcCompare(a: usize, an: i32, b: usize, bn: i32): i32 {
  return cmp(a, an, b, bn);
}

/** 1 when a[i] >= b[i] for every slot (no slot with a[i] < b[i]). */
export function vcDominates(a: usize, an: i32, b: usize, bn: i32): i32 {
  const n = min(an, bn);
  let i = 0;
  while (i + 16 <= n) {
    let vl = i64x2.splat(0);
    const end = i + 16;
    for (; i < end; i += 2) {
      const off = <usize>i << 3;
      vl = v128.or(vl, f64x2.lt(v128.load(a + off), v128.load(b + off)));
    }
    if (v128.any_true(vl)) return 0;
  }
  for (; i < n; i++) {
    const off = <usize>i << 3;
    if (load<f64>(a + off) < load<f64>(b + off)) return 0;
  }
  for (i = n; i < bn; i++) if (<f64>0 < load<f64>(b + (<usize>i << 3))) return 0;
  return 1;
}

/** out[i] = max(a[i], b[i]) for i < on (missing slots 0); returns the number of slots with a[i] < b[i]. */
// @ts-ignore: decorator
@inline function maxMerge(a: usize, an: i32, b: usize, bn: i32, out: usize, on: i32): i32 {
  const n = min(min(an, bn), on);
  let i = 0;
  let cnt = i64x2.splat(0);
  for (; i + 2 <= n; i += 2) {
    const off = <usize>i << 3;
    const x = v128.load(a + off);
    const y = v128.load(b + off);
    cnt = i64x2.sub(cnt, f64x2.lt(x, y)); // lanes of the mask are -1 where a < b
    v128.store(out + off, f64x2.pmax(x, y));
  }
  let changed = <i32>(i64x2.extract_lane(cnt, 0) + i64x2.extract_lane(cnt, 1));
  for (; i < on; i++) {
    const off = <usize>i << 3;
    const x = i < an ? load<f64>(a + off) : 0;
    const y = i < bn ? load<f64>(b + off) : 0;
    if (x < y) {
      store<f64>(out + off, y);
      changed++;
    } else {
      store<f64>(out + off, x);
    }
  }
  return changed;
}

export function vcMerge(a: usize, an: i32, b: usize, bn: i32, out: usize, on: i32): void {
  maxMerge(a, an, b, bn, out, on);
}

export function counterMerge(a: usize, an: i32, b: usize, bn: i32, out: usize, on: i32): i32 {
  return maxMerge(a, an, b, bn, out, on);
}

/** out[r] (u8) = compare(one, row r) for `rows` rows of width dim. */
export function vcCompareMany(one: usize, on: i32, many: usize, dim: i32, rows: i32, out: usize): void {
  const stride = <usize>dim << 3;
  if (on == dim && dim <= 64) {
    // the common shape (every clock as wide as `one`): whole rows with SIMD, branch-free, no early exit
    const vec = dim & ~1;
    for (let r = 0; r < rows; r++) {
      const row = many + <usize>r * stride;
      let vl = i64x2.splat(0);
      let vg = i64x2.splat(0);
      for (let i = 0; i < vec; i += 2) {
        const off = <usize>i << 3;
        const x = v128.load(one + off);
        const y = v128.load(row + off);
        vl = v128.or(vl, f64x2.lt(x, y));
        vg = v128.or(vg, f64x2.gt(x, y));
      }
      let ord = <i32>v128.any_true(vl) | (<i32>v128.any_true(vg) << 1);
      if (dim & 1) {
        const off = <usize>vec << 3;
        const x = load<f64>(one + off);
        const y = load<f64>(row + off);
        ord |= <i32>(x < y) | (<i32>(x > y) << 1);
      }
      store<u8>(out + <usize>r, <u8>ord);
    }
    return;
  }
  for (let r = 0; r < rows; r++) {
    store<u8>(out + <usize>r, <u8>cmp(one, on, many + <usize>r * stride, dim));
  }
}

/**
 * out[i] = max over rows of many[row * dim + i], 0 for i >= dim. Column blocks of 8 slots are kept in four
 * v128 accumulators while all rows stream past (one pass over `many` per block, no load/store of `out` per
 * row); leftover pairs and a last odd column follow the same way.
 */
export function vcMergeMany(many: usize, dim: i32, rows: i32, out: usize, on: i32): void {
  memory.fill(out, 0, <usize>on << 3);
  const m = min(dim, on);
  const stride = <usize>dim << 3;
  let c = 0;
  for (; c + 8 <= m; c += 8) {
    const col = <usize>c << 3;
    let a0 = f64x2.splat(0);
    let a1 = f64x2.splat(0);
    let a2 = f64x2.splat(0);
    let a3 = f64x2.splat(0);
    let row = many + col;
    for (let r = 0; r < rows; r++, row += stride) {
      a0 = f64x2.pmax(a0, v128.load(row));
      a1 = f64x2.pmax(a1, v128.load(row, 16));
      a2 = f64x2.pmax(a2, v128.load(row, 32));
      a3 = f64x2.pmax(a3, v128.load(row, 48));
    }
    v128.store(out + col, a0);
    v128.store(out + col, a1, 16);
    v128.store(out + col, a2, 32);
    v128.store(out + col, a3, 48);
  }
  for (; c + 2 <= m; c += 2) {
    const col = <usize>c << 3;
    let acc = f64x2.splat(0);
    let row = many + col;
    for (let r = 0; r < rows; r++, row += stride) acc = f64x2.pmax(acc, v128.load(row));
    v128.store(out + col, acc);
  }
  if (c < m) {
    const col = <usize>c << 3;
    let acc: f64 = 0;
    let row = many + col;
    for (let r = 0; r < rows; r++, row += stride) {
      const y = load<f64>(row);
      acc = acc < y ? y : acc;
    }
    store<f64>(out + col, acc);
  }
}

// ---------------------------------------------------------------------------------------------------------
// 3. dot sets

/**
 * Has the context (vv, sorted (replica, counter) cloud) seen dot (r, c)? vv first, then a binary search in the
 * cloud. (A branch-free variant with a fixed-step lower bound and branch-free output writes was measured
 * 1.7x slower on the benchmark's inputs, which V8's and the CPU's branch prediction handle well; so is a
 * branch-free lwwMerge walk, 2x slower.)
 */
// @ts-ignore: decorator
@inline function seen(vv: usize, vvn: i32, cr: usize, cc: usize, cn: i32, r: u32, c: f64): bool {
  if (r < <u32>vvn && c <= load<f64>(vv + (<usize>r << 3))) return true;
  let lo = 0;
  let hi = cn;
  while (lo < hi) {
    const mid = <i32>(<u32>(lo + hi) >>> 1);
    const mr = load<u32>(cr + (<usize>mid << 2));
    if (mr < r || (mr == r && load<f64>(cc + (<usize>mid << 3)) < c)) lo = mid + 1;
    else hi = mid;
  }
  return lo < cn && load<u32>(cr + (<usize>lo << 2)) == r && load<f64>(cc + (<usize>lo << 3)) == c;
}

export function dotMerge(
  ak: usize, ar: usize, ac: usize, an: i32, avv: usize, avvn: i32, acr: usize, acc: usize, acn: i32,
  bk: usize, br: usize, bc: usize, bn: i32, bvv: usize, bvvn: i32, bcr: usize, bcc: usize, bcn: i32,
  out: usize,
): i32 {
  let i = 0;
  let j = 0;
  let k = 0;
  while (i < an && j < bn) {
    const ka = load<u64>(ak + (<usize>i << 3));
    const kb = load<u64>(bk + (<usize>j << 3));
    const ra = load<u32>(ar + (<usize>i << 2));
    const rb = load<u32>(br + (<usize>j << 2));
    const ca = load<f64>(ac + (<usize>i << 3));
    const cb = load<f64>(bc + (<usize>j << 3));
    let d = 0;
    if (ka != kb) d = ka < kb ? -1 : 1;
    else if (ra != rb) d = ra < rb ? -1 : 1;
    else if (ca != cb) d = ca < cb ? -1 : 1;
    if (d == 0) {
      store<i32>(out + (<usize>(k++) << 2), i);
      i++;
      j++;
    } else if (d < 0) {
      if (!seen(bvv, bvvn, bcr, bcc, bcn, ra, ca)) store<i32>(out + (<usize>(k++) << 2), i);
      i++;
    } else {
      if (!seen(avv, avvn, acr, acc, acn, rb, cb)) store<i32>(out + (<usize>(k++) << 2), -(j + 1));
      j++;
    }
  }
  for (; i < an; i++) {
    if (!seen(bvv, bvvn, bcr, bcc, bcn, load<u32>(ar + (<usize>i << 2)), load<f64>(ac + (<usize>i << 3)))) {
      store<i32>(out + (<usize>(k++) << 2), i);
    }
  }
  for (; j < bn; j++) {
    if (!seen(avv, avvn, acr, acc, acn, load<u32>(br + (<usize>j << 2)), load<f64>(bc + (<usize>j << 3)))) {
      store<i32>(out + (<usize>(k++) << 2), -(j + 1));
    }
  }
  return k;
}

export function lwwMerge(
  ak: usize, at: usize, ar: usize, an: i32, bk: usize, bt: usize, br: usize, bn: i32, out: usize,
): i32 {
  let i = 0;
  let j = 0;
  let k = 0;
  while (i < an && j < bn) {
    const ka = load<u64>(ak + (<usize>i << 3));
    const kb = load<u64>(bk + (<usize>j << 3));
    if (ka < kb) {
      store<i32>(out + (<usize>(k++) << 2), i);
      i++;
    } else if (ka > kb) {
      store<i32>(out + (<usize>(k++) << 2), -(j + 1));
      j++;
    } else {
      const ta = load<f64>(at + (<usize>i << 3));
      const tb = load<f64>(bt + (<usize>j << 3));
      const aWins = ta > tb || (ta == tb && load<u32>(ar + (<usize>i << 2)) >= load<u32>(br + (<usize>j << 2)));
      store<i32>(out + (<usize>(k++) << 2), aWins ? i : -(j + 1));
      i++;
      j++;
    }
  }
  for (; i < an; i++) store<i32>(out + (<usize>(k++) << 2), i);
  for (; j < bn; j++) store<i32>(out + (<usize>(k++) << 2), -(j + 1));
  return k;
}

// ---------------------------------------------------------------------------------------------------------
// 5. digests: xxHash64 and the bucketed hash tree

const P1: u64 = 0x9e3779b185ebca87;
const P2: u64 = 0xc2b2ae3d27d4eb4f;
const P3: u64 = 0x165667b19e3779f9;
const P4: u64 = 0x85ebca77c2b2ae63;
const P5: u64 = 0x27d4eb2f165667c5;

// @ts-ignore: decorator
@inline function round(acc: u64, lane: u64): u64 {
  return rotl<u64>(acc + lane * P2, 31) * P1;
}

// @ts-ignore: decorator
@inline function mergeRound(h: u64, v: u64): u64 {
  return (h ^ round(0, v)) * P1 + P4;
}

// @ts-ignore: decorator
@inline function avalanche(h: u64): u64 {
  h ^= h >> 33;
  h *= P2;
  h ^= h >> 29;
  h *= P3;
  h ^= h >> 32;
  return h;
}

function xxh64(p: usize, len: usize, seed: u64): u64 {
  const end = p + len;
  let h: u64;
  if (len >= 32) {
    let v1 = seed + P1 + P2;
    let v2 = seed + P2;
    let v3 = seed;
    let v4 = seed - P1;
    const limit = end - 32;
    do {
      v1 = round(v1, load<u64>(p));
      v2 = round(v2, load<u64>(p, 8));
      v3 = round(v3, load<u64>(p, 16));
      v4 = round(v4, load<u64>(p, 24));
      p += 32;
    } while (p <= limit);
    h = rotl<u64>(v1, 1) + rotl<u64>(v2, 7) + rotl<u64>(v3, 12) + rotl<u64>(v4, 18);
    h = mergeRound(h, v1);
    h = mergeRound(h, v2);
    h = mergeRound(h, v3);
    h = mergeRound(h, v4);
  } else {
    h = seed + P5;
  }
  h += <u64>len;
  while (p + 8 <= end) {
    h = rotl<u64>(h ^ round(0, load<u64>(p)), 27) * P1 + P4;
    p += 8;
  }
  if (p + 4 <= end) {
    h = rotl<u64>(h ^ (<u64>load<u32>(p) * P1), 23) * P2 + P3;
    p += 4;
  }
  while (p < end) {
    h = rotl<u64>(h ^ (<u64>load<u8>(p) * P5), 11) * P1;
    p++;
  }
  return avalanche(h);
}

/** xxHash64 of [p, p + len) with seed; the u64 result is stored at out. */
export function xxhash64(p: usize, len: usize, seed: u32, out: usize): void {
  store<u64>(out, xxh64(p, len, <u64>seed));
}

/** n ranges (u32 offsets relative to bytes, u32 lengths); u64 results at out. */
export function xxhash64Many(bytes: usize, offsets: usize, lengths: usize, n: i32, seed: u32, out: usize): void {
  const s = <u64>seed;
  for (let k = 0; k < n; k++) {
    const o = <usize>k << 2;
    store<u64>(out + (<usize>k << 3), xxh64(bytes + <usize>load<u32>(offsets + o), <usize>load<u32>(lengths + o), s));
  }
}

/** xxHash64 with seed 0 of the 16 bytes (a, b) (both little-endian u64). */
// @ts-ignore: decorator
@inline function xxh64Pair(a: u64, b: u64): u64 {
  let h: u64 = P5 + 16;
  h = rotl<u64>(h ^ round(0, a), 27) * P1 + P4;
  h = rotl<u64>(h ^ round(0, b), 27) * P1 + P4;
  return avalanche(h);
}

/**
 * Hash tree over n (key hash, entry hash) pairs, 2^depth leaves; the heap-ordered tree (node 0 unused and 0)
 * goes to out as 2^(depth+1) u64.
 */
export function hashTree(keys: usize, entries: usize, n: i32, depth: i32, out: usize): void {
  const leaves: usize = <usize>1 << depth;
  memory.fill(out, 0, leaves << 4);
  const leafBase = out + (leaves << 3);
  const shift = <u64>(64 - depth);
  for (let e = 0; e < n; e++) {
    const off = <usize>e << 3;
    const key = load<u64>(keys + off);
    const bucket = depth == 0 ? <usize>0 : <usize>(key >> shift);
    const slot = leafBase + (bucket << 3);
    store<u64>(slot, load<u64>(slot) + avalanche(key ^ rotl<u64>(load<u64>(entries + off), 29)));
  }
  for (let node = leaves - 1; node >= 1; node--) {
    const l = load<u64>(out + (node << 4));
    const r = load<u64>(out + (node << 4), 8);
    store<u64>(out + (node << 3), (l | r) == 0 ? 0 : xxh64Pair(l, r));
  }
}

// ---------------------------------------------------------------------------------------------------------
// 6. RGA sibling ordering: the document order of a reference tree (see src/kernel/types.ts, rgaOrder)

// @ts-ignore: decorator
@inline function rgaBefore(seq: usize, rank: usize, ctr: usize, a: u32, b: u32): bool {
  const sa = load<f64>(seq + (<usize>a << 3)), sb = load<f64>(seq + (<usize>b << 3));
  if (sa != sb) return sa > sb;
  const ra = load<u32>(rank + (<usize>a << 2)), rb = load<u32>(rank + (<usize>b << 2));
  if (ra != rb) return ra > rb;
  return load<f64>(ctr + (<usize>a << 3)) > load<f64>(ctr + (<usize>b << 3));
}

/** Sort kids[lo, hi) (element indices) into sibling order: insertion sort below 16, else bottom-up merge sort. */
function rgaSortGroup(seq: usize, rank: usize, ctr: usize, kids: usize, tmp: usize, lo: u32, hi: u32): void {
  const len = hi - lo;
  if (len < 16) {
    for (let i = lo + 1; i < hi; i++) {
      const x = load<u32>(kids + (<usize>i << 2));
      let j = i;
      while (j > lo) {
        const y = load<u32>(kids + (<usize>(j - 1) << 2));
        if (!rgaBefore(seq, rank, ctr, x, y)) break;
        store<u32>(kids + (<usize>j << 2), y);
        j--;
      }
      store<u32>(kids + (<usize>j << 2), x);
    }
    return;
  }
  let src = kids, dst = tmp;
  for (let width: u32 = 1; width < len; width <<= 1) {
    for (let s = lo; s < hi; s += 2 * width) {
      const mid = min(s + width, hi), end = min(s + 2 * width, hi);
      let i = s, j = mid, k = s;
      while (i < mid && j < end) {
        const x = load<u32>(src + (<usize>i << 2)), y = load<u32>(src + (<usize>j << 2));
        if (rgaBefore(seq, rank, ctr, y, x)) {
          store<u32>(dst + (<usize>(k++) << 2), y);
          j++;
        } else {
          store<u32>(dst + (<usize>(k++) << 2), x);
          i++;
        }
      }
      while (i < mid) store<u32>(dst + (<usize>(k++) << 2), load<u32>(src + (<usize>(i++) << 2)));
      while (j < end) store<u32>(dst + (<usize>(k++) << 2), load<u32>(src + (<usize>(j++) << 2)));
    }
    const t = src;
    src = dst;
    dst = t;
  }
  if (src != kids) memory.copy(kids + (<usize>lo << 2), src + (<usize>lo << 2), <usize>len << 2);
}

/**
 * parent i32[n] (-1: the start, -2: not held), seq f64[n], rank u32[n], ctr f64[n]; out i32[n]; scratch: u32
 * words for start[n + 3], kids[n], stack[n], tmp[n]. Returns the number of elements placed.
 */
export function rgaOrder(parent: usize, seq: usize, rank: usize, ctr: usize, n: i32, out: usize, scratch: usize): i32 {
  const start = scratch;
  const kids = start + ((<usize>n + 3) << 2);
  const stack = kids + (<usize>n << 2);
  const tmp = stack + (<usize>n << 2);
  memory.fill(start, 0, (<usize>n + 3) << 2);
  // group the elements by reference: group g = parent + 1 (0: the start), counted at start[g + 1]
  for (let i = 0; i < n; i++) {
    const p = load<i32>(parent + (<usize>i << 2));
    if (p >= -1) {
      const at = start + (<usize>(p + 2) << 2);
      store<u32>(at, load<u32>(at) + 1);
    }
  }
  for (let g = 1; g < n + 3; g++) {
    const at = start + (<usize>g << 2);
    store<u32>(at, load<u32>(at) + load<u32>(at - 4));
  }
  // filled backwards, each group keeps its elements in index order; group g ends up at [start[g+1], start[g+2])
  for (let i = n - 1; i >= 0; i--) {
    const p = load<i32>(parent + (<usize>i << 2));
    if (p < -1) continue;
    const at = start + (<usize>(p + 2) << 2);
    const q = load<u32>(at) - 1;
    store<u32>(at, q);
    store<u32>(kids + (<usize>q << 2), i);
  }
  for (let g = 0; g <= n; g++) {
    const lo = load<u32>(start + (<usize>(g + 1) << 2)), hi = load<u32>(start + (<usize>(g + 2) << 2));
    if (hi - lo > 1) rgaSortGroup(seq, rank, ctr, kids, tmp, lo, hi);
  }
  // pre-order walk from the start; an element not stamped after its reference is skipped with its subtree
  let sp = 0;
  let k = 0;
  let lo = load<u32>(start + 4), hi = load<u32>(start + 8);
  while (hi > lo) store<u32>(stack + (<usize>(sp++) << 2), load<u32>(kids + (<usize>(--hi) << 2)));
  while (sp > 0) {
    const i = load<u32>(stack + (<usize>(--sp) << 2));
    const p = load<i32>(parent + (<usize>i << 2));
    if (p >= 0 && !(load<f64>(seq + (<usize>i << 3)) > load<f64>(seq + (<usize>p << 3)))) continue;
    store<i32>(out + (<usize>(k++) << 2), i);
    lo = load<u32>(start + (<usize>(i + 2) << 2));
    hi = load<u32>(start + (<usize>(i + 3) << 2));
    while (hi > lo) store<u32>(stack + (<usize>(sp++) << 2), load<u32>(kids + (<usize>(--hi) << 2)));
  }
  return k;
}
