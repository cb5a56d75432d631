import { describe, expect, it } from 'vitest';
import { MAX_ORIGINS, WriteVector } from '../../src/sync/write-vector.js';

describe('sync/write-vector', () => {
  it('tracks contiguous and out-of-order writes per origin', () => {
    const w = new WriteVector();
    w.addRange('a', 1, 3);
    w.addRange('a', 5, 6);
    expect(w.base('a')).toBe(3);
    expect(w.covers('a', 5, 6)).toBe(true);
    expect(w.covers('a', 4, 5)).toBe(false);
    w.addRange('a', 4, 4);
    expect(w.base('a')).toBe(6);
    expect(w.extras).toBe(0);
    w.mergeEntries([['b', 9]]);
    expect(w.entries()).toEqual([['a', 6], ['b', 9]]);
  });

  it('tracks at most MAX_ORIGINS origins, except the ones it must always track', () => {
    const w = new WriteVector((o) => o === 'me' || o === 'peer');
    w.addRange('peer', 1, 1);
    const fake: [string, number][] = [];
    for (let i = 0; i < MAX_ORIGINS + 500; i++) fake.push([`fake-${i}`, 1_000_000]);
    w.mergeEntries(fake);
    for (let i = 0; i < 100; i++) w.addRange(`fake2-${i}`, 1, 1);
    expect(w.origins).toBe(MAX_ORIGINS);
    expect(w.entries().length).toBe(MAX_ORIGINS);
    // members are still tracked past the bound
    w.addRange('me', 1, 2);
    w.raise('peer', 4);
    expect(w.covers('me', 1, 2)).toBe(true);
    expect(w.base('peer')).toBe(4);
    expect(w.origins).toBe(MAX_ORIGINS + 1);
    // an untracked origin is simply not covered
    expect(w.covers(`fake-${MAX_ORIGINS + 10}`, 1, 1)).toBe(false);
  });
});
