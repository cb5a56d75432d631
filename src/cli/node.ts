/**
 * `async-state-sync node`: one cluster node in one process.
 *
 * - One port, one `http.Server`: peer WebSockets arrive as upgrade requests (`WebSocketTransport` with the
 *   `server` option), everything else is the HTTP API (http.ts).
 * - State lives in LMDB under `<data-dir>/lmdb`; a restarted node loads it and catches up by anti-entropy.
 * - The node holds `<data-dir>/node.lock` (its pid) while it runs (lock.ts): a second node on the same data
 *   dir exits 1 at start-up; a lock left by a dead process is taken over.
 * - The transport is wrapped in a `PartitionableTransport` so `/admin/partition` can cut peers off.
 * - The node reports its own `NodeStatus` (load, memory, VM count) every heartbeat interval.
 * - Logs are JSON lines on stdout. The first line after start-up is `{"msg":"listening","address":"ws://...",
 *   "http":"http://..."}` (what the demo reads to learn a node's port when it listens on port 0).
 * - SIGINT/SIGTERM: stop accepting requests, stop the engine (pending deltas flushed), close the transport and
 *   the storage, exit 0. A second signal while stopping exits at once with 1. With the environment variable
 *   `ASYNC_STATE_SYNC_EXIT_WITH_PARENT=1` (set by the demo) the node also stops when its parent process dies.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { makeDirs } from '../storage/dirs.js';
import { createServer, type Server } from 'node:http';
import { cpus, freemem, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { NovaCronIntegration } from '../cluster/integration.js';
import { LmdbStorage } from '../storage/lmdb.js';
import { markRunOpen, type Logger } from '../sync/engine.js';
import { RealScheduler } from '../time/scheduler.js';
import { WebSocketTransport } from '../transport/websocket.js';
import type { NodeConfig } from './args.js';
import { HTTP_ERROR_CODES, createHttpHandler } from './http.js';
import { DataDirLockedError, lockDataDir, type DirLock } from './lock.js';
import { createLogger, type JsonLogger } from './log.js';
import { renderMetrics, type MetricFamily } from './metrics.js';
import { PartitionableTransport } from './partition.js';

/** Largest peer message (a full-state anti-entropy answer for a large cluster must fit). */
export const NODE_MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

/** Shorter secrets (cluster key, API token) are accepted with a warning. */
export const MIN_SECRET_CHARS = 8;

/** A secret file's content without surrounding whitespace (the trailing newline of `echo x > file`). */
function readSecret(file: string, what: string, minChars: number): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`cannot read ${what} file ${file}: ${(e as Error).message}`);
  }
  const v = text.trim();
  if (v.length === 0) throw new Error(`${what} file ${file} is empty`);
  if (v.length < minChars) throw new Error(`${what} in ${file} is shorter than ${minChars} characters`);
  return v;
}

/**
 * Logs a repeated operation's failures without a line per attempt (a heartbeat that keeps failing, say for a
 * replica whose writes are refused, E_EXHAUSTED): the first failure of a streak at once, then at most one line a
 * minute with the failures since and the latest error, and the streak's end ("recovered") with its length.
 */
export function failureStreakLog(log: Pick<JsonLogger, 'warn' | 'info'>, what: string, now: () => number = Date.now): { failed(e: unknown): void; ok(): void } {
  let streak = 0; // failures in the current streak
  let unlogged = 0; // of which in no log line yet
  let loggedAt = 0;
  return {
    failed(e) {
      streak++;
      unlogged++;
      if (streak > 1 && now() - loggedAt < 60_000) return;
      loggedAt = now();
      log.warn(`${what} failed`, { error: e, failures: unlogged, streak });
      unlogged = 0;
    },
    ok() {
      if (streak === 0) return;
      log.info(`${what} recovered`, { failures: streak });
      streak = unlogged = 0;
    },
  };
}

/** Build the Prometheus families of a node. */
export function nodeMetrics(cluster: NovaCronIntegration, ws: WebSocketTransport, part: PartitionableTransport, knownPeers: string[]): MetricFamily[] {
  const t = ws.stats();
  const s = cluster.getStats();
  const fams: MetricFamily[] = [];
  const counter = (name: string, help: string, value: number) => fams.push({ name, type: 'counter', help, samples: [{ value }] });
  const gauge = (name: string, help: string, value: number) => fams.push({ name, type: 'gauge', help, samples: [{ value }] });
  counter('ass_transport_bytes_sent_total', 'Bytes written to peer sockets.', t.bytesSent);
  counter('ass_transport_bytes_received_total', 'Bytes received from peer sockets.', t.bytesReceived);
  counter('ass_transport_messages_sent_total', 'Messages sent to peers.', t.messagesSent);
  counter('ass_transport_messages_received_total', 'Messages received from peers.', t.messagesReceived);
  counter('ass_transport_dropped_queue_full_total', 'Messages dropped because a peer send queue was full.', t.droppedQueueFull);
  counter('ass_transport_dropped_too_large_total', 'Messages dropped for exceeding the size limit.', t.droppedTooLarge);
  counter('ass_transport_dropped_unknown_peer_total', 'Messages dropped for an unknown peer.', t.droppedUnknownPeer);
  counter('ass_transport_rejected_frames_total', 'Frames rejected (malformed, oversized, out of protocol).', t.rejectedFrames);
  counter('ass_transport_rejected_connections_total', 'Connections closed for protocol violations.', t.rejectedConnections);
  counter('ass_transport_reconnects_total', 'Outbound reconnect attempts.', t.reconnects);
  counter('ass_partition_dropped_total', 'Messages dropped by the admin partition filter.', part.droppedIn + part.droppedOut);
  gauge('ass_transport_queued_messages', 'Messages waiting in peer send queues.', t.queuedMessages);
  const connected = new Set(ws.connectedPeers());
  const blocked = new Set(part.blockedPeers());
  const peers = [...new Set([...knownPeers, ...connected])].sort();
  fams.push({
    name: 'ass_peer_connected',
    type: 'gauge',
    help: 'Whether a peer link is up (1) or down (0); partitioned peers count as down.',
    samples: peers.map((p) => ({ labels: { peer: p }, value: connected.has(p) && !blocked.has(p) ? 1 : 0 })),
  });
  gauge('ass_peers', 'Peers known to the sync engine.', s.peerCount);
  gauge('ass_vms', 'VMs in the cluster state held by this node.', s.clusterStats.totalVMs);
  gauge('ass_nodes', 'Node statuses held by this node.', s.clusterStats.totalNodes);
  gauge('ass_assignments', 'VM assignments held by this node.', s.clusterStats.totalAssignments);
  gauge('ass_crdts', 'CRDT objects registered with the sync engine.', s.crdtCount);
  const e = cluster.engine.stats();
  counter('ass_gossip_messages_sent_total', 'Gossip and eager-push messages sent by the sync engine.', e.gossip.sent);
  counter('ass_gossip_messages_received_total', 'Gossip messages received by the sync engine.', e.gossip.received);
  counter('ass_gossip_duplicates_dropped_total', 'Duplicate gossip messages dropped by the seen-cache.', e.gossip.duplicatesDropped);
  gauge('ass_gossip_pending', 'Messages waiting in the interval-gossip queue.', e.gossip.pending);
  counter('ass_anti_entropy_syncs_total', 'Anti-entropy sessions started.', e.antiEntropy.totalSyncs);
  counter('ass_anti_entropy_syncs_ok_total', 'Anti-entropy sessions completed.', e.antiEntropy.successfulSyncs);
  counter('ass_anti_entropy_syncs_failed_total', 'Anti-entropy sessions failed or timed out.', e.antiEntropy.failedSyncs);
  counter('ass_anti_entropy_keys_exchanged_total', 'Keys exchanged by anti-entropy.', e.antiEntropy.keysExchanged);
  counter('ass_anti_entropy_bytes_sent_total', 'Bytes sent by anti-entropy.', e.antiEntropy.bytesSent);
  gauge('ass_anti_entropy_average_sync_ms', 'Mean duration of a completed anti-entropy session.', e.antiEntropy.averageSyncTimeMs);
  counter('ass_sync_bytes_sent_total', 'Bytes of sync messages sent (before transport framing).', e.bytesSent);
  counter('ass_sync_bytes_received_total', 'Bytes of sync messages received.', e.bytesReceived);
  fams.push({
    name: 'ass_sync_rejected_messages_total',
    type: 'counter',
    help: 'Peer messages dropped by the sync engine, by reason.',
    samples: Object.entries(e.errors).map(([kind, value]) => ({ labels: { reason: kind }, value })),
  });
  gauge('ass_write_pending_acks', 'Majority/all writes waiting for acknowledgements.', e.writes.pendingAcks);
  counter('ass_write_timeouts_total', 'Majority/all writes that timed out.', e.writes.timedOut);
  fams.push({
    name: 'ass_peer_state',
    type: 'gauge',
    help: 'Liveness of each peer as the sync engine sees it (1 for the current state).',
    samples: e.peers.flatMap((p) => (['alive', 'suspect', 'dead'] as const).map((st) => ({ labels: { peer: p.id, state: st }, value: p.state === st ? 1 : 0 }))),
  });
  gauge('ass_process_resident_memory_bytes', 'Resident set size of the node process.', process.memoryUsage().rss);
  return fams;
}

/** The sync engine logs `(msg, ...details)`; turn the details into a JSON field. */
function engineLogger(log: JsonLogger): Logger {
  const f = (args: unknown[]) => (args.length ? { detail: args.map((a) => (a instanceof Error ? `${a.name}: ${a.message}` : a)) } : undefined);
  return {
    debug: (m, ...a) => log.debug(m, f(a)),
    info: (m, ...a) => log.info(m, f(a)),
    warn: (m, ...a) => log.warn(m, f(a)),
    error: (m, ...a) => log.error(m, f(a)),
  };
}

export interface RunNodeOptions {
  /** Where log lines go (default stdout). */
  write?: (line: string) => void;
  /** Resolve to stop the node (default: SIGINT/SIGTERM). */
  stopSignal?: Promise<void>;
}

export async function runNode(cfg: NodeConfig, opts: RunNodeOptions = {}): Promise<number> {
  // default sink: stdout; if its reader goes away (EPIPE) logging stops and the node keeps running
  let stdoutOk = true;
  const onStdoutError = () => {
    stdoutOk = false;
  };
  if (!opts.write) process.stdout.on('error', onStdoutError);
  const write = opts.write ?? ((line: string) => void (stdoutOk && process.stdout.write(line)));
  const log: JsonLogger = createLogger(cfg.logLevel, { node: cfg.id, region: cfg.region }, write);
  let clusterKey: string | undefined;
  let apiToken: string | undefined;
  let lock: DirLock;
  try {
    // secrets are the operator's choice (they may come from a secret store with its own format): any
    // non-empty one is accepted, a short one with a warning
    if (cfg.clusterKeyFile) clusterKey = readSecret(cfg.clusterKeyFile, 'cluster key', 1);
    if (clusterKey !== undefined && clusterKey.length < MIN_SECRET_CHARS) {
      log.warn('cluster key is short: anyone who can reach the port may guess it and join', { file: cfg.clusterKeyFile, chars: clusterKey.length, recommended: MIN_SECRET_CHARS });
    }
    if (cfg.apiTokenFile) apiToken = readSecret(cfg.apiTokenFile, 'API token', 1);
    if (apiToken !== undefined && apiToken.length < MIN_SECRET_CHARS) {
      log.warn('API token is short: anyone who can reach the port may guess it', { file: cfg.apiTokenFile, chars: apiToken.length, recommended: MIN_SECRET_CHARS });
    }
    makeDirs(cfg.dataDir);
    // one node per data dir: a second process on it would reuse this replica's dots
    lock = lockDataDir(cfg.dataDir);
  } catch (e) {
    log.error('cannot start', { error: (e as Error).message, ...(e instanceof DataDirLockedError ? { dataDir: e.dir, lockedBy: e.pid } : {}) });
    if (!opts.write) process.stderr.write(`async-state-sync node: cannot start: ${(e as Error).message}\n`);
    return 1;
  }

  // signal handlers before anything announces the node: a SIGTERM sent as soon as `listening` is read must
  // stop it cleanly (a handler installed after the log line lost that race on a loaded machine and the default
  // action killed the process)
  const signal =
    opts.stopSignal ??
    new Promise<void>((resolve) => {
      let stopping = false;
      if (process.env.ASYNC_STATE_SYNC_EXIT_WITH_PARENT === '1') {
        // spawned by the demo or a test: stop when the parent is gone (it died without stopping us)
        const parent = process.ppid;
        const watch = setInterval(() => {
          if (process.ppid === parent || stopping) return;
          clearInterval(watch);
          stopping = true;
          log.warn('parent process gone: stopping');
          resolve();
        }, 1000);
        watch.unref();
      }
      const on = (sig: NodeJS.Signals) => {
        if (stopping) {
          log.error('second signal while stopping: exiting now', { signal: sig });
          process.exit(1);
        }
        stopping = true;
        log.info('stopping', { signal: sig });
        resolve();
      };
      process.on('SIGINT', on);
      process.on('SIGTERM', on);
    });

  const storage = new LmdbStorage({ path: join(cfg.dataDir, 'lmdb') });
  // slow or garbage clients are cut off: headers within 5 s, whole request within 30 s, checked every second
  const server: Server = createServer({ headersTimeout: 5000, requestTimeout: 30_000, connectionsCheckingInterval: 1000, keepAliveTimeout: 5000 });
  const answered = new WeakSet<object>();
  // requests read but not yet answered, per socket: a 400 for a malformed request pipelined behind one of them
  // would go out as that request's answer (a PUT applied, its client told 400)
  const inFlight = new WeakMap<object, number>();
  server.on('request', (req, res) => {
    const sock = req.socket;
    inFlight.set(sock, (inFlight.get(sock) ?? 0) + 1);
    res.once('close', () => inFlight.set(sock, (inFlight.get(sock) ?? 1) - 1));
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (answered.has(socket)) return; // the parser keeps failing on the rest of an answered request
    if (err.code === 'HPE_HEADER_OVERFLOW' && socket.writable) {
      // request line or headers beyond Node's limit (16 KiB): say so, as Node does without this handler; the
      // socket is destroyed a moment later whether or not the client closes its side
      answered.add(socket);
      log.debug('HTTP request head too large', { error: err.message });
      socket.end('HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      setTimeout(() => socket.destroy(), 1000).unref();
      return;
    }
    // not HTTP, an unknown method or a malformed head: a 400 if the socket still takes it (as Node answers
    // without this handler), then the connection is dropped (ending it politely would leave a half-open
    // socket to a client that never closes its side); a timed-out request is just dropped
    log.debug('bad HTTP request', { error: err.message });
    if (err.code !== 'ERR_HTTP_REQUEST_TIMEOUT' && socket.writable && (socket as { bytesWritten?: number }).bytesWritten === 0 && !(inFlight.get(socket)! > 0)) {
      answered.add(socket);
      socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      setTimeout(() => socket.destroy(), 1000).unref();
      return;
    }
    socket.destroy();
  });
  let handler: ((req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => void) | undefined;
  // no handler: not started yet, or stopping (a request on a keep-alive connection the close left open); an
  // error body like every other, with its code, and when to try again (here or, when stopping, elsewhere)
  let closing = false;
  server.on('request', (req, res) => {
    if (handler) return handler(req, res);
    res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '1', ...(closing ? { connection: 'close' } : {}) });
    res.end(JSON.stringify({ error: closing ? 'stopping' : 'starting', code: HTTP_ERROR_CODES[503] }));
  });
  const ws = new WebSocketTransport({
    id: cfg.id,
    host: cfg.host,
    server,
    maxMessageBytes: NODE_MAX_MESSAGE_BYTES,
    maxQueueBytes: 4 * NODE_MAX_MESSAGE_BYTES,
    reconnect: { initialDelayMs: 100, maxDelayMs: Math.max(1000, Math.min(5000, cfg.gossipIntervalMs * 4)) },
    logger: log.child({ component: 'transport' }),
  });
  const transport = new PartitionableTransport(ws);
  let cluster: NovaCronIntegration | undefined;
  let heartbeat: ReturnType<typeof setInterval> | undefined;
  const knownPeers = new Set<string>();

  try {
    await storage.open();
    await checkHeldReplica(cfg.dataDir, cfg.id, storage, log);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(cfg.port, cfg.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (e) => log.error('http server error', { error: e }));
    const addr = server.address() as import('node:net').AddressInfo;
    const hostPart = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
    const address = `ws://${hostPart}:${addr.port}`;

    cluster = new NovaCronIntegration({
      nodeId: cfg.id,
      region: cfg.region,
      antiEntropyInterval: cfg.antiEntropyIntervalMs,
      gossipFanout: cfg.gossipFanout,
      gossipInterval: cfg.gossipIntervalMs,
      transport,
      storage,
      clusterKey,
      logger: engineLogger(log.child({ component: 'sync' })),
      scheduler: new RealScheduler(),
      // the engine's messages must fit the transport's frame limit (HELLO/DATA header included)
      engine: { maxMessageBytes: NODE_MAX_MESSAGE_BYTES - 16 },
    });
    await cluster.start();
    for (const p of cfg.peers) {
      knownPeers.add(p.id);
      cluster.addPeer(p.id, p.address);
    }
    const c = cluster;
    const { failed: beatFailed, ok: beatOk } = failureStreakLog(log, 'heartbeat');
    const beat = () => {
      // a timer callback: whatever goes wrong is logged, never thrown (an uncaught exception ends the process)
      try {
        beatOnce();
      } catch (e) {
        beatFailed(e);
      }
    };
    const beatOnce = () => {
      const vmCount = c.metadata.countVMsOn(cfg.id);
      const mem = totalmem();
      c.updateNodeStatus({
        id: cfg.id,
        region: cfg.region,
        status: 'healthy',
        cpuUsage: Math.min(100, Math.round((loadavg()[0] / Math.max(1, cpus().length)) * 1000) / 10),
        memoryUsage: Math.round(((mem - freemem()) / mem) * 1000) / 10,
        diskUsage: 0,
        vmCount,
        lastHeartbeat: Date.now(),
      }).then(beatOk, beatFailed);
    };
    beat();
    heartbeat = setInterval(beat, cfg.heartbeatIntervalMs);
    heartbeat.unref();

    handler = createHttpHandler({
      nodeId: cfg.id,
      region: cfg.region,
      cluster: c,
      apiToken,
      logger: log.child({ component: 'http' }),
      metrics: () => renderMetrics(nodeMetrics(c, ws, transport, [...knownPeers])),
      admin: {
        addPeer: (id, addr2) => {
          knownPeers.add(id);
          c.addPeer(id, addr2);
          log.info('peer added', { peer: id, address: addr2 });
        },
        partition: (ids) => transport.block(ids),
        heal: () => transport.heal(),
      },
    });
    log.info('listening', {
      address,
      http: `http://${hostPart}:${addr.port}`,
      dataDir: cfg.dataDir,
      peers: cfg.peers.map((p) => p.id),
      vms: c.listVMs().length,
      auth: apiToken ? 'bearer' : 'loopback',
      clusterKey: clusterKey ? 'set' : 'none',
    });
  } catch (e) {
    log.error('start-up failed', { error: (e as Error).message });
    // the log goes to stdout (JSON lines); a person starting the node reads stderr too
    if (!opts.write) process.stderr.write(`async-state-sync node: start-up failed: ${(e as Error).message}\n`);
    if (heartbeat) clearInterval(heartbeat);
    await cluster?.stop().catch(() => {});
    await transport.stop().catch(() => {});
    server.closeAllConnections?.();
    server.close();
    await storage.close().catch(() => {});
    lock.release();
    return 1;
  }

  await signal;

  // a stop that hangs (a peer or the disk not answering) must not keep the process alive forever
  const watchdog = setTimeout(() => {
    log.error('stop did not finish within 15 s: exiting');
    process.exit(1);
  }, 15_000);
  watchdog.unref();
  let code = 0;
  clearInterval(heartbeat);
  handler = undefined;
  closing = true;
  server.close();
  try {
    await cluster.stop();
  } catch (e) {
    log.error('engine stop failed', { error: e });
    code = 1;
  }
  await transport.stop().catch((e: unknown) => log.warn('transport stop failed', { error: e }));
  server.closeAllConnections?.();
  try {
    await storage.close();
  } catch (e) {
    log.error('storage close failed', { error: e });
    code = 1;
  }
  lock.release();
  clearTimeout(watchdog);
  log.info('stopped', { code });
  return code;
}

/**
 * `<data-dir>/node.id` names the replica whose state the data dir holds, written at the first start. When it
 * is there but the database is empty (its file deleted, truncated, or replaced by a fresh one), the node must
 * not start as a new replica: it would issue again the dots its peers hold for its old writes, and merging
 * those would delete the peers' entries. The run is then marked as one that did not stop cleanly, so local
 * writes wait for a session with a peer first (see the engine's restart recovery). A node id that differs
 * from the one recorded is logged (the state is kept and served under the new id).
 */
export async function checkHeldReplica(dataDir: string, id: string, storage: LmdbStorage, log: JsonLogger): Promise<void> {
  const file = join(dataDir, 'node.id');
  const held = existsSync(file) ? readFileSync(file, 'utf8').trim() : undefined;
  if (held === undefined) {
    writeFileSync(file, `${id}\n`);
    return;
  }
  if (held !== id) log.warn('data dir held another node id', { dataDir, held, id });
  let empty = true;
  for await (const _ of storage.entries()) {
    empty = false;
    break;
  }
  if (!empty) return;
  log.warn('the database is empty but this data dir held a replica: local writes wait for a session with a peer first', { dataDir, held });
  await markRunOpen(storage);
}
