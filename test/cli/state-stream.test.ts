/**
 * `GET /state` above STATE_STREAM_MIN records is streamed in pieces with the event loop free between them:
 * the document is the same as in one piece, records are read as their piece is written, a client that stops
 * reading holds the stream (no busy loop) and is dropped after STATE_STALL_MS, one that goes away stops it,
 * and a failure mid-stream cuts the body instead of leaving the client waiting.
 */
import { EventEmitter } from 'node:events';
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { NovaCronIntegration } from '../../src/cluster/integration.js';
import { MAX_STATE_STREAMS, MAX_STATE_STREAMS_PER_ADDRESS, STATE_BATCH, STATE_MAX_MS, STATE_STALL_MS, STATE_STREAM_MIN, createHttpHandler, sortedInTurns, stateDocument, type HttpContext } from '../../src/cli/http.js';
import type { Transport } from '../../src/transport/types.js';

const transport: Transport = { id: 'h', address: 'mem://h', send: () => true, onMessage() {}, start: async () => {}, stop: async () => {} };

const vmId = (i: number) => `vm-${String(i).padStart(5, '0')}`;

/** A started cluster with `vms` VMs (every third assigned to a node), one node status and a counter. */
async function context(vms: number): Promise<HttpContext> {
  const cluster = new NovaCronIntegration({ nodeId: 'h', region: 'us-east', transport });
  await cluster.start();
  const md = cluster.metadata;
  for (let i = 0; i < vms; i++) {
    md.putVM(vmId(i), { id: vmId(i), status: i % 2 ? 'running' : 'stopped', cpuCores: i % 16, metadata: { n: String(i) } });
    if (i % 3 === 0) md.assignments.setLWW(vmId(i), `node-${i % 7}`);
  }
  md.nodes.setLWW('node-1', { id: 'node-1', region: 'us-east', status: 'healthy', vmCount: 3 });
  md.counters.counter('c').increment(5);
  return { nodeId: 'h', region: 'us-east', cluster, metrics: () => '', admin: { addPeer() {}, partition() {}, heal() {} } };
}

/** A response that records what the handler does with it; `write` answers `accept(piece, n)`. */
class FakeResponse extends EventEmitter {
  headersSent = false;
  destroyed = false;
  status = 0;
  headers: Record<string, unknown> = {};
  pieces: string[] = [];
  ended: string | undefined;
  constructor(private readonly accept: (piece: string, n: number) => boolean = () => true) {
    super();
  }
  writeHead(status: number, headers: Record<string, unknown>): this {
    this.status = status;
    this.headers = headers;
    this.headersSent = true;
    return this;
  }
  write(piece: string): boolean {
    this.pieces.push(piece);
    return this.accept(piece, this.pieces.length);
  }
  end(last?: string): void {
    this.ended = last ?? '';
    this.emit('finish');
  }
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.emit('close');
  }
}

function get(ctx: HttpContext, res: FakeResponse, method = 'GET', handler = createHttpHandler(ctx), remoteAddress = '127.0.0.1'): void {
  const req = Readable.from([]) as unknown as IncomingMessage;
  Object.assign(req, { method, url: '/state', headers: {}, socket: { remoteAddress } });
  handler(req, res as unknown as ServerResponse);
}

/** Resolves once `res` ended or was destroyed (bounded). */
function settled(res: FakeResponse, ms = 10_000): Promise<void> {
  return vi.waitFor(() => expect(res.ended !== undefined || res.destroyed).toBe(true), { timeout: ms, interval: 5 });
}

const contexts: HttpContext[] = [];
afterEach(async () => {
  vi.useRealTimers();
  for (const c of contexts.splice(0)) await c.cluster.stop();
});

async function big(): Promise<HttpContext> {
  const ctx = await context(STATE_STREAM_MIN + 7000); // 9,000 VMs and 3,000 assignments: 3 sorted runs of ids
  contexts.push(ctx);
  return ctx;
}

describe('GET /state streamed', () => {
  // a socket that takes each write at once (true), or one whose buffer fills but drains from within the write
  // (Node emits 'drain' in a tick when the kernel took everything): either way the loop turns between pieces
  it.each(['accepted', 'drained at once'])('sends the same document as in one piece, over many pieces, the event loop turning between them (%s)', async (mode) => {
    const ctx = await big();
    const order: string[] = [];
    const res: FakeResponse = new FakeResponse(() => {
      order.push('piece');
      setImmediate(() => order.push('turn'));
      if (mode === 'accepted') return true;
      process.nextTick(() => res.emit('drain'));
      return false;
    });
    get(ctx, res);
    await settled(res);
    expect(res.status).toBe(200);
    expect(res.headers['content-length']).toBeUndefined();
    const body = res.pieces.join('') + res.ended;
    expect(JSON.parse(body)).toEqual(JSON.parse(JSON.stringify(stateDocument(ctx))));
    // a piece per STATE_BATCH VMs and per STATE_BATCH assignments, plus the head and the middle
    expect(res.pieces.length).toBe(2 + Math.ceil(9000 / STATE_BATCH) + Math.ceil(3000 / STATE_BATCH));
    // the loop turned after every piece before the next was made (all at once would be piece, piece, ...)
    for (let i = 0; i + 1 < order.length; i += 2) expect(order.slice(i, i + 2)).toEqual(['piece', 'turn']);
  });

  it('reads each record when its piece is written: deleted ones are left out, rewritten ones show the new version', async () => {
    const ctx = await big();
    const md = ctx.cluster.metadata;
    const res = new FakeResponse((_piece, n) => {
      if (n === 1) {
        md.removeVM(vmId(3400)); // VM and its assignment (3400 is not a multiple of 3: VM only)
        md.removeVM(vmId(3399)); // both
        md.putVM(vmId(3000), { id: vmId(3000), status: 'migrating' });
        md.assignments.setLWW(vmId(3), 'node-new');
      }
      return true;
    });
    get(ctx, res);
    await settled(res);
    const doc = JSON.parse(res.pieces.join('') + res.ended) as { vms: { id: string; status: string }[]; assignments: Record<string, string> };
    const ids = doc.vms.map((v) => v.id);
    expect(ids).not.toContain(vmId(3400));
    expect(ids).not.toContain(vmId(3399));
    expect(doc.vms.length).toBe(8998);
    expect(doc.vms.find((v) => v.id === vmId(3000))?.status).toBe('migrating');
    expect(doc.assignments[vmId(3399)]).toBeUndefined();
    expect(doc.assignments[vmId(3)]).toBe('node-new');
    expect(Object.keys(doc.assignments).length).toBe(2999);
  });

  it('waits for a full socket to drain, stops when the client goes away, and drops a client that stalls', async () => {
    const ctx = await big();
    // full after the third piece: nothing more is written until 'drain'
    const res = new FakeResponse((_p, n) => n !== 3);
    get(ctx, res);
    await vi.waitFor(() => expect(res.pieces.length).toBe(3), { timeout: 5000, interval: 5 });
    await new Promise((r) => setTimeout(r, 50));
    expect(res.pieces.length).toBe(3);
    res.emit('drain');
    await settled(res);
    expect(res.ended).toBeDefined();

    // the client goes away while the socket is full: nothing more is written or read
    const gone = new FakeResponse((_p, n) => n !== 2);
    get(ctx, gone);
    await vi.waitFor(() => expect(gone.pieces.length).toBe(2), { timeout: 5000, interval: 5 });
    const spy = vi.spyOn(ctx.cluster.metadata, 'getVMState');
    gone.destroy();
    await new Promise((r) => setTimeout(r, 50));
    expect(gone.pieces.length).toBe(2);
    expect(gone.ended).toBeUndefined();
    expect(spy).not.toHaveBeenCalled();
    spy.mockRestore();

    // a client that never reads again is dropped after STATE_STALL_MS
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const stalled = new FakeResponse((_p, n) => n !== 2);
    get(ctx, stalled);
    // (vi.waitFor would advance the fake clock) turns of the loop until the second piece is out, bounded
    for (let i = 0; i < 100_000 && stalled.pieces.length < 2; i++) await new Promise((r) => setImmediate(r));
    expect(stalled.pieces.length).toBe(2);
    vi.advanceTimersByTime(STATE_STALL_MS - 1);
    expect(stalled.destroyed).toBe(false);
    vi.advanceTimersByTime(1);
    expect(stalled.destroyed).toBe(true);
    await new Promise((r) => setImmediate(r));
    expect(stalled.pieces.length).toBe(2);
    expect(stalled.ended).toBeUndefined();
  });

  it('cuts the body short when reading fails mid-stream, and answers HEAD with headers only', async () => {
    const ctx = await big();
    const md = ctx.cluster.metadata;
    const real = md.getVMState.bind(md);
    let calls = 0;
    const spy = vi.spyOn(md, 'getVMState').mockImplementation((id: string) => {
      if (++calls === STATE_BATCH + 10) throw new Error('disk on fire');
      return real(id);
    });
    const res = new FakeResponse();
    get(ctx, res);
    await settled(res);
    expect(res.destroyed).toBe(true);
    expect(res.ended).toBeUndefined();
    expect(res.status).toBe(200);
    spy.mockRestore();

    const head = new FakeResponse();
    get(ctx, head, 'HEAD');
    await settled(head);
    expect(head.status).toBe(200);
    expect(head.pieces).toEqual([]);
    expect(head.ended).toBe('');
  });

  it(`streams at most ${MAX_STATE_STREAMS_PER_ADDRESS} answers to one address and ${MAX_STATE_STREAMS} in all: another gets 503 E_BUSY with Retry-After`, async () => {
    const ctx = await big();
    const handler = createHttpHandler(ctx);
    const stuck: FakeResponse[] = [];
    const open = async (address: string): Promise<FakeResponse> => {
      const r = new FakeResponse(() => false); // never drains
      get(ctx, r, 'GET', handler, address);
      await vi.waitFor(() => expect(r.pieces.length + (r.ended !== undefined ? 1 : 0)).toBeGreaterThan(0), { timeout: 5000, interval: 5 });
      stuck.push(r);
      return r;
    };
    const busy = async (address: string): Promise<void> => {
      const r = new FakeResponse();
      get(ctx, r, 'GET', handler, address);
      await settled(r);
      expect([r.status, r.headers['retry-after'], JSON.parse(r.ended!).code]).toEqual([503, '1', 'E_BUSY']);
    };
    for (let i = 0; i < MAX_STATE_STREAMS_PER_ADDRESS; i++) expect((await open('10.0.0.1')).status).toBe(200);
    await busy('10.0.0.1');
    for (let i = 1; stuck.length < MAX_STATE_STREAMS; i++) expect((await open(`10.0.1.${i}`)).status).toBe(200);
    await busy('10.0.9.9');
    const head = new FakeResponse(); // HEAD streams nothing: answered
    get(ctx, head, 'HEAD', handler, '10.0.9.9');
    await settled(head);
    expect(head.status).toBe(200);
    stuck[0]!.destroy(); // one goes away: its slot frees, for its address too
    await new Promise((r) => setTimeout(r, 20));
    const next = new FakeResponse();
    get(ctx, next, 'GET', handler, '10.0.0.1');
    await settled(next);
    expect([next.status, next.ended !== undefined]).toEqual([200, true]);
    for (const r of stuck) r.destroy();
  });

  it(`cuts a stream still going after ${STATE_MAX_MS / 1000} s (a client reading a piece a minute)`, async () => {
    const ctx = await big();
    vi.useFakeTimers({ toFake: ['Date'] });
    const res = new FakeResponse((_p, n) => {
      if (n === 3) vi.setSystemTime(Date.now() + STATE_MAX_MS + 1);
      return true;
    });
    get(ctx, res);
    await settled(res);
    expect([res.destroyed, res.ended, res.pieces.length]).toEqual([true, undefined, 3]);
  });

  it('small states stay one exact piece with a content-length', async () => {
    const ctx = await context(10);
    contexts.push(ctx);
    const res = new FakeResponse();
    get(ctx, res);
    await settled(res);
    expect(res.pieces).toEqual([]);
    expect(res.headers['content-length']).toBe(Buffer.byteLength(res.ended!));
    expect(JSON.parse(res.ended!)).toEqual(JSON.parse(JSON.stringify(stateDocument(ctx))));
  });

  it('over a real socket: chunked, and parses to the document', async () => {
    const ctx = await big();
    const server = createServer(createHttpHandler(ctx));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const { port } = server.address() as AddressInfo;
      const got = await new Promise<{ headers: IncomingMessage['headers']; body: string; chunks: number }>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port, path: '/state' }, (res) => {
          let body = '';
          let chunks = 0;
          res.setEncoding('utf8');
          res.on('data', (d: string) => {
            body += d;
            chunks++;
          });
          res.on('end', () => resolve({ headers: res.headers, body, chunks }));
          res.on('error', reject);
        });
        req.on('error', reject);
        req.setTimeout(20_000, () => req.destroy(new Error('timeout')));
        req.end();
      });
      expect(got.headers['transfer-encoding']).toBe('chunked');
      expect(got.headers['content-type']).toBe('application/json; charset=utf-8');
      expect(JSON.parse(got.body)).toEqual(JSON.parse(JSON.stringify(stateDocument(ctx))));
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});

describe('sortedInTurns', () => {
  it('gives the keys in JS string order (as a single sort) across many runs, one run per turn, and stops when told', async () => {
    const seed = 20261207;
    let x = seed;
    const rnd = () => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) / 2 ** 32);
    const alphabet = ['a', 'b', 'z', '0', '9', '-', 'é', '\u{1F600}', '\uffff', 'vm-'];
    for (const n of [0, 1, 4095, 4096, 4097, 20_000]) {
      const keys = Array.from({ length: n }, () => Array.from({ length: 1 + Math.floor(rnd() * 6) }, () => alphabet[Math.floor(rnd() * alphabet.length)]).join(''));
      const distinct = [...new Set(keys)];
      let turns = 0;
      const next = await sortedInTurns(distinct.slice(), async () => (turns++, true));
      const got: string[] = [];
      for (let k = next!(); k !== undefined; k = next!()) got.push(k);
      expect(got, `seed ${seed}, n ${n}`).toEqual(distinct.slice().sort());
      expect(turns).toBe(Math.max(0, Math.ceil(distinct.length / 4096) - 1));
    }
    const big = Array.from({ length: 10_000 }, (_, i) => `k${i}`);
    expect(await sortedInTurns(big, async () => false)).toBeUndefined();
  });
});
