import { describe, expect, it } from 'vitest';
import { MemoryNetwork } from '../../src/transport/memory.js';
import { VirtualScheduler } from '../../src/time/virtual.js';

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
    });
  });
});
