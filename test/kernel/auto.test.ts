/** The size-routing default kernel: same bytes as js at every size, and calls land on the right backend. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createAutoKernel, WASM_FROM } from '../../src/kernel/auto.js';
import { jsKernel } from '../../src/kernel/js.js';
import type { Kernel } from '../../src/kernel/types.js';
import { freshWasmKernel, runProp, sameBytes, slots } from './helpers.js';

const wasm = freshWasmKernel();

/** A kernel that records which backend served each call. */
function spying(): { kernel: Kernel; calls: string[] } {
  const calls: string[] = [];
  const wrap = (k: Kernel, tag: string): Kernel =>
    new Proxy(k, {
      get(target, prop) {
        const v = Reflect.get(target, prop);
        return typeof v === 'function' ? (...args: unknown[]) => (calls.push(`${tag}.${String(prop)}`), v.apply(target, args)) : v;
      },
    });
  return { kernel: createAutoKernel(wrap(wasm, 'wasm'), wrap(jsKernel, 'js')), calls };
}

describe('kernel/auto', () => {
  it('routes by input size: js below the crossover, wasm from it', () => {
    const { kernel, calls } = spying();
    expect(kernel.name).toBe('wasm');
    const t = WASM_FROM.vcMerge;
    kernel.vcMerge(new Float64Array(t - 1), new Float64Array(0), new Float64Array(t - 1));
    kernel.vcMerge(new Float64Array(t), new Float64Array(0), new Float64Array(t));
    kernel.counterMerge(new Float64Array(1), new Float64Array(1), new Float64Array(1));
    kernel.xxhash64(new Uint8Array(1), 0, 1, 0, new Uint32Array(2));
    expect(calls).toEqual(['js.vcMerge', 'wasm.vcMerge', 'js.counterMerge', 'wasm.xxhash64']);
  });

  it('gives js-identical bytes on both sides of the crossovers', () => {
    // low thresholds so that generated sizes fall on both sides
    const low = Object.fromEntries(Object.keys(WASM_FROM).map((k) => [k, 8])) as typeof WASM_FROM;
    const auto = createAutoKernel(wasm, jsKernel, low);
    runProp([slots(20), slots(20), fc.uint8Array({ maxLength: 40 })], (a, b, bytes) => {
      expect(auto.vcCompare(a, b)).toBe(jsKernel.vcCompare(a, b));
      expect(auto.vcDominates(a, b)).toBe(jsKernel.vcDominates(a, b));
      const n = Math.max(a.length, b.length);
      const o1 = new Float64Array(n), o2 = new Float64Array(n);
      expect(auto.counterMerge(a, b, o1)).toBe(jsKernel.counterMerge(a, b, o2));
      expect(sameBytes(o1, o2)).toBe(true);
      const h1 = new Uint32Array(2), h2 = new Uint32Array(2);
      auto.xxhash64(bytes, 0, bytes.length, 7, h1);
      jsKernel.xxhash64(bytes, 0, bytes.length, 7, h2);
      expect(sameBytes(h1, h2)).toBe(true);
    });
  });
});
