import { describe, expect, it } from 'vitest';
import { runScenario, seedsFor } from './scenario.js';

// Part 4 of 4 of the seeded chaos runs (50 seeds each in npm test, 1,250 each with LONG=1).
// A failure prints its seed; replay it with: SEED=<seed> npx vitest run test/sync/convergence-4.test.ts
const BASE = 0x5eed0000 + (4 - 1) * 100_000;

describe('convergence under faults, part 4', () => {
  it('every replica converges to identical bytes holding every acknowledged update', async () => {
    let ok = 0;
    for (const seed of seedsFor(BASE, 50, 1250)) {
      const r = await runScenario(seed);
      expect(r.failure, `seed ${seed} (SEED=${seed} npx vitest run test/sync/convergence-4.test.ts): ${r.failure}`).toBeNull();
      expect(r.maxSeen).toBeGreaterThan(0);
      ok++;
    }
    expect(ok).toBeGreaterThan(0);
  });
});
