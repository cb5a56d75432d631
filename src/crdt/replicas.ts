/**
 * Replica-id interning: each CRDT instance maps replica id strings to small dense indices (0, 1, 2, ...) so its
 * per-replica data lives in flat typed arrays that the kernels take. Indices are per instance; before a kernel
 * merges two instances' arrays, `alignInto` maps the other's table into this one.
 */

/** An append-only table of replica ids with their dense indices. */
export class ReplicaTable {
  /** Replica id by index. */
  readonly ids: string[] = [];
  private readonly index = new Map<string, number>();

  get size(): number {
    return this.ids.length;
  }

  /** The index of `id`, adding it when new. */
  intern(id: string): number {
    const i = this.index.get(id);
    if (i !== undefined) return i;
    const n = this.ids.length;
    this.ids.push(id);
    this.index.set(id, n);
    return n;
  }

  /** The index of `id`, or -1 when unknown. */
  find(id: string): number {
    const i = this.index.get(id);
    return i === undefined ? -1 : i;
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

  /** Indices of this table sorted by replica id string (the canonical encoding order). */
  sortedIndices(): number[] {
    const ids = this.ids;
    const order = ids.map((_, i) => i);
    order.sort((a, b) => (ids[a] < ids[b] ? -1 : ids[a] > ids[b] ? 1 : 0));
    return order;
  }

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
