import { describe, expect, it } from 'vitest';
import { MemoryNetwork } from '../../src/transport/memory.js';
import { VirtualScheduler } from '../../src/time/virtual.js';
import { RealScheduler, ScopedScheduler } from '../../src/time/scheduler.js';
import { SyncEngine } from '../../src/sync/engine.js';
import { GCounter } from '../../src/crdt/g-counter.js';
import { NovaCronIntegration } from '../../src/cluster/integration.js';

describe('MemoryNetwork defaults', () => {
  it('creates its own VirtualScheduler when none is given and delivers on advance()', async () => {
    const net = new MemoryNetwork({ seed: 3, latencyMs: [5, 5] });
    expect(net.scheduler).toBeInstanceOf(VirtualScheduler);
    const a = net.transport('a');
    const b = net.transport('b');
    await a.start();
    await b.start();
    const got: [string, number[]][] = [];
    b.onMessage((from, bytes) => got.push([from, Array.from(bytes)]));
    a.send('b', new Uint8Array([7]));
    net.scheduler.advance(4);
    expect(got).toEqual([]);
    net.scheduler.advance(1);
    expect(got).toEqual([['a', [7]]]);
  });

  it('each transport exposes the network\'s scheduler (the default one or the one given), also after a restart', () => {
    const net = new MemoryNetwork({ seed: 3 });
    expect(net.transport('a').scheduler).toBe(net.scheduler);
    const sch = new VirtualScheduler(1000);
    const net2 = new MemoryNetwork({ seed: 3, scheduler: sch });
    net2.transport('a');
    net2.crash('a');
    net2.restart('a');
    expect(net2.transport('a').scheduler).toBe(sch);
  });
});

describe('MemoryNetwork latency option', () => {
  it('takes a fixed number or a [min, max] range, and refuses nonsense', () => {
    const fixed = new MemoryNetwork({ seed: 1, latencyMs: 25 });
    const a = fixed.transport('a'), b = fixed.transport('b');
    let at = -1;
    b.onMessage(() => void (at = fixed.scheduler.now()));
    return Promise.all([a.start(), b.start()]).then(() => {
      a.send('b', new Uint8Array([1]));
      fixed.scheduler.advance(100);
      expect(at).toBe(25);
      expect(() => new MemoryNetwork({ latencyMs: [10, 5] })).toThrow(RangeError);
      expect(() => new MemoryNetwork({ latencyMs: -1 })).toThrow(RangeError);
      expect(() => fixed.configure({ latencyMs: [Number.NaN, 1] })).toThrow(RangeError);
      // probabilities in [0, 1]; a bad configure changes nothing
      for (const bad of [2, -0.1, Number.NaN, '0.5' as unknown as number]) {
        expect(() => new MemoryNetwork({ loss: bad })).toThrow(RangeError);
        expect(() => new MemoryNetwork({ duplicate: bad })).toThrow(RangeError);
        expect(() => new MemoryNetwork({ reorder: bad })).toThrow(RangeError);
      }
      expect(() => new MemoryNetwork({ maxMessageBytes: 0 })).toThrow(RangeError);
      expect(() => fixed.configure({ loss: 0.5, reorder: 7 })).toThrow(RangeError);
      expect([fixed.loss, fixed.reorder]).toEqual([0, 0]);
      fixed.configure({ loss: 1, duplicate: 0.25 });
      expect([fixed.loss, fixed.duplicate]).toEqual([1, 0.25]);
    });
  });
});

describe('MemoryNetwork made without a scheduler, engines given one', () => {
  it('runs on the engines\' scheduler: a write reaches the peer as that scheduler advances', async () => {
    const scheduler = new VirtualScheduler();
    const net = new MemoryNetwork({ seed: 5, latencyMs: [10, 20] });
    const [a, b] = ['a', 'b'].map((id) => new SyncEngine({ replicaId: id, transport: net.transport(id), scheduler }));
    a!.addPeer('b', 'b');
    b!.addPeer('a', 'a');
    const ca = a!.register('c', new GCounter('a'));
    const cb = b!.register('c', new GCounter('b'));
    await a!.start();
    await b!.start();
    expect(net.scheduler).toBe(scheduler);
    await a!.update('c', (c: GCounter) => c.increment(3));
    expect(await scheduler.runUntil(() => cb.value() === 3, 1_000)).toBe(true);
    expect(scheduler.now()).toBeLessThan(100); // eager push, not a 30 s anti-entropy round
    expect(ca.value()).toBe(3);
    await a!.stop();
    await b!.stop();
  });

  it('NovaCronIntegration too; a network whose scheduler was handed out or given keeps it', async () => {
    const scheduler = new VirtualScheduler();
    const net = new MemoryNetwork({ seed: 6, latencyMs: [10, 20] });
    const nodes = ['node-a', 'node-b'].map((nodeId) => new NovaCronIntegration({ nodeId, region: 'r', transport: net.transport(nodeId), scheduler }));
    nodes[0]!.registerRegion('node-b', 'r', 'node-b');
    nodes[1]!.registerRegion('node-a', 'r', 'node-a');
    await Promise.all(nodes.map((n) => n.start()));
    await nodes[0]!.updateVMState('vm-1', { id: 'vm-1', status: 'running', nodeId: 'node-a', cpuCores: 2, memoryMB: 1024 });
    expect(await scheduler.runUntil(() => nodes[1]!.getVMState('vm-1')?.status === 'running', 1_000)).toBe(true);
    await Promise.all(nodes.map((n) => n.stop()));

    // only a VirtualScheduler is adopted: a real-time one, or a per-node wrapper a crash closes, is not
    const rt = new MemoryNetwork({ seed: 8 });
    expect(rt.adoptScheduler(new RealScheduler())).toBe(false);
    expect(rt.adoptScheduler(new ScopedScheduler(new VirtualScheduler()))).toBe(false);
    expect(typeof rt.scheduler.advance).toBe('function');

    const seen = new MemoryNetwork({ seed: 7 });
    const own = seen.scheduler; // handed out: fixed
    expect(seen.adoptScheduler(new VirtualScheduler())).toBe(false);
    expect(seen.scheduler).toBe(own);
    const given = new VirtualScheduler();
    const net2 = new MemoryNetwork({ seed: 7, scheduler: given });
    expect(net2.transport('x').useScheduler(new VirtualScheduler())).toBe(false);
    expect(net2.scheduler).toBe(given);
    expect(net2.adoptScheduler(given)).toBe(true);
  });
});
