import { describe, expect, it } from 'vitest';
import { MemoryNetwork } from '../../src/transport/memory.js';
import { VirtualScheduler } from '../../src/time/virtual.js';
import { Random } from '../../src/time/random.js';

const SEED = Number(process.env.SEED ?? 0xab12);

function net(opts: Partial<ConstructorParameters<typeof MemoryNetwork>[0]> = {}) {
  const scheduler = new VirtualScheduler();
  const network = new MemoryNetwork({ seed: SEED, scheduler, latencyMs: [5, 20], ...opts });
  return { scheduler, network };
}

function collect(network: MemoryNetwork, id: string): [string, number[]][] {
  const got: [string, number[]][] = [];
  const t = network.transport(id);
  t.onMessage((from, bytes) => got.push([from, [...bytes]]));
  void t.start();
  return got;
}

describe('MemoryNetwork', () => {
  it('delivers after a latency within the range and counts bytes per node', async () => {
    const { scheduler, network } = net();
    const a = network.transport('a');
    await a.start();
    const got = collect(network, 'b');
    expect(a.send('b', new Uint8Array([1, 2, 3]))).toBe(true);
    scheduler.advance(4);
    expect(got).toEqual([]);
    scheduler.advance(20);
    expect(got).toEqual([['a', [1, 2, 3]]]);
    expect(network.bytesSent('a')).toBe(3);
    expect(network.bytesReceived('b')).toBe(3);
    expect(network.stats().messagesReceived).toBe(1);
  });

  it('loses about the configured fraction and duplicates about the configured fraction', async () => {
    const { scheduler, network } = net({ loss: 0.3, duplicate: 0.2 });
    const a = network.transport('a');
    await a.start();
    const got = collect(network, 'b');
    for (let i = 0; i < 2000; i++) a.send('b', new Uint8Array([i & 255]));
    scheduler.advance(1000);
    // expected deliveries: 2000 * 0.7 * 1.2 = 1680
    expect(got.length).toBeGreaterThan(1550);
    expect(got.length).toBeLessThan(1810);
    expect(network.stats().duplicated).toBeGreaterThan(0);
  });

  it('reordering lets later messages overtake earlier ones', async () => {
    const { scheduler, network } = net({ latencyMs: [10, 10], reorder: 0.5 });
    const a = network.transport('a');
    await a.start();
    const got = collect(network, 'b');
    for (let i = 0; i < 50; i++) a.send('b', new Uint8Array([i]));
    scheduler.advance(1000);
    const order = got.map((g) => g[1][0]);
    expect(order.length).toBe(50);
    expect(order).not.toEqual([...order].sort((x, y) => x - y));
  });

  it('partition drops messages across groups (also those in flight) until heal', async () => {
    const { scheduler, network } = net();
    const a = network.transport('a');
    await a.start();
    const gotB = collect(network, 'b');
    const gotC = collect(network, 'c');
    a.send('b', new Uint8Array([1]));
    network.partition(['a', 'c'], ['b']);
    scheduler.advance(100);
    expect(gotB).toEqual([]);
    a.send('b', new Uint8Array([2]));
    a.send('c', new Uint8Array([3]));
    scheduler.advance(100);
    expect(gotB).toEqual([]);
    expect(gotC.length).toBe(1);
    network.heal();
    a.send('b', new Uint8Array([4]));
    scheduler.advance(100);
    expect(gotB).toEqual([['a', [4]]]);
  });

  it('a crashed node sends and receives nothing; after restart its transport works again, for the engine holding it or a rebuilt one', async () => {
    const { scheduler, network } = net();
    const a = network.transport('a');
    await a.start();
    const gotB = collect(network, 'b');
    const b = network.transport('b');
    a.send('b', new Uint8Array([1]));
    network.crash('b');
    scheduler.advance(100);
    expect(gotB).toEqual([]); // in flight when it crashed: lost
    expect(b.send('a', new Uint8Array([9]))).toBe(false);
    a.send('b', new Uint8Array([3])); // sent while it is down: lost too
    network.restart('b');
    a.send('b', new Uint8Array([2]));
    scheduler.advance(100);
    expect(gotB).toEqual([['a', [2]]]); // the engine holding it resumes (a network-level outage)
    const gotA: number[] = [];
    a.onMessage((_f, bytes) => gotA.push(bytes[0]));
    expect(b.send('a', new Uint8Array([7]))).toBe(true);
    scheduler.advance(100);
    expect(gotA).toEqual([7]);
    // a rebuilt engine (a process restart) gets the same transport: its handler replaces the old one's, and
    // the old engine's stop() afterwards leaves it running (start and stop are counted)
    expect(network.transport('b')).toBe(b);
    const got2: number[] = [];
    b.onMessage((_f, bytes) => got2.push(bytes[0]));
    await b.start();
    await b.stop(); // the old engine's stop
    a.send('b', new Uint8Array([4]));
    scheduler.advance(100);
    expect(got2).toEqual([4]);
    expect(gotB).toEqual([['a', [2]]]);
    await b.stop(); // the last user's stop
    a.send('b', new Uint8Array([5]));
    scheduler.advance(100);
    expect(got2).toEqual([4]);
  });

  it('same seed and same sends give the same event trace; another seed a different one', async () => {
    const trace = async (seed: number): Promise<string[]> => {
      const scheduler = new VirtualScheduler();
      const network = new MemoryNetwork({ seed, scheduler, latencyMs: [1, 50], loss: 0.2, duplicate: 0.1, reorder: 0.2, trace: true });
      const ids = ['a', 'b', 'c', 'd'];
      for (const id of ids) {
        const t = network.transport(id);
        t.onMessage((from, bytes) => {
          if (bytes[0] < 20) t.send(from, new Uint8Array([bytes[0] + 1]));
        });
        await t.start();
      }
      const r = new Random(7);
      for (let i = 0; i < 200; i++) network.transport(r.pick(ids)).send(r.pick(ids), new Uint8Array([r.int(20)]));
      scheduler.advance(10_000);
      return network.trace!;
    };
    const t1 = await trace(SEED);
    const t2 = await trace(SEED);
    expect(t1.length).toBeGreaterThan(200);
    expect(t2).toEqual(t1);
    expect(await trace(SEED + 1)).not.toEqual(t1);
  });

  it('drops messages over the size limit at send', async () => {
    const { network } = net({ maxMessageBytes: 10 });
    const a = network.transport('a');
    await a.start();
    expect(a.send('b', new Uint8Array(11))).toBe(false);
    expect(network.nodeStats('a').dropped).toBe(1);
  });
});
