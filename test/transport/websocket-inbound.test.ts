/**
 * WebSocketTransport inbound connections under hostile clients: one socket per HELLO id, the idle timeout,
 * trusted inbound sockets with `authenticateInbound` (no replication traffic to a forged HELLO), eviction at
 * the connection limit, and `start()` failures as TransportError. Loopback only, port 0, everything closed.
 */
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { encodeHello, FRAME_DATA, FRAME_HELLO, WebSocketTransport } from '../../src/transport/websocket.js';
import { TransportError } from '../../src/errors.js';
import { GCounter } from '../../src/crdt/g-counter.js';
import { SyncEngine } from '../../src/sync/engine.js';
import { decodeEnvelope, makeSigner } from '../../src/sync/envelope.js';
import { Random } from '../../src/time/random.js';
import { inbox, waitFor } from './ws-helpers.js';

const open: WebSocketTransport[] = [];
const clients: WebSocket[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.terminate();
  for (const t of open.splice(0)) await t.stop();
});

function transport(id: string, extra: Partial<ConstructorParameters<typeof WebSocketTransport>[0]> = {}): WebSocketTransport {
  const t = new WebSocketTransport({ id, host: '127.0.0.1', port: 0, reconnect: { initialDelayMs: 20, maxDelayMs: 200 }, ...extra });
  open.push(t);
  return t;
}

interface Client {
  ws: WebSocket;
  /** DATA payloads received (frame kind byte stripped). */
  data: number[][];
  closed: boolean;
  send(bytes: number[]): void;
}

/** A raw client that dials `t`, says HELLO as `id` and waits for the transport's HELLO answer. */
async function hello(t: WebSocketTransport, id: string): Promise<Client> {
  const ws = new WebSocket(t.address);
  clients.push(ws);
  ws.on('error', () => {});
  const c: Client = { ws, data: [], closed: false, send: (b) => ws.send(Uint8Array.of(FRAME_DATA, ...b)) };
  let answered = false;
  ws.on('message', (d: Buffer) => {
    if (d[0] === FRAME_HELLO) answered = true;
    else if (d[0] === FRAME_DATA) c.data.push([...d.subarray(1)]);
  });
  ws.on('close', () => (c.closed = true));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  ws.send(encodeHello(id, ''));
  await waitFor(() => answered || c.closed, `HELLO answer to ${id}`);
  return c;
}

/** Toy authenticator: a message "verifies" when its first byte is 0xAA. */
const toyAuth = (b: Uint8Array): boolean => b[0] === 0xaa;

describe('WebSocketTransport inbound connections', () => {
  it('a HELLO with an id that already has an inbound socket replaces the older socket', async () => {
    const s = transport('srv');
    const got = inbox(s);
    await s.start();
    const first = await hello(s, 'p');
    const second = await hello(s, 'p');
    await waitFor(() => first.closed, 'the older socket closed');
    expect(second.closed).toBe(false);
    expect(s.connectedPeers()).toEqual(['p']);
    second.send([7]);
    await waitFor(() => got.length === 1, 'message over the newer socket');
    expect(got[0]).toEqual(['p', [7]]);
    expect(s.send('p', Uint8Array.of(8))).toBe(true);
    await waitFor(() => second.data.length === 1, 'reply over the newer socket');
    expect(second.data[0]).toEqual([8]);
  });

  it('closes an inbound socket that delivers nothing for idleTimeoutMs and keeps an active one', async () => {
    const s = transport('srv', { idleTimeoutMs: 1000 });
    inbox(s);
    await s.start();
    const quiet = await hello(s, 'quiet');
    const busy = await hello(s, 'busy');
    const beat = setInterval(() => busy.send([1]), 50);
    try {
      await waitFor(() => quiet.closed, 'the idle socket closed');
      expect(busy.closed).toBe(false);
      expect(s.connectedPeers()).toEqual(['busy']);
    } finally {
      clearInterval(beat);
    }
    expect(() => new WebSocketTransport({ id: 'x', idleTimeoutMs: -1 })).toThrow(TransportError);
  });

  it('squatters at maxInboundConnections time out, then a real peer connects (the reviewer repro, scaled down)', async () => {
    const s = transport('srv', { maxInboundConnections: 4, idleTimeoutMs: 300 });
    const got = inbox(s);
    await s.start();
    const squat = [];
    for (let i = 0; i < 4; i++) squat.push(await hello(s, `squat${i}`));
    const peer = transport('peer');
    await peer.start();
    peer.connect('srv', s.address);
    peer.send('srv', Uint8Array.of(42));
    await waitFor(() => got.length === 1, 'the real peer message');
    expect(got[0]).toEqual(['peer', [42]]);
    // the squatters time out one by one: the peer may get in while some are still counted
    await waitFor(() => squat.every((c) => c.closed), 'the squatters see their sockets closed');
    await waitFor(() => s.connectedPeers().join() === 'peer', 'only the real peer connected');
    expect(s.stats().rejectedConnections).toBeGreaterThan(0); // the peer was refused while the squatters held on
  });

  describe('with authenticateInbound (a cluster key)', () => {
    it('sends nothing to an impersonating HELLO for a configured peer whose link is down', async () => {
      const s = transport('srv', { authenticateInbound: toyAuth });
      const got = inbox(s);
      await s.start();
      s.connect('n3', 'ws://127.0.0.1:1'); // n3's real address: down
      const fake = await hello(s, 'n3');
      fake.send([1, 2]); // delivered to the handler (the sync layer drops it), but proves nothing
      await waitFor(() => got.length === 1, 'the unverified message');
      expect(s.send('n3', Uint8Array.of(9))).toBe(true);
      expect(s.stats().messagesSent).toBe(0);
      expect(s.stats().queuedMessages).toBe(1);
      expect(s.connectedPeers()).toEqual([]);
      expect(fake.data).toEqual([]);
      // a message that verifies makes the socket a send path: the queue drains into it
      fake.send([0xaa, 3]);
      await waitFor(() => fake.data.length === 1, 'the queued message after verification');
      expect(fake.data[0]).toEqual([9]);
      expect(s.connectedPeers()).toEqual(['n3']);
    });

    it('a forged HELLO does not displace the trusted socket; a verified newer socket does', async () => {
      const s = transport('srv', { authenticateInbound: toyAuth });
      inbox(s);
      await s.start();
      const real = await hello(s, 'p');
      real.send([0xaa]);
      await waitFor(() => s.connectedPeers().includes('p'), 'the real socket trusted');
      const forged = await hello(s, 'p');
      const forged2 = await hello(s, 'p'); // a newer candidate replaces the older candidate
      await waitFor(() => forged.closed, 'the older candidate closed');
      expect(real.closed).toBe(false);
      s.send('p', Uint8Array.of(5));
      await waitFor(() => real.data.length === 1, 'the message over the trusted socket');
      expect(forged2.data).toEqual([]);
      forged2.send([0xaa]); // now it verified (e.g. the real peer reconnected): it takes over
      await waitFor(() => real.closed, 'the older trusted socket replaced');
      s.send('p', Uint8Array.of(6));
      await waitFor(() => forged2.data.length === 1, 'the message over the newer trusted socket');
      expect(forged2.data[0]).toEqual([6]);
    });

    it('only verified messages keep an inbound socket from the idle timeout', async () => {
      const s = transport('srv', { authenticateInbound: toyAuth, idleTimeoutMs: 600 });
      inbox(s);
      await s.start();
      const noisy = await hello(s, 'noisy');
      const member = await hello(s, 'member');
      const beat = setInterval(() => {
        noisy.send([1]);
        member.send([0xaa]);
      }, 50);
      try {
        await waitFor(() => noisy.closed, 'the unverified chatter closed');
        expect(member.closed).toBe(false);
      } finally {
        clearInterval(beat);
      }
    });

    it('at maxInboundConnections a new connection evicts the least recently active untrusted one', async () => {
      const s = transport('srv', { authenticateInbound: toyAuth, maxInboundConnections: 3 });
      const got = inbox(s);
      await s.start();
      const member = await hello(s, 'member');
      member.send([0xaa]);
      await waitFor(() => got.length === 1, 'the member verified');
      const squat1 = await hello(s, 'squat1');
      const squat2 = await hello(s, 'squat2');
      const peer = transport('peer');
      await peer.start();
      peer.connect('srv', s.address);
      peer.send('srv', Uint8Array.of(0xaa, 1));
      await waitFor(() => got.length === 2, 'the new peer message');
      expect(got[1]).toEqual(['peer', [0xaa, 1]]);
      await waitFor(() => squat1.closed, 'the oldest untrusted socket evicted');
      expect(squat2.closed).toBe(false);
      expect(member.closed).toBe(false);
      expect(s.connectedPeers()).toEqual(['member', 'peer']);
    });

    for (const given of [true, false]) it(`SyncEngines with a cluster key replicate through inbound sockets trusted by the envelope tag, and a forged HELLO gets none of it (${given ? 'authenticateInbound given' : 'the engine hands its tag check over'})`, async () => {
      const key = 'cluster-secret';
      const signer = makeSigner(key);
      const authenticateInbound = (b: Uint8Array): boolean => {
        try {
          decodeEnvelope(b, signer);
          return true;
        } catch {
          return false;
        }
      };
      const engines: SyncEngine[] = [];
      for (const id of ['a', 'b']) {
        const t = transport(id, given ? { authenticateInbound } : {});
        const e = new SyncEngine({ replicaId: id, transport: t, clusterKey: key, random: new Random(id === 'a' ? 1 : 2), gossip: { intervalMs: 200 }, antiEntropy: { intervalMs: 500 } });
        e.register('c', new GCounter(id));
        engines.push(e);
      }
      const [a, b] = engines;
      const tb = open[1];
      try {
        await a.start();
        await b.start();
        // only a knows where b is: b answers a over a's inbound socket, once a's first tagged message verified
        a.addPeer('b', tb.address);
        b.addPeer('a');
        b.addPeer('n3', 'ws://127.0.0.1:1'); // configured, link down
        const fake = await hello(tb, 'n3');
        await a.update<GCounter>('c', (c) => c.increment(3));
        await b.update<GCounter>('c', (c) => c.increment(4));
        const v = (e: SyncEngine) => e.get<GCounter>('c')!.value();
        await waitFor(() => v(a) === 7 && v(b) === 7, 'both counters at 7');
        expect(tb.connectedPeers()).toEqual(['a']);
        expect(fake.data).toEqual([]);
        expect(fake.closed).toBe(false);
      } finally {
        for (const e of engines) await e.stop();
      }
    });
  });

  it('start() on a port in use rejects with TransportError (the system error as cause) and leaves the transport stopped', async () => {
    const first = transport('first');
    await first.start();
    const port = Number(new URL(first.address).port);
    const second = transport('second', { port });
    const err = await second.start().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TransportError);
    expect((err as TransportError).code).toBe('E_TRANSPORT');
    expect((err as Error).message).toMatch(/EADDRINUSE/);
    expect(((err as Error).cause as { code?: string }).code).toBe('EADDRINUSE');
    expect(second.send('first', Uint8Array.of(1))).toBe(false); // stopped
    expect(second.stats().droppedStopped).toBe(1);
    await second.stop();
    await first.stop();
    // the port is free again: the same transport starts now
    await second.start();
    expect(Number(new URL(second.address).port)).toBe(port);
  });
});
