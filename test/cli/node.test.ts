/**
 * One node process under hostile peers and clients: malformed, oversized and garbage input on the peer
 * WebSocket leaves it running with its state unchanged; the HTTP API authenticates writes, rejects bad input
 * without changing anything, and serves /metrics, /healthz and the dashboard.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { encodeHello, FRAME_DATA } from '../../src/transport/websocket.js';
import { parseMetrics } from '../../src/cli/metrics.js';
import { api, ensureCli, killAll, startNode, summary, type NodeProc } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'ass-cli-node-'));
const TOKEN = 'correct-horse-battery-staple';
let node: NodeProc;
let peer: NodeProc;

beforeAll(async () => {
  await ensureCli();
  writeFileSync(join(dir, 'token'), TOKEN + '\n');
  writeFileSync(join(dir, 'key'), 'cluster-secret-0123456789\n');
  node = await startNode({ id: 'victim', region: 'us-east', dataDir: join(dir, 'victim'), args: ['--api-token-file', join(dir, 'token'), '--cluster-key-file', join(dir, 'key')] });
  peer = await startNode({
    id: 'friend',
    region: 'us-west',
    dataDir: join(dir, 'friend'),
    peers: [{ id: 'victim', address: node.address }],
    args: ['--api-token-file', join(dir, 'token'), '--cluster-key-file', join(dir, 'key')],
  });
  const auth = { authorization: `Bearer ${TOKEN}` };
  expect((await api(node.http, 'POST', '/admin/peers', { id: 'friend', address: peer.address }, auth)).status).toBe(204);
  for (let i = 0; i < 20; i++) expect((await api(node.http, 'PUT', `/vms/vm-${i}`, { id: `vm-${i}`, status: 'running', cpuCores: 2 }, auth)).status).toBe(204);
  expect((await api(node.http, 'POST', '/counters/ops', { delta: 5 }, auth)).status).toBe(204);
  const end = Date.now() + 20_000;
  while ((await summary(peer)).vms !== 20 || (await summary(peer)).counters.ops !== 5) {
    if (Date.now() > end) throw new Error('peer did not sync');
    await new Promise((r) => setTimeout(r, 100));
  }
}, 60_000);

afterAll(async () => {
  await killAll();
  rmSync(dir, { recursive: true, force: true });
});

let keyNo = 0;
async function rawUpgrade(port: number): Promise<Socket> {
  const s = netConnect(port, '127.0.0.1');
  s.on('error', () => {});
  await new Promise<void>((r) => s.once('connect', () => r()));
  s.write(
    'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      `Sec-WebSocket-Key: ${createHash('md5').update(`key-${keyNo++}`).digest('base64').slice(0, 22)}==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  );
  await new Promise<void>((resolve, reject) => {
    let buf = '';
    const onData = (d: Buffer) => {
      buf += d.toString('latin1');
      if (!buf.includes('\r\n\r\n')) return;
      s.off('data', onData);
      if (buf.startsWith('HTTP/1.1 101')) resolve();
      else reject(new Error(buf));
    };
    s.on('data', onData);
  });
  return s;
}

/** Masked client frame (zero mask key). */
function frame(payload: Buffer, opcode = 2, rsv = 0, declared = payload.length): Buffer {
  const b0 = 0x80 | (rsv << 4) | opcode;
  let head: Buffer;
  if (declared < 126) head = Buffer.from([b0, 0x80 | declared]);
  else if (declared < 65536) {
    head = Buffer.from([b0, 0x80 | 126, 0, 0]);
    head.writeUInt16BE(declared, 2);
  } else {
    head = Buffer.alloc(10);
    head[0] = b0;
    head[1] = 0x80 | 127;
    head.writeBigUInt64BE(BigInt(declared), 2);
  }
  return Buffer.concat([head, Buffer.alloc(4), payload]);
}

/** Resolves when the node closed the socket; fails the test if it has not within `ms`. */
const closed = (s: Socket, what: string, ms = 10_000) =>
  new Promise<void>((resolve, reject) => {
    if (s.destroyed) return resolve();
    const t = setTimeout(() => reject(new Error(`node did not close the connection: ${what}`)), ms);
    s.once('close', () => {
      clearTimeout(t);
      resolve();
    });
  });

describe('a node under hostile peer input', () => {
  it('stays up with its state unchanged after malformed, oversized, garbage and truncated frames', async () => {
    const before = await summary(node);
    const metricsBefore = parseMetrics((await api(node.http, 'GET', '/metrics')).text);
    const hello = Buffer.from(encodeHello('intruder', 'ws://127.0.0.1:1'));

    // 1. garbage bytes instead of HTTP
    const g = netConnect(node.port, '127.0.0.1');
    g.on('error', () => {});
    let answer = '';
    g.on('data', (d: Buffer) => (answer += d.toString('latin1'))); // read: the close comes after the answer
    await new Promise<void>((r) => g.once('connect', () => r()));
    g.write(Buffer.from([0, 1, 2, 255, 254, 13, 10, 13, 10, 0x16, 3, 1]));
    await closed(g, 'garbage instead of HTTP');
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);

    // 2. a malformed WebSocket frame (reserved bits)
    const m = await rawUpgrade(node.port);
    m.write(frame(Buffer.from([1, 2, 3]), 2, 5));
    await closed(m, 'malformed frame');

    // 3. an oversized frame: the header announces 64 MiB, more than the node's limit
    const o = await rawUpgrade(node.port);
    o.write(Buffer.concat([frame(hello), frame(Buffer.alloc(16), 2, 0, 64 * 1024 * 1024).subarray(0, 14 + 16)]));
    await closed(o, 'oversized frame');

    // 4. a valid HELLO followed by DATA that is not a sync message, then a DATA with a forged envelope
    const ws = new WebSocket(node.address);
    ws.on('error', () => {});
    await new Promise<void>((r) => ws.once('open', () => r()));
    ws.send(hello);
    ws.send(Buffer.concat([Buffer.from([FRAME_DATA]), Buffer.from('definitely not a sync envelope')]));
    ws.send(Buffer.concat([Buffer.from([FRAME_DATA, 1, 1]), Buffer.alloc(200, 0x41)]));
    ws.send('a text frame');
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('node did not close the connection: text frame')), 10_000);
      ws.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
    });

    // 5. a peer that disconnects in the middle of a message
    const t = await rawUpgrade(node.port);
    const big = Buffer.concat([Buffer.from([FRAME_DATA]), Buffer.alloc(100_000, 7)]);
    t.write(Buffer.concat([frame(hello), frame(big).subarray(0, 5000)]));
    await new Promise((r) => setTimeout(r, 100));
    t.destroy();

    // 6. a connection that never says HELLO and one that sends an impostor HELLO for a real peer's id
    const silent = await rawUpgrade(node.port);
    silent.write(frame(Buffer.from([FRAME_DATA, 9, 9, 9])));
    await closed(silent, 'data before HELLO');

    const health = await api(node.http, 'GET', '/healthz');
    expect(health.status).toBe(200);
    expect(node.proc.exitCode).toBeNull();
    const after = await summary(node);
    expect(after.hash).toBe(before.hash);
    expect(after.vms).toBe(before.vms);
    expect(after.counters).toEqual(before.counters);
    const metricsAfter = parseMetrics((await api(node.http, 'GET', '/metrics')).text);
    const rejected = (m: Map<string, number>) => (m.get('ass_transport_rejected_frames_total') ?? 0) + (m.get('ass_transport_rejected_connections_total') ?? 0);
    expect(rejected(metricsAfter)).toBeGreaterThan(rejected(metricsBefore));
    let dropped = 0;
    for (const [k, v] of metricsAfter) if (k.startsWith('ass_sync_rejected_messages_total')) dropped += v - (metricsBefore.get(k) ?? 0);
    expect(dropped).toBeGreaterThanOrEqual(2);

    // and the cluster still works: a new write reaches the real peer
    expect((await api(node.http, 'PUT', '/vms/vm-after', { id: 'vm-after', status: 'running' }, { authorization: `Bearer ${TOKEN}` })).status).toBe(204);
    const end = Date.now() + 15_000;
    while ((await summary(peer)).vms !== 21) {
      if (Date.now() > end) throw new Error('peer did not receive the write after the abuse');
      await new Promise((r) => setTimeout(r, 100));
    }
  });
});

describe('a node with a cluster key', () => {
  it('sends no replication traffic to an inbound socket that only said HELLO with a peer id', async () => {
    // its one peer is down: a raw socket claiming that peer's id must not become its send path (the CLI wraps
    // the transport in its firewall, which has to pass the engine's authenticator through)
    const lonely = await startNode({
      id: 'lonely',
      region: 'eu-west',
      dataDir: join(dir, 'lonely'),
      peers: [{ id: 'ghost', address: 'ws://127.0.0.1:1' }],
      args: ['--api-token-file', join(dir, 'token'), '--cluster-key-file', join(dir, 'key')],
    });
    const ws = new WebSocket(lonely.address);
    ws.on('error', () => {});
    let data = 0;
    ws.on('message', (d: Buffer) => {
      if (d[0] === FRAME_DATA) data++;
    });
    await new Promise<void>((r) => ws.once('open', () => r()));
    ws.send(Buffer.from(encodeHello('ghost', '')));
    await new Promise((r) => setTimeout(r, 200));
    const auth = { authorization: `Bearer ${TOKEN}` };
    for (let i = 0; i < 3; i++) expect((await api(lonely.http, 'PUT', `/vms/secret-${i}`, { id: `secret-${i}`, status: 'running' }, auth)).status).toBe(204);
    // eager push, gossip every 100 ms and anti-entropy every 300 ms would all have used the socket by now
    await new Promise((r) => setTimeout(r, 1500));
    expect(data).toBe(0);
    ws.terminate();
    lonely.proc.kill('SIGKILL');
    await lonely.exited;
  });
});

describe('the HTTP API', () => {
  const auth = { authorization: `Bearer ${TOKEN}` };

  it('requires the bearer token for writes and rejects bad input without changing anything', async () => {
    const before = await summary(node);
    const vm = { id: 'vm-x', status: 'running' };
    expect((await api(node.http, 'PUT', '/vms/vm-x', vm)).status).toBe(401);
    expect((await api(node.http, 'PUT', '/vms/vm-x', vm, { authorization: 'Bearer wrong-token-wrong-token!!' })).status).toBe(401);
    expect((await api(node.http, 'POST', '/admin/partition', { peers: ['friend'] })).status).toBe(401);
    expect((await api(node.http, 'PUT', '/vms/vm-x', '{"id": "vm-x", ', auth)).status).toBe(400);
    const bad = await api(node.http, 'PUT', '/vms/vm-x', { id: 'vm-x', status: 'running', cpuCores: 'four' }, auth);
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ code: 'E_VALIDATION' });
    expect((await api(node.http, 'PUT', '/vms/vm-x', { id: 'vm-y', status: 'running' }, auth)).status).toBe(400);
    expect((await api(node.http, 'POST', '/counters/ops', { delta: 0.5 }, auth)).status).toBe(400);
    const over = await api(node.http, 'POST', '/counters/ops', { delta: Number.MAX_SAFE_INTEGER }, auth); // ops is 5: past the bound
    expect(over.status).toBe(400);
    expect(over.body).toMatchObject({ code: 'E_RANGE' });
    expect((await api(node.http, 'PUT', '/vms/vm-x', JSON.stringify({ id: 'vm-x', status: 'x'.repeat(2 * 1024 * 1024) }), auth)).status).toBe(413);
    expect((await api(node.http, 'PUT', '/vms/vm-x?write=quorum', vm, auth)).status).toBe(400);
    // every write route takes ?write= and ?timeoutMs= (a bad level is refused before anything changes)
    expect((await api(node.http, 'DELETE', '/vms/vm-a?write=quorum', undefined, auth)).status).toBe(400);
    expect((await api(node.http, 'PUT', '/assignments/vm-a?write=quorum', { nodeId: 'victim' }, auth)).status).toBe(400);
    expect((await api(node.http, 'POST', '/counters/ops?write=quorum', { delta: 1 }, auth)).status).toBe(400);
    expect((await api(node.http, 'DELETE', '/vms/vm-a?timeoutMs=soon', undefined, auth)).status).toBe(400);
    expect((await api(node.http, 'GET', '/nope')).status).toBe(404);
    expect((await api(node.http, 'PATCH', '/vms/vm-x', vm, auth)).status).toBe(405);
    const after = await summary(node);
    expect(after.hash).toBe(before.hash);
    expect(after.counters).toEqual(before.counters);
  });

  it('writes, reads and deletes with the token; majority writes wait for the peer', async () => {
    const vm = { id: 'vm-api', status: 'running', nodeId: 'victim', cpuCores: 8, memoryMB: 4096, metadata: { team: 'infra' } };
    expect((await api(node.http, 'PUT', '/vms/vm-api?write=majority&timeoutMs=5000', vm, auth)).status).toBe(204);
    expect((await api(peer.http, 'GET', '/vms/vm-api')).body).toMatchObject(vm); // majority of 2 = both
    expect((await api(node.http, 'PUT', '/assignments/vm-api', { nodeId: 'victim' }, auth)).status).toBe(204);
    const state = (await api(node.http, 'GET', '/state')).body as Record<string, unknown>;
    expect(Object.keys(state).sort()).toEqual(['assignments', 'counters', 'nodeId', 'nodes', 'region', 'vms']);
    expect(state).toMatchObject({ nodeId: 'victim', region: 'us-east', assignments: { 'vm-api': 'victim' }, counters: { ops: 5 } });
    expect((state.nodes as Array<{ id: string }>).map((n) => n.id)).toContain('victim');
    expect((await api(node.http, 'DELETE', '/vms/vm-api?write=majority&timeoutMs=5000', undefined, auth)).status).toBe(204);
    expect((await api(node.http, 'GET', '/vms/vm-api')).status).toBe(404);
    expect((await api(peer.http, 'GET', '/vms/vm-api')).status).toBe(404); // majority of 2 = both
    expect(((await api(node.http, 'GET', '/state')).body as { assignments: object }).assignments).toEqual({});
  });

  it('serves Prometheus metrics, health and the dashboard', async () => {
    const res = await fetch(node.http + '/metrics');
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    expect(text).toMatch(/^# HELP ass_transport_bytes_sent_total /m);
    expect(text).toMatch(/^# TYPE ass_transport_bytes_sent_total counter$/m);
    const m = parseMetrics(text);
    expect(m.get('ass_transport_bytes_sent_total')).toBeGreaterThan(0);
    expect(m.get('ass_peer_connected{peer="friend"}')).toBe(1);
    expect(m.get('ass_vms')).toBeGreaterThanOrEqual(20);
    expect(m.get('ass_crdts')).toBe(5);
    for (const line of text.split('\n')) if (line && !line.startsWith('#')) expect(line).toMatch(/^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? (-?[0-9.e+]+|NaN|[+-]Inf)$/);
    expect((await api(node.http, 'GET', '/healthz')).body).toMatchObject({ status: 'ok', nodeId: 'victim', region: 'us-east' });
    const page = await fetch(node.http + '/');
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    const html = await page.text();
    expect(html).toContain('<title>victim (us-east)');
    expect(html).toContain("fetch('overview'");
    expect(html).toContain("fetch('metrics'");
  });

  it('partitions and heals through the admin API', async () => {
    expect((await api(node.http, 'POST', '/admin/partition', { peers: ['friend'] }, auth)).status).toBe(204);
    expect((await api(node.http, 'PUT', '/vms/vm-cut', { id: 'vm-cut', status: 'running' }, auth)).status).toBe(204);
    await new Promise((r) => setTimeout(r, 800));
    expect((await api(peer.http, 'GET', '/vms/vm-cut')).status).toBe(404);
    const m = parseMetrics((await api(node.http, 'GET', '/metrics')).text);
    expect(m.get('ass_partition_dropped_total')).toBeGreaterThan(0);
    expect((await api(node.http, 'POST', '/admin/heal', {}, auth)).status).toBe(204);
    const end = Date.now() + 15_000;
    while ((await api(peer.http, 'GET', '/vms/vm-cut')).status !== 200) {
      if (Date.now() > end) throw new Error('no sync after heal');
      await new Promise((r) => setTimeout(r, 100));
    }
  });

  it('stops cleanly on SIGTERM and keeps its data for the next start', async () => {
    const before = await summary(node);
    node.proc.kill('SIGTERM');
    expect(await node.exited).toEqual({ code: 0, signal: null });
    expect(node.log.some((l) => l.includes('"msg":"stopped"'))).toBe(true);
    for (const l of node.log.filter((x) => x.startsWith('{'))) expect(() => JSON.parse(l)).not.toThrow();
    node = await startNode({ id: 'victim', region: 'us-east', dataDir: join(dir, 'victim'), args: ['--api-token-file', join(dir, 'token'), '--cluster-key-file', join(dir, 'key')] });
    const after = await summary(node);
    expect(after.vms).toBe(before.vms);
    expect(after.hash).toBe(before.hash);
  });
});
