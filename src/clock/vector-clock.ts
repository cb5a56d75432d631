/**
 * Vector clock: one exact integer counter per replica id.
 *
 * Design:
 * - Replica ids are interned per instance (src/crdt/replicas.ts) and the counters kept in one dense
 *   `Float64Array`, so compare/merge are single kernel calls (`vcCompare`, `vcMerge`, `vcDominates`) over
 *   aligned arrays. A missing replica counts as 0.
 * - Reads (`compare`, `dominates`, `get`) never change this clock's replica table; they align the other clock
 *   into a module scratch array (no allocation per call once warmed up).
 * - Canonical encoding: `CODEC_VERSION`, then a count and two columns (replica ids sorted by string order,
 *   then their counters as varuints); zero entries are omitted, so equal clocks give equal bytes.
 */
import { Reader, Writer } from '../codec/binary.js';
import { CODEC_VERSION } from '../crdt/types.js';
import { DecodeError, ValidationError } from '../errors.js';
import { getKernel } from '../kernel/index.js';
import { ORD_AFTER, ORD_BEFORE, ORD_EQUAL } from '../kernel/types.js';
import { ReplicaTable, growF64, scratchF64 } from '../crdt/replicas.js';

export type ClockOrder = 'before' | 'after' | 'equal' | 'concurrent';

/** Anything read as a vector clock: a VectorClock, a Map or a plain object of replica id -> counter. */
export type ClockLike = VectorClock | ReadonlyMap<string, number> | Readonly<Record<string, number>>;

const MAX = Number.MAX_SAFE_INTEGER;

export class VectorClock {
  /** @internal interned replica ids (per instance). */
  readonly table: ReplicaTable;
  /** @internal counters by interned index; slots past `table.size` are 0. */
  counters: Float64Array;

  /**
   * An empty clock, or one holding `src` (as `VectorClock.from`: pairs, a Map or a plain object of replica id ->
   * counter, each a safe integer >= 0: RangeError for a bad counter, ValidationError for anything else).
   */
  constructor(src?: ClockLike | Iterable<readonly [string, number]>, /** @internal table and counters, taken as they are */ parts?: readonly [ReplicaTable, Float64Array]) {
    this.table = parts ? parts[0] : new ReplicaTable();
    this.counters = parts ? parts[1] : new Float64Array(4);
    if (src === undefined) return;
    if (typeof src !== 'object' || src === null) throw new ValidationError('a vector clock is built from [replica, counter] pairs, a Map or a plain object');
    this.merge(VectorClock.from(src));
  }

  /** A clock from `[replica, counter]` pairs, a Map, or a plain object. Counters must be safe integers >= 0. */
  static from(src: ClockLike | Iterable<readonly [string, number]>): VectorClock {
    if (src instanceof VectorClock) return src.clone();
    const vc = new VectorClock();
    const pairs: Iterable<readonly [string, number]> =
      src instanceof Map || Symbol.iterator in (src as object)
        ? (src as Iterable<readonly [string, number]>)
        : Object.entries(src as Record<string, number>);
    for (const [id, n] of pairs) vc.set(id, n);
    return vc;
  }

  /**
   * Pointwise minimum of the given clocks (their greatest lower bound): what every one of them has seen.
   * With the latest clock received from each replica this is the causally stable frontier that
   * `RGA.collectGarbage` takes. An empty list gives an empty clock.
   */
  static meet(clocks: readonly VectorClock[]): VectorClock {
    const out = new VectorClock();
    if (clocks.length === 0) return out;
    for (const [r, n] of clocks[0].entries()) {
      let m = n;
      for (let k = 1; k < clocks.length && m > 0; k++) m = Math.min(m, clocks[k].get(r));
      if (m > 0) out.set(r, m);
    }
    return out;
  }

  /** Add one to `replica`'s counter and return the new value. RangeError past MAX_SAFE_INTEGER. */
  increment(replica: string): number {
    const i = this.slot(replica);
    const v = this.counters[i] + 1;
    if (v > MAX) throw new RangeError(`vector clock counter for ${replica} exceeds MAX_SAFE_INTEGER`);
    this.counters[i] = v;
    return v;
  }

  /** Set `replica`'s counter to `max(current, n)` (clocks only grow). */
  set(replica: string, n: number): void {
    if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`vector clock counter must be a safe integer >= 0, got ${n}`);
    if (typeof replica !== 'string') throw new ValidationError('replica id must be a string');
    if (n === 0 && this.table.find(replica) < 0) return;
    const i = this.slot(replica);
    if (n > this.counters[i]) this.counters[i] = n;
  }

  /** The counter of `replica` (0 when unknown). */
  get(replica: string): number {
    const i = this.table.find(replica);
    return i < 0 ? 0 : this.counters[i];
  }

  /** Pointwise maximum with `other` (in place). */
  merge(other: VectorClock): void {
    const ot = other.table;
    const n = ot.size;
    const b = scratchF64(this.table.size + n);
    for (let j = 0; j < n; j++) {
      const v = other.counters[j];
      if (v === 0) continue;
      b[this.slot(ot.ids[j])] = v;
    }
    getKernel().vcMerge(this.counters, b.subarray(0, this.table.size), this.counters);
  }

  /** How this clock relates to `other`: 'before' (other strictly dominates), 'after', 'equal', 'concurrent'. */
  compare(other: VectorClock): ClockOrder {
    const b = this.aligned(other);
    const ord = getKernel().vcCompare(this.counters.subarray(0, this.table.size), b);
    return ord === ORD_EQUAL ? 'equal' : ord === ORD_BEFORE ? 'before' : ord === ORD_AFTER ? 'after' : 'concurrent';
  }

  /** True when this clock has seen everything `other` has (every counter >=). */
  dominates(other: VectorClock): boolean {
    const b = this.aligned(other);
    return getKernel().vcDominates(this.counters.subarray(0, this.table.size), b);
  }

  /** Non-zero entries as `[replica, counter]`, sorted by replica id. */
  entries(): Array<[string, number]> {
    const out: Array<[string, number]> = [];
    for (const i of this.table.sortedIndices()) {
      const v = this.counters[i];
      if (v > 0) out.push([this.table.ids[i], v]);
    }
    return out;
  }

  /** Number of replicas with a non-zero counter. */
  get size(): number {
    let n = 0;
    for (let i = 0; i < this.table.size; i++) if (this.counters[i] > 0) n++;
    return n;
  }

  /** Sum of all counters (the number of events this clock covers). */
  total(): number {
    let s = 0;
    for (let i = 0; i < this.table.size; i++) s += this.counters[i];
    return s;
  }

  clone(): VectorClock {
    return new VectorClock(undefined, [this.table.clone(), this.counters.slice()]);
  }

  /** Canonical bytes (see the module comment). */
  encode(): Uint8Array {
    const w = new Writer(16 + this.table.size * 12);
    this.write(w);
    return w.finish();
  }

  /** Write the canonical form into `w` (for embedding in other encodings). */
  write(w: Writer): void {
    const order = this.table.sortedIndices().filter((i) => this.counters[i] > 0);
    w.u8(CODEC_VERSION);
    w.varuint(order.length);
    for (const i of order) w.string(this.table.ids[i]);
    for (const i of order) w.varuint(this.counters[i]);
  }

  /** Decode canonical bytes. DecodeError on any malformed, non-canonical or trailing input. */
  static decode(bytes: Uint8Array): VectorClock {
    const r = new Reader(bytes);
    const vc = VectorClock.read(r);
    r.done();
    return vc;
  }

  /** Read one clock written by `write` from `r`. */
  static read(r: Reader): VectorClock {
    const version = r.u8();
    if (version !== CODEC_VERSION) throw new DecodeError(`unsupported vector clock version ${version}`);
    // each entry takes at least 2 bytes (an empty-string length byte and a counter byte)
    const n = r.count(2);
    const table = new ReplicaTable();
    let prev: string | undefined;
    for (let i = 0; i < n; i++) {
      const id = r.string();
      if (prev !== undefined && !(prev < id)) throw new DecodeError('vector clock replica ids not strictly sorted');
      prev = id;
      table.intern(id);
    }
    const counters = new Float64Array(Math.max(4, n));
    for (let i = 0; i < n; i++) {
      const v = r.varuint();
      if (v === 0) throw new DecodeError('vector clock holds a zero counter');
      counters[i] = v;
    }
    return new VectorClock(undefined, [table, counters]);
  }

  /** Plain object view (replica -> counter), non-zero entries only. */
  toJSON(): Record<string, number> {
    return Object.fromEntries(this.entries());
  }

  /** @internal index of `replica`, interned and grown when new. */
  slot(replica: string): number {
    const i = this.table.intern(replica);
    if (i >= this.counters.length) this.counters = growF64(this.counters, i + 1);
    return i;
  }

  /** @internal `other`'s counters in this clock's index space, extras after this table's size (scratch). */
  private aligned(other: VectorClock): Float64Array {
    const ot = other.table;
    const n = ot.size;
    const mine = this.table.size;
    const b = scratchF64(mine + n);
    let extra = mine;
    for (let j = 0; j < n; j++) {
      const v = other.counters[j];
      if (v === 0) continue;
      const i = this.table.find(ot.ids[j]);
      b[i < 0 ? extra++ : i] = v;
    }
    return b.subarray(0, extra);
  }
}

/** Read a counter from any clock-like value. */
export function clockGet(c: ClockLike, replica: string): number {
  if (c instanceof VectorClock) return c.get(replica);
  if (c instanceof Map) return c.get(replica) ?? 0;
  const v = (c as Record<string, number>)[replica];
  return Object.prototype.hasOwnProperty.call(c, replica) && typeof v === 'number' ? v : 0;
}

/** Entries of any clock-like value (non-zero counters only; order unspecified for Maps and objects). */
export function clockEntries(c: ClockLike): Array<[string, number]> {
  if (c instanceof VectorClock) return c.entries();
  const src = c instanceof Map ? [...c.entries()] : Object.entries(c as Record<string, number>);
  return src.filter(([, v]) => v !== 0);
}
