/**
 * The WebAssembly kernel backend: wraps an instance of build/release.wasm (assembly/index.ts) as a `Kernel`.
 *
 * Each call is one boundary crossing: the inputs are copied into a scratch arena in linear memory (one
 * `TypedArray.set` per column), the export runs, the outputs are copied back. The arena restarts at the same
 * offset on every call, so memory only ever grows to the largest single batch (never with the number of
 * calls); growth goes through `memory.grow` and the cached typed-array views are refreshed whenever
 * `memory.buffer` changed.
 *
 * Zero-copy variant: `residentF64(n)` / `residentU32(n)` / `residentU8(n)` / `residentI32(n)` hand out typed
 * arrays that live INSIDE linear memory (a pinned region below the arena). When a kernel argument is such an
 * array it is used in place (no copy in, and for outputs no copy out). Resident arrays stay valid until
 * `releaseResident()`, or until linear memory grows (growth detaches every view on the old buffer; call
 * `reserve(bytes)` first so the arena never needs to grow; a kernel handed a detached resident array throws a
 * `RangeError` instead of computing on nothing).
 *
 * Linear memory grows only through this wrapper (`memory.grow` from JS); the kernels never grow it.
 */
import {
  checkContext,
  checkDots,
  checkLww,
  checkMergeMany,
  checkOut,
  checkRange,
  checkRanges,
  checkRows,
  checkRga,
  checkTree,
} from './check.js';
import type { CausalContextColumns, DotColumns, Kernel, LwwColumns, Ord } from './types.js';

/** The exports of assembly/index.ts (pointers are byte offsets into `memory`). */
export interface KernelExports {
  memory: WebAssembly.Memory;
  heapBase(): number;
  vcCompare(a: number, an: number, b: number, bn: number): number;
  vcDominates(a: number, an: number, b: number, bn: number): number;
  vcMerge(a: number, an: number, b: number, bn: number, out: number, on: number): void;
  counterMerge(a: number, an: number, b: number, bn: number, out: number, on: number): number;
  vcCompareMany(one: number, on: number, many: number, dim: number, rows: number, out: number): void;
  vcMergeMany(many: number, dim: number, rows: number, out: number, on: number): void;
  dotMerge(
    ak: number, ar: number, ac: number, an: number, avv: number, avvn: number, acr: number, acc: number, acn: number,
    bk: number, br: number, bc: number, bn: number, bvv: number, bvvn: number, bcr: number, bcc: number, bcn: number,
    out: number,
  ): number;
  lwwMerge(ak: number, at: number, ar: number, an: number, bk: number, bt: number, br: number, bn: number, out: number): number;
  rgaOrder(parent: number, seq: number, rank: number, ctr: number, n: number, out: number, scratch: number): number;
  xxhash64(p: number, len: number, seed: number, out: number): void;
  xxhash64Many(bytes: number, offsets: number, lengths: number, n: number, seed: number, out: number): void;
  hashTree(keys: number, entries: number, n: number, depth: number, out: number): void;
}

/** The wasm `Kernel` plus access to its linear memory for zero-copy callers and tests. */
export interface WasmKernel extends Kernel {
  readonly name: 'wasm';
  readonly memory: WebAssembly.Memory;
  /** A Float64Array of n slots inside linear memory (zeroed); kernels use it in place. */
  residentF64(n: number): Float64Array;
  /** A Uint32Array of n words inside linear memory (zeroed). */
  residentU32(n: number): Uint32Array;
  /** An Int32Array of n words inside linear memory (zeroed). */
  residentI32(n: number): Int32Array;
  /** A Uint8Array of n bytes inside linear memory (zeroed). */
  residentU8(n: number): Uint8Array;
  /** Frees every resident array at once (their views must not be used afterwards). */
  releaseResident(): void;
  /** Grows linear memory now so that the arena holds `bytes` above the resident region without growing later. */
  reserve(bytes: number): void;
}

const PAGE = 65536;

type Typed = Float64Array | Uint32Array | Int32Array | Uint8Array;

/** Rounds up to a multiple of 16 (SIMD-friendly alignment) without 32-bit overflow. */
function align16(x: number): number {
  return Math.ceil(x / 16) * 16;
}

/**
 * Linear-memory bookkeeping: [heapBase, pinTop) holds resident arrays, [pinTop, top) the current call's
 * scratch. Inputs are placed in phase 1 (`input`/`output` hand back pointers), `commit()` grows memory if
 * needed and performs the pending copies, the export runs, then `back*` copy outputs out.
 */
class Arena {
  readonly memory: WebAssembly.Memory;
  readonly base: number;
  buf!: ArrayBuffer;
  u8!: Uint8Array;
  u32!: Uint32Array;
  i32!: Int32Array;
  f64!: Float64Array;
  pinTop: number;
  top: number;
  private readonly pendSrc: (Typed | null)[] = [];
  private readonly pendPtr: number[] = [];
  private readonly pendN: number[] = [];
  private np = 0;
  readonly residents = new WeakSet<Typed>();

  constructor(memory: WebAssembly.Memory, heapBase: number) {
    this.memory = memory;
    this.base = align16(heapBase);
    this.pinTop = this.base;
    this.top = this.base;
    this.refresh();
  }

  refresh(): void {
    const b = this.memory.buffer;
    if (b === this.buf) return;
    this.buf = b;
    this.u8 = new Uint8Array(b);
    this.u32 = new Uint32Array(b);
    this.i32 = new Int32Array(b);
    this.f64 = new Float64Array(b);
  }

  ensure(end: number): void {
    const have = this.buf.byteLength;
    if (end <= have) return;
    this.memory.grow(Math.ceil((end - have) / PAGE));
    this.refresh();
  }

  reset(): void {
    this.top = this.pinTop;
    this.np = 0;
    // memory grows only through ensure(); a detached buffer means someone grew it directly: re-read it
    if (this.buf.byteLength === 0) this.refresh();
  }

  alloc(bytes: number): number {
    const p = this.top;
    this.top = align16(p + bytes);
    return p;
  }

  /** Pointer for an input of n elements of `a`: in place when resident, else a scratch slot filled at commit. */
  input(a: Typed, n: number): number {
    if (a.buffer === this.buf) return a.byteOffset;
    if (a.length === 0 && this.residents.has(a)) throw stale();
    if (n === 0) return this.top;
    const p = this.alloc(n * a.BYTES_PER_ELEMENT);
    this.pendSrc[this.np] = a;
    this.pendPtr[this.np] = p;
    this.pendN[this.np] = n;
    this.np++;
    return p;
  }

  /** Pointer for an output of n elements: in place when resident, else a scratch slot. */
  output(a: Typed, n: number): number {
    if (a.buffer === this.buf) return a.byteOffset;
    if (a.length === 0 && this.residents.has(a)) throw stale();
    return this.alloc(n * a.BYTES_PER_ELEMENT);
  }

  commit(): void {
    this.ensure(this.top);
    for (let k = 0; k < this.np; k++) {
      const a = this.pendSrc[k]!;
      const n = this.pendN[k];
      const p = this.pendPtr[k];
      this.pendSrc[k] = null;
      if (n <= 16) {
        // short inputs: an element loop beats TypedArray.prototype.set's fixed cost
        if (a instanceof Float64Array) for (let i = 0, q = p / 8; i < n; i++) this.f64[q + i] = a[i];
        else if (a instanceof Uint8Array) for (let i = 0; i < n; i++) this.u8[p + i] = a[i];
        else if (a instanceof Uint32Array) for (let i = 0, q = p / 4; i < n; i++) this.u32[q + i] = a[i];
        else for (let i = 0, q = p / 4; i < n; i++) this.i32[q + i] = a[i];
        continue;
      }
      const src = n === a.length ? a : a.subarray(0, n);
      if (a instanceof Float64Array) this.f64.set(src as Float64Array, p / 8);
      else if (a instanceof Uint8Array) this.u8.set(src as Uint8Array, p);
      else if (a instanceof Uint32Array) this.u32.set(src as Uint32Array, p / 4);
      else this.i32.set(src as Int32Array, p / 4);
    }
    this.np = 0;
  }

  /** Copies n elements back from p into `out` unless `out` is resident (then the export wrote it in place). */
  back(out: Typed, p: number, n: number, resident: boolean): void {
    if (resident || n === 0) return;
    if (out instanceof Float64Array) {
      const q = p / 8;
      if (n <= 16) for (let i = 0; i < n; i++) out[i] = this.f64[q + i];
      else out.set(this.f64.subarray(q, q + n));
    } else if (out instanceof Uint32Array) {
      const q = p / 4;
      if (n <= 16) for (let i = 0; i < n; i++) out[i] = this.u32[q + i];
      else out.set(this.u32.subarray(q, q + n));
    } else if (out instanceof Int32Array) {
      const q = p / 4;
      if (n <= 16) for (let i = 0; i < n; i++) out[i] = this.i32[q + i];
      else out.set(this.i32.subarray(q, q + n));
    } else {
      if (n <= 16) for (let i = 0; i < n; i++) out[i] = this.u8[p + i];
      else out.set(this.u8.subarray(p, p + n));
    }
  }

  isResident(a: Typed): boolean {
    return a.buffer === this.buf;
  }

  pin(bytes: number): number {
    if (this.top !== this.pinTop) this.top = this.pinTop;
    const p = this.pinTop;
    this.pinTop = align16(p + bytes);
    this.top = this.pinTop;
    this.ensure(this.pinTop);
    this.u8.fill(0, p, this.pinTop);
    return p;
  }
}

function stale(): RangeError {
  return new RangeError('a wasm-resident array was detached by memory growth: allocate it again (use reserve() first)');
}

/** Wraps a module instance of build/*.wasm as a Kernel. */
export function createWasmKernel(instance: WebAssembly.Instance): WasmKernel {
  const ex = instance.exports as unknown as KernelExports;
  for (const f of ['heapBase', 'vcCompare', 'vcMerge', 'dotMerge', 'lwwMerge', 'xxhash64', 'hashTree', 'rgaOrder'] as const) {
    if (typeof ex[f] !== 'function') throw new TypeError(`not a kernel module: export ${f} missing`);
  }
  if (!(ex.memory instanceof WebAssembly.Memory)) throw new TypeError('not a kernel module: memory not exported');
  const m = new Arena(ex.memory, ex.heapBase());

  function resident<T extends Typed>(make: (b: ArrayBuffer, p: number, n: number) => T, bpe: number, n: number): T {
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`resident length must be a non-negative integer, got ${n}`);
    const p = m.pin(n * bpe);
    const view = make(m.buf, p, n);
    m.residents.add(view);
    return view;
  }

  const maxMerge = (a: Float64Array, b: Float64Array, out: Float64Array, counter: boolean): number => {
    m.reset();
    const an = a.length, bn = b.length, on = out.length;
    const ro = m.isResident(out);
    const pa = m.input(a, an), pb = m.input(b, bn), po = m.output(out, on);
    m.commit();
    const r = counter ? ex.counterMerge(pa, an, pb, bn, po, on) : (ex.vcMerge(pa, an, pb, bn, po, on), 0);
    m.back(out, po, on, ro);
    return r;
  };

  const kernel: WasmKernel = {
    name: 'wasm',
    memory: ex.memory,

    vcCompare(a, b) {
      m.reset();
      const pa = m.input(a, a.length), pb = m.input(b, b.length);
      m.commit();
      return ex.vcCompare(pa, a.length, pb, b.length) as Ord;
    },

    vcMerge(a, b, out) {
      maxMerge(a, b, out, false);
    },

    vcDominates(a, b) {
      m.reset();
      const pa = m.input(a, a.length), pb = m.input(b, b.length);
      m.commit();
      return ex.vcDominates(pa, a.length, pb, b.length) === 1;
    },

    vcCompareMany(one, many, dim, out) {
      const rows = out.length;
      checkRows(many.length, dim, rows);
      m.reset();
      const ro = m.isResident(out);
      const p1 = m.input(one, one.length), pm = m.input(many, rows * dim), po = m.output(out, rows);
      m.commit();
      ex.vcCompareMany(p1, one.length, pm, dim, rows, po);
      m.back(out, po, rows, ro);
    },

    vcMergeMany(many, dim, out) {
      const rows = checkMergeMany(many.length, dim);
      m.reset();
      const ro = m.isResident(out);
      const pm = m.input(many, many.length), po = m.output(out, out.length);
      m.commit();
      ex.vcMergeMany(pm, dim, rows, po, out.length);
      m.back(out, po, out.length, ro);
    },

    counterMerge(a, b, out) {
      return maxMerge(a, b, out, true);
    },

    dotMerge(a: DotColumns, actx: CausalContextColumns, b: DotColumns, bctx: CausalContextColumns, out: Int32Array) {
      checkDots(a, 'a');
      checkDots(b, 'b');
      checkContext(actx, 'actx');
      checkContext(bctx, 'bctx');
      const cap = a.n + b.n;
      checkOut(out.length, cap);
      m.reset();
      const ro = m.isResident(out);
      const ak = m.input(a.keys, 2 * a.n), ar = m.input(a.replicas, a.n), ac = m.input(a.counters, a.n);
      const avv = m.input(actx.vv, actx.vv.length);
      const acr = m.input(actx.cloudReplicas, actx.cloudN), acc = m.input(actx.cloudCounters, actx.cloudN);
      const bk = m.input(b.keys, 2 * b.n), br = m.input(b.replicas, b.n), bc = m.input(b.counters, b.n);
      const bvv = m.input(bctx.vv, bctx.vv.length);
      const bcr = m.input(bctx.cloudReplicas, bctx.cloudN), bcc = m.input(bctx.cloudCounters, bctx.cloudN);
      const po = m.output(out, cap);
      m.commit();
      const k = ex.dotMerge(
        ak, ar, ac, a.n, avv, actx.vv.length, acr, acc, actx.cloudN,
        bk, br, bc, b.n, bvv, bctx.vv.length, bcr, bcc, bctx.cloudN,
        po,
      );
      m.back(out, po, k, ro);
      return k;
    },

    lwwMerge(a: LwwColumns, b: LwwColumns, out: Int32Array) {
      checkLww(a, 'a');
      checkLww(b, 'b');
      const cap = a.n + b.n;
      checkOut(out.length, cap);
      m.reset();
      const ro = m.isResident(out);
      const ak = m.input(a.keys, 2 * a.n), at = m.input(a.ts, a.n), ar = m.input(a.ranks, a.n);
      const bk = m.input(b.keys, 2 * b.n), bt = m.input(b.ts, b.n), br = m.input(b.ranks, b.n);
      const po = m.output(out, cap);
      m.commit();
      const k = ex.lwwMerge(ak, at, ar, a.n, bk, bt, br, b.n, po);
      m.back(out, po, k, ro);
      return k;
    },

    xxhash64(bytes, start, end, seed, out) {
      checkRange(bytes.length, start, end);
      checkOut(out.length, 2);
      m.reset();
      let p: number;
      if (m.isResident(bytes)) p = bytes.byteOffset + start;
      else {
        const len = end - start;
        p = m.input(start === 0 ? bytes : bytes.subarray(start, end), len);
      }
      const po = m.alloc(8);
      m.commit();
      ex.xxhash64(p, end - start, seed >>> 0, po);
      const q = po / 4;
      out[0] = m.u32[q];
      out[1] = m.u32[q + 1];
    },

    xxhash64Many(bytes, offsets, lengths, seed, out) {
      checkRanges(bytes.length, offsets, lengths, out.length);
      const n = offsets.length;
      m.reset();
      const ro = m.isResident(out);
      const pb = m.input(bytes, bytes.length), poff = m.input(offsets, n), plen = m.input(lengths, n);
      const po = m.output(out, 2 * n);
      m.commit();
      ex.xxhash64Many(pb, poff, plen, n, seed >>> 0, po);
      m.back(out, po, 2 * n, ro);
    },

    hashTree(keys, entryHashes, n, depth, out) {
      checkTree(keys.length, entryHashes.length, n, depth, out.length);
      const words = 2 ** (depth + 2);
      m.reset();
      const ro = m.isResident(out);
      const pk = m.input(keys, 2 * n), pe = m.input(entryHashes, 2 * n), po = m.output(out, words);
      m.commit();
      ex.hashTree(pk, pe, n, depth, po);
      m.back(out, po, words, ro);
    },

    rgaOrder(parent, seq, rank, counter, n, out) {
      checkRga(parent, seq.length, rank.length, counter.length, n, out.length);
      m.reset();
      const ro = m.isResident(out);
      const pp = m.input(parent, n), ps = m.input(seq, n), pr = m.input(rank, n), pc = m.input(counter, n);
      const po = m.output(out, n);
      const scratch = m.alloc(4 * (4 * n + 3)); // start[n + 3], kids[n], stack[n], tmp[n]
      m.commit();
      const k = ex.rgaOrder(pp, ps, pr, pc, n, po, scratch);
      m.back(out, po, k, ro);
      return k;
    },

    residentF64: (n) => resident((b, p, k) => new Float64Array(b, p, k), 8, n),
    residentU32: (n) => resident((b, p, k) => new Uint32Array(b, p, k), 4, n),
    residentI32: (n) => resident((b, p, k) => new Int32Array(b, p, k), 4, n),
    residentU8: (n) => resident((b, p, k) => new Uint8Array(b, p, k), 1, n),

    releaseResident() {
      m.pinTop = m.base;
      m.top = m.base;
    },

    reserve(bytes) {
      if (!Number.isInteger(bytes) || bytes < 0) throw new RangeError(`reserve needs a byte count, got ${bytes}`);
      m.ensure(m.pinTop + bytes);
    },
  };
  return kernel;
}

/** Imports the kernel module may ask for (the debug build imports `env.abort` for failed assertions). */
export const kernelImports: WebAssembly.Imports = {
  env: {
    abort(msg: number, file: number, line: number, col: number): never {
      throw new Error(`wasm kernel abort at ${line}:${col} (msg ptr ${msg}, file ptr ${file})`);
    },
  },
};
