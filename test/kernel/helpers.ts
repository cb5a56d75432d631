/**
 * Shared pieces of the kernel tests: the wasm kernel loaded from build/release.wasm (a missing build FAILS with
 * a clear message), the seed (SEED env replays, printed on failure by fast-check and by `runProp`), run counts
 * (raised under LONG), fast-check arbitraries with the edge values every kernel must survive, and byte
 * comparison of typed arrays.
 */
import fc from 'fast-check';
import { createWasmKernel, kernelImports, type WasmKernel } from '../../src/kernel/wasm.js';
import { loadWasmSync, wasmPath } from '../../src/kernel/node-load.js';

export const SEED = Number(process.env.SEED ?? 0x6b726e6c);
export const LONG = !!process.env.LONG;
/** Cases per kernel property: >= 1,000 in `npm test`, 20x under LONG. */
export const RUNS = LONG ? 20_000 : 1_000;

export function requireWasmBytes(): Uint8Array {
  const bytes = loadWasmSync();
  if (bytes === undefined) {
    throw new Error(`build/release.wasm not found (looked at ${wasmPath()}): run \`node scripts/build.mjs\` first`);
  }
  return bytes;
}

/** A fresh wasm kernel instance over build/release.wasm. */
export function freshWasmKernel(): WasmKernel {
  const mod = new WebAssembly.Module(requireWasmBytes() as Uint8Array<ArrayBuffer>);
  return createWasmKernel(new WebAssembly.Instance(mod, kernelImports));
}

/** fast-check assert with our seed and run count; the seed is in fast-check's failure message. */
export function runProp<Ts extends [unknown, ...unknown[]]>(
  arbs: { [K in keyof Ts]: fc.Arbitrary<Ts[K]> },
  body: (...args: Ts) => void,
  numRuns = RUNS,
): void {
  fc.assert(fc.property(...arbs, body), { seed: SEED, numRuns, endOnFailure: false });
}

export const MAX = Number.MAX_SAFE_INTEGER;

/** A counter / clock slot: mostly tiny (to make equal slots common), sometimes huge or exactly maximal. */
export const slot = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 0, max: 4 }) },
  { weight: 2, arbitrary: fc.constantFrom(0, 1, MAX - 1, MAX) },
  { weight: 2, arbitrary: fc.maxSafeNat() },
);

/** A Float64Array of slots, length 0..maxLen (lengths past 16 exercise the SIMD blocks and their tails). */
export function slots(maxLen = 40): fc.Arbitrary<Float64Array> {
  return fc.array(slot, { maxLength: maxLen }).map((a) => Float64Array.from(a));
}

/** A u32 hash word with the extremes over-represented. */
export const word = fc.oneof(
  { weight: 2, arbitrary: fc.constantFrom(0, 1, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff) },
  { weight: 5, arbitrary: fc.nat({ max: 0xffffffff }) },
);

export function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** Byte-identical typed arrays? (used with expect(...).toBe(true) plus a readable diff on failure) */
export function sameBytes(a: ArrayBufferView, b: ArrayBufferView): boolean {
  const x = bytesOf(a), y = bytesOf(b);
  if (x.length !== y.length) return false;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

/** u32 pair (lo, hi) -> BigInt */
export function u64(words: Uint32Array, i: number): bigint {
  return (BigInt(words[2 * i + 1]) << 32n) | BigInt(words[2 * i]);
}
