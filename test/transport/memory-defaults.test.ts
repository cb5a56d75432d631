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
});
