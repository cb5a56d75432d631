import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { connect as netConnect, type AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { decodeHello, encodeHello, FRAME_DATA, peerAddress, WebSocketTransport } from '../../src/transport/websocket.js';
import { DecodeError, TransportError, ValidationError } from '../../src/errors.js';
import { GCounter } from '../../src/crdt/g-counter.js';
import { SyncEngine } from '../../src/sync/engine.js';
import { Random } from '../../src/time/random.js';
import { inbox, waitFor } from './ws-helpers.js';

const open: WebSocketTransport[] = [];
const servers: Server[] = [];
afterEach(async () => {
  for (const t of open.splice(0)) await t.stop();
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }
});

function transport(id: string, extra: Partial<ConstructorParameters<typeof WebSocketTransport>[0]> = {}): WebSocketTransport {
  const t = new WebSocketTransport({ id, host: '127.0.0.1', port: 0, reconnect: { initialDelayMs: 20, maxDelayMs: 200 }, ...extra });
  open.push(t);
  return t;
}

/** A raw TCP socket that completes the WebSocket upgrade and then lets the test write arbitrary bytes. */
async function rawUpgrade(port: number): Promise<import('node:net').Socket> {
  const s = netConnect(port, '127.0.0.1');
  s.on('error', () => {});
  await new Promise<void>((r) => s.once('connect', () => r()));
  s.write(
    'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
  );
  await new Promise<void>((resolve, reject) => {
    let buf = '';
    const onData = (d: Buffer) => {
      buf += d.toString('latin1');
      if (buf.includes('\r\n\r\n')) {
        s.off('data', onData);
        if (buf.startsWith('HTTP/1.1 101')) resolve();
        else reject(new Error(`upgrade refused: ${buf}`));
      }
    };
    s.on('data', onData);
  });
  return s;
}

/** A masked client->server binary WebSocket frame header for a payload of `len` bytes. */
function frameHeader(len: number, opcode = 2, fin = true, rsv = 0): Buffer {
  const b0 = (fin ? 0x80 : 0) | (rsv << 4) | opcode;
  let head: Buffer;
  if (len < 126) head = Buffer.from([b0, 0x80 | len]);
  else if (len < 65536) {
    head = Buffer.alloc(4);
    head[0] = b0;
    head[1] = 0x80 | 126;
    head.writeUInt16BE(len, 2);
  } else {
    head = Buffer.alloc(10);
    head[0] = b0;
    head[1] = 0x80 | 127;
    head.writeBigUInt64BE(BigInt(len), 2);
  }
  return Buffer.concat([head, Buffer.from([0, 0, 0, 0])]); // zero mask key: payload goes as is
}

function portOf(t: WebSocketTransport): number {
  return Number(new URL(t.address).port);
}

describe('WebSocketTransport', () => {
  it('HELLO frames round-trip and malformed ones throw DecodeError', () => {
    expect(decodeHello(encodeHello('node-a', 'ws://127.0.0.1:1'))).toEqual({ id: 'node-a', address: 'ws://127.0.0.1:1' });
    const h = encodeHello('node-a', 'ws://x');
    expect(() => decodeHello(h.subarray(0, h.length - 1))).toThrow(DecodeError);
    expect(() => decodeHello(Uint8Array.of(FRAME_DATA, 1, 0))).toThrow(DecodeError);
    expect(() => decodeHello(Uint8Array.of(1, 9, 1, 65, 0))).toThrow(/version/);
    expect(() => new WebSocketTransport({ id: '' })).toThrow(TransportError);
    const t = new WebSocketTransport({ id: 'x' });
    expect(() => t.connect('p', 'http://127.0.0.1:1')).toThrow(TransportError);
    expect(() => t.connect('p', '')).not.toThrow(); // known peer, reached only over its own connection
  });

  it('takes a bare HOST:PORT peer address (the seed system\'s form) as ws://HOST:PORT', async () => {
    expect(peerAddress('192.168.1.10:8080')).toBe('ws://192.168.1.10:8080');
    expect(peerAddress('[::1]:7101')).toBe('ws://[::1]:7101');
    expect(peerAddress('node-b.example:443')).toBe('ws://node-b.example:443');
    for (const same of ['ws://h:1', 'wss://h:1/x', 'http://h:1', 'h', 'h:', 'h:123456', '']) expect(peerAddress(same)).toBe(same);
    const a = transport('a');
    const b = transport('b');
    const gb = inbox(b);
    await a.start();
    await b.start();
    a.connect('b', `127.0.0.1:${portOf(b)}`);
    a.send('b', Uint8Array.of(4, 2));
    await waitFor(() => gb.length === 1, 'message over a HOST:PORT address');
    expect(gb[0]).toEqual(['a', [4, 2]]);
    expect(() => a.connect('c', 'h:123456')).toThrow(TransportError);
  });

  it('delivers messages both ways over one dialled connection', async () => {
    const a = transport('a');
    const b = transport('b');
    const ga = inbox(a);
    const gb = inbox(b);
    await a.start();
    await b.start();
    a.connect('b', b.address);
    a.send('b', Uint8Array.of(1, 2, 3)); // queued while connecting
    await waitFor(() => gb.length === 1, 'first message');
    expect(gb[0]).toEqual(['a', [1, 2, 3]]);
    // b never dialled a: it answers over the inbound socket
    expect(b.send('a', Uint8Array.of(9))).toBe(true);
    await waitFor(() => ga.length === 1, 'reply');
    expect(ga[0]).toEqual(['b', [9]]);
    for (let i = 0; i < 500; i++) a.send('b', Uint8Array.of(i & 255, i >> 8));
    await waitFor(() => gb.length === 501, 'burst');
    expect(gb.slice(1).map(([, x]) => x[0] + x[1] * 256)).toEqual([...Array(500).keys()]);
    expect(a.connectedPeers()).toEqual(['b']);
    expect(b.connectedPeers()).toEqual(['a']);
    expect(a.stats().messagesSent).toBe(501);
    expect(b.stats().messagesReceived).toBe(501);
    expect(b.stats().bytesReceived).toBeGreaterThan(500 * 3);
  });

  it('dials with a browser-style WebSocket constructor (ArrayBuffer messages) and enforces the size limit on receipt', async () => {
    const server = transport('srv');
    const gs = inbox(server);
    await server.start();
    const client = new WebSocketTransport({ id: 'browser', WebSocket: WebSocket as unknown as new (url: string) => unknown, maxMessageBytes: 64 });
    open.push(client);
    const gc = inbox(client);
    await client.start(); // no port, no server: dial-out only, like a browser
    client.connect('srv', server.address);
    client.send('srv', Uint8Array.of(1, 2));
    await waitFor(() => gs.length === 1, 'browser -> server');
    expect(gs[0]).toEqual(['browser', [1, 2]]);
    server.send('browser', Uint8Array.of(3));
    await waitFor(() => gc.length === 1, 'server -> browser');
    expect(gc[0]).toEqual(['srv', [3]]);
    server.send('browser', new Uint8Array(500)); // over the client's limit: the client drops the connection
    await waitFor(() => client.stats().rejectedFrames === 1, 'oversized frame refused');
    expect(gc.length).toBe(1);
    await waitFor(() => client.connectedPeers().includes('srv'), 'reconnect');
  });

  it('shares an existing HTTP server with plain HTTP routes', async () => {
    const server = createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(`hello ${req.url}`);
    });
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const a = transport('a', { port: undefined, server });
    const b = transport('b');
    const ga = inbox(a);
    await a.start();
    await b.start();
    const port = (server.address() as AddressInfo).port;
    expect(a.address).toBe(`ws://127.0.0.1:${port}`);
    b.connect('a', a.address);
    b.send('a', Uint8Array.of(7));
    await waitFor(() => ga.length === 1, 'message over shared server');
    const res = await fetch(`http://127.0.0.1:${port}/x`);
    expect(await res.text()).toBe('hello /x');
    await a.stop();
    // the shared server keeps serving HTTP after the transport stops
    expect(await (await fetch(`http://127.0.0.1:${port}/y`)).text()).toBe('hello /y');
  });

  it('refuses to send an oversized message and closes a connection that sends one', async () => {
    const a = transport('a', { maxMessageBytes: 1024 });
    const got = inbox(a);
    await a.start();
    expect(a.send('nobody', new Uint8Array(10))).toBe(false);
    expect(a.stats().droppedUnknownPeer).toBe(1);
    a.connect('b', 'ws://127.0.0.1:1');
    expect(a.send('b', new Uint8Array(2000))).toBe(false);
    expect(a.stats().droppedTooLarge).toBe(1);

    const ws = new WebSocket(a.address);
    ws.on('error', () => {});
    await new Promise<void>((r) => ws.once('open', () => r()));
    ws.send(encodeHello('evil', 'ws://127.0.0.1:2'));
    const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
    ws.send(Buffer.concat([Buffer.from([FRAME_DATA]), Buffer.alloc(5000)]));
    expect(await closed).toBe(1009);
    expect(got).toEqual([]);
    // the node still accepts well-behaved peers
    const b = transport('b2');
    await b.start();
    b.connect('a', a.address);
    b.send('a', Uint8Array.of(1));
    await waitFor(() => got.length === 1, 'message after oversized frame');
  });

  it('survives garbage, malformed frames, protocol violations and peers that vanish mid-frame', async () => {
    const a = transport('a', { handshakeTimeoutMs: 300 });
    const got = inbox(a);
    await a.start();
    const port = portOf(a);

    // 1. not HTTP at all
    const g = netConnect(port, '127.0.0.1');
    g.on('error', () => {});
    await new Promise<void>((r) => g.once('connect', () => r()));
    g.write(Buffer.from('\x00\xff garbage \r\n\r\n\x16\x03\x01 more garbage'));
    await new Promise<void>((r) => g.once('close', () => r()));

    // 2. a malformed WebSocket frame (reserved bits set)
    const m = await rawUpgrade(port);
    m.write(Buffer.concat([frameHeader(3, 2, true, 7), Buffer.from([1, 2, 3])]));
    await new Promise<void>((r) => m.once('close', () => r()));

    // 3. data before HELLO
    const d = await rawUpgrade(port);
    d.write(Buffer.concat([frameHeader(3), Buffer.from([FRAME_DATA, 1, 2])]));
    await new Promise<void>((r) => d.once('close', () => r()));

    // 4. a text frame after a valid HELLO
    const t = await rawUpgrade(port);
    const hello = Buffer.from(encodeHello('t', 'ws://127.0.0.1:3'));
    t.write(Buffer.concat([frameHeader(hello.length), hello, frameHeader(2, 1), Buffer.from('hi')]));
    await new Promise<void>((r) => t.once('close', () => r()));

    // 5. a peer that disconnects in the middle of a DATA frame
    const p = await rawUpgrade(port);
    p.write(Buffer.concat([frameHeader(hello.length), hello, frameHeader(100), Buffer.from([FRAME_DATA, 1, 2, 3])]));
    await waitFor(() => a.connectedPeers().includes('t'), 'half-open peer hello');
    p.destroy();
    await waitFor(() => !a.connectedPeers().includes('t'), 'peer gone');

    // 6. a connection that never says HELLO is closed after the handshake timeout
    const s = await rawUpgrade(port);
    await new Promise<void>((r) => s.once('close', () => r()));

    expect(got).toEqual([]);
    const st = a.stats();
    expect(st.rejectedFrames).toBeGreaterThanOrEqual(2);
    expect(st.rejectedConnections).toBeGreaterThanOrEqual(3);

    const b = transport('b');
    await b.start();
    b.connect('a', a.address);
    b.send('a', Uint8Array.of(42));
    await waitFor(() => got.length === 1, 'message after abuse');
    expect(got[0]).toEqual(['b', [42]]);
  });

  it('rejects a peer that answers with another id than the one dialled', async () => {
    const a = transport('a');
    const b = transport('b');
    await a.start();
    await b.start();
    a.connect('c', b.address); // b lives there, not c
    await waitFor(() => a.stats().rejectedConnections >= 1, 'rejection');
    expect(a.connectedPeers()).toEqual([]);
  });

  it('bounds the send queue while a peer is down, then reconnects and delivers the queue', async () => {
    const b = transport('b');
    const gb = inbox(b);
    await b.start();
    const port = portOf(b);
    await b.stop();
    const a = transport('a', { maxQueueMessages: 50 });
    await a.start();
    a.connect('b', `ws://127.0.0.1:${port}`);
    let accepted = 0;
    for (let i = 0; i < 200; i++) if (a.send('b', Uint8Array.of(i))) accepted++;
    expect(accepted).toBe(50);
    expect(a.stats().droppedQueueFull).toBe(150);
    expect(a.stats().queuedMessages).toBe(50);
    await waitFor(() => a.stats().reconnects >= 2, 'redial attempts');
    const b2 = new WebSocketTransport({ id: 'b', host: '127.0.0.1', port });
    open.push(b2);
    const gb2 = inbox(b2);
    await b2.start();
    await waitFor(() => gb2.length === 50, 'queued messages after reconnect');
    expect(gb2.map(([, x]) => x[0])).toEqual([...Array(50).keys()]);
    expect(gb).toEqual([]);
    expect(a.stats().queuedMessages).toBe(0);
  });

  it('queues behind a slow peer instead of growing the socket buffer without bound', async () => {
    // a peer that completes the handshake but never reads: the kernel buffers fill, bufferedAmount rises
    const server = createServer();
    servers.push(server);
    const sockets: import('node:stream').Duplex[] = [];
    server.on('upgrade', (req, socket) => {
      sockets.push(socket);
      const key = req.headers['sec-websocket-key']!;
      const accept = createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
      const hello = Buffer.from(encodeHello('slow', 'ws://127.0.0.1:9'));
      socket.write(Buffer.concat([Buffer.from([0x82, hello.length]), hello]));
      (socket as import('node:net').Socket).pause();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const a = transport('a', { highWaterBytes: 64 * 1024, maxQueueMessages: 100, maxQueueBytes: 1 << 20 });
    await a.start();
    a.connect('slow', `ws://127.0.0.1:${(server.address() as AddressInfo).port}`);
    await waitFor(() => a.connectedPeers().includes('slow'), 'slow peer hello');
    const chunk = new Uint8Array(16 * 1024);
    let dropped = 0;
    for (let i = 0; i < 2000; i++) {
      if (!a.send('slow', chunk)) dropped++;
      if (i % 100 === 0) await new Promise((r) => setTimeout(r, 1));
    }
    const st = a.stats();
    expect(dropped).toBeGreaterThan(0);
    expect(st.droppedQueueFull).toBe(dropped);
    expect(st.queuedMessages).toBeLessThanOrEqual(100);
    // what reached the socket is bounded by the high-water mark plus what the kernel accepted
    expect(st.bytesSent).toBeLessThan(2000 * chunk.length);
    for (const s of sockets) s.destroy();
  });

  describe('without an id (DESIGN: new WebSocketTransport({ host, port }))', () => {
    it('is created without an id, refuses to start until bound, and keeps the first id it gets', async () => {
      const t = new WebSocketTransport({ host: '127.0.0.1', port: 0 });
      open.push(t);
      expect(t.id).toBe('');
      await expect(t.start()).rejects.toThrow(TransportError);
      expect(t.stats().connectionsOpened).toBe(0);
      expect(() => t.bind('')).toThrow(ValidationError);
      expect(() => t.bind('x'.repeat(257))).toThrow(ValidationError);
      expect(() => t.bind(7 as unknown as string)).toThrow(ValidationError);
      expect(t.id).toBe('');
      t.bind('a');
      expect(t.id).toBe('a');
      t.bind('a'); // the same id again: a no-op
      expect(() => t.bind('b')).toThrow(ValidationError);
      expect(t.id).toBe('a');
      await t.start();
      expect(portOf(t)).toBeGreaterThan(0);
      expect(new WebSocketTransport().id).toBe(''); // dial-out only, no options at all
    });

    it('an explicit id is kept: binding it again is fine, binding another is a ValidationError', () => {
      const t = new WebSocketTransport({ id: 'x' });
      t.bind('x');
      expect(() => t.bind('y')).toThrow(ValidationError);
      expect(t.id).toBe('x');
      expect(() => new WebSocketTransport({ id: 5 as unknown as string })).toThrow(TransportError);
    });

    it('bound transports announce the bound id in HELLO and deliver with it as the sender', async () => {
      const a = new WebSocketTransport({ host: '127.0.0.1', port: 0 });
      const b = new WebSocketTransport({ host: '127.0.0.1', port: 0 });
      open.push(a, b);
      a.bind('node-a');
      b.bind('node-b');
      const ga = inbox(a);
      const gb = inbox(b);
      await a.start();
      await b.start();
      a.connect('node-b', b.address);
      a.send('node-b', Uint8Array.of(1));
      await waitFor(() => gb.length === 1, 'message to b');
      expect(gb[0]).toEqual(['node-a', [1]]);
      b.send('node-a', Uint8Array.of(2));
      await waitFor(() => ga.length === 1, 'reply to a');
      expect(ga[0]).toEqual(['node-b', [2]]);
      expect(b.connectedPeers()).toEqual(['node-a']);
    });

    it('two SyncEngines over id-less transports take their replica ids and replicate a counter', async () => {
      const engines: SyncEngine[] = [];
      for (const id of ['a', 'b']) {
        const transport = new WebSocketTransport({ host: '127.0.0.1', port: 0, reconnect: { initialDelayMs: 20, maxDelayMs: 200 } });
        open.push(transport);
        const e = new SyncEngine({ replicaId: id, transport, random: new Random(id === 'a' ? 1 : 2), gossip: { intervalMs: 200 }, antiEntropy: { intervalMs: 500 } });
        e.register('c', new GCounter(id));
        expect(transport.id).toBe(id); // the SyncEngine constructor bound it
        engines.push(e);
      }
      const [a, b] = engines;
      try {
        await a.start();
        await b.start();
        a.addPeer('b', b.transport.address);
        b.addPeer('a', a.transport.address);
        await a.update<GCounter>('c', (c) => c.increment(3));
        await b.update<GCounter>('c', (c) => c.increment(4));
        const v = (e: SyncEngine) => e.get<GCounter>('c')!.value();
        await waitFor(() => v(a) === 7 && v(b) === 7, 'both counters at 7');
      } finally {
        for (const e of engines) await e.stop();
      }
    });
  });
});
