/**
 * Argument checks shared by both kernel backends, so that bad input gets the same `RangeError` from either
 * backend before anything is read or written (a wasm kernel must never read past the data it was given).
 * Sortedness of dot and LWW lists is the caller's contract and is not checked (both backends run the same
 * algorithm, so even unsorted input gives identical bytes).
 */
import type { CausalContextColumns, DotColumns, LwwColumns } from './types.js';

function isCount(n: number): boolean {
  return Number.isInteger(n) && n >= 0 && n <= 0x7fffffff;
}

export function checkCount(n: number, what: string): void {
  if (!isCount(n)) throw new RangeError(`${what} must be an integer in [0, 2^31), got ${n}`);
}

export function checkRows(manyLength: number, dim: number, rows: number): void {
  checkCount(dim, 'dim');
  if (rows * dim > manyLength) throw new RangeError(`many holds ${manyLength} slots, need ${rows} rows x ${dim}`);
}

export function checkMergeMany(manyLength: number, dim: number): number {
  checkCount(dim, 'dim');
  if (dim === 0) {
    if (manyLength !== 0) throw new RangeError('dim 0 needs an empty many array');
    return 0;
  }
  if (manyLength % dim !== 0) throw new RangeError(`many.length ${manyLength} is not a multiple of dim ${dim}`);
  return manyLength / dim;
}

export function checkDots(d: DotColumns, what: string): void {
  checkCount(d.n, `${what}.n`);
  if (d.keys.length < 2 * d.n || d.replicas.length < d.n || d.counters.length < d.n) {
    throw new RangeError(`${what}: columns shorter than n = ${d.n}`);
  }
}

export function checkContext(c: CausalContextColumns, what: string): void {
  checkCount(c.cloudN, `${what}.cloudN`);
  if (c.cloudReplicas.length < c.cloudN || c.cloudCounters.length < c.cloudN) {
    throw new RangeError(`${what}: cloud columns shorter than cloudN = ${c.cloudN}`);
  }
}

export function checkLww(l: LwwColumns, what: string): void {
  checkCount(l.n, `${what}.n`);
  if (l.keys.length < 2 * l.n || l.ts.length < l.n || l.ranks.length < l.n) {
    throw new RangeError(`${what}: columns shorter than n = ${l.n}`);
  }
}

export function checkOut(outLength: number, need: number, what = 'out'): void {
  if (outLength < need) throw new RangeError(`${what} has room for ${outLength}, needs ${need}`);
}

export function checkRange(bytesLength: number, start: number, end: number): void {
  if (!isCount(start) || !isCount(end) || start > end || end > bytesLength) {
    throw new RangeError(`byte range [${start}, ${end}) outside [0, ${bytesLength})`);
  }
}

export function checkRanges(bytesLength: number, offsets: Uint32Array, lengths: Uint32Array, outLength: number): void {
  const n = offsets.length;
  if (lengths.length < n) throw new RangeError(`lengths has ${lengths.length} entries, offsets ${n}`);
  checkOut(outLength, 2 * n);
  for (let k = 0; k < n; k++) {
    if (offsets[k] + lengths[k] > bytesLength) {
      throw new RangeError(`range ${k} [${offsets[k]}, ${offsets[k] + lengths[k]}) outside [0, ${bytesLength})`);
    }
  }
}

export function checkTree(keysLength: number, entryLength: number, n: number, depth: number, outLength: number): void {
  checkCount(n, 'n');
  if (!Number.isInteger(depth) || depth < 0 || depth > 16) throw new RangeError(`depth must be 0..16, got ${depth}`);
  if (keysLength < 2 * n || entryLength < 2 * n) throw new RangeError(`hash columns shorter than n = ${n}`);
  checkOut(outLength, 2 ** (depth + 2));
}

export function checkRga(parent: Int32Array, seqLength: number, rankLength: number, counterLength: number, n: number, outLength: number): void {
  checkCount(n, 'n');
  if (n > 1 << 26) throw new RangeError(`n must be at most 2^26, got ${n}`); // its 16n bytes of scratch stay far below 4 GiB
  if (parent.length < n || seqLength < n || rankLength < n || counterLength < n) throw new RangeError(`columns shorter than n = ${n}`);
  checkOut(outLength, n);
  for (let i = 0; i < n; i++) {
    const p = parent[i];
    if (p < -2 || p >= n) throw new RangeError(`parent[${i}] = ${p} outside [-2, ${n})`);
  }
}
