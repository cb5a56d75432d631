/** Small seeded PRNG (mulberry32) so every bench workload is the same on every run. */
export { mulberry32 as prng } from '../../src/time/random.js';

/** Integer in [0, n). */
export function randInt(rnd: () => number, n: number): number {
  return Math.floor(rnd() * n);
}

/** A seeded shuffle (Fisher-Yates) of a copy of `xs`. */
export function shuffled<T>(xs: readonly T[], rnd: () => number): T[] {
  const a = xs.slice();
  for (let i = a.length - 1; i > 0; i--) {
    const j = randInt(rnd, i + 1);
    const t = a[i]!;
    a[i] = a[j]!;
    a[j] = t;
  }
  return a;
}
