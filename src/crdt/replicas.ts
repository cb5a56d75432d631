/**
 * Replica-id interning: each CRDT instance maps replica id strings to small dense indices (0, 1, 2, ...) so its
 * per-replica data lives in flat typed arrays that the kernels take. Indices are per instance; before a kernel
 * merges two instances' arrays, `mapFrom` maps the other's table into this one.
 */

import { ValidationError } from '../errors.js';
import { MAX_REPLICA_ID_LENGTH } from './causal-context.js';

/**
 * Every CRDT constructor's check of its replica id: a non-empty string of at most MAX_REPLICA_ID_LENGTH
 * characters, else ValidationError (as SyncEngine checks its own).
 */
export function checkReplicaId(replicaId: unknown): string {
  if (typeof replicaId !== 'string' || replicaId.length === 0 || replicaId.length > MAX_REPLICA_ID_LENGTH) {
    throw new ValidationError(`replicaId must be a non-empty string of at most ${MAX_REPLICA_ID_LENGTH} characters, got ${typeof replicaId === 'string' ? `${replicaId.length} characters` : typeof replicaId}`);
  }
  return replicaId;
}

/** Tables up to this size are searched linearly (faster than a Map for a handful of short ids). */
const LINEAR_MAX = 8;

/** An append-only table of replica ids with their dense indices. */
export class ReplicaTable {
  /** Replica id by index. */
  readonly ids: string[] = [];
  /** Index by id, built only once the table outgrows a linear search. */
  private index: Map<string, number> | null = null;

  get size(): number {
    return this.ids.length;
  }

  /** The index of `id`, adding it when new. */
  intern(id: string): number {
    const i = this.find(id);
    if (i >= 0) return i;
    const ids = this.ids;
    const n = ids.length;
    ids.push(id);
    if (this.index !== null) this.index.set(id, n);
    else if (n + 1 > LINEAR_MAX) {
      const m = new Map<string, number>();
      for (let k = 0; k <= n; k++) m.set(ids[k], k);
      this.index = m;
    }
    return n;
  }

  /** The index of `id`, or -1 when unknown. */
  find(id: string): number {
    if (this.index !== null) {
      const i = this.index.get(id);
      return i === undefined ? -1 : i;
    }
    const ids = this.ids;
    for (let k = 0; k < ids.length; k++) if (ids[k] === id) return k;
    return -1;
  }

  /**
   * Interns every id of `other` and returns, for each index j of `other`, this table's index for the same id.
   * `out` is reused when large enough.
   */
  mapFrom(other: ReplicaTable, out?: Uint32Array): Uint32Array {
    const n = other.ids.length;
    const map = out && out.length >= n ? out : new Uint32Array(Math.max(8, n));
    for (let j = 0; j < n; j++) map[j] = this.intern(other.ids[j]);
    return map;
  }

  /**
   * Indices of this table sorted by replica id string (the canonical encoding order). Cached until the next
   * new id; callers must not modify the returned array.
   */
  sortedIndices(): readonly number[] {
    if (this.sorted !== null && this.sorted.length === this.ids.length) return this.sorted;
    const ids = this.ids;
    const order = ids.map((_, i) => i);
    order.sort((a, b) => (ids[a] < ids[b] ? -1 : ids[a] > ids[b] ? 1 : 0));
    this.sorted = order;
    return order;
  }
  private sorted: number[] | null = null;

  clone(): ReplicaTable {
    const t = new ReplicaTable();
    for (const id of this.ids) t.intern(id);
    return t;
  }
}

/** Compare replica ids by their string order (the global tie-break order). */
export function compareReplicaIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** A Float64Array of at least `n` slots holding `arr`'s contents (grown by doubling; zero-filled). */
export function growF64(arr: Float64Array, n: number): Float64Array {
  if (arr.length >= n) return arr;
  let size = Math.max(4, arr.length * 2);
  while (size < n) size *= 2;
  const next = new Float64Array(size);
  next.set(arr);
  return next;
}

/** Module scratch buffers for aligning another instance's slots into this instance's index space. */
let scratchA = new Float64Array(64);
let scratchB = new Float64Array(64);
let scratchMap = new Uint32Array(64);

/** A zeroed scratch Float64Array of at least n slots (first scratch; valid until the next call). */
export function scratchF64(n: number): Float64Array {
  if (scratchA.length < n) scratchA = new Float64Array(Math.max(n, scratchA.length * 2));
  else scratchA.fill(0, 0, n);
  return scratchA;
}

/** A second zeroed scratch Float64Array of at least n slots. */
export function scratchF64b(n: number): Float64Array {
  if (scratchB.length < n) scratchB = new Float64Array(Math.max(n, scratchB.length * 2));
  else scratchB.fill(0, 0, n);
  return scratchB;
}

/** A scratch Uint32Array of at least n slots (contents unspecified). */
export function scratchU32(n: number): Uint32Array {
  if (scratchMap.length < n) scratchMap = new Uint32Array(Math.max(n, scratchMap.length * 2));
  return scratchMap;
}

/**
 * The replica id of an instance decoded without one (`T.decode(bytes)`): 'decoded', the same for every such
 * instance. Such an instance is for reading and merging: merged into a replica, its id adds one entry to that
 * replica's table once (a new id per decode added one per merge: 50,000 `a.merge(T.decode(bytes))` took 13.6 s
 * where they took 0.3 s). To write on a decoded instance, pass your replica id to `decode`: two instances decoded
 * without one and both written on are one replica to the CRDT, so merging them keeps one of their writes.
 */
export const DECODED_REPLICA_ID = 'decoded';
