/**
 * Command-line parsing for `async-state-sync node` and `async-state-sync demo`. Pure functions: they return a
 * typed configuration or throw `UsageError` with a message fit for the terminal.
 */
import { parseArgs } from 'node:util';
import { peerAddress } from '../transport/websocket.js';

/** A command line that cannot be run (unknown flag, missing or malformed value). Exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

export interface PeerSpec {
  id: string;
  address: string;
}

export interface NodeConfig {
  id: string;
  region: string;
  host: string;
  port: number;
  peers: PeerSpec[];
  dataDir: string;
  gossipIntervalMs: number;
  antiEntropyIntervalMs: number;
  gossipFanout: number;
  clusterKeyFile?: string;
  apiTokenFile?: string;
  /** Period of this node's own NodeStatus heartbeat (default: the gossip interval). */
  heartbeatIntervalMs: number;
  logLevel: 'debug' | 'info' | 'warn' | 'error';
}

export interface DemoConfig {
  regions: number;
  vms: number;
  /** Gossip interval of the nodes (anti-entropy runs at 5x). */
  intervalMs: number;
  /** Give up (exit 1) when the regions have not converged this long after the heal. */
  timeoutMs: number;
  /** Keep the nodes' data and logs (printed at exit) instead of removing them. */
  keep: boolean;
  /** Print progress lines without terminal control codes (default when stdout is not a TTY). */
  plain: boolean;
}

export const NODE_USAGE = `usage: async-state-sync node --id ID --region REGION --listen HOST:PORT --data-dir DIR
         [--peer ID=ws://HOST:PORT (or ID=HOST:PORT) ...] [--gossip-interval MS] [--anti-entropy-interval MS]
         [--gossip-fanout N] [--cluster-key-file FILE] [--api-token-file FILE] [--heartbeat-interval MS]
         [--log-level debug|info|warn|error]`;

export const DEMO_USAGE = `usage: async-state-sync demo [--regions N (1-5, default 5)] [--vms N (default 1000)]
         [--interval MS (gossip interval, default 200)] [--timeout MS (default 60000)] [--keep] [--plain]`;

const ID_RE = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

function int(name: string, v: string | undefined, def: number, min: number, max: number): number {
  if (v === undefined) return def;
  if (!/^\d+$/.test(v)) throw new UsageError(`--${name} takes a whole number, got ${JSON.stringify(v)}`);
  const n = Number(v);
  if (n < min || n > max) throw new UsageError(`--${name} must be between ${min} and ${max}, got ${n}`);
  return n;
}

function ident(name: string, v: string | undefined): string {
  if (v === undefined) throw new UsageError(`--${name} is required`);
  if (!ID_RE.test(v)) throw new UsageError(`--${name} must be 1-128 characters of letters, digits, '.', '_', ':' or '-', got ${JSON.stringify(v)}`);
  return v;
}

/** `HOST:PORT` (IPv6 as `[::1]:PORT`). Port 0 picks a free port. */
export function parseListen(v: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(v);
  if (!m) throw new UsageError(`--listen takes HOST:PORT, got ${JSON.stringify(v)}`);
  const port = Number(m[3]);
  if (port > 65535) throw new UsageError(`port out of range in ${JSON.stringify(v)}`);
  return { host: m[1] ?? m[2], port };
}

/** `ID=ws://HOST:PORT`. */
export function parsePeer(v: string): PeerSpec {
  const eq = v.indexOf('=');
  if (eq <= 0) throw new UsageError(`--peer takes ID=ws://HOST:PORT (or ID=HOST:PORT), got ${JSON.stringify(v)}`);
  const id = ident('peer id', v.slice(0, eq));
  const address = peerAddress(v.slice(eq + 1));
  let url: URL;
  try {
    url = new URL(address);
  } catch {
    throw new UsageError(`--peer ${id}: not a URL: ${JSON.stringify(address)}`);
  }
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') throw new UsageError(`--peer ${id}: address must start with ws:// or wss://`);
  return { id, address };
}

export function parseNodeArgs(argv: string[]): NodeConfig {
  let values: Record<string, string | string[] | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        id: { type: 'string' },
        region: { type: 'string' },
        listen: { type: 'string' },
        peer: { type: 'string', multiple: true },
        'data-dir': { type: 'string' },
        'gossip-interval': { type: 'string' },
        'anti-entropy-interval': { type: 'string' },
        'gossip-fanout': { type: 'string' },
        'cluster-key-file': { type: 'string' },
        'api-token-file': { type: 'string' },
        'heartbeat-interval': { type: 'string' },
        'log-level': { type: 'string' },
      },
    }));
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const s = (k: string) => values[k] as string | undefined;
  const id = ident('id', s('id'));
  const region = ident('region', s('region'));
  if (!s('listen')) throw new UsageError('--listen is required');
  const { host, port } = parseListen(s('listen')!);
  const dataDir = s('data-dir');
  if (!dataDir) throw new UsageError('--data-dir is required');
  const peers = ((values.peer as string[] | undefined) ?? []).map(parsePeer);
  const seen = new Set<string>();
  for (const p of peers) {
    if (p.id === id) throw new UsageError(`--peer ${p.id} is this node's own id`);
    if (seen.has(p.id)) throw new UsageError(`--peer ${p.id} given twice`);
    seen.add(p.id);
  }
  const gossipIntervalMs = int('gossip-interval', s('gossip-interval'), 5000, 10, 3_600_000);
  const logLevel = (s('log-level') ?? 'info') as NodeConfig['logLevel'];
  if (!['debug', 'info', 'warn', 'error'].includes(logLevel)) throw new UsageError(`--log-level must be debug, info, warn or error`);
  return {
    id,
    region,
    host,
    port,
    peers,
    dataDir,
    gossipIntervalMs,
    antiEntropyIntervalMs: int('anti-entropy-interval', s('anti-entropy-interval'), 30_000, 10, 3_600_000),
    gossipFanout: int('gossip-fanout', s('gossip-fanout'), 3, 1, 64),
    clusterKeyFile: s('cluster-key-file'),
    apiTokenFile: s('api-token-file'),
    heartbeatIntervalMs: int('heartbeat-interval', s('heartbeat-interval'), gossipIntervalMs, 10, 3_600_000),
    logLevel,
  };
}

export function parseDemoArgs(argv: string[]): DemoConfig {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        regions: { type: 'string' },
        vms: { type: 'string' },
        interval: { type: 'string' },
        timeout: { type: 'string' },
        keep: { type: 'boolean' },
        plain: { type: 'boolean' },
      },
    }) as { values: Record<string, string | boolean | undefined> });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const s = (k: string) => values[k] as string | undefined;
  return {
    regions: int('regions', s('regions'), 5, 1, 5),
    vms: int('vms', s('vms'), 1000, 1, 1_000_000),
    intervalMs: int('interval', s('interval'), 200, 10, 60_000),
    timeoutMs: int('timeout', s('timeout'), 60_000, 1000, 3_600_000),
    keep: values.keep === true,
    plain: values.plain === true,
  };
}
