/**
 * `WebSocketTransport`: the real network edge. On Node it listens (its own HTTP server, or an existing
 * `http.Server` shared with other HTTP routes) and dials out with the `ws` package; in browsers it only dials
 * out, with the native `WebSocket`.
 *
 * Design choices:
 * - One socket carries frames of two kinds, each a binary WebSocket message whose first byte is the kind:
 *   `HELLO` (protocol version, sender id, sender address) and `DATA` (one opaque transport message). Both ends
 *   send HELLO as their first frame; the receiving end learns the peer id from it. A socket that sends anything
 *   else first, a text frame, an unknown kind, a malformed HELLO, or no HELLO within `handshakeTimeoutMs` is
 *   closed and counted in `stats().rejectedFrames` / `rejectedConnections`. The HELLO is not authenticated: a
 *   cluster key (checked by the sync layer on every message) is what keeps a forged peer's messages out.
 * - Sending prefers our outbound socket to the peer (dialled to the configured address, with the peer's HELLO
 *   checked against the expected id) and falls back to an inbound socket from that peer, so a peer that dialled
 *   us can be answered without knowing its address.
 * - Inbound sockets are held by the id in their HELLO, at most one per id: a later HELLO with the same id
 *   replaces (closes) the older socket, so one id cannot pile up connections. An inbound socket that delivers no
 *   message for `idleTimeoutMs` is closed (a real peer sends probes, gossip and anti-entropy all the time; the
 *   sync layer's next message redials). Together they bound what a client without credentials can hold:
 *   `maxInboundConnections` sockets, each for at most `idleTimeoutMs`.
 * - Trusted inbound sockets (`authenticateInbound`): the transport never sees the cluster key, so an unchecked
 *   HELLO would let anyone claim a configured peer's id and, while that peer's outbound link is down, receive
 *   this node's replication traffic over the inbound fallback. With `authenticateInbound(bytes)` given (the sync
 *   layer's tag check), an inbound socket is *untrusted* after its HELLO: messages it delivers still go to the
 *   handler (which drops and counts forgeries), but it is no send path, does not count in `connectedPeers()`,
 *   and only messages that pass the check count as activity for the idle timeout. The first message that passes
 *   makes it trusted: it then replaces the id's older trusted socket and the peer's queue drains into it. An id
 *   holds one trusted and at most one untrusted candidate (a newer candidate replaces the older), so a forged
 *   HELLO never closes the real peer's trusted socket. At `maxInboundConnections` a new connection evicts the
 *   least recently active untrusted one (handshake pending or not yet verified) instead of being refused;
 *   trusted sockets are never evicted. Limit: the check proves only that the bytes were once made with the
 *   key, so a client that recorded one of the peer's tagged messages (traffic is in clear over `ws://`) can
 *   replay it to become trusted; closing that needs an authenticated handshake (a key-derived MAC over a
 *   challenge in HELLO), which the sync layer would have to hand to the transport.
 * - Back-pressure: a message is written straight to the socket while the socket's `bufferedAmount` is under
 *   `highWaterBytes`; otherwise (or while connecting) it waits in a per-peer queue bounded by
 *   `maxQueueMessages` and `maxQueueBytes`. When the queue is full the new message is dropped, `send` returns
 *   false and `stats().droppedQueueFull` counts it: the sync layer's anti-entropy repairs what was dropped.
 *   Nothing grows without bound when a peer is slow or gone.
 * - Size limit: messages above `maxMessageBytes` are refused on send (false, `droppedTooLarge`) and, on
 *   receive, the connection is closed (`ws` enforces it in the frame parser with `maxPayload`, before the
 *   payload is buffered).
 * - Reconnect: a lost or failed outbound connection is redialled after `initialDelayMs * 2^attempt` (capped at
 *   `maxDelayMs`, with jitter in [50%, 100%] so a cluster restarting together does not dial in lock step).
 * - Identity: `id` may be left out (`new WebSocketTransport({ host, port })`, as in DESIGN): the SyncEngine
 *   that owns the transport then calls `bind(replicaId)` before `start()`, so the HELLO carries the same id the
 *   sync layer answers to. An explicit `id` is kept, and a `bind` to any other id is refused (ValidationError):
 *   peers would answer an id the engine does not own. `start()` without any id is a TransportError, on
 *   purpose: the id is what peers dial and check in HELLO, and a made-up default (the listen `host:port`, which
 *   is `0.0.0.0:0` or an ephemeral port before listening) would start a node that every peer configured with
 *   its real id rejects, and that a later `bind` from an engine could no longer correct.
 * - `start()` failures (the port in use, a bad host) reject with TransportError, the system error as `cause`,
 *   and leave the transport stopped, so it can be started again.
 * - Real sockets are real time: the timers here are plain `setTimeout` (unref'd on Node), not the `Scheduler`;
 *   deterministic simulation uses `MemoryNetwork` instead of this transport.
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { Reader, Writer } from '../codec/binary.js';
import { DecodeError, TransportError, ValidationError } from '../errors.js';
import type { MessageHandler, Transport } from './types.js';

/** First byte of every frame. */
export const FRAME_HELLO = 1;
export const FRAME_DATA = 2;
/** Version carried in HELLO; a peer with another version is refused. */
export const WS_PROTOCOL_VERSION = 1;

/** Optional structured logger (any subset of levels). */
export interface TransportLogger {
  debug?(msg: string, fields?: Record<string, unknown>): void;
  info?(msg: string, fields?: Record<string, unknown>): void;
  warn?(msg: string, fields?: Record<string, unknown>): void;
  error?(msg: string, fields?: Record<string, unknown>): void;
}

/**
 * What the transport needs of a shared HTTP server: a Node `http.Server` or `https.Server` fits. Structural, so
 * the package's types need no `@types/node` (a browser project compiles without it).
 */
export interface SharedHttpServer {
  on(event: 'upgrade', listener: (req: any, socket: any, head: any) => void): unknown;
  off(event: 'upgrade', listener: (req: any, socket: any, head: any) => void): unknown;
  address(): unknown;
}

export interface WebSocketTransportOptions {
  /**
   * This node's id (sent in HELLO). Optional: without it the transport takes the engine's replicaId through
   * `bind()`, which SyncEngine calls before `start()`.
   */
  id?: string;
  /** Listen host (Node). Default `127.0.0.1`. */
  host?: string;
  /** Listen port (Node); 0 picks a free port. Without `port` and `server` the transport only dials out. */
  port?: number;
  /** An existing HTTP server (Node `http.Server` or `https.Server`) to share: peer WebSockets are accepted on its `upgrade` requests. */
  server?: SharedHttpServer;
  /** The address peers should dial (sent in HELLO). Default `ws://host:port` of the listening socket. */
  advertisedAddress?: string;
  /** Largest message accepted or sent, in bytes. Default 4 MiB. */
  maxMessageBytes?: number;
  /** Per-peer send queue bound, in messages. Default 1024. */
  maxQueueMessages?: number;
  /** Per-peer send queue bound, in bytes. Default 16 MiB. */
  maxQueueBytes?: number;
  /** Socket `bufferedAmount` above which messages queue instead of being written. Default 1 MiB. */
  highWaterBytes?: number;
  /** Reconnect backoff. Defaults 100 ms doubling to 5 s. */
  reconnect?: { initialDelayMs?: number; maxDelayMs?: number };
  /** A connection must complete the HELLO exchange in this time. Default 5 s. */
  handshakeTimeoutMs?: number;
  /**
   * Most inbound connections held at once. Default 1024. At the limit a new one is refused, or, with
   * `authenticateInbound`, takes the place of the least recently active untrusted one (trusted ones stay).
   */
  maxInboundConnections?: number;
  /**
   * An inbound socket that has delivered no message for this long is closed (with `authenticateInbound`, only
   * messages that pass it count). Default 120 s: several rounds of the sync layer's default 5 s probe and
   * gossip cadence, and four of its 30 s anti-entropy interval, so a live peer is not cut off; raise it when
   * those intervals are raised. 0 disables it.
   */
  idleTimeoutMs?: number;
  /**
   * Check that an inbound message was made by a cluster member (e.g. the sync layer's envelope HMAC check with
   * its cluster key). When given, an inbound socket is used to send to its peer only after it delivered a
   * message that passes, see the module comment. It must not throw (a throw counts as a failure); it sees the
   * message bytes, not the frame. Without it every inbound socket is trusted once its HELLO arrived.
   */
  authenticateInbound?: (bytes: Uint8Array) => boolean;
  logger?: TransportLogger;
  /**
   * A WebSocket constructor with the browser API (`new WebSocket(url)`, `binaryType = 'arraybuffer'`) to dial
   * with instead of `ws` (default in browsers: the global `WebSocket`). No frame size limit can be set on it:
   * oversized messages are refused after they arrived.
   */
  WebSocket?: new (url: string) => unknown;
}

/** Counters, all monotonic except `connectedPeers` and `queuedMessages`. */
export interface WebSocketTransportStats {
  messagesSent: number;
  messagesReceived: number;
  /** Payload bytes handed to sockets / received from them (frame kind byte included). */
  bytesSent: number;
  bytesReceived: number;
  droppedQueueFull: number;
  droppedTooLarge: number;
  droppedUnknownPeer: number;
  droppedStopped: number;
  /** Frames refused: text frames, unknown kinds, data before HELLO, malformed HELLO, oversized frames. */
  rejectedFrames: number;
  /** Connections closed for a protocol violation or handshake timeout, or refused at the limit. */
  rejectedConnections: number;
  /** Exceptions thrown by the message handler (caught; the connection stays up). */
  handlerErrors: number;
  connectionsOpened: number;
  reconnects: number;
  connectedPeers: number;
  queuedMessages: number;
}

/** The subset of the WebSocket API shared by `ws` and the browser's native WebSocket. */
interface Sock {
  readonly readyState: number;
  readonly bufferedAmount: number;
  binaryType: string;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code?: number }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  /** `ws` only: drop the TCP connection at once. */
  terminate?(): void;
}

const OPEN = 1;

interface Conn {
  sock: Sock;
  outbound: boolean;
  /** Inbound: a send path for its peer (HELLO arrived, and a message passed `authenticateInbound` if given). */
  trusted: boolean;
  /** Inbound: when it last delivered a message that counts as activity (or was accepted / said HELLO). */
  lastActive: number;
  idle?: ReturnType<typeof setTimeout>;
  /** Peer id once its HELLO arrived (for outbound: checked against the expected id). */
  peerId?: string;
  expectedId?: string;
  timer?: ReturnType<typeof setTimeout>;
  closed: boolean;
}

interface PeerLink {
  id: string;
  address?: string;
  out?: Conn;
  inbound: Set<Conn>;
  queue: Uint8Array[];
  queueBytes: number;
  attempt: number;
  redial?: ReturnType<typeof setTimeout>;
  drain?: ReturnType<typeof setTimeout>;
}

type WsModule = typeof import('ws');

/**
 * Node-only modules are imported through a variable specifier so bundlers for browsers leave them alone
 * (the browser build only dials out with the native WebSocket and never reaches these imports).
 */
const nodeOnly = (name: string): Promise<unknown> => import(/* @vite-ignore */ name);

function isNode(): boolean {
  return typeof process !== 'undefined' && !!process.versions?.node;
}

function unref(t: ReturnType<typeof setTimeout>): ReturnType<typeof setTimeout> {
  (t as { unref?: () => void }).unref?.();
  return t;
}

/** Encode a HELLO frame. */
export function encodeHello(id: string, address: string): Uint8Array {
  const w = new Writer(16 + id.length * 3 + address.length * 3);
  w.u8(FRAME_HELLO);
  w.varuint(WS_PROTOCOL_VERSION);
  w.string(id);
  w.string(address);
  return w.finish();
}

/** Decode a HELLO frame; throws DecodeError when malformed or of another protocol version. */
export function decodeHello(bytes: Uint8Array): { id: string; address: string } {
  const r = new Reader(bytes);
  if (r.u8() !== FRAME_HELLO) throw new DecodeError('not a HELLO frame');
  const v = r.varuint();
  if (v !== WS_PROTOCOL_VERSION) throw new DecodeError(`unsupported transport protocol version ${v}`);
  const id = r.string();
  const address = r.string();
  r.done();
  if (id.length === 0 || id.length > 256) throw new DecodeError('bad peer id in HELLO');
  if (address.length > 1024) throw new DecodeError('bad address in HELLO');
  return { id, address };
}

/** A node id is 1..256 characters (it travels in HELLO, whose decoder enforces the same bound). */
function validId(id: unknown): id is string {
  return typeof id === 'string' && id.length > 0 && id.length <= 256;
}

/**
 * A peer address as the transport dials it: `ws://` / `wss://` URLs as given, and a bare `HOST:PORT` (the seed
 * system's form, e.g. `192.168.1.10:8080`, `[::1]:7101`) as `ws://HOST:PORT`. Anything else is returned as is
 * (and refused where it is used).
 */
export function peerAddress(address: string): string {
  return /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(address) ? `ws://${address}` : address;
}

export class WebSocketTransport implements Transport {
  /** Set by the `id` option or by `bind()`; undefined until then. */
  private localId: string | undefined;
  private readonly opts: Required<
    Pick<
      WebSocketTransportOptions,
      'maxMessageBytes' | 'maxQueueMessages' | 'maxQueueBytes' | 'highWaterBytes' | 'handshakeTimeoutMs' | 'maxInboundConnections' | 'idleTimeoutMs'
    >
  > & { initialDelayMs: number; maxDelayMs: number };
  private readonly host: string;
  private readonly port: number | undefined;
  private readonly sharedServer: Server | undefined;
  private ownServer: Server | undefined;
  private readonly logger: TransportLogger | undefined;
  private readonly NativeWebSocket: (new (url: string) => unknown) | undefined;
  private advertised: string | undefined;
  private handler: MessageHandler = () => {};
  private readonly peers = new Map<string, PeerLink>();
  private readonly pendingInbound = new Set<Conn>();
  /** Every open inbound connection, pending or past HELLO. */
  private readonly inboundConns = new Set<Conn>();
  private authenticate: ((bytes: Uint8Array) => boolean) | undefined;
  private running = false;
  private ws: WsModule | undefined;
  private wss: InstanceType<WsModule['WebSocketServer']> | undefined;
  private upgradeListener: ((req: IncomingMessage, socket: Duplex, head: Buffer) => void) | undefined;
  private readonly counters = {
    messagesSent: 0,
    messagesReceived: 0,
    bytesSent: 0,
    bytesReceived: 0,
    droppedQueueFull: 0,
    droppedTooLarge: 0,
    droppedUnknownPeer: 0,
    droppedStopped: 0,
    rejectedFrames: 0,
    rejectedConnections: 0,
    handlerErrors: 0,
    connectionsOpened: 0,
    reconnects: 0,
  };

  constructor(options: WebSocketTransportOptions = {}) {
    if (!options || typeof options !== 'object') throw new TransportError('WebSocketTransport options must be an object');
    if (options.id !== undefined && !validId(options.id)) {
      throw new TransportError('WebSocketTransport id must be a string of 1..256 characters');
    }
    this.localId = options.id;
    this.host = options.host ?? '127.0.0.1';
    this.port = options.port;
    this.sharedServer = options.server as Server | undefined;
    this.advertised = options.advertisedAddress;
    this.logger = options.logger;
    this.NativeWebSocket = options.WebSocket;
    if (options.authenticateInbound !== undefined && typeof options.authenticateInbound !== 'function') {
      throw new TransportError('authenticateInbound must be a function');
    }
    this.authenticate = options.authenticateInbound;
    const idle = options.idleTimeoutMs ?? 120_000;
    if (typeof idle !== 'number' || !(idle >= 0)) throw new TransportError('idleTimeoutMs must be a number >= 0');
    this.opts = {
      maxMessageBytes: options.maxMessageBytes ?? 4 * 1024 * 1024,
      maxQueueMessages: options.maxQueueMessages ?? 1024,
      maxQueueBytes: options.maxQueueBytes ?? 16 * 1024 * 1024,
      highWaterBytes: options.highWaterBytes ?? 1024 * 1024,
      handshakeTimeoutMs: options.handshakeTimeoutMs ?? 5000,
      maxInboundConnections: options.maxInboundConnections ?? 1024,
      idleTimeoutMs: idle,
      initialDelayMs: options.reconnect?.initialDelayMs ?? 100,
      maxDelayMs: options.reconnect?.maxDelayMs ?? 5000,
    };
  }

  /** This node's id on the wire: the `id` option or the id taken by `bind()`; `''` while it has none. */
  get id(): string {
    return this.localId ?? '';
  }

  /**
   * Take the owning engine's replicaId (SyncEngine calls this before `start()`). A transport without an id takes
   * it; binding the id it already has is a no-op; any other id is refused with ValidationError and nothing
   * changes (an explicit `id` option, or an earlier bind, is never overwritten).
   */
  bind(localId: string): void {
    if (!validId(localId)) throw new ValidationError('WebSocketTransport id must be a string of 1..256 characters');
    if (this.localId === undefined) {
      this.localId = localId;
      return;
    }
    if (this.localId !== localId) {
      throw new ValidationError(`WebSocketTransport is bound to id ${this.localId}, cannot bind ${localId}`);
    }
  }

  /**
   * The sync layer's tag check (SyncEngine calls this when it has a cluster key), used as `authenticateInbound`
   * unless that option was given. Takes effect for connections accepted after the call (call before start).
   */
  authenticateWith(check: (bytes: Uint8Array) => boolean): void {
    if (typeof check !== 'function') throw new TransportError('authenticateWith needs a function');
    this.authenticate ??= check;
  }

  /** Where peers dial this node: the advertised address, else `ws://host:port` of the listening socket. */
  get address(): string {
    if (this.advertised) return this.advertised;
    const srv = this.sharedServer ?? this.ownServer;
    const a = srv?.address();
    if (a && typeof a === 'object') {
      const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
      return `ws://${host}:${a.port}`;
    }
    return `ws://${this.host}:${this.port ?? 0}`;
  }

  onMessage(fn: MessageHandler): void {
    this.handler = fn;
  }

  /** Ids of peers with at least one socket that completed the HELLO exchange. */
  connectedPeers(): string[] {
    const out: string[] = [];
    for (const p of this.peers.values()) if (this.usable(p)) out.push(p.id);
    return out.sort();
  }

  stats(): WebSocketTransportStats {
    let queued = 0;
    for (const p of this.peers.values()) queued += p.queue.length;
    return { ...this.counters, connectedPeers: this.connectedPeers().length, queuedMessages: queued };
  }

  async start(): Promise<void> {
    if (this.running) return;
    if (this.localId === undefined) {
      throw new TransportError('WebSocketTransport has no id: pass { id } or let a SyncEngine bind its replicaId');
    }
    this.running = true;
    try {
      await this.listen();
    } catch (e) {
      // leave nothing half-started: the transport is stopped and can be started again
      await this.stop();
      if (e instanceof TransportError) throw e;
      const code = (e as { code?: unknown })?.code;
      const where = this.sharedServer ? 'the shared server' : `${this.host}:${this.port ?? 0}`;
      throw new TransportError(`WebSocketTransport could not listen on ${where}${typeof code === 'string' ? ` (${code})` : ''}: ${(e as Error)?.message ?? String(e)}`, { cause: e });
    }
    for (const p of this.peers.values()) if (p.address && !p.out) this.dial(p);
  }

  /** Load `ws` and accept connections (Node): on an own HTTP server, or on the upgrade requests of a shared one. */
  private async listen(): Promise<void> {
    if (isNode()) {
      this.ws = (await nodeOnly('ws')) as WsModule;
      const mod = this.ws as unknown as { WebSocketServer?: WsModule['WebSocketServer']; default?: { WebSocketServer: WsModule['WebSocketServer'] } };
      const WSS = mod.WebSocketServer ?? mod.default!.WebSocketServer;
      if (this.sharedServer || this.port !== undefined) {
        this.wss = new WSS({ noServer: true, maxPayload: this.opts.maxMessageBytes + 1 });
        let server = this.sharedServer;
        if (!server) {
          const http = (await nodeOnly('node:http')) as typeof import('node:http');
          server = http.createServer((_req, res) => {
            res.writeHead(426, { 'content-type': 'text/plain' });
            res.end('WebSocket only\n');
          });
          server.on('clientError', (_err, socket) => socket.destroy());
          this.ownServer = server;
          await new Promise<void>((resolve, reject) => {
            server!.once('error', reject);
            server!.listen(this.port, this.host, () => {
              server!.off('error', reject);
              resolve();
            });
          });
        }
        this.upgradeListener = (req, socket, head) => this.acceptUpgrade(req, socket, head);
        server.on('upgrade', this.upgradeListener);
      }
    }
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    for (const p of this.peers.values()) {
      if (p.redial) clearTimeout(p.redial);
      if (p.drain) clearTimeout(p.drain);
      p.redial = p.drain = undefined;
      this.counters.droppedStopped += p.queue.length;
      p.queue = [];
      p.queueBytes = 0;
      if (p.out) this.closeConn(p.out, 1001, 'stopping');
      for (const c of [...p.inbound]) this.closeConn(c, 1001, 'stopping');
    }
    for (const c of [...this.inboundConns]) this.closeConn(c, 1001, 'stopping');
    if (this.sharedServer && this.upgradeListener) this.sharedServer.off('upgrade', this.upgradeListener);
    this.upgradeListener = undefined;
    if (this.wss) {
      for (const client of this.wss.clients) client.terminate();
      await new Promise<void>((resolve) => this.wss!.close(() => resolve()));
      this.wss = undefined;
    }
    if (this.ownServer) {
      const srv = this.ownServer;
      this.ownServer = undefined;
      srv.closeAllConnections?.();
      await new Promise<void>((resolve) => srv.close(() => resolve()));
    }
  }

  /**
   * Register (or re-address) a peer and dial it when running. An empty address registers a peer that is not
   * dialled: it is reached over its own inbound connection once it has connected.
   */
  connect(peerId: string, address: string): void {
    if (peerId === this.id) return;
    if (address === '' || address === undefined) {
      this.link(peerId);
      return;
    }
    if (typeof address === 'string') address = peerAddress(address);
    if (typeof address !== 'string' || !/^wss?:\/\//.test(address)) throw new TransportError(`bad peer address ${String(address)}`);
    const p = this.link(peerId);
    if (p.address === address && (p.out || p.redial)) return;
    p.address = address;
    if (p.out) this.closeConn(p.out, 1000, 'readdressed');
    p.out = undefined;
    if (this.running) this.dial(p);
  }

  /** Forget a peer: close its sockets and drop its queue. */
  disconnect(peerId: string): void {
    const p = this.peers.get(peerId);
    if (!p) return;
    this.peers.delete(peerId);
    if (p.redial) clearTimeout(p.redial);
    if (p.drain) clearTimeout(p.drain);
    this.counters.droppedStopped += p.queue.length;
    if (p.out) this.closeConn(p.out, 1000, 'peer removed');
    for (const c of [...p.inbound]) this.closeConn(c, 1000, 'peer removed');
  }

  send(peerId: string, bytes: Uint8Array): boolean {
    if (!this.running) {
      this.counters.droppedStopped++;
      return false;
    }
    if (bytes.length > this.opts.maxMessageBytes) {
      this.counters.droppedTooLarge++;
      return false;
    }
    const p = this.peers.get(peerId);
    if (!p || (!p.address && p.inbound.size === 0)) {
      this.counters.droppedUnknownPeer++;
      return false;
    }
    const frame = new Uint8Array(bytes.length + 1);
    frame[0] = FRAME_DATA;
    frame.set(bytes, 1);
    const sock = this.sockFor(p);
    if (sock && p.queue.length === 0 && sock.bufferedAmount < this.opts.highWaterBytes) {
      return this.write(sock, frame);
    }
    if (p.queue.length >= this.opts.maxQueueMessages || p.queueBytes + frame.length > this.opts.maxQueueBytes) {
      this.counters.droppedQueueFull++;
      return false;
    }
    p.queue.push(frame);
    p.queueBytes += frame.length;
    if (sock) this.scheduleDrain(p);
    return true;
  }

  // ---- connections ----

  private link(peerId: string): PeerLink {
    let p = this.peers.get(peerId);
    if (!p) {
      p = { id: peerId, inbound: new Set(), queue: [], queueBytes: 0, attempt: 0 };
      this.peers.set(peerId, p);
    }
    return p;
  }

  private usable(p: PeerLink): boolean {
    return this.sockFor(p) !== undefined;
  }

  private sockFor(p: PeerLink): Sock | undefined {
    if (p.out && p.out.peerId && p.out.sock.readyState === OPEN) return p.out.sock;
    for (const c of p.inbound) if (c.trusted && c.sock.readyState === OPEN) return c.sock;
    return undefined;
  }

  private write(sock: Sock, frame: Uint8Array): boolean {
    try {
      sock.send(frame);
    } catch {
      return false;
    }
    this.counters.messagesSent++;
    this.counters.bytesSent += frame.length;
    return true;
  }

  private scheduleDrain(p: PeerLink): void {
    if (p.drain || !this.running) return;
    p.drain = unref(
      setTimeout(() => {
        p.drain = undefined;
        this.drain(p);
      }, 5),
    );
  }

  private drain(p: PeerLink): void {
    const sock = this.sockFor(p);
    if (!sock) return; // drained again once a socket completes its HELLO
    while (p.queue.length > 0 && sock.bufferedAmount < this.opts.highWaterBytes) {
      const frame = p.queue.shift()!;
      p.queueBytes -= frame.length;
      this.write(sock, frame);
    }
    if (p.queue.length > 0) this.scheduleDrain(p);
  }

  private dial(p: PeerLink): void {
    if (!this.running || !p.address) return;
    if (p.redial) {
      clearTimeout(p.redial);
      p.redial = undefined;
    }
    let sock: Sock;
    let native = false;
    try {
      if (this.NativeWebSocket) {
        sock = new this.NativeWebSocket(p.address) as Sock;
        native = true;
      } else if (this.ws) {
        const mod = this.ws as unknown as { WebSocket?: WsModule['WebSocket']; default?: WsModule['WebSocket'] };
        const WS = (mod.WebSocket ?? mod.default) as unknown as new (url: string, opts: unknown) => Sock;
        sock = new WS(p.address, { maxPayload: this.opts.maxMessageBytes + 1, handshakeTimeout: this.opts.handshakeTimeoutMs });
      } else {
        const WS = (globalThis as { WebSocket?: new (url: string) => Sock }).WebSocket;
        if (!WS) throw new TransportError('no WebSocket implementation available');
        sock = new WS(p.address);
        native = true;
      }
    } catch (e) {
      this.logger?.warn?.('dial failed', { peer: p.id, address: p.address, error: String(e) });
      this.scheduleRedial(p);
      return;
    }
    sock.binaryType = native ? 'arraybuffer' : 'nodebuffer';
    const conn: Conn = { sock, outbound: true, expectedId: p.id, closed: false, trusted: true, lastActive: 0 };
    p.out = conn;
    conn.timer = unref(setTimeout(() => this.reject(conn, 'handshake timeout', false), this.opts.handshakeTimeoutMs));
    sock.onopen = () => {
      this.counters.connectionsOpened++;
      this.write0(sock, encodeHello(this.id, this.address));
    };
    this.wire(conn);
  }

  private scheduleRedial(p: PeerLink): void {
    if (!this.running || !p.address || p.redial || !this.peers.has(p.id)) return;
    const base = Math.min(this.opts.maxDelayMs, this.opts.initialDelayMs * 2 ** Math.min(p.attempt, 30));
    const delay = base * (0.5 + Math.random() * 0.5);
    p.attempt++;
    p.redial = unref(
      setTimeout(() => {
        p.redial = undefined;
        if (!this.running || p.out) return;
        this.counters.reconnects++;
        this.dial(p);
      }, delay),
    );
  }

  private acceptUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    if (this.wss && this.inboundConns.size >= this.opts.maxInboundConnections) this.evictUntrusted();
    if (!this.wss || this.inboundConns.size >= this.opts.maxInboundConnections) {
      this.counters.rejectedConnections++;
      socket.destroy();
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      const sock = ws as unknown as Sock;
      sock.binaryType = 'nodebuffer';
      const conn: Conn = { sock, outbound: false, closed: false, trusted: false, lastActive: Date.now() };
      this.inboundConns.add(conn);
      this.counters.connectionsOpened++;
      this.pendingInbound.add(conn);
      conn.timer = unref(setTimeout(() => this.reject(conn, 'handshake timeout', false), this.opts.handshakeTimeoutMs));
      this.wire(conn);
    });
  }

  /**
   * At the inbound limit with `authenticateInbound`: close the least recently active untrusted inbound socket
   * (handshake pending, or HELLO without a verified message) to make room. Trusted sockets are never evicted.
   */
  private evictUntrusted(): void {
    if (!this.authenticate) return;
    let victim: Conn | undefined;
    for (const c of this.inboundConns) if (!c.trusted && !c.closed && (!victim || c.lastActive < victim.lastActive)) victim = c;
    if (!victim) return;
    this.counters.rejectedConnections++;
    this.logger?.info?.('untrusted connection evicted at the inbound limit', { peer: victim.peerId });
    this.closeConn(victim, 1008, 'evicted', true);
  }

  /** (Re)arm the idle timeout of an inbound socket; it fires only once the socket has been idle long enough. */
  private armIdle(conn: Conn): void {
    const limit = this.opts.idleTimeoutMs;
    if (limit <= 0 || conn.closed) return;
    const wait = Math.max(1, conn.lastActive + limit - Date.now());
    conn.idle = unref(
      setTimeout(() => {
        conn.idle = undefined;
        if (conn.closed) return;
        if (Date.now() - conn.lastActive >= limit) {
          this.logger?.info?.('idle inbound connection closed', { peer: conn.peerId, idleMs: limit });
          this.closeConn(conn, 1000, 'idle', true);
        } else this.armIdle(conn);
      }, wait),
    );
  }

  /** Send a control frame without counting it as a message. */
  private write0(sock: Sock, frame: Uint8Array): void {
    try {
      sock.send(frame);
      this.counters.bytesSent += frame.length;
    } catch {
      /* the close handler cleans up */
    }
  }

  private wire(conn: Conn): void {
    const { sock } = conn;
    sock.onmessage = (ev) => this.onFrame(conn, ev.data);
    sock.onerror = (ev) => {
      this.logger?.debug?.('socket error', { peer: conn.peerId ?? conn.expectedId, error: String((ev as { message?: string })?.message ?? ev) });
    };
    sock.onclose = (ev) => this.onClose(conn, ev?.code);
  }

  private onFrame(conn: Conn, data: unknown): void {
    if (conn.closed) return;
    let bytes: Uint8Array;
    if (data instanceof Uint8Array) bytes = data;
    else if (data instanceof ArrayBuffer) bytes = new Uint8Array(data);
    else if (Array.isArray(data)) {
      // `ws` with fragmented messages may hand over a list of buffers
      const parts = data as Uint8Array[];
      const total = parts.reduce((n, b) => n + b.length, 0);
      bytes = new Uint8Array(total);
      let o = 0;
      for (const b of parts) {
        bytes.set(b, o);
        o += b.length;
      }
    } else {
      this.reject(conn, 'text frame', true);
      return;
    }
    if (bytes.length === 0 || bytes.length > this.opts.maxMessageBytes + 1) {
      this.reject(conn, 'empty or oversized frame', true);
      return;
    }
    this.counters.bytesReceived += bytes.length;
    if (!conn.peerId) {
      this.onHello(conn, bytes);
      return;
    }
    if (bytes[0] !== FRAME_DATA) {
      this.reject(conn, `unexpected frame kind ${bytes[0]}`, true);
      return;
    }
    this.counters.messagesReceived++;
    const msg = bytes.subarray(1);
    if (!conn.outbound) {
      if (conn.trusted) conn.lastActive = Date.now();
      else if (this.verified(msg)) this.trust(conn);
    }
    try {
      this.handler(conn.peerId, msg);
    } catch (e) {
      this.counters.handlerErrors++;
      this.logger?.debug?.('message handler threw', { peer: conn.peerId, error: String(e) });
    }
  }

  private onHello(conn: Conn, bytes: Uint8Array): void {
    let hello: { id: string; address: string };
    try {
      hello = decodeHello(bytes);
    } catch (e) {
      this.reject(conn, `bad HELLO: ${(e as Error).message}`, true);
      return;
    }
    if (hello.id === this.id || (conn.expectedId !== undefined && hello.id !== conn.expectedId)) {
      this.reject(conn, `unexpected peer id ${hello.id}`, false);
      return;
    }
    if (conn.timer) clearTimeout(conn.timer);
    conn.timer = undefined;
    conn.peerId = hello.id;
    const p = this.link(hello.id);
    if (conn.outbound) {
      p.attempt = 0;
      this.logger?.info?.('peer connected', { peer: hello.id, direction: 'out' });
    } else {
      this.pendingInbound.delete(conn);
      // one inbound socket per id: the newer replaces the older of its kind (without authentication every
      // socket is trusted at HELLO; with it, a candidate replaces only an older candidate, never the trusted one)
      conn.trusted = !this.authenticate;
      conn.lastActive = Date.now();
      p.inbound.add(conn);
      for (const c of [...p.inbound]) if (c !== conn && c.trusted === conn.trusted) this.closeConn(c, 1000, 'replaced', true);
      this.write0(conn.sock, encodeHello(this.id, this.address));
      this.armIdle(conn);
      this.logger?.info?.('peer connected', { peer: hello.id, direction: 'in', trusted: conn.trusted });
    }
    if (p.queue.length > 0) this.drain(p);
  }

  private verified(msg: Uint8Array): boolean {
    try {
      return this.authenticate!(msg) === true;
    } catch {
      return false;
    }
  }

  /** An inbound candidate delivered a verified message: it becomes its peer's send path, replacing the older one. */
  private trust(conn: Conn): void {
    conn.trusted = true;
    conn.lastActive = Date.now();
    const p = this.peers.get(conn.peerId!);
    if (!p) return;
    for (const c of [...p.inbound]) if (c !== conn) this.closeConn(c, 1000, 'replaced', true);
    this.logger?.info?.('inbound connection verified', { peer: p.id });
    if (p.queue.length > 0) this.drain(p);
  }

  private reject(conn: Conn, why: string, frame: boolean): void {
    if (conn.closed) return;
    if (frame) this.counters.rejectedFrames++;
    this.counters.rejectedConnections++;
    this.logger?.warn?.('connection rejected', { peer: conn.peerId ?? conn.expectedId, reason: why });
    this.closeConn(conn, 1002, 'protocol error');
  }

  /**
   * Close a connection and forget it at once. `hard` (protocol errors, idle, evicted, replaced) drops the TCP
   * connection instead of waiting for the other side to answer the close handshake, so a client that never
   * answers cannot hold sockets past the count.
   */
  private closeConn(conn: Conn, code: number, reason: string, hard = code === 1002): void {
    if (!conn.closed) {
      try {
        if (hard && conn.sock.terminate) conn.sock.terminate();
        else conn.sock.close(code, reason);
      } catch {
        conn.sock.terminate?.();
      }
    }
    this.onClose(conn, code);
  }

  private onClose(conn: Conn, _code?: number): void {
    if (conn.closed) return;
    conn.closed = true;
    if (conn.timer) clearTimeout(conn.timer);
    if (conn.idle) clearTimeout(conn.idle);
    conn.timer = conn.idle = undefined;
    if (!conn.outbound) {
      this.inboundConns.delete(conn);
      this.pendingInbound.delete(conn);
    }
    const peerId = conn.peerId ?? conn.expectedId;
    const p = peerId !== undefined ? this.peers.get(peerId) : undefined;
    if (!p) return;
    if (conn.outbound) {
      if (p.out === conn) {
        p.out = undefined;
        if (conn.peerId) this.logger?.info?.('peer disconnected', { peer: p.id, direction: 'out' });
        this.scheduleRedial(p);
      }
    } else if (p.inbound.delete(conn)) {
      this.logger?.info?.('peer disconnected', { peer: p.id, direction: 'in' });
      if (!p.address && p.inbound.size === 0) {
        // a peer we only knew from its own connection: forget it, and its queue, once it is gone
        this.counters.droppedStopped += p.queue.length;
        if (p.drain) clearTimeout(p.drain);
        this.peers.delete(p.id);
      }
    }
  }
}
