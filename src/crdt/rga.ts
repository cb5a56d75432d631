/**
 * Replicated Growable Array (Roh et al.): an ordered sequence with insert-after-reference and tombstone
 * deletes, usable op-based (`insert`/`delete` return ops, `apply(op)` takes remote ones) and state-based
 * (`merge`, `takeDelta`).
 *
 * Model:
 * - Every op (insert or delete) has a dot (replica, counter): counters run 1, 2, 3, ... per replica across
 *   both kinds of ops, so a replica's ops are a gap-free sequence that vector clocks and `CausalBuffer`
 *   understand (`RGA.opDeps(op)` gives an op's causal-delivery dependencies).
 * - An insert also has a Lamport sequence number `seq` (greater than every seq its replica had seen) and
 *   a reference: the element it was inserted after (null = the start). Elements form a tree by reference;
 *   the document order is the pre-order walk with the children of an element ordered by (seq, replica id)
 *   descending (then by counter: only hostile input has two inserts of one replica with one seq), so
 *   concurrent inserts at the same place order the same way everywhere (the later-stamped first). An insert is only valid when its seq exceeds its reference's seq; one that is not (hostile input)
 *   is kept in the state but never shown, a rule that depends only on the two records.
 * - The state is two grow-only sets of records, inserts and deletes, plus a GC floor (below). `merge` is the
 *   union, so it is commutative, associative and idempotent by construction; the list is derived.
 * - A dot names exactly one record. Two different records under one dot cannot come from honest replicas
 *   (a replica never reuses a counter); should a hostile peer send one, the record seen first is kept.
 * - Missing dependencies are held, not rejected: an insert whose reference is not known yet (or a delete of
 *   an element not known yet) is kept as part of the state and takes effect when the reference arrives. So
 *   `apply` accepts ops in any order and deltas can be merged in any order. With causal delivery
 *   (CausalBuffer and `opDeps`) nothing is ever held.
 * - Garbage collection: `collectGarbage(stable)` removes a deleted element once its insert and one of its
 *   deletes are covered by `stable` and it is a leaf of the tree (no element refers to it; elements are
 *   visited from the end, so a run of deleted text goes leaf by leaf in one call). Removing a leaf leaves the
 *   pre-order of every other element unchanged, and no future op can refer to it, so replicas that collected
 *   and replicas that did not order every element the same way. A deleted element that still has a live
 *   element inserted after it stays until that one is deleted and collected too. The element's deletes go
 *   with it, except one the floor does not cover yet (a concurrent delete by another replica), which stays
 *   until a floor covers it: every replica's ops stay gap-free here (`seenPrefix`). Contract: `stable` is
 *   causally stable at this replica: every op it covers has been applied at every replica, and every op this
 *   replica has not applied yet is causally after it (e.g. the pointwise minimum of the latest clocks
 *   received from all replicas, once this replica has applied every op each of them had made when it sent
 *   its clock). The floor (max of all stable clocks used) is part of the state: merge drops incoming records
 *   it covers that this replica no longer has (collected), merges floors, and collects with the merged floor,
 *   so replicas that collected and replicas that did not converge to identical bytes.
 * - A floor is only sound together with the records of the state it belongs to: stable at the replica that
 *   collected, it may cover a deleted element whose child (an insert made concurrently with the delete, not
 *   covered) that replica holds but another does not. A replica that took such a floor without the child
 *   would collect the element as a leaf, then hold the child forever as an orphan (its reference dropped as
 *   collected) while the others keep the tombstone and show the child. So a full state (encode, clone) carries
 *   the floor, and a delta never does: the floor travels only with every record it was computed against, and
 *   after `collectGarbage` there is no delta to send (nothing but the floor changed).
 * - A full state whose floor covers an element it lacks shows that element collected where the floor was
 *   raised, so deleted there: a merge that raises the floor collects such an element here too once it is a
 *   leaf, delete record or not. Under the contract every replica applied that delete before anyone could
 *   collect, so this changes nothing; it repairs a replica the collectors did not count (a membership the
 *   replicas disagreed on, see SyncEngine) that never got the delete, and makes both merge orders agree. An
 *   element that has a child there (inserted after it where the delete had not arrived) stays shown there,
 *   and the child is an orphan (never shown) elsewhere: that case needs the contract.
 * - Cost: the list is one array in document order (tombstones included). Index lookups walk from a cursor
 *   (the last position looked up or edited), so sequential edits are O(distance) and random ones O(n);
 *   integrating a remote insert finds its reference through a hint (the last integrated position) before
 *   falling back to a scan, and inserting into the array is a splice. Decode, clone, a big takeDelta and a
 *   merge that brings many inserts (see RELIST_FROM) build the list in one pass instead: the rgaOrder kernel
 *   (wasm or its TS twin) groups the elements by reference, sorts each group and walks the tree, O(n log n)
 *   whatever the order the records came in. Records added since the last `takeDelta()` are kept for the
 *   next delta, so an instance that is synced should have its deltas taken.
 * - Canonical encoding: version, type tag, the floor (a VectorClock encoding), a table of replica ids
 *   (sorted), then the inserts sorted by (replica, counter) as columns (replica index, counter, seq,
 *   reference replica index + 1 or 0, reference counter, value bytes) and the deletes likewise (replica index,
 *   counter, target replica index, target counter).
 */
import { Reader, Writer } from '../codec/binary.js';
import { decodeValue, encodeValue, readsBackAsGiven } from '../codec/value.js';
import { DecodeError, ValidationError } from '../errors.js';
import { VectorClock } from '../clock/vector-clock.js';
import { readHeader } from './g-set.js';
import { checkMergeType, CODEC_VERSION, CRDT_TYPE, type Crdt } from './types.js';
import { disposeInstance } from './dispose.js';
import { getKernel } from '../kernel/index.js';
import { checkReplicaId, DECODED_REPLICA_ID } from './replicas.js';

/** An op's identity: (replica, counter), counter >= 1. */
export interface Dot {
  readonly replica: string;
  readonly counter: number;
}

export interface RgaInsertOp {
  readonly type: 'insert';
  readonly replica: string;
  readonly counter: number;
  /** Lamport sequence number (ordering among concurrent inserts). */
  readonly seq: number;
  /** The element this one goes after; null = the start of the list. */
  readonly ref: Dot | null;
  /** Canonical msgpack bytes of the value. */
  readonly bytes: Uint8Array;
}

export interface RgaDeleteOp {
  readonly type: 'delete';
  readonly replica: string;
  readonly counter: number;
  /** The element deleted. */
  readonly target: Dot;
}

export type RgaOp = RgaInsertOp | RgaDeleteOp;

const MAX = Number.MAX_SAFE_INTEGER;
const OP_INSERT = 1;
const OP_DELETE = 2;

function dotKey(replica: string, counter: number): string {
  return `${counter}:${replica}`;
}

/** @internal An element (the record of its insert plus derived state). */
class Node {
  readonly key: string;
  readonly refKey: string | null;
  deleted = false;
  /** Number of integrated elements whose reference is this one. */
  children = 0;
  integrated = false;
  /** Scratch for `relist`: this element's index in its input arrays. */
  idx = -1;
  private v: unknown;
  private decoded = false;
  constructor(readonly op: RgaInsertOp) {
    this.key = dotKey(op.replica, op.counter);
    this.refKey = op.ref === null ? null : dotKey(op.ref.replica, op.ref.counter);
  }
  get value(): unknown {
    if (!this.decoded) {
      this.v = decodeValue(this.op.bytes);
      this.decoded = true;
    }
    return this.v;
  }
  setValue(v: unknown): void {
    this.v = v;
    this.decoded = true;
  }
}

/**
 * a orders before b among siblings: larger (seq, replica, counter) first. The counter only decides between two
 * inserts of one replica with one seq, which honest replicas never make (a replica's seq grows with each of
 * its inserts); with it the order is total, so the list never depends on the order records arrived in.
 */
function before(a: RgaInsertOp, b: RgaInsertOp): boolean {
  return a.seq > b.seq || (a.seq === b.seq && (a.replica > b.replica || (a.replica === b.replica && a.counter > b.counter)));
}

/**
 * A merge that brings many inserts holds them all and rebuilds the list in one rgaOrder kernel call instead of
 * placing each (a search for its reference and a splice). Measured here: the rebuild costs 0.4-1 us per
 * element held (the kernel is a few % of it; the rest is building its inputs), placing costs 0.2-1.3 ns per
 * element held per insert (less when the inserts arrive in document order), so the crossover is around a
 * thousand inserts whatever the size: from RELIST_FROM inserts, and from RELIST_SMALL when they are at least a
 * quarter of what is held. Both give the same list.
 */
const RELIST_FROM = 1024;
const RELIST_SMALL = 32;

function isCounter(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 1;
}

function checkOp(op: RgaOp): void {
  if (op === null || typeof op !== 'object') throw new ValidationError('RGA op must be an object');
  if (typeof op.replica !== 'string' || !isCounter(op.counter)) throw new ValidationError('RGA op needs replica and counter >= 1');
  if (op.type === 'insert') {
    if (!isCounter(op.seq)) throw new ValidationError('RGA insert needs seq >= 1');
    if (!(op.bytes instanceof Uint8Array) || op.bytes.length === 0) throw new ValidationError('RGA insert needs value bytes');
    if (op.ref !== null && (typeof op.ref !== 'object' || typeof op.ref.replica !== 'string' || !isCounter(op.ref.counter))) {
      throw new ValidationError('RGA insert ref must be null or a dot');
    }
  } else if (op.type === 'delete') {
    if (op.target === null || typeof op.target !== 'object' || typeof op.target.replica !== 'string' || !isCounter(op.target.counter)) {
      throw new ValidationError('RGA delete needs a target dot');
    }
  } else {
    throw new ValidationError(`unknown RGA op type ${(op as { type: unknown }).type}`);
  }
}

function compareDots(a: Dot, b: Dot): number {
  return a.replica < b.replica ? -1 : a.replica > b.replica ? 1 : a.counter - b.counter;
}

export class RGA<T = unknown> implements Crdt<RGA<T>> {
  readonly typeTag: number = CRDT_TYPE.RGA;
  readonly replicaId: string;
  /**
   * Called after each local mutation (set by the sync engine when the instance is registered, so a direct
   * write is pushed like one made through `update`). Leave unset.
   */
  onLocalChange: (() => void) | undefined;
  /** insert records by dot key */
  private inserts = new Map<string, Node>();
  /** delete records by dot key */
  private deletes = new Map<string, RgaDeleteOp>();
  /** delete records by target key */
  private byTarget = new Map<string, RgaDeleteOp[]>();
  /** inserts waiting for their reference, by reference key */
  private orphans = new Map<string, Node[]>();
  /**
   * inserts not stamped after their reference (hostile input: never shown), by reference key. Held apart so
   * that collecting the reference makes them orphans, as a state rebuilt from the records has them.
   */
  private stale = new Map<string, Node[]>();
  /** integrated elements in document order, tombstones included */
  private list: Node[] = [];
  private visible = 0;
  private hint = 0;
  /** Cursor: list[curK] is visible with visible index curVis (curVis < 0 = unknown). */
  private curVis = -1;
  private curK = -1;
  private floor = new VectorClock();
  private maxSeq = 0;
  private ownCounter = 0;
  private deltaInserts: RgaInsertOp[] = [];
  private deltaDeletes: RgaDeleteOp[] = [];

  constructor(replicaId: string) {
    this.replicaId = checkReplicaId(replicaId);
  }

  /** Number of visible elements. */
  get length(): number {
    return this.visible;
  }

  /** The value at visible index i (undefined when out of range). */
  get(i: number): T | undefined {
    const k = this.indexOfVisible(i);
    return k < 0 ? undefined : (this.list[k].value as T);
  }

  /** The visible values in order. */
  toArray(): T[] {
    const out: T[] = [];
    for (const n of this.list) if (!n.deleted) out.push(n.value as T);
    return out;
  }

  /** Number of tombstones still held (deleted elements not yet collected). */
  get tombstones(): number {
    return this.list.length - this.visible;
  }

  /**
   * Insert v at visible index (0..length) and return the op to send to other replicas.
   * RangeError for a bad index, ValidationError for a value msgpack cannot carry (nothing changes).
   */
  insert(index: number, v: T): RgaInsertOp {
    if (!Number.isInteger(index) || index < 0 || index > this.visible) {
      throw new RangeError(`insert index ${index} out of range [0, ${this.visible}]`);
    }
    const bytes = new Uint8Array(encodeValue(v)); // a plain copy, not a view on the encoder's shared buffer
    if (this.maxSeq >= MAX || this.ownCounter >= MAX) throw new RangeError('RGA counters exhausted');
    let k = -1;
    let ref: Dot | null = null;
    if (index > 0) {
      k = this.indexOfVisible(index - 1);
      const r = this.list[k].op;
      ref = { replica: r.replica, counter: r.counter };
    }
    const op: RgaInsertOp = { type: 'insert', replica: this.replicaId, counter: this.ownCounter + 1, seq: this.maxSeq + 1, ref, bytes };
    this.hint = k;
    this.addInsert(op);
    const node = this.inserts.get(dotKey(op.replica, op.counter))!;
    if (!node.deleted && node.integrated) {
      this.curVis = index;
      this.curK = this.hint;
    }
    // kept as given when every replica reads its bytes back the same (undefined is stored as null)
    if (v === undefined || readsBackAsGiven(v)) node.setValue(v === undefined ? null : v);
    this.deltaInserts.push(op);
    this.onLocalChange?.();
    return op;
  }

  /** Delete the element at visible index and return the op. RangeError for a bad index. */
  delete(index: number): RgaDeleteOp {
    if (!Number.isInteger(index) || index < 0 || index >= this.visible) {
      throw new RangeError(`delete index ${index} out of range [0, ${this.visible})`);
    }
    if (this.ownCounter >= MAX) throw new RangeError('RGA counters exhausted');
    let k = this.indexOfVisible(index);
    const t = this.list[k].op;
    const op: RgaDeleteOp = { type: 'delete', replica: this.replicaId, counter: this.ownCounter + 1, target: { replica: t.replica, counter: t.counter } };
    this.addDelete(op);
    // keep the cursor on the element that now has this visible index (the next visible one), if any
    const list = this.list;
    while (++k < list.length && list[k].deleted);
    if (k < list.length) {
      this.curVis = index;
      this.curK = k;
    }
    this.deltaDeletes.push(op);
    this.onLocalChange?.();
    return op;
  }

  /**
   * Apply a remote op. Idempotent: returns false when the op was already applied (or collected), true
   * otherwise. An op whose reference/target is not known yet is held and takes effect when it arrives.
   * ValidationError for a malformed op (nothing changes).
   */
  apply(op: RgaOp): boolean {
    checkOp(op);
    const key = dotKey(op.replica, op.counter);
    if (this.inserts.has(key) || this.deletes.has(key) || op.counter <= this.floor.get(op.replica)) return false;
    if (op.type === 'insert') {
      const copy: RgaInsertOp = {
        type: 'insert',
        replica: op.replica,
        counter: op.counter,
        seq: op.seq,
        ref: op.ref === null ? null : { replica: op.ref.replica, counter: op.ref.counter },
        bytes: new Uint8Array(op.bytes),
      };
      this.hint = -1;
      this.addInsert(copy);
      this.deltaInserts.push(copy);
    } else {
      const copy: RgaDeleteOp = { type: 'delete', replica: op.replica, counter: op.counter, target: { replica: op.target.replica, counter: op.target.counter } };
      this.addDelete(copy);
      this.deltaDeletes.push(copy);
    }
    return true;
  }

  /** Union with `other` (a full state or a delta); see the module comment for the GC floor. */
  merge(other: RGA<T>): boolean {
    checkMergeType(this, other);
    const floor = this.floor;
    let changed = false;
    const fresh: RgaInsertOp[] = [];
    for (const n of other.inserts.values()) {
      const op = n.op;
      if (this.inserts.has(n.key) || this.deletes.has(n.key) || op.counter <= floor.get(op.replica)) continue;
      fresh.push(op);
    }
    if (fresh.length > 0) {
      changed = true;
      // many inserts at once (a full state, a big delta): hold them all, then one ordering pass
      const bulk = fresh.length >= RELIST_FROM || (fresh.length >= RELIST_SMALL && fresh.length * 4 >= this.inserts.size);
      for (const op of fresh) {
        if (bulk) this.holdInsert(op);
        else {
          this.hint = -1;
          this.addInsert(op);
        }
        this.deltaInserts.push(op);
      }
      if (bulk) this.relist();
    }
    for (const [key, op] of other.deletes) {
      if (this.deletes.has(key) || this.inserts.has(key) || op.counter <= floor.get(op.replica)) continue;
      changed = true;
      this.addDelete(op);
      this.deltaDeletes.push(op);
    }
    if (!floor.dominates(other.floor)) {
      changed = true;
      // an element here whose insert the other's floor covers but which the other lacks was collected where
      // that floor was raised, so it had been deleted there (see the module comment)
      const theirs = other.floor;
      let collectedThere: Set<string> | undefined;
      for (const n of this.inserts.values()) {
        const op = n.op;
        if (op.counter <= theirs.get(op.replica) && !other.inserts.has(n.key)) (collectedThere ??= new Set()).add(n.key);
      }
      floor.merge(theirs);
      // own ops may have been collected elsewhere (a replica that restarts from a state whose floor covers
      // its collected ops): never reuse one of their counters
      this.ownCounter = Math.max(this.ownCounter, floor.get(this.replicaId));
      this.gc(collectedThere);
    }
    return changed;
  }

  /**
   * Remove tombstones that every replica has seen (see the module comment for the exact rule and the
   * contract on `stable`; entries beyond this replica's own version vector are capped to it). Returns the
   * number of elements removed. Visible content never changes.
   */
  collectGarbage(stable: VectorClock): number {
    // never raise the floor past what this replica has seen (a clock from the future would otherwise make
    // merge drop records it never had)
    const vv = this.versionVector();
    const bounded = new VectorClock();
    for (const [r, n] of stable.entries()) bounded.set(r, Math.min(n, vv.get(r)));
    this.floor.merge(bounded);
    return this.gc();
  }

  /**
   * The records added since the previous take (local ops, applied ops and records merged in), or null when
   * there are none. A delta never carries the GC floor (see the module comment: a floor without the records
   * it was computed against makes the receiver collect an element whose concurrent child it has not got yet).
   */
  takeDelta(): RGA<T> | null {
    if (this.deltaInserts.length === 0 && this.deltaDeletes.length === 0) return null;
    const d = new RGA<T>(this.replicaId);
    const bulk = this.deltaInserts.length >= RELIST_SMALL;
    for (const op of this.deltaInserts) {
      if (bulk) d.holdInsert(op);
      else d.addInsert(op);
    }
    for (const op of this.deltaDeletes) d.addDelete(op);
    if (bulk) d.relist();
    this.deltaInserts = [];
    this.deltaDeletes = [];
    return d;
  }

  /**
   * @internal Drop the pending delta without building it (the engine calls it after merging remote state,
   * which it does not re-send).
   */
  discardDelta(): void {
    this.deltaInserts = [];
    this.deltaDeletes = [];
  }

  clone(): RGA<T> {
    const c = new RGA<T>(this.replicaId);
    c.floor = this.floor.clone();
    for (const n of this.inserts.values()) c.holdInsert(n.op);
    for (const op of this.deletes.values()) c.addDelete(op);
    c.relist();
    c.deltaInserts = this.deltaInserts.slice();
    c.deltaDeletes = this.deltaDeletes.slice();
    c.ownCounter = Math.max(c.ownCounter, this.ownCounter);
    return c;
  }

  /** The highest op counter seen per replica (records held plus the GC floor). */
  versionVector(): VectorClock {
    const vc = this.floor.clone();
    for (const n of this.inserts.values()) vc.set(n.op.replica, n.op.counter);
    for (const op of this.deletes.values()) vc.set(op.replica, op.counter);
    return vc;
  }

  /**
   * Per replica, the largest n such that every op 1..n of that replica is held here or below the floor.
   * Unlike `versionVector` (the highest op seen) it never covers an op this replica lacks, so it is what a
   * replica may report as seen for tombstone collection (a state merged out of causal order can have gaps).
   */
  seenPrefix(): VectorClock {
    const have = new Map<string, number[]>();
    const note = (r: string, c: number): void => {
      let a = have.get(r);
      if (a === undefined) have.set(r, (a = []));
      a.push(c);
    };
    for (const n of this.inserts.values()) note(n.op.replica, n.op.counter);
    for (const op of this.deletes.values()) note(op.replica, op.counter);
    const out = this.floor.clone();
    for (const [r, cs] of have) {
      cs.sort((x, y) => x - y);
      let n = this.floor.get(r);
      for (const c of cs) {
        if (c <= n) continue;
        if (c !== n + 1) break;
        n = c;
      }
      out.set(r, n);
    }
    return out;
  }

  /** The GC floor (max of the stable clocks collected with). */
  get gcFloor(): VectorClock {
    return this.floor.clone();
  }

  /** Causal-delivery dependencies of an op for `CausalBuffer`: its own dot plus the dot it refers to. */
  static opDeps(op: RgaOp): Record<string, number> {
    const deps: Record<string, number> = Object.create(null);
    const dep = op.type === 'insert' ? op.ref : op.target;
    if (dep !== null) deps[dep.replica] = dep.counter;
    deps[op.replica] = op.counter;
    return deps;
  }

  encode(): Uint8Array {
    const ins = [...this.inserts.values()].map((n) => n.op).sort(compareDots);
    const dels = [...this.deletes.values()].sort(compareDots);
    const ids = new Set<string>();
    for (const op of ins) {
      ids.add(op.replica);
      if (op.ref !== null) ids.add(op.ref.replica);
    }
    for (const op of dels) {
      ids.add(op.replica);
      ids.add(op.target.replica);
    }
    const table = [...ids].sort();
    const idx = new Map(table.map((id, i) => [id, i]));
    const w = new Writer(64 + ins.length * 16 + dels.length * 8);
    w.u8(CODEC_VERSION);
    w.u8(this.typeTag);
    this.floor.write(w);
    w.varuint(table.length);
    for (const id of table) w.string(id);
    w.varuint(ins.length);
    for (const op of ins) w.varuint(idx.get(op.replica)!);
    for (const op of ins) w.varuint(op.counter);
    for (const op of ins) w.varuint(op.seq);
    for (const op of ins) w.varuint(op.ref === null ? 0 : idx.get(op.ref.replica)! + 1);
    for (const op of ins) if (op.ref !== null) w.varuint(op.ref.counter);
    for (const op of ins) w.bytes(op.bytes);
    w.varuint(dels.length);
    for (const op of dels) w.varuint(idx.get(op.replica)!);
    for (const op of dels) w.varuint(op.counter);
    for (const op of dels) w.varuint(idx.get(op.target.replica)!);
    for (const op of dels) w.varuint(op.target.counter);
    return w.finish();
  }

  /** Decode canonical bytes (DecodeError on any malformed input); `replicaId` is the local replica for further edits (default 'decoded', see `DECODED_REPLICA_ID`). */
  static decode<T = unknown>(bytes: Uint8Array, replicaId = DECODED_REPLICA_ID): RGA<T> {
    const r = new Reader(bytes);
    readHeader(r, CRDT_TYPE.RGA);
    const floor = VectorClock.read(r);
    const nIds = r.count(1);
    const table: string[] = [];
    for (let i = 0; i < nIds; i++) {
      const id = r.string();
      if (i > 0 && !(table[i - 1] < id)) throw new DecodeError('RGA replica ids not strictly sorted');
      table.push(id);
    }
    const replicaAt = (i: number): string => {
      if (i >= nIds) throw new DecodeError(`RGA replica index ${i} out of range`);
      return table[i];
    };
    const counter = (): number => {
      const c = r.varuint();
      if (c < 1) throw new DecodeError('RGA counter must be >= 1');
      return c;
    };
    // an insert takes at least 6 bytes: replica, counter, seq, ref, value length, one value byte
    const nIns = r.count(6);
    const insReplica: string[] = [];
    const insCounter: number[] = [];
    const insSeq: number[] = [];
    const insRef: number[] = [];
    for (let i = 0; i < nIns; i++) insReplica.push(replicaAt(r.varuint()));
    for (let i = 0; i < nIns; i++) insCounter.push(counter());
    for (let i = 0; i < nIns; i++) insSeq.push(counter());
    for (let i = 0; i < nIns; i++) {
      const x = r.varuint();
      if (x > nIds) throw new DecodeError(`RGA ref replica index ${x - 1} out of range`);
      insRef.push(x);
    }
    const ins: RgaInsertOp[] = [];
    const refs: (Dot | null)[] = [];
    for (let i = 0; i < nIns; i++) refs.push(insRef[i] === 0 ? null : { replica: table[insRef[i] - 1], counter: counter() });
    for (let i = 0; i < nIns; i++) {
      const b = new Uint8Array(r.bytes());
      if (b.length === 0) throw new DecodeError('RGA empty value');
      decodeValue(b); // validates
      const op: RgaInsertOp = { type: 'insert', replica: insReplica[i], counter: insCounter[i], seq: insSeq[i], ref: refs[i], bytes: b };
      if (i > 0 && compareDots(ins[i - 1], op) >= 0) throw new DecodeError('RGA inserts not strictly sorted');
      ins.push(op);
    }
    // a delete takes at least 4 bytes
    const nDel = r.count(4);
    const dels: RgaDeleteOp[] = [];
    const delReplica: string[] = [];
    const delCounter: number[] = [];
    const tgtReplica: string[] = [];
    for (let i = 0; i < nDel; i++) delReplica.push(replicaAt(r.varuint()));
    for (let i = 0; i < nDel; i++) delCounter.push(counter());
    for (let i = 0; i < nDel; i++) tgtReplica.push(replicaAt(r.varuint()));
    for (let i = 0; i < nDel; i++) {
      const op: RgaDeleteOp = { type: 'delete', replica: delReplica[i], counter: delCounter[i], target: { replica: tgtReplica[i], counter: counter() } };
      if (i > 0 && compareDots(dels[i - 1], op) >= 0) throw new DecodeError('RGA deletes not strictly sorted');
      dels.push(op);
    }
    r.done();
    const rga = new RGA<T>(replicaId);
    rga.floor = floor;
    const keys = new Set<string>();
    for (const op of ins) keys.add(dotKey(op.replica, op.counter));
    for (const op of dels) {
      if (keys.has(dotKey(op.replica, op.counter))) throw new DecodeError('RGA dot used by an insert and a delete');
    }
    for (const op of ins) rga.holdInsert(op);
    for (const op of dels) rga.addDelete(op);
    rga.relist();
    rga.ownCounter = Math.max(rga.ownCounter, floor.get(replicaId));
    return rga;
  }

  /** Binary encoding of one op. */
  static encodeOp(op: RgaOp): Uint8Array {
    checkOp(op);
    const w = new Writer(32 + (op.type === 'insert' ? op.bytes.length : 0));
    w.u8(CODEC_VERSION);
    w.u8(CRDT_TYPE.RGA);
    w.u8(op.type === 'insert' ? OP_INSERT : OP_DELETE);
    w.string(op.replica);
    w.varuint(op.counter);
    if (op.type === 'insert') {
      w.varuint(op.seq);
      if (op.ref === null) w.u8(0);
      else {
        w.u8(1);
        w.string(op.ref.replica);
        w.varuint(op.ref.counter);
      }
      w.bytes(op.bytes);
    } else {
      w.string(op.target.replica);
      w.varuint(op.target.counter);
    }
    return w.finish();
  }

  /** Decode an op from `encodeOp`. DecodeError on any malformed input. */
  static decodeOp(bytes: Uint8Array): RgaOp {
    const r = new Reader(bytes);
    readHeader(r, CRDT_TYPE.RGA);
    const kind = r.u8();
    const replica = r.string();
    const counter = r.varuint();
    if (counter < 1) throw new DecodeError('RGA op counter must be >= 1');
    let op: RgaOp;
    if (kind === OP_INSERT) {
      const seq = r.varuint();
      if (seq < 1) throw new DecodeError('RGA op seq must be >= 1');
      const hasRef = r.u8();
      let ref: Dot | null = null;
      if (hasRef === 1) {
        const rr = r.string();
        const rc = r.varuint();
        if (rc < 1) throw new DecodeError('RGA ref counter must be >= 1');
        ref = { replica: rr, counter: rc };
      } else if (hasRef !== 0) throw new DecodeError(`bad RGA ref flag ${hasRef}`);
      const b = new Uint8Array(r.bytes());
      if (b.length === 0) throw new DecodeError('RGA empty value');
      decodeValue(b); // validates
      op = { type: 'insert', replica, counter, seq, ref, bytes: b };
    } else if (kind === OP_DELETE) {
      const tr = r.string();
      const tc = r.varuint();
      if (tc < 1) throw new DecodeError('RGA target counter must be >= 1');
      op = { type: 'delete', replica, counter, target: { replica: tr, counter: tc } };
    } else {
      throw new DecodeError(`unknown RGA op kind ${kind}`);
    }
    r.done();
    return op;
  }

  // --- internals -----------------------------------------------------------------------------------

  private noteDot(replica: string, counter: number): void {
    if (replica === this.replicaId && counter > this.ownCounter) this.ownCounter = counter;
  }

  private addInsert(op: RgaInsertOp): void {
    const node = this.holdInsert(op);
    if (node.refKey === null) {
      this.integrate(node, null);
      return;
    }
    const ref = this.inserts.get(node.refKey);
    if (ref !== undefined && ref.integrated) this.integrate(node, ref);
    else this.park(node);
  }

  /** Record an insert without placing it (`relist` places it with the rest). */
  private holdInsert(op: RgaInsertOp): Node {
    const node = new Node(op);
    this.inserts.set(node.key, node);
    this.noteDot(op.replica, op.counter);
    if (op.seq > this.maxSeq) this.maxSeq = op.seq;
    if (this.byTarget.has(node.key)) node.deleted = true;
    return node;
  }

  /**
   * Rebuild the list (document order), every element's placed flag and child count, the visible count and
   * the orphans from the inserts held, in one rgaOrder kernel call: the same result as placing the inserts
   * one by one in any order (see `integrate`), in O(n log n).
   */
  private relist(): void {
    const nodes = [...this.inserts.values()];
    const n = nodes.length;
    for (let i = 0; i < n; i++) nodes[i].idx = i;
    const rankOf = new Map<string, number>();
    for (const node of nodes) rankOf.set(node.op.replica, 0);
    const table = [...rankOf.keys()].sort();
    for (let r = 0; r < table.length; r++) rankOf.set(table[r], r);
    const parent = new Int32Array(n), seq = new Float64Array(n), rank = new Uint32Array(n), counter = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const node = nodes[i], op = node.op;
      parent[i] = node.refKey === null ? -1 : (this.inserts.get(node.refKey)?.idx ?? -2);
      seq[i] = op.seq;
      rank[i] = rankOf.get(op.replica)!;
      counter[i] = op.counter;
    }
    const order = new Int32Array(n);
    const k = getKernel().rgaOrder(parent, seq, rank, counter, n, order);
    // nothing changed above: from here on the new list replaces the old
    for (let i = 0; i < n; i++) {
      nodes[i].integrated = false;
      nodes[i].children = 0;
    }
    const list: Node[] = new Array(k);
    let visible = 0;
    for (let j = 0; j < k; j++) {
      const i = order[j];
      const node = nodes[i];
      node.integrated = true;
      list[j] = node;
      if (!node.deleted) visible++;
      if (parent[i] >= 0) nodes[parent[i]].children++;
    }
    this.list = list;
    this.visible = visible;
    // an element not placed waits for its reference, unless that is placed: then it is stamped no later than
    // its reference and never shown (stale), as `integrate` leaves it
    this.orphans = new Map();
    this.stale = new Map();
    for (let i = 0; i < n; i++) {
      const node = nodes[i];
      if (node.integrated) continue;
      const p = parent[i];
      if (p >= 0 && nodes[p].integrated) this.holdStale(node);
      else this.park(node);
    }
    this.hint = -1;
    this.curVis = -1;
  }

  /** Keep an insert not stamped after its (placed) reference: never shown, listed under its reference. */
  private holdStale(node: Node): void {
    const l = this.stale.get(node.refKey!);
    if (l === undefined) this.stale.set(node.refKey!, [node]);
    else l.push(node);
  }

  private park(node: Node): void {
    const list = this.orphans.get(node.refKey!);
    if (list === undefined) this.orphans.set(node.refKey!, [node]);
    else list.push(node);
  }

  /** Put `node` (its reference integrated) into the list, then every orphan waiting on it. */
  private integrate(first: Node, firstRef: Node | null): void {
    const stack: [Node, Node | null][] = [[first, firstRef]];
    while (stack.length > 0) {
      const [node, ref] = stack.pop()!;
      if (ref !== null && node.op.seq <= ref.op.seq) {
        this.holdStale(node); // invalid: kept in the state, never shown
        continue;
      }
      const list = this.list;
      let i = 0;
      if (ref !== null) {
        const h = this.hint;
        i = (h >= 0 && h < list.length && list[h] === ref ? h : list.indexOf(ref)) + 1;
      }
      while (i < list.length && before(list[i].op, node.op)) i++;
      if (i === list.length) list.push(node);
      else list.splice(i, 0, node);
      this.hint = i;
      this.curVis = -1;
      node.integrated = true;
      if (ref !== null) ref.children++;
      if (!node.deleted) this.visible++;
      const waiting = this.orphans.get(node.key);
      if (waiting !== undefined) {
        this.orphans.delete(node.key);
        for (const w of waiting) stack.push([w, node]);
      }
    }
  }

  private addDelete(op: RgaDeleteOp): void {
    const key = dotKey(op.replica, op.counter);
    this.deletes.set(key, op);
    this.noteDot(op.replica, op.counter);
    const tkey = dotKey(op.target.replica, op.target.counter);
    const list = this.byTarget.get(tkey);
    if (list === undefined) this.byTarget.set(tkey, [op]);
    else list.push(op);
    const node = this.inserts.get(tkey);
    if (node !== undefined && !node.deleted) {
      node.deleted = true;
      if (node.integrated) {
        this.visible--;
        this.curVis = -1;
      }
    }
  }

  /**
   * List index of the i-th visible element, or -1. Walks from the cursor (the last position looked up or
   * edited) when that is closer than the start, so sequential edits cost O(distance), not O(n).
   */
  private indexOfVisible(i: number): number {
    if (!Number.isInteger(i) || i < 0 || i >= this.visible) return -1;
    const list = this.list;
    if (this.visible === list.length) return i;
    let v: number;
    let k: number;
    const cv = this.curVis;
    if (cv >= 0 && (i >= cv || cv - i < i)) {
      v = cv;
      k = this.curK;
      while (v < i) if (!list[++k].deleted) v++;
      while (v > i) if (!list[--k].deleted) v--;
    } else {
      v = -1;
      k = -1;
      while (v < i) if (!list[++k].deleted) v++;
    }
    this.curVis = i;
    this.curK = k;
    return k;
  }

  private covered(replica: string, counter: number): boolean {
    return counter <= this.floor.get(replica);
  }

  /**
   * Collect with the current floor (see the module comment); `collectedThere`: elements a merged state's
   * floor shows collected elsewhere, collected here as leaves whether or not their delete arrived.
   */
  private gc(collectedThere?: Set<string>): number {
    const list = this.list;
    const keep: Node[] = [];
    let removed = 0;
    for (let k = list.length - 1; k >= 0; k--) {
      const n = list[k];
      const there = collectedThere !== undefined && collectedThere.has(n.key);
      if ((n.deleted || there) && this.collectable(n, there)) {
        this.inserts.delete(n.key);
        this.dropCoveredDeletes(n.key);
        // its never-shown (stale) inserts now wait for an element that is gone, as in a state rebuilt from
        // the records (collectDeadOrphans below may drop them)
        const st = this.stale.get(n.key);
        if (st !== undefined) {
          this.stale.delete(n.key);
          for (const x of st) this.park(x);
        }
        if (!n.deleted) this.visible--;
        if (n.refKey !== null) {
          const ref = this.inserts.get(n.refKey);
          if (ref !== undefined) ref.children--;
        }
        removed++;
        continue;
      }
      keep.push(n);
    }
    if (removed > 0) this.list = keep.reverse();
    this.curVis = -1;
    if (this.orphans.size > 0) removed += this.collectDeadOrphans(collectedThere);
    // deletes whose target was collected (earlier, or re-delivered by a merge)
    for (const [tkey, dels] of this.byTarget) {
      if (this.inserts.has(tkey)) continue;
      const t = dels[0].target;
      if (this.covered(t.replica, t.counter)) this.dropCoveredDeletes(tkey);
    }
    this.hint = -1;
    return removed;
  }

  /**
   * Drop the deletes of a collected element that the floor covers. One the floor does not cover yet (a
   * concurrent delete by another replica) is kept until it does: dropped, it would leave a gap in its
   * replica's ops here (`seenPrefix` would stop below it for good, and so would collection), while replicas
   * that receive it later keep it as well.
   */
  private dropCoveredDeletes(tkey: string): void {
    const dels = this.byTarget.get(tkey);
    if (dels === undefined) return;
    const keep: RgaDeleteOp[] = [];
    for (const d of dels) {
      if (this.covered(d.replica, d.counter)) this.deletes.delete(dotKey(d.replica, d.counter));
      else keep.push(d);
    }
    if (keep.length === 0) this.byTarget.delete(tkey);
    else if (keep.length !== dels.length) this.byTarget.set(tkey, keep);
  }

  /**
   * Orphans below an element collected here (absent, covered by the floor) can never be integrated (only
   * where the collection contract was broken, see the module comment). One the floor covers that is deleted
   * (a covered delete) or shown collected by a merged state (`collectedThere`) is shown nowhere and
   * collectable wherever it is held: drop it, children before their reference, so whole dead chains go in
   * one call. Linear in the orphans below such elements.
   */
  private collectDeadOrphans(collectedThere?: Set<string>): number {
    let removed = 0;
    for (const [rootKey, top] of [...this.orphans]) {
      if (this.inserts.has(rootKey)) continue;
      const r = top[0].op.ref!;
      if (!this.covered(r.replica, r.counter)) continue;
      // pre-order over the orphans below rootKey; walked backwards, every child comes before its reference
      const order: Node[] = [];
      const stack = [rootKey];
      const seen = new Set<string>();
      // orphans below each key not yet collected
      const left = new Map<string, number>();
      while (stack.length > 0) {
        const k = stack.pop()!;
        if (seen.has(k)) continue;
        seen.add(k);
        const kids = this.orphans.get(k);
        if (kids === undefined) continue;
        left.set(k, kids.length);
        for (const n of kids) (order.push(n), stack.push(n.key));
      }
      const gone = new Set<Node>();
      for (let i = order.length - 1; i >= 0; i--) {
        const n = order[i];
        if ((left.get(n.key) ?? 0) > 0 || !this.covered(n.op.replica, n.op.counter)) continue;
        const there = collectedThere !== undefined && collectedThere.has(n.key);
        if (!there && !this.deleteCovered(n)) continue;
        gone.add(n);
        left.set(n.refKey!, left.get(n.refKey!)! - 1);
        this.inserts.delete(n.key);
        this.dropCoveredDeletes(n.key);
        removed++;
      }
      if (gone.size === 0) continue;
      for (const k of seen) {
        const kids = this.orphans.get(k);
        if (kids === undefined) continue;
        const keep = kids.filter((n) => !gone.has(n));
        if (keep.length === 0) this.orphans.delete(k);
        else if (keep.length !== kids.length) this.orphans.set(k, keep);
      }
    }
    return removed;
  }

  private collectable(n: Node, collectedThere: boolean): boolean {
    const op = n.op;
    if (n.children > 0 || !this.covered(op.replica, op.counter) || this.orphans.has(n.key)) return false;
    return collectedThere || this.deleteCovered(n);
  }

  /** n is deleted by a delete the floor covers. */
  private deleteCovered(n: Node): boolean {
    const dels = this.byTarget.get(n.key);
    return dels !== undefined && dels.some((d) => this.covered(d.replica, d.counter));
  }

  /**
   * Release this instance's state now and retire it: any later use throws `CrdtError` (code `E_DISPOSED`).
   * Idempotent. Dropping an instance without it is fine too (the garbage collector frees it; see dispose.ts).
   */
  dispose(): void {
    disposeInstance(this);
  }

  /** True once `dispose()` ran (a disposed instance answers only this, `dispose`, `replicaId`, `typeTag`). */
  get disposed(): boolean {
    return false;
  }
}
