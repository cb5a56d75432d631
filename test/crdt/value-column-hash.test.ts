import { describe, expect, it } from 'vitest';
import { hashBytes } from '../../src/crdt/value-column.js';

const enc = new TextEncoder();

/** Distinct table slots (low `bits` bits of the hash) taken by the strings. */
function slots(strings: string[], bits: number): number {
  const seen = new Set<number>();
  for (const s of strings) {
    const b = enc.encode(`xx${s}`); // at an offset, as in an encoding
    const h = hashBytes(b, 2, b.length - 2) >>> 0;
    seen.add(bits === 32 ? h : h & ((1 << bits) - 1));
  }
  return seen.size;
}

describe('value column dictionary hash', () => {
  it('depends on every byte: strings that differ only in the middle spread over the table', () => {
    // same length, same first 8 and last 4 bytes: a hash of those bytes alone put all of them in one slot
    const middle = Array.from({ length: 2048 }, (_, i) => `aaaaaaaa${String(i).padStart(8, '0')}zzzz`);
    expect(slots(middle, 32)).toBe(middle.length);
    // a table of 4096 slots: uniform hashing fills about 4096 * (1 - e^-0.5) = 1612 of them
    expect(slots(middle, 12)).toBeGreaterThan(1450);
    const owners = Array.from({ length: 2048 }, (_, i) => `team-${String(i).padStart(6, '0')}-owner-of-the-vm`);
    expect(slots(owners, 12)).toBeGreaterThan(1450);
  });

  it('depends on the length and on the tail bytes', () => {
    const zeros = Array.from({ length: 64 }, (_, n) => '\0'.repeat(n));
    expect(slots(zeros, 32)).toBe(64);
    const tails = Array.from({ length: 256 }, (_, c) => `abcdefg${String.fromCharCode(c)}`.slice(0, 5 + (c % 4)));
    expect(slots(tails, 32)).toBe(new Set(tails).size);
  });
});
