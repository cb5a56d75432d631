import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { VectorClock } from '../../src/clock/vector-clock.js';
import { RGA, type RgaOp } from '../../src/crdt/rga.js';
import { SEED, makeRng, runs } from './laws.js';

// The GC floor of an RGA travels only with full states, never in a delta. A floor is stable at the replica
// that collected with it; it may cover a deleted element that has a child (an insert concurrent with the
// delete) that replica holds and another does not yet. A replica that took the floor without the child would
// collect the element as a leaf and later hold the child as an orphan forever (chaos seed 1592890743 of the
// sync convergence tests).

function exchangeFullStates(reps: RGA[]): void {
  for (let round = 0; round < 2; round++) {
    for (const r of reps) for (const o of reps) if (o !== r) r.merge(RGA.decode(o.encode()));
  }
}

/**
 * a inserts x; everyone gets it. a deletes x while c concurrently inserts y after x. a gets y, b gets only
 * the delete. Every replica reports a clock covering a's two ops (b before y reached it), so {a: 2} is stable
 * at a (a holds every op made before those reports, y included) and a collects with it: x stays there (it has
 * the child y). Returns the three replicas and y's value.
 */
function concurrentChildOfADeletedElement(): { a: RGA<string>; b: RGA<string>; c: RGA<string> } {
  const a = new RGA<string>('a');
  const b = new RGA<string>('b');
  const c = new RGA<string>('c');
  const x = a.insert(0, 'x');
  b.apply(x);
  c.apply(x);
  const del = a.delete(0);
  const y = c.insert(1, 'y');
  a.apply(y);
  b.apply(del);
  c.apply(del);
  for (const r of [a, b, c]) r.takeDelta(); // everything above has been sent
  const reports = [a.seenPrefix(), b.seenPrefix(), VectorClock.from({ a: 2 })];
  const stable = VectorClock.meet(reports);
  expect(stable.entries()).toEqual([['a', 2]]);
  expect(a.collectGarbage(stable)).toBe(0); // x has a child here
  expect(a.gcFloor.entries()).toEqual([['a', 2]]);
  expect(a.toArray()).toEqual(['y']);
  return { a, b, c };
}

describe('crdt/rga GC floor', () => {
  it('a collection leaves no delta: its floor cannot reach a replica without the records it stood for', () => {
    const { a, b, c } = concurrentChildOfADeletedElement();
    const d = a.takeDelta();
    if (d) b.merge(RGA.decode(d.encode())); // what a sync layer would send
    // b keeps the tombstone x until it learns of y: y integrates after x as everywhere else
    b.merge(RGA.decode(c.encode()));
    expect(b.toArray()).toEqual(['y']);
    exchangeFullStates([a, b, c]);
    expect(b.encode()).toEqual(a.encode());
    expect(c.encode()).toEqual(a.encode());
    for (const r of [a, b, c]) expect(r.toArray()).toEqual(['y']);
    expect(d).toBeNull();
  });

  it('a delta taken after a merge that raised the floor does not carry it (relayed by a third replica)', () => {
    const { a, b, c } = concurrentChildOfADeletedElement();
    // relay: holds x, its delete and y, then learns a's floor from a's full state
    const relay = RGA.decode<string>(c.encode(), 'r');
    expect(relay.tombstones).toBe(1);
    relay.merge(RGA.decode(a.encode()));
    expect(relay.gcFloor.entries()).toEqual([['a', 2]]);
    const d = relay.takeDelta();
    if (d) b.merge(RGA.decode(d.encode()));
    b.merge(RGA.decode(c.encode()));
    expect(b.toArray()).toEqual(['y']);
    exchangeFullStates([a, b, c, relay]);
    for (const r of [b, c, relay]) expect(r.encode()).toEqual(a.encode());
    expect(d === null || d.gcFloor.entries().length === 0).toBe(true);
  });

  it('a full state carries the floor with its records: merged anywhere, the child comes along', () => {
    const { a, b, c } = concurrentChildOfADeletedElement();
    b.merge(RGA.decode(a.encode()));
    expect(b.gcFloor.entries()).toEqual([['a', 2]]);
    expect(b.toArray()).toEqual(['y']);
    expect(b.encode()).toEqual(a.encode());
    // once y is covered too and deleted, everyone collects both, in any order of full states
    const dy = a.delete(0);
    b.apply(dy);
    c.apply(dy);
    expect(b.collectGarbage(VectorClock.from({ a: 3, c: 1 }))).toBe(2);
    expect(b.tombstones).toBe(0);
    exchangeFullStates([c, a, b]);
    for (const r of [a, c]) expect(r.encode()).toEqual(b.encode());
    expect(a.tombstones).toBe(0);
  });

  // Replicas edit, send deltas (lost, duplicated, reordered; merged deltas sometimes relayed), exchange full
  // states now and then, report clocks, and collect with clocks stable at the collector the way a sync engine
  // computes them: the meet of every replica's latest report, used only once the collector has applied every
  // op each reporter had made when it reported. After delivering everything, all replicas hold identical
  // bytes and show what a replica that applied every op and never collected shows.
  it('replicas collecting with clocks stable at the collector converge under any delivery (random)', () => {
    let removedTotal = 0;
    let runsWithGc = 0;
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0x7fffffff }), (s) => {
        const rng = makeRng(s);
        const n = 3 + rng.int(3);
        const reps = Array.from({ length: n }, (_, i) => new RGA<string>(`r${i}`));
        const reference = new RGA<string>('ref');
        const reports: (VectorClock | undefined)[] = reps.map(() => undefined);
        const flight: { to: number; bytes: Uint8Array }[] = [];
        let values = 0;
        let removed = 0;
        const edit = (r: RGA<string>): void => {
          let op: RgaOp;
          if (r.length > 0 && rng.bool(0.4)) op = r.delete(rng.int(r.length));
          else op = r.insert(rng.int(r.length + 1), `v${values++}`);
          reference.apply(op);
        };
        const send = (i: number, bytes: Uint8Array): void => {
          for (let j = 0; j < n; j++) {
            if (j === i || rng.bool(0.3)) continue; // lost
            flight.push({ to: j, bytes });
            if (rng.bool(0.1)) flight.push({ to: j, bytes }); // duplicated
          }
        };
        const deliver = (k: number): void => {
          const [m] = flight.splice(k, 1);
          reps[m.to].merge(RGA.decode(m.bytes));
          if (rng.bool(0.5)) reps[m.to].takeDelta(); // not relayed
        };
        const steps = 60 + rng.int(80);
        for (let step = 0; step < steps; step++) {
          const i = rng.int(n);
          const r = reps[i];
          const x = rng.float();
          if (x < 0.35) edit(r);
          else if (x < 0.5) {
            const d = r.takeDelta();
            if (d) send(i, d.encode());
          } else if (x < 0.7) {
            if (flight.length) deliver(rng.int(flight.length));
          } else if (x < 0.75) send(i, r.encode());
          else if (x < 0.88) reports[i] = r.seenPrefix();
          else {
            const mine = r.seenPrefix();
            const clocks = reports.map((c, j) => (j === i ? mine : c));
            if (clocks.some((c, j) => c === undefined || mine.get(`r${j}`) < c.get(`r${j}`))) continue;
            removed += r.collectGarbage(VectorClock.meet(clocks as VectorClock[]));
            const d = r.takeDelta();
            if (d) send(i, d.encode());
          }
        }
        // deliver everything still in flight, then every pending delta, then full states
        while (flight.length) deliver(rng.int(flight.length));
        for (let i = 0; i < n; i++) {
          const d = reps[i].takeDelta();
          if (d) for (let j = 0; j < n; j++) if (j !== i) reps[j].merge(RGA.decode(d.encode()));
        }
        exchangeFullStates(rng.shuffle(reps.slice()));
        const want = reps[0].encode();
        for (const r of reps) expect(r.encode()).toEqual(want);
        expect(reps[0].toArray()).toEqual(reference.toArray());
        removedTotal += removed;
        if (removed > 0) runsWithGc++;
      }),
      { seed: SEED, numRuns: runs(300, 5000) },
    );
    // the histories do collect (the property is not vacuous)
    expect(runsWithGc).toBeGreaterThan(0);
    expect(removedTotal).toBeGreaterThan(0);
  });
  it('an element a full state shows collected (floor covers it, state lacks it) goes where its delete never came', () => {
    // d got x and y but not the delete of y (a member the collectors did not count, or a lost message)
    const a = new RGA<string>('a');
    const d = new RGA<string>('d');
    const x = a.insert(0, 'x');
    const y = a.insert(1, 'y');
    const z = a.insert(2, 'z');
    for (const op of [x, y, z]) d.apply(op);
    a.delete(2);
    a.delete(1);
    expect(a.collectGarbage(a.seenPrefix())).toBe(2);
    expect(a.toArray()).toEqual(['x']);
    expect(d.toArray()).toEqual(['x', 'y', 'z']);
    // either merge order gives a's state, bytes and all (z, a leaf, goes; then y, now a leaf)
    const d1 = RGA.decode<string>(d.encode(), 'd');
    const a1 = RGA.decode<string>(a.encode(), 'a');
    expect(d1.merge(RGA.decode(a.encode()))).toBe(true);
    expect(a1.merge(RGA.decode(d.encode()))).toBe(false);
    expect(d1.toArray()).toEqual(['x']);
    expect(d1.length).toBe(1);
    expect(d1.tombstones).toBe(0);
    expect(d1.encode()).toEqual(a1.encode());
    // an element the floor covers that the state still holds is not touched
    const e = RGA.decode<string>(d.encode(), 'e');
    const keep = RGA.decode<string>(a.encode(), 'k');
    e.merge(keep);
    expect(e.toArray()).toEqual(['x']);
    // a delta has no floor and shows nothing collected
    const f = RGA.decode<string>(d.encode(), 'f');
    const g = new RGA<string>('g');
    g.apply(x);
    f.merge(g.takeDelta()!);
    expect(f.toArray()).toEqual(['x', 'y', 'z']);
  });

  it('an element with a live child here is kept when a floor shows it collected elsewhere (a documented limit)', () => {
    const a = new RGA<string>('a');
    const d = new RGA<string>('d');
    const x = a.insert(0, 'x');
    const y = a.insert(1, 'y');
    d.apply(x);
    d.apply(y);
    a.delete(1);
    a.collectGarbage(a.seenPrefix());
    d.insert(2, 'w'); // after y, which d still shows
    d.merge(RGA.decode(a.encode()));
    expect(d.toArray()).toEqual(['x', 'y', 'w']);
  });
  it('collecting an element keeps a concurrent delete the floor does not cover (no gap in that replica\'s ops)', () => {
    const a = new RGA<string>('a');
    const c = new RGA<string>('c');
    const b = new RGA<string>('b');
    const x = a.insert(0, 'x');
    c.apply(x);
    b.apply(x);
    const cDel = c.delete(0); // c:1, concurrent with a's delete
    const aDel = a.delete(0); // a:2
    a.apply(cDel);
    b.apply(aDel);
    expect(a.seenPrefix().get('c')).toBe(1);
    expect(a.collectGarbage(VectorClock.from({ a: 2 }))).toBe(1);
    // x is gone, c's delete stays until a floor covers it: c's ops here still run 1..1
    expect(a.seenPrefix().get('c')).toBe(1);
    expect(a.tombstones).toBe(0);
    // b (no c:1 yet) takes a's state: it collects x and holds c:1 too; c takes it as well: all equal
    b.merge(RGA.decode(a.encode()));
    c.merge(RGA.decode(a.encode()));
    a.merge(RGA.decode(c.encode()));
    expect(b.encode()).toEqual(a.encode());
    expect(c.encode()).toEqual(a.encode());
    expect(b.seenPrefix().get('c')).toBe(1);
    // once the floor covers c:1 it goes
    const before = a.encode().length;
    a.collectGarbage(VectorClock.from({ a: 2, c: 1 }));
    expect(a.encode().length).toBeLessThan(before);
    expect(a.seenPrefix().get('c')).toBe(1); // now under the floor
    b.merge(RGA.decode(a.encode()));
    expect(b.encode()).toEqual(a.encode());
  });
  it('a deleted orphan whose reference a floor shows collected goes too (replicas reach equal bytes)', () => {
    const a = new RGA<string>('a');
    const b = new RGA<string>('b');
    const r = b.insert(0, 'r');
    const o = b.insert(1, 'o');
    const delO = b.delete(1);
    b.delete(0);
    // a got o and its delete but never r: o waits for its reference
    a.apply(o);
    a.apply(delO);
    expect(a.length).toBe(0);
    expect(b.collectGarbage(b.seenPrefix())).toBe(2);
    a.merge(RGA.decode(b.encode()));
    expect(a.encode()).toEqual(b.encode());
    // r never arrives: a floor covers it
    expect(a.apply(r)).toBe(false);
    expect(a.encode()).toEqual(b.encode());
  });
  it('orphans below a collected element go in either merge order: live ones a floor shows collected, and chains', () => {
    const b = new RGA<string>('b');
    const r = b.insert(0, 'r');
    const o1 = b.insert(1, 'o1');
    const o2 = b.insert(2, 'o2');
    const d2 = b.delete(2);
    const d1 = b.delete(1);
    b.delete(0);
    expect(b.collectGarbage(b.seenPrefix())).toBe(3);
    const bBytes = b.encode();
    const cases: [string, RgaOp[]][] = [
      ['a live orphan', [o1]],
      ['a deleted chain', [o2, d2, o1, d1]],
      ['a live chain', [o1, o2]],
      ['a chain, half deleted', [o1, o2, d2]],
    ];
    for (const [name, ops] of cases) {
      const a = new RGA<string>('a');
      for (const op of ops) a.apply(op); // never r: they wait for it
      expect(a.length, name).toBe(0);
      const ab = RGA.decode<string>(a.encode(), 'x');
      ab.merge(RGA.decode(bBytes));
      const ba = RGA.decode<string>(bBytes, 'x');
      ba.merge(RGA.decode(a.encode()));
      expect(ab.encode(), name).toEqual(ba.encode());
      expect(ab.encode(), name).toEqual(bBytes);
    }
  });
});
