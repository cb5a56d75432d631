import { describe, expect, it } from 'vitest';
import { parseDemoArgs, parseListen, parseNodeArgs, parsePeer, UsageError } from '../../src/cli/args.js';
import { createLogger } from '../../src/cli/log.js';
import { parseMetrics, renderMetrics } from '../../src/cli/metrics.js';
import { PartitionableTransport } from '../../src/cli/partition.js';
import type { MessageHandler, Transport } from '../../src/transport/types.js';

const base = ['--id', 'node-a', '--region', 'us-east', '--listen', '127.0.0.1:7101', '--data-dir', '/tmp/x'];

describe('node arguments', () => {
  it('parses a full command line', () => {
    const c = parseNodeArgs([
      ...base,
      '--peer',
      'node-b=ws://127.0.0.1:7102',
      '--peer',
      'node-c=ws://[::1]:7103',
      '--gossip-interval',
      '200',
      '--anti-entropy-interval',
      '1000',
      '--gossip-fanout',
      '2',
      '--cluster-key-file',
      '/k',
      '--api-token-file',
      '/t',
    ]);
    expect(c).toMatchObject({
      id: 'node-a',
      region: 'us-east',
      host: '127.0.0.1',
      port: 7101,
      dataDir: '/tmp/x',
      gossipIntervalMs: 200,
      antiEntropyIntervalMs: 1000,
      gossipFanout: 2,
      clusterKeyFile: '/k',
      apiTokenFile: '/t',
      heartbeatIntervalMs: 200,
      logLevel: 'info',
    });
    expect(c.peers).toEqual([
      { id: 'node-b', address: 'ws://127.0.0.1:7102' },
      { id: 'node-c', address: 'ws://[::1]:7103' },
    ]);
  });

  it('applies the design defaults', () => {
    const c = parseNodeArgs(base);
    expect([c.gossipIntervalMs, c.antiEntropyIntervalMs, c.gossipFanout, c.peers]).toEqual([5000, 30_000, 3, []]);
  });

  it.each([
    [['--region', 'r', '--listen', '127.0.0.1:1', '--data-dir', 'd'], /--id is required/],
    [[...base, '--bogus'], /bogus/],
    [[...base, '--gossip-interval', 'fast'], /whole number/],
    [[...base, '--gossip-interval', '1'], /between/],
    [[...base, '--peer', 'node-b'], /ID=ws/],
    [[...base, '--peer', 'node-b=http://127.0.0.1:1'], /ws:\/\//],
    [[...base, '--peer', 'node-b=ws://'], /not a URL/],
    [[...base, '--peer', 'node-a=ws://127.0.0.1:1'], /own id/],
    [[...base, '--peer', 'b=ws://h:1', '--peer', 'b=ws://h:2'], /twice/],
    [[...base, '--log-level', 'loud'], /log-level/],
    [['--id', 'bad id!', '--region', 'r', '--listen', '127.0.0.1:1', '--data-dir', 'd'], /--id/],
    [[...base.slice(0, 4), '--listen', 'nohost', '--data-dir', 'd'], /HOST:PORT/],
  ])('rejects %j', (argv, msg) => {
    expect(() => parseNodeArgs(argv as string[])).toThrow(UsageError);
    expect(() => parseNodeArgs(argv as string[])).toThrow(msg);
  });

  it('parses listen and peer specs', () => {
    expect(parseListen('[::1]:0')).toEqual({ host: '::1', port: 0 });
    expect(parseListen('localhost:80')).toEqual({ host: 'localhost', port: 80 });
    expect(() => parseListen('127.0.0.1:70000')).toThrow(UsageError);
    expect(parsePeer('n1=wss://example.org:443')).toEqual({ id: 'n1', address: 'wss://example.org:443' });
    expect(parsePeer('n2=127.0.0.1:7102')).toEqual({ id: 'n2', address: 'ws://127.0.0.1:7102' });
    expect(parsePeer('n3=[::1]:7103')).toEqual({ id: 'n3', address: 'ws://[::1]:7103' });
  });
});

describe('demo arguments', () => {
  it('has the documented defaults and limits', () => {
    expect(parseDemoArgs([])).toEqual({ regions: 5, vms: 1000, intervalMs: 200, timeoutMs: 60_000, keep: false, plain: false });
    expect(parseDemoArgs(['--vms', '200', '--regions', '3', '--interval', '100', '--plain'])).toMatchObject({ vms: 200, regions: 3, intervalMs: 100, plain: true });
    expect(() => parseDemoArgs(['--regions', '6'])).toThrow(/between 1 and 5/);
    expect(() => parseDemoArgs(['--vms', '-1'])).toThrow(UsageError);
    expect(() => parseDemoArgs(['extra'])).toThrow(UsageError);
  });
});

describe('Prometheus exposition', () => {
  it('renders families with escaped labels and parses them back', () => {
    const text = renderMetrics([
      { name: 'ass_bytes_total', type: 'counter', help: 'Bytes.\nSecond line', samples: [{ value: 42 }] },
      {
        name: 'ass_peer_connected',
        type: 'gauge',
        help: 'Peers.',
        samples: [
          { labels: { peer: 'a"b\\c' }, value: 1 },
          { labels: { peer: 'd' }, value: 0 },
        ],
      },
      { name: 'ass_inf', type: 'gauge', help: 'x', samples: [{ value: Infinity }, { labels: { k: 'n' }, value: NaN }] },
    ]);
    expect(text).toBe(
      '# HELP ass_bytes_total Bytes.\\nSecond line\n# TYPE ass_bytes_total counter\nass_bytes_total 42\n' +
        '# HELP ass_peer_connected Peers.\n# TYPE ass_peer_connected gauge\nass_peer_connected{peer="a\\"b\\\\c"} 1\nass_peer_connected{peer="d"} 0\n' +
        '# HELP ass_inf x\n# TYPE ass_inf gauge\nass_inf +Inf\nass_inf{k="n"} NaN\n',
    );
    const m = parseMetrics(text);
    expect(m.get('ass_bytes_total')).toBe(42);
    expect(m.get('ass_peer_connected{peer="d"}')).toBe(0);
    expect(m.get('ass_inf')).toBe(Infinity);
    expect(() => renderMetrics([{ name: 'bad-name', type: 'gauge', help: '', samples: [] }])).toThrow();
    expect(() => renderMetrics([{ name: 'ok', type: 'gauge', help: '', samples: [{ labels: { 'bad-label': 'x' }, value: 1 }] }])).toThrow();
  });
});

describe('JSON logger', () => {
  it('writes one JSON object per line above the level', () => {
    const lines: string[] = [];
    const log = createLogger('info', { node: 'n1' }, (l) => lines.push(l));
    log.debug('hidden');
    log.info('hello', { peers: 3 });
    log.child({ component: 'x' }).error('boom', { error: new TypeError('bad') });
    expect(lines.length).toBe(2);
    expect(lines.every((l) => l.endsWith('\n') && !l.slice(0, -1).includes('\n'))).toBe(true);
    const a = JSON.parse(lines[0]);
    expect(a).toMatchObject({ level: 'info', msg: 'hello', node: 'n1', peers: 3 });
    expect(typeof a.ts).toBe('string');
    expect(JSON.parse(lines[1])).toMatchObject({ level: 'error', component: 'x', error: { name: 'TypeError', message: 'bad' } });
  });
});

describe('PartitionableTransport', () => {
  it('drops traffic with blocked peers in both directions until healed', async () => {
    const sent: string[] = [];
    let deliver: MessageHandler = () => {};
    const inner: Transport = {
      id: 'a',
      address: 'mem://a',
      send: (p) => (sent.push(p), true),
      onMessage: (fn) => (deliver = fn),
      start: async () => {},
      stop: async () => {},
    };
    const t = new PartitionableTransport(inner);
    const got: string[] = [];
    t.onMessage((from) => got.push(from));
    t.block(['b']);
    expect(t.send('b', Uint8Array.of(1))).toBe(false);
    expect(t.send('c', Uint8Array.of(1))).toBe(true);
    deliver('b', Uint8Array.of(1));
    deliver('c', Uint8Array.of(1));
    expect([sent, got, t.droppedIn, t.droppedOut]).toEqual([['c'], ['c'], 1, 1]);
    t.heal();
    t.send('b', Uint8Array.of(1));
    deliver('b', Uint8Array.of(1));
    expect([sent, got]).toEqual([['c', 'b'], ['c', 'b']]);
  });

  it("passes every optional member of the Transport contract through to the wrapped transport", () => {
    const calls: string[] = [];
    const scheduler = { now: () => 0 } as unknown as Parameters<NonNullable<Transport['useScheduler']>>[0];
    const check = (b: Uint8Array) => b.length > 0;
    const inner: Transport = {
      id: 'a',
      address: 'mem://a',
      seed: 42,
      scheduler,
      send: () => undefined, // a transport of your own may return nothing
      onMessage: () => {},
      bind: (id) => void calls.push(`bind ${id}`),
      authenticateWith: (fn) => void calls.push(`auth ${fn === check}`),
      useScheduler: (s) => (calls.push(`scheduler ${s === scheduler}`), true),
      connect: (p, a) => void calls.push(`connect ${p} ${a}`),
      disconnect: (p) => void calls.push(`disconnect ${p}`),
      start: async () => {},
      stop: async () => {},
    };
    const t = new PartitionableTransport(inner);
    t.bind('a');
    t.authenticateWith(check);
    expect(t.useScheduler(scheduler)).toBe(true);
    t.connect('b', 'ws://b');
    t.disconnect('b');
    expect(calls).toEqual(['bind a', 'auth true', 'scheduler true', 'connect b ws://b', 'disconnect b']);
    expect([t.id, t.address, t.seed, t.scheduler === scheduler]).toEqual(['a', 'mem://a', 42, true]);
    expect(t.send('b', Uint8Array.of(1))).toBe(true); // not dropped by the firewall
    // every optional member of the interface has a pass-through (a new one would need one too)
    const members = ['bind', 'authenticateWith', 'useScheduler', 'connect', 'disconnect', 'seed', 'scheduler', 'id', 'address', 'send', 'onMessage', 'start', 'stop'];
    for (const m of members) expect(m in t, m).toBe(true);
  });
});
