import { describe, expect, it } from 'vitest';
import { GCounter } from '../../src/crdt/g-counter.js';
import { ORMap } from '../../src/crdt/or-map.js';
import { Simulation } from '../../src/sync/simulation.js';

describe('smoke', () => {
  it('3 nodes converge on a counter and a map', async () => {
    const sim = new Simulation({
      seed: 1,
      nodes: ['a', 'b', 'c'],
      engine: { gossip: { intervalMs: 500 }, antiEntropy: { intervalMs: 2000 } },
      setup: (e, ctx) => {
        e.register('c', new GCounter(ctx.id));
        e.register('m', new ORMap(ctx.id, { clock: ctx.clock }));
      },
    });
    await sim.start();
    await sim.engine('a').update<GCounter>('c', (c) => c.increment(5));
    await sim.engine('b').update<ORMap>('m', (m) => m.setLWW('k', 1));
    await sim.run(1000);
    for (const n of sim.upNodes()) expect(n.engine.get<GCounter>('c')!.value()).toBe(5);
    expect(sim.converged()).toBe(true);
    console.log(sim.engine('a').stats(), sim.network.stats());
  });
});
