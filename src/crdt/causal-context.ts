/**
 * Causal contexts and dots: the shared machinery of the dot-based CRDTs (ORSet, MVRegister, ORMap).
 *
 * A dot `(replica, counter)` names one update event. A causal context is the set of dots a replica has seen:
 * a compact version vector (all dots `(r, 1..vv[r])`) plus a dot cloud of extra dots beyond the vector, kept
 * as sorted, maximal, non-adjacent inclusive ranges per replica. A dot joining the vector's edge pulls the
 * cloud's contiguous head into the vector (compaction), so a replica that has seen everything holds no cloud.
 *
 * Replica ids are interned per context (so per CRDT instance): `intern(id)` gives a small index; merging maps
 * the other instance's table into this one (`mapFrom`) before anything is compared.
 *
 * Canonical encoding (`write` / `read`): replicas with a non-empty context, sorted by id string (JS `<`), each
 * as (id, vv, cloud ranges); a range is (gap from the previous range end + 2, length - 1), so every valid
 * encoding is the unique canonical one and a range never expands into memory (no allocation without bound).
 * The encoded order is also the index space of the dots that follow a context in every dot-CRDT encoding.
 */
import { DecodeError } from '../errors.js';
import { Reader, Writer, hiddenClassAnchors } from '../codec/binary.js';
import { getKernel } from '../kernel/index.js';
import type { CausalContextColumns, DotColumns, Kernel } from '../kernel/types.js';

const textEncoder = new TextEncoder();

/** The active kernel backend (`useBackend` switches it; read per merge). */
export function kernel(): Kernel {
  return getKernel();
}

/** Replica ids are strings of at most this many UTF-16 units. */
export const MAX_REPLICA_ID_LENGTH = 1024;

/**
 * The RangeError of a write that cannot be recorded (code `E_EXHAUSTED`): this replica's dot counters or a key's
 * timestamps reached MAX_SAFE_INTEGER. Nothing changed; unlike a counter overflow (`E_RANGE`, the request's
 * fault), no write of this replica to that CRDT can succeed until it takes a new replica id.
 */
export function exhausted(message: string): RangeError {
  return Object.assign(new RangeError(message), { code: 'E_EXHAUSTED' as const });
}

/** A context indexes its ids with a Map from this many on (see `CausalContext.index`). */
const INDEX_FROM = 8;

/**
 * A copy of `a` with `x` appended, exactly as long (a literal or a spread: `Array.prototype.concat` gave the
 * same arrays at ~150 ns a call against ~10 ns, which decoding a nested map's context paid three times per id).
 */
export function withOneMore<T>(a: readonly T[], x: T): T[] {
  switch (a.length) {
    case 0:
      return [x];
    case 1:
      return [a[0], x];
    case 2:
      return [a[0], a[1], x];
    default:
      return [...a, x];
  }
}

export class CausalContext {
  /** Interned replica ids: index -> id (read-only outside this class). */
  ids: string[] = [];
  /** id -> index, built once the context holds more than INDEX_FROM ids (below, a scan of `ids` is faster and
   * a context, of which a nested map and each of its deltas holds one, costs no Map). */
  private index: Map<string, number> | undefined;
  /** `vv[r]`: every dot `(r, 1..vv[r])` is seen. */
  vv: number[] = [];
  /** `cloud[r]`: flat inclusive ranges `[s0, e0, s1, e1, ...]`, sorted, with s0 >= vv[r] + 2 and gaps >= 1. */
  cloud: (number[] | undefined)[] = [];

  /** The index of a replica id, interning it when new. */
  intern(id: string): number {
    let i = this.find(id);
    if (i < 0) {
      if (typeof id !== 'string' || id.length > MAX_REPLICA_ID_LENGTH) {
        throw new RangeError(`replica id must be a string of at most ${MAX_REPLICA_ID_LENGTH} characters`);
      }
      i = this.ids.length;
      if (i < INDEX_FROM) {
        // exact-size arrays while small: a push reserves 17 more slots, about 450 B over the three arrays of
        // a context that mostly holds one or two ids (a nested map's, a delta's)
        this.ids = withOneMore(this.ids, id);
        this.vv = withOneMore(this.vv, 0);
        this.cloud = withOneMore(this.cloud, undefined);
        return i;
      }
      this.ids.push(id);
      if (this.index !== undefined) this.index.set(id, i);
      else this.index = new Map(this.ids.map((x, k) => [x, k]));
      this.vv.push(0);
      this.cloud.push(undefined);
    }
    return i;
  }

  /** The index of a replica id, or -1 when unknown. */
  lookup(id: string): number {
    return this.find(id);
  }

  private find(id: string): number {
    if (this.index !== undefined) return this.index.get(id) ?? -1;
    const ids = this.ids;
    for (let i = 0; i < ids.length; i++) if (ids[i] === id) return i;
    return -1;
  }

  get width(): number {
    return this.ids.length;
  }

  /** True when dot (r, c) is in the context. */
  has(r: number, c: number): boolean {
    if (c <= this.vv[r]) return true;
    const cl = this.cloud[r];
    return cl !== undefined && rangesHave(cl, c);
  }

  /** Add dot (r, c) (compacts into the vector when contiguous). */
  add(r: number, c: number): void {
    const v = this.vv[r];
    if (c <= v) return;
    let cl = this.cloud[r];
    if (c === v + 1) {
      this.vv[r] = c;
      if (cl !== undefined && cl.length > 0 && cl[0] === c + 1) {
        this.vv[r] = cl[1];
        cl.splice(0, 2);
      }
      if (cl !== undefined && cl.length === 0) this.cloud[r] = undefined;
      return;
    }
    if (cl === undefined) this.cloud[r] = cl = [];
    const n = cl.length;
    // dots mostly arrive in increasing order (a delta collecting a run of writes): extend or append in place
    if (n === 0 || c > cl[n - 1] + 1) cl.push(c, c);
    else if (c === cl[n - 1] + 1) cl[n - 1] = c;
    else rangesAdd(cl, c, c);
  }

  /** A fresh dot counter for replica r (one past everything seen from r), added to the context. */
  next(r: number): number {
    const c = this.checkNext(r);
    this.add(r, c);
    return c;
  }

  /**
   * The counter `next(r)` would take, or RangeError when there is none: a peer may claim this replica's dots
   * up to MAX_SAFE_INTEGER (after a restore from an old backup, peers hold dots the replica forgot, and it must
   * not reuse them, so such claims count), and a counter past it would break every encoding after it (it used
   * to be taken, and the process died in a timer). Writers call this before they change anything.
   */
  checkNext(r: number): number {
    const cl = this.cloud[r];
    const c = (cl !== undefined && cl.length > 0 ? cl[cl.length - 1] : this.vv[r]) + 1;
    if (c > Number.MAX_SAFE_INTEGER) throw exhausted(`dot counters of replica ${this.ids[r]} are exhausted (its dots were claimed up to ${Number.MAX_SAFE_INTEGER})`);
    return c;
  }

  /** True when the context holds no dot. */
  isEmpty(): boolean {
    for (let r = 0; r < this.vv.length; r++) if (this.vv[r] > 0 || this.cloud[r] !== undefined) return false;
    return true;
  }

  /** Maps the other context's replica table into this one: `out[otherIndex] = myIndex` (interning new ids). */
  mapFrom(other: CausalContext): Int32Array {
    const out = new Int32Array(other.ids.length);
    for (let i = 0; i < other.ids.length; i++) out[i] = this.intern(other.ids[i]);
    return out;
  }

  /** this := this ∪ other (`map` from `mapFrom(other)`). Returns true when this gained a dot. */
  mergeFrom(other: CausalContext, map: Int32Array): boolean {
    let grew = false;
    for (let o = 0; o < other.ids.length; o++) {
      const r = map[o];
      const ov = other.vv[o];
      let cl = this.cloud[r];
      const ocl = other.cloud[o];
      if (ov <= this.vv[r] && ocl === undefined) continue;
      const before = this.vv[r] + (cl === undefined ? 0 : rangesCount(cl));
      if (ov > this.vv[r]) {
        this.vv[r] = ov;
        if (cl !== undefined) rangesDropUpTo(cl, ov);
      }
      if (ocl !== undefined) {
        if (cl === undefined) this.cloud[r] = cl = [];
        for (let k = 0; k < ocl.length; k += 2) if (ocl[k + 1] > this.vv[r]) rangesAdd(cl, Math.max(ocl[k], this.vv[r] + 1), ocl[k + 1]);
      }
      this.compact(r);
      const now = this.cloud[r];
      if (this.vv[r] + (now === undefined ? 0 : rangesCount(now)) !== before) grew = true;
    }
    return grew;
  }

  /** this := this ∪ other, whatever the two replica tables. */
  absorb(other: CausalContext): void {
    this.mergeFrom(other, this.mapFrom(other));
  }

  /** True when the context holds dot (replica id, c). */
  hasId(id: string, c: number): boolean {
    const r = this.find(id);
    return r >= 0 && this.has(r, c);
  }

  /** Pull a cloud head that touches the vector into the vector. */
  private compact(r: number): void {
    const cl = this.cloud[r];
    if (cl === undefined) return;
    if (cl.length > 0 && cl[0] <= this.vv[r] + 1) {
      this.vv[r] = Math.max(this.vv[r], cl[1]);
      cl.splice(0, 2);
    }
    if (cl.length === 0) this.cloud[r] = undefined;
  }

  /** A deep copy (same replica table order). */
  clone(): CausalContext {
    const c = new CausalContext();
    for (const id of this.ids) c.intern(id);
    c.vv = this.vv.slice();
    c.cloud = this.cloud.map((x) => (x === undefined ? undefined : x.slice()));
    return c;
  }

  /**
   * Kernel columns for this context in `width` replica slots, with the cloud restricted to the given dots
   * (those the kernel will ask about): equivalent answers, bounded size (a cloud range never expands).
   * `dotsR`/`dotsC` are in the merging instance's index space; `toThis` maps that space to this context's
   * indices (-1 = unknown here) and `thisToOut` maps this context's indices back, both omitted when the
   * spaces are the same.
   */
  columnsFor(width: number, dotsR: Uint32Array, dotsC: Float64Array, n: number, toThis?: Int32Array, thisToOut?: Int32Array): CausalContextColumns {
    const vv = new Float64Array(width);
    for (let r = 0; r < this.vv.length; r++) vv[thisToOut ? thisToOut[r] : r] = this.vv[r];
    const reps: number[] = [];
    const ctrs: number[] = [];
    let anyCloud = false;
    for (const cl of this.cloud) if (cl !== undefined) anyCloud = true;
    if (anyCloud) {
      for (let i = 0; i < n; i++) {
        const r = toThis ? toThis[dotsR[i]] : dotsR[i];
        if (r < 0) continue;
        const c = dotsC[i];
        const cl = this.cloud[r];
        if (cl !== undefined && c > this.vv[r] && rangesHave(cl, c)) {
          reps.push(dotsR[i]);
          ctrs.push(c);
        }
      }
    }
    const m = reps.length;
    const order = Array.from({ length: m }, (_, i) => i).sort((a, b) => reps[a] - reps[b] || ctrs[a] - ctrs[b]);
    const cloudReplicas = new Uint32Array(m);
    const cloudCounters = new Float64Array(m);
    let k = 0;
    for (const i of order) {
      if (k > 0 && cloudReplicas[k - 1] === reps[i] && cloudCounters[k - 1] === ctrs[i]) continue;
      cloudReplicas[k] = reps[i];
      cloudCounters[k] = ctrs[i];
      k++;
    }
    return { vv, cloudReplicas, cloudCounters, cloudN: k };
  }

  /**
   * Canonical encoding. Returns the permutation my index -> encoded index (-1 for replicas not written:
   * those with an empty context; every dot of a well-formed store is in its context, so never referenced).
   */
  write(w: Writer): Int32Array {
    const present: number[] = [];
    for (let r = 0; r < this.ids.length; r++) if (this.vv[r] > 0 || this.cloud[r] !== undefined) present.push(r);
    present.sort((a, b) => (this.ids[a] < this.ids[b] ? -1 : 1));
    const perm = new Int32Array(this.ids.length).fill(-1);
    w.varuint(present.length);
    for (let k = 0; k < present.length; k++) {
      const r = present[k];
      perm[r] = k;
      w.string(this.ids[r]);
      w.varuint(this.vv[r]);
      const cl = this.cloud[r];
      if (cl === undefined) {
        w.varuint(0);
        continue;
      }
      w.varuint(cl.length / 2);
      let prevEnd = this.vv[r];
      for (let i = 0; i < cl.length; i += 2) {
        w.varuint(cl[i] - prevEnd - 2);
        w.varuint(cl[i + 1] - cl[i]);
        prevEnd = cl[i + 1];
      }
    }
    return perm;
  }

  /**
   * Reads a context written by `write` into this (empty or not: dots are added). Returns encoded index ->
   * my index. Throws DecodeError on any non-canonical or malformed input.
   */
  read(rd: Reader): Int32Array {
    const n = rd.count(3);
    const map = new Int32Array(n);
    let prevId: string | undefined;
    for (let k = 0; k < n; k++) {
      const id = rd.string();
      if (id.length > MAX_REPLICA_ID_LENGTH) throw new DecodeError('bad replica id length');
      if (prevId !== undefined && !(prevId < id)) throw new DecodeError('replica ids not strictly sorted');
      prevId = id;
      const r = this.intern(id);
      map[k] = r;
      const vv = rd.varuint();
      const nr = rd.count(2);
      if (vv === 0 && nr === 0) throw new DecodeError('empty replica context');
      const ranges: number[] = [];
      let prevEnd = vv;
      for (let i = 0; i < nr; i++) {
        const s = prevEnd + 2 + rd.varuint();
        const e = s + rd.varuint();
        if (e > Number.MAX_SAFE_INTEGER) throw new DecodeError('dot counter exceeds MAX_SAFE_INTEGER');
        ranges.push(s, e);
        prevEnd = e;
      }
      // union into this context (this may already hold dots)
      if (vv > this.vv[r]) {
        this.vv[r] = vv;
        const cl = this.cloud[r];
        if (cl !== undefined) rangesDropUpTo(cl, vv);
      }
      if (ranges.length > 0) {
        let cl = this.cloud[r];
        if (cl === undefined) this.cloud[r] = cl = [];
        for (let i = 0; i < ranges.length; i += 2) if (ranges[i + 1] > this.vv[r]) rangesAdd(cl, Math.max(ranges[i], this.vv[r] + 1), ranges[i + 1]);
      }
      this.compact(r);
    }
    return map;
  }

  /**
   * The number of dots in both this context and `other` (`map`: other's replica index -> mine, from
   * `mapFrom`). Costs one binary search per range of `other` plus the ranges of mine it overlaps.
   */
  sharedCount(other: CausalContext, map: Int32Array): number {
    let n = 0;
    for (let o = 0; o < other.vv.length; o++) {
      const r = map[o];
      if (r < 0 || r >= this.vv.length) continue;
      const vv = this.vv[r], cl = this.cloud[r];
      if (vv === 0 && cl === undefined) continue;
      if (other.vv[o] > 0) n += overlap(vv, cl, 1, other.vv[o]);
      const ocl = other.cloud[o];
      if (ocl !== undefined) for (let i = 0; i < ocl.length; i += 2) n += overlap(vv, cl, ocl[i], ocl[i + 1]);
    }
    return n;
  }

  /** A short human-readable form, for debugging and test messages. */
  toString(): string {
    return this.ids
      .map((id, r) => `${id}:${this.vv[r]}${this.cloud[r] ? '+' + JSON.stringify(this.cloud[r]) : ''}`)
      .join(' ');
  }
}

// --- flat inclusive range lists [s0, e0, s1, e1, ...] -------------------------------------------------

/** Number of counters in flat inclusive ranges. */
function rangesCount(cl: number[]): number {
  let n = 0;
  for (let i = 0; i < cl.length; i += 2) n += cl[i + 1] - cl[i] + 1;
  return n;
}

/** Up to this many dots, `assertDistinctDots` compares every pair. */
export const SMALL_DOTS = 16;

/**
 * Throws DecodeError when two of n dots are equal: dot i is (replica `reps[i] >>> shift`, counter `ctrs[i]`),
 * replica indices below `width`. A dot names one write of one element or key, and merge counts on it (a row
 * or element whose dot the other's context covers is looked for only until as many are found as the contexts
 * share). Counters are grouped by replica and each group sorted natively.
 */
export function assertDistinctDots(reps: ArrayLike<number>, shift: number, ctrs: ArrayLike<number>, n: number, width: number): void {
  if (n <= SMALL_DOTS) {
    // few dots (a small state or delta): every pair, nothing allocated (the typed arrays below cost more)
    for (let i = 1; i < n; i++) {
      const r = reps[i] >>> shift, c = ctrs[i];
      for (let j = 0; j < i; j++) if (ctrs[j] === c && reps[j] >>> shift === r) throw new DecodeError('two entries share a dot');
    }
    return;
  }
  const start = new Uint32Array(width + 1);
  for (let i = 0; i < n; i++) start[(reps[i] >>> shift) + 1]++;
  for (let r = 0; r < width; r++) start[r + 1] += start[r];
  const at = start.slice(0, width);
  const sorted = new Float64Array(n);
  for (let i = 0; i < n; i++) sorted[at[reps[i] >>> shift]++] = ctrs[i];
  for (let r = 0; r < width; r++) {
    const lo = start[r], hi = start[r + 1];
    if (hi - lo < 2) continue;
    const g = sorted.subarray(lo, hi).sort();
    for (let i = 1; i < g.length; i++) if (g[i] === g[i - 1]) throw new DecodeError('two entries share a dot');
  }
}

/** How many counters of [s, e] the context (vector vv, cloud cl) holds. */
function overlap(vv: number, cl: number[] | undefined, s: number, e: number): number {
  let n = vv >= s ? Math.min(e, vv) - s + 1 : 0;
  if (cl === undefined || e <= vv) return n;
  // first cloud range ending at or after s, then every range starting at or before e
  let lo = 0, hi = cl.length / 2;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (cl[2 * mid + 1] < s) lo = mid + 1;
    else hi = mid;
  }
  for (let j = lo; j < cl.length / 2 && cl[2 * j] <= e; j++) n += Math.min(e, cl[2 * j + 1]) - Math.max(s, cl[2 * j]) + 1;
  return n;
}

/** True when c lies in one of the ranges (binary search). */
export function rangesHave(cl: number[], c: number): boolean {
  let lo = 0, hi = cl.length / 2 - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (c < cl[2 * mid]) hi = mid - 1;
    else if (c > cl[2 * mid + 1]) lo = mid + 1;
    else return true;
  }
  return false;
}

/** Union [s, e] into the ranges, keeping them sorted, maximal and non-adjacent. */
export function rangesAdd(cl: number[], s: number, e: number): void {
  // first range whose end >= s - 1 (could touch or overlap)
  let lo = 0, hi = cl.length / 2;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (cl[2 * mid + 1] < s - 1) lo = mid + 1;
    else hi = mid;
  }
  let j = lo;
  let ns = s, ne = e;
  while (j < cl.length / 2 && cl[2 * j] <= e + 1) {
    if (cl[2 * j] < ns) ns = cl[2 * j];
    if (cl[2 * j + 1] > ne) ne = cl[2 * j + 1];
    j++;
  }
  cl.splice(2 * lo, 2 * (j - lo), ns, ne);
}

/** Remove everything <= v from the ranges. */
function rangesDropUpTo(cl: number[], v: number): void {
  let k = 0;
  while (k < cl.length && cl[k + 1] <= v) k += 2;
  if (k > 0) cl.splice(0, k);
  if (cl.length > 0 && cl[0] <= v) cl[0] = v + 1;
}

// --- dot lists for the kernel ---------------------------------------------------------------------------

/**
 * A growable list of dots with a 64-bit key hash and an opaque reference each, sorted on demand into the
 * kernel's order (key hash unsigned, replica, counter). Used to stage both sides of one `dotMerge` call.
 */
export class DotList {
  keys: Uint32Array;
  replicas: Uint32Array;
  counters: Float64Array;
  refs: Int32Array;
  n = 0;

  constructor(capacity = 16) {
    capacity = Math.max(1, capacity);
    this.keys = new Uint32Array(2 * capacity);
    this.replicas = new Uint32Array(capacity);
    this.counters = new Float64Array(capacity);
    this.refs = new Int32Array(capacity);
  }

  push(lo: number, hi: number, r: number, c: number, ref: number): void {
    if (this.n === this.replicas.length) this.grow();
    const i = this.n++;
    this.keys[2 * i] = lo;
    this.keys[2 * i + 1] = hi;
    this.replicas[i] = r;
    this.counters[i] = c;
    this.refs[i] = ref;
  }

  private grow(): void {
    const cap = this.replicas.length * 2;
    const k = new Uint32Array(2 * cap); k.set(this.keys); this.keys = k;
    const r = new Uint32Array(cap); r.set(this.replicas); this.replicas = r;
    const c = new Float64Array(cap); c.set(this.counters); this.counters = c;
    const f = new Int32Array(cap); f.set(this.refs); this.refs = f;
  }

  /**
   * Sort in place into kernel order. Fast path when every key's high word is 0 (ORMap names keys by small
   * integers): a native sort of packed `key * 2^20 + position` numbers, then the rare runs of one key are
   * ordered by (replica, counter). Otherwise a comparator sort.
   */
  sort(): void {
    const n = this.n;
    const K = this.keys, R = this.replicas, C = this.counters;
    let sorted = true;
    let small = n < 1 << 20;
    for (let i = 1; i < n && sorted; i++) if (cmpDots(K, R, C, i - 1, K, R, C, i) > 0) sorted = false;
    if (sorted) return;
    for (let i = 0; i < n && small; i++) if (K[2 * i + 1] !== 0) small = false;
    let idx: Uint32Array;
    if (small) {
      const packed = new Float64Array(n);
      for (let i = 0; i < n; i++) packed[i] = K[2 * i] * 1048576 + i;
      packed.sort();
      idx = new Uint32Array(n);
      for (let i = 0; i < n; i++) idx[i] = packed[i] % 1048576;
      // runs of equal keys: insertion sort by (replica, counter)
      for (let i = 1; i < n; i++) {
        const x = idx[i];
        let j = i - 1;
        while (j >= 0 && K[2 * idx[j]] === K[2 * x] && (R[idx[j]] > R[x] || (R[idx[j]] === R[x] && C[idx[j]] > C[x]))) {
          idx[j + 1] = idx[j];
          j--;
        }
        idx[j + 1] = x;
      }
    } else {
      idx = new Uint32Array(n);
      for (let i = 0; i < n; i++) idx[i] = i;
      idx.sort((a, b) => cmpDots(K, R, C, a, K, R, C, b));
    }
    const k2 = new Uint32Array(2 * n), r2 = new Uint32Array(n), c2 = new Float64Array(n), f2 = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const j = idx[i];
      k2[2 * i] = K[2 * j];
      k2[2 * i + 1] = K[2 * j + 1];
      r2[i] = R[j];
      c2[i] = C[j];
      f2[i] = this.refs[j];
    }
    this.keys = k2; this.replicas = r2; this.counters = c2; this.refs = f2;
  }

  columns(): DotColumns {
    return { keys: this.keys, replicas: this.replicas, counters: this.counters, n: this.n };
  }

  /** Entries [i0, i1) as a list sharing this one's arrays (a view: do not push to it). */
  slice(i0: number, i1: number): DotList {
    const v = new DotList(1);
    v.keys = this.keys.subarray(2 * i0, 2 * i1);
    v.replicas = this.replicas.subarray(i0, i1);
    v.counters = this.counters.subarray(i0, i1);
    v.refs = this.refs.subarray(i0, i1);
    v.n = i1 - i0;
    return v;
  }

  /** First index >= from whose key is >= (hi, lo), or > (hi, lo) when `after` (the list sorted). */
  seek(from: number, hi: number, lo: number, after: boolean): number {
    const K = this.keys;
    let l = from, h = this.n;
    while (l < h) {
      const m = (l + h) >>> 1;
      const mh = K[2 * m + 1], ml = K[2 * m];
      if (mh < hi || (mh === hi && (after ? ml <= lo : ml < lo))) l = m + 1;
      else h = m;
    }
    return l;
  }
}

// keeps the class's hidden class alive across full GCs (see hiddenClassAnchors)
hiddenClassAnchors.push(new DotList(0));

/** @internal order of two DotList entries (key, replica, counter). */
export function cmpDots(K1: Uint32Array, R1: Uint32Array, C1: Float64Array, i: number, K2: Uint32Array, R2: Uint32Array, C2: Float64Array, j: number): number {
  const h1 = K1[2 * i + 1], h2 = K2[2 * j + 1];
  if (h1 !== h2) return h1 < h2 ? -1 : 1;
  const l1 = K1[2 * i], l2 = K2[2 * j];
  if (l1 !== l2) return l1 < l2 ? -1 : 1;
  if (R1[i] !== R2[j]) return R1[i] < R2[j] ? -1 : 1;
  return C1[i] - C2[j];
}

/** Dots per side per kernel call in a merge: bounds the kernel's linear memory (it never shrinks) to ~0.4 MB. */
let MERGE_BATCH = 8192;

/** @internal Test hook: the merge batch size (returns the previous one). */
export function setMergeBatch(n: number): number {
  const prev = MERGE_BATCH;
  MERGE_BATCH = Math.max(1, Math.floor(n));
  return prev;
}

/**
 * Which dots of `a` (against my context) and `b` (against the other's context) survive. Both lists must be
 * sorted and in my replica index space; `bctx` is the other's context, `toOther` maps my replica index ->
 * the other's index (-1 when the other never saw the replica). Returns the kernel's output (`i` for a's dot
 * i, `-(j + 1)` for b's dot j) and its length. Big merges run as kernel calls of about MERGE_BATCH dots per
 * side, split at key boundaries (a dot's fate depends only on its key's dots and the two contexts), with the
 * same output as one call.
 */
export function mergeDots(a: DotList, actx: CausalContext, b: DotList, bctx: CausalContext, toOther: Int32Array, otherToMine: Int32Array): { out: Int32Array; n: number } {
  if (a.n + b.n <= 2 * MERGE_BATCH) return mergeDotsOnce(a, actx, b, bctx, toOther, otherToMine);
  const out = new Int32Array(a.n + b.n);
  let n = 0, i0 = 0, j0 = 0;
  while (i0 < a.n || j0 < b.n) {
    // split before the smaller of the keys a batch ahead on either side
    let i1 = a.n, j1 = b.n;
    const ia = i0 + MERGE_BATCH < a.n ? i0 + MERGE_BATCH : -1;
    const jb = j0 + MERGE_BATCH < b.n ? j0 + MERGE_BATCH : -1;
    if (ia >= 0 || jb >= 0) {
      const useA = jb < 0 || (ia >= 0 && cmpDots(a.keys, a.replicas, a.counters, ia, b.keys, b.replicas, b.counters, jb) <= 0);
      const K = useA ? a.keys : b.keys, k = useA ? ia : jb;
      const hi = K[2 * k + 1], lo = K[2 * k];
      i1 = a.seek(i0, hi, lo, false);
      j1 = b.seek(j0, hi, lo, false);
      if (i1 === i0 && j1 === j0) {
        // one key with more dots than a batch: that key whole
        i1 = a.seek(i0, hi, lo, true);
        j1 = b.seek(j0, hi, lo, true);
      }
    }
    const r = mergeDotsOnce(a.slice(i0, i1), actx, b.slice(j0, j1), bctx, toOther, otherToMine);
    for (let q = 0; q < r.n; q++) {
      const v = r.out[q];
      out[n++] = v >= 0 ? v + i0 : v - j0;
    }
    i0 = i1;
    j0 = j1;
  }
  return { out, n };
}

function mergeDotsOnce(a: DotList, actx: CausalContext, b: DotList, bctx: CausalContext, toOther: Int32Array, otherToMine: Int32Array): { out: Int32Array; n: number } {
  const width = actx.width;
  const aCols = actx.columnsFor(width, b.replicas, b.counters, b.n);
  const bCols = bctx.columnsFor(width, a.replicas, a.counters, a.n, toOther, otherToMine);
  const out = new Int32Array(a.n + b.n);
  const n = kernel().dotMerge(a.columns(), aCols, b.columns(), bCols, out);
  return { out, n };
}

/** My replica index -> the other's index (-1 when unknown to the other). */
export function inverseMap(map: Int32Array, myWidth: number): Int32Array {
  const inv = new Int32Array(myWidth).fill(-1);
  for (let o = 0; o < map.length; o++) inv[map[o]] = o;
  return inv;
}

// --- hashing --------------------------------------------------------------------------------------------

/** xxHash64 (seed 0) of each string's UTF-8 bytes, in one kernel call. Result: u32 pairs (lo, hi). */
export function hashStringsMany(items: string[]): Uint32Array {
  let max = 0;
  for (const s of items) max += s.length * 3;
  const buf = new Uint8Array(Math.max(1, max));
  const offsets = new Uint32Array(items.length);
  const lengths = new Uint32Array(items.length);
  let p = 0;
  for (let i = 0; i < items.length; i++) {
    const { written } = textEncoder.encodeInto(items[i], buf.subarray(p));
    offsets[i] = p;
    lengths[i] = written;
    p += written;
  }
  const out = new Uint32Array(2 * items.length);
  if (items.length > 0) kernel().xxhash64Many(buf, offsets, lengths, 0, out);
  return out;
}
