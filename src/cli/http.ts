/**
 * The node's HTTP API (served on the same port as the peer WebSocket):
 *
 * | route | answer |
 * | --- | --- |
 * | `GET /` | the live dashboard (HTML) |
 * | `GET /state` | `{ nodeId, region, vms, nodes, assignments, counters }` (streamed above STATE_STREAM_MIN records: `sendState`) |
 * | `GET /overview` | `{ nodeId, region, vms, regions, recent, nodes, counters }`: VM count, VMs per region, the 25 (`?recent=N`, at most 1,000) most recently updated VMs, nodes and counters, without listing every VM (what the dashboard polls) |
 * | `GET /summary` | `{ nodeId, region, vms, nodes, assignments, counters, hash }`: counts and a digest of the VMs and assignments, kept up to date incrementally (what the demo polls; `ClusterMetadata.summary`) |
 * | `GET /metrics` | Prometheus text |
 * | `GET /healthz` | `{ status: 'ok', nodeId, region, uptimeSeconds }` |
 * | `PUT /vms/:id` | JSON VMState; 204 once durable (`?write=majority\|all&timeoutMs=N` for a stronger write) |
 * | `DELETE /vms/:id` | 204 once durable |
 * | `PUT /assignments/:vmId` | JSON `{ "nodeId": "..." }`; 204 |
 * | `POST /counters/:name` | JSON `{ "delta": n }` (safe integer, may be negative); 204 |
 * | `POST /admin/peers` | JSON `{ "id", "address" }`: add a peer at run time; 204 |
 * | `POST /admin/partition` | JSON `{ "peers": [ids] }`: drop all traffic with those peers; 204 |
 * | `POST /admin/heal` | lift every partition; 204 |
 *
 * Writes (every non-GET route): without an API token only from loopback addresses (403 otherwise); with a
 * token, `Authorization: Bearer <token>` is required from everywhere (401 otherwise; the scheme is
 * case-insensitive as RFC 7235 says, the token is compared in constant time). Bodies are limited to 1 MiB
 * (413). A request target that is not a valid path (e.g. `http://[::1`), bad JSON or an invalid value is a 400
 * and changes nothing; `timeoutMs` is at most `MAX_TIMEOUT_MS` (2^31-1 ms, the longest timer Node keeps; 400
 * beyond); a consistency wait that times out is a 504 (the write is applied locally and still propagates).
 * Every error answer is JSON `{ error, code }`: the library's code (`E_VALIDATION`, `E_RANGE`, `E_TIMEOUT`, ...)
 * or the HTTP layer's (HTTP_ERROR_CODES). A client that goes away mid-request is logged at debug level (nothing to answer); only failures of the
 * node itself are logged as errors (500).
 */
import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { NovaCronIntegration } from '../cluster/integration.js';
import { OVERVIEW_RECENT, canonicalJson } from '../cluster/metadata.js';
import { MAX_TIMEOUT_MS, type WriteOptions } from '../cluster/types.js';
import { dashboardHtml } from '../dashboard/page.js';
import { CrdtError, TimeoutError, ValidationError } from '../errors.js';
import type { JsonLogger } from './log.js';
import { peerAddress } from '../transport/websocket.js';

export const MAX_BODY_BYTES = 1024 * 1024;
export { MAX_TIMEOUT_MS };

export interface AdminControl {
  addPeer(id: string, address: string): void;
  partition(peerIds: string[]): void;
  heal(): void;
}

export interface HttpContext {
  nodeId: string;
  region: string;
  cluster: NovaCronIntegration;
  /** Bearer token required for writes; undefined: writes from loopback only. */
  apiToken?: string;
  metrics(): string;
  admin: AdminControl;
  logger?: JsonLogger;
  startedAt?: number;
}

/** The `code` of the JSON body of an answer the HTTP layer itself refuses (as the library errors carry theirs). */
export const HTTP_ERROR_CODES: Readonly<Record<number, string>> = {
  400: 'E_BAD_REQUEST',
  401: 'E_AUTH',
  403: 'E_FORBIDDEN',
  404: 'E_NOT_FOUND',
  405: 'E_METHOD',
  413: 'E_TOO_LARGE',
  503: 'E_BUSY',
};

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** Extra response headers (`WWW-Authenticate` on a 401, `Allow` on a 405). */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/** Paths that only read: any other method gets 405. */
const READ_ONLY_PATHS = new Set(['/', '/state', '/overview', '/summary', '/metrics', '/healthz']);

/** Is this a loopback peer address (IPv4 127/8, IPv6 ::1, or IPv4-mapped 127/8)? */
export function isLoopback(addr: string | undefined): boolean {
  if (!addr) return false;
  return addr === '::1' || addr.startsWith('127.') || addr.startsWith('::ffff:127.');
}

function send(res: ServerResponse, status: number, body?: string, type = 'application/json; charset=utf-8', headers: Record<string, string> = {}): void {
  if (res.headersSent) return;
  if (body === undefined) {
    res.writeHead(status, { ...headers, 'cache-control': 'no-store' });
    res.end();
    return;
  }
  res.writeHead(status, { ...headers, 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(body);
}

function json(res: ServerResponse, status: number, value: unknown, headers?: Record<string, string>): void {
  send(res, status, JSON.stringify(value), undefined, headers);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > MAX_BODY_BYTES) throw new HttpError(413, `body larger than ${MAX_BODY_BYTES} bytes`);
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    n += c.length;
    if (n > MAX_BODY_BYTES) throw new HttpError(413, `body larger than ${MAX_BODY_BYTES} bytes`);
    chunks.push(c);
  }
  return Buffer.concat(chunks).toString('utf8');
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const text = await readBody(req);
  try {
    return JSON.parse(text);
  } catch {
    throw new HttpError(400, 'body is not valid JSON');
  }
}

export { canonicalJson };

/** The `/state` document. */
export function stateDocument(ctx: HttpContext): Record<string, unknown> {
  const s = ctx.cluster.exportState();
  return { nodeId: ctx.nodeId, region: ctx.region, vms: s.vms, nodes: s.nodes, assignments: s.assignments, counters: s.counters };
}

/** VMs (or assignments) per piece of a streamed `/state`: a few ms of the event loop each. */
export const STATE_BATCH = 500;
/** A `/state` of at most this many VMs plus assignments is one exact snapshot, sent in one piece. */
export const STATE_STREAM_MIN = 2000;
/** A streamed `/state` whose client reads nothing for this long is dropped (its socket destroyed). */
export const STATE_STALL_MS = 60_000;
/**
 * Streamed `/state` answers at once, per node, and per client address: another is a 503 (`E_BUSY`,
 * `Retry-After: 1`). Each holds the id lists and takes turns of the event loop (300 paused clients held 390 MB
 * and delayed /healthz by 17 s); the per-address limit keeps one client from taking every slot.
 */
export const MAX_STATE_STREAMS = 16;
export const MAX_STATE_STREAMS_PER_ADDRESS = 2;
/** A streamed `/state` still going after this long is cut (a client reading a piece a minute held a slot for hours). */
export const STATE_MAX_MS = 300_000;

/**
 * Answer `GET /state`. Up to STATE_STREAM_MIN VMs plus assignments: `stateDocument` in one piece (a snapshot of
 * one instant, with a content-length). Above that, the document is streamed (chunked) in pieces of STATE_BATCH
 * records with the event loop free between them, so that a big state does not stall gossip and anti-entropy
 * for the whole request (100,000 VMs: ~1 s in one piece). The VM and assignment ids are taken when the
 * request arrives and each record is read when its piece is written: a record written meanwhile shows either
 * version, one deleted meanwhile is left out, one created after the request began is not listed. A client
 * that stops reading holds only the id lists (the pieces wait for its socket to drain) and is dropped after
 * STATE_STALL_MS without progress, and any stream after STATE_MAX_MS. At most MAX_STATE_STREAMS stream at once,
 * MAX_STATE_STREAMS_PER_ADDRESS to one client address (503 E_BUSY beyond).
 */
/** The headers of a streamed `/state` (no content-length: chunked). */
const STREAM_HEADERS = { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' };

interface StreamSlots {
  active: number;
  byAddress: Map<string, number>;
}

async function sendState(ctx: HttpContext, res: ServerResponse, headOnly: boolean, streams: StreamSlots, address: string): Promise<void> {
  const md = ctx.cluster.metadata;
  if (md.vms.size + md.assignments.size <= STATE_STREAM_MIN) return json(res, 200, stateDocument(ctx));
  if (headOnly) {
    res.writeHead(200, STREAM_HEADERS);
    res.end();
    return;
  }
  const mine = streams.byAddress.get(address) ?? 0;
  if (streams.active >= MAX_STATE_STREAMS || mine >= MAX_STATE_STREAMS_PER_ADDRESS) {
    throw new HttpError(503, `too many /state answers streaming${mine >= MAX_STATE_STREAMS_PER_ADDRESS ? ' to this client' : ''}; retry shortly`, { 'retry-after': '1' });
  }
  streams.active++;
  streams.byAddress.set(address, mine + 1);
  try {
    await streamState(ctx, res);
  } finally {
    streams.active--;
    const left = (streams.byAddress.get(address) ?? 1) - 1;
    if (left > 0) streams.byAddress.set(address, left);
    else streams.byAddress.delete(address);
  }
}

async function streamState(ctx: HttpContext, res: ServerResponse): Promise<void> {
  const md = ctx.cluster.metadata;
  const vmIds = md.vms.unsortedKeys();
  const asgIds = md.assignments.unsortedKeys();
  res.writeHead(200, STREAM_HEADERS);
  const turn = async (): Promise<boolean> => {
    await new Promise<void>((resolve) => setImmediate(resolve));
    return !res.destroyed;
  };
  const started = Date.now();
  // false once the client is gone (or stalled and dropped, or past STATE_MAX_MS): stop reading. A turn after the
  // drain too: a socket that takes each write at once drains from within the write, which would chain every
  // piece into one task
  const put = async (piece: string): Promise<boolean> => {
    if (!res.destroyed && Date.now() - started > STATE_MAX_MS) res.destroy();
    if (res.destroyed) return false;
    if (!res.write(piece)) await drainedOrClosed(res);
    return await turn();
  };
  const vmsInOrder = await sortedInTurns(vmIds, turn);
  const asgsInOrder = vmsInOrder && (await sortedInTurns(asgIds, turn));
  // a list's records (the text of each id's, or undefined when it is gone), STATE_BATCH per piece, comma-separated
  const putList = async (next: () => string | undefined, record: (id: string) => string | undefined): Promise<boolean> => {
    let sep = '';
    for (let id = next(); id !== undefined; ) {
      let piece = '';
      for (let j = 0; j < STATE_BATCH && id !== undefined; j++, id = next()) {
        const text = record(id);
        if (text === undefined) continue;
        piece += sep + text;
        sep = ',';
      }
      if (!(await put(piece))) return false;
    }
    return true;
  };
  if (!asgsInOrder || !(await put(`{"nodeId":${JSON.stringify(ctx.nodeId)},"region":${JSON.stringify(ctx.region)},"vms":[`))) return;
  const vmText = (id: string): string | undefined => {
    const vm = md.getVMState(id);
    return vm === undefined ? undefined : JSON.stringify(vm);
  };
  if (!(await putList(vmsInOrder, vmText))) return;
  if (!(await put(`],"nodes":${JSON.stringify(md.listNodes())},"assignments":{`))) return;
  const assignmentText = (id: string): string | undefined => {
    const node = md.getAssignment(id);
    return node === undefined ? undefined : `${JSON.stringify(id)}:${JSON.stringify(node)}`;
  };
  if (!(await putList(asgsInOrder, assignmentText))) return;
  res.end(`},"counters":${JSON.stringify(md.listCounters())}}`);
}

/** Keys sorted per run of this many, one run per turn of the event loop (100,000 keys in one sort: ~90 ms). */
const SORT_RUN = 4096;

/**
 * `keys` in JS string order (as `ORMap.keys()` gives them), without one long sort: runs of SORT_RUN keys are
 * sorted one per `turn()`, then merged lazily through a heap of the runs' heads. Returns the merge's `next`
 * (undefined once done), or undefined when `turn()` said to stop.
 */
export async function sortedInTurns(keys: string[], turn: () => Promise<boolean>): Promise<(() => string | undefined) | undefined> {
  const runs: string[][] = [];
  for (let i = 0; i < keys.length; i += SORT_RUN) {
    runs.push(keys.slice(i, i + SORT_RUN).sort());
    if (i + SORT_RUN < keys.length && !(await turn())) return undefined;
  }
  // a binary min-heap of run indices by their current head; at[r] is run r's next position
  const at = new Int32Array(runs.length);
  const heap = runs.map((_, r) => r);
  const head = (r: number): string => runs[r][at[r]];
  const less = (x: number, y: number): boolean => head(heap[x]) < head(heap[y]);
  const down = (i: number): void => {
    for (;;) {
      const l = 2 * i + 1, r = l + 1;
      let m = i;
      if (l < heap.length && less(l, m)) m = l;
      if (r < heap.length && less(r, m)) m = r;
      if (m === i) return;
      [heap[i], heap[m]] = [heap[m], heap[i]];
      i = m;
    }
  };
  for (let i = (heap.length >> 1) - 1; i >= 0; i--) down(i);
  return () => {
    if (heap.length === 0) return undefined;
    const r = heap[0];
    const key = runs[r][at[r]++];
    if (at[r] === runs[r].length) {
      heap[0] = heap[heap.length - 1];
      heap.pop();
    }
    if (heap.length > 0) down(0);
    return key;
  };
}

/** Resolves when `res` drains or closes; destroys it after STATE_STALL_MS of neither. */
function drainedOrClosed(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    const timer = setTimeout(() => {
      res.destroy();
      done();
    }, STATE_STALL_MS);
    timer.unref?.();
    res.on('drain', done);
    res.on('close', done);
  });
}

/** Most VMs `/overview` lists (`?recent=`). */
export const MAX_OVERVIEW_RECENT = 1000;

/** The `/overview` document (see `ClusterMetadata.overview`). */
export function overviewDocument(ctx: HttpContext, recent = OVERVIEW_RECENT): Record<string, unknown> {
  const o = ctx.cluster.overview(recent);
  return { nodeId: ctx.nodeId, region: ctx.region, vms: o.vms, regions: o.regions, recent: o.recent, nodes: o.nodes, counters: o.counters };
}

/** The `/summary` document: counts and a digest of the VMs and assignments (see `ClusterMetadata.summary`). */
export function summaryDocument(ctx: HttpContext): Record<string, unknown> {
  const s = ctx.cluster.summary();
  return { nodeId: ctx.nodeId, region: ctx.region, vms: s.vms, nodes: s.nodes, assignments: s.assignments, counters: s.counters, hash: s.hash };
}

function authorize(ctx: HttpContext, req: IncomingMessage): void {
  if (ctx.apiToken === undefined) {
    if (!isLoopback(req.socket.remoteAddress)) throw new HttpError(403, 'writes are accepted from loopback only (start the node with --api-token-file to allow remote writes)');
    return;
  }
  const h = req.headers.authorization ?? '';
  // RFC 7235: the auth scheme is case-insensitive (`bearer`, `BEARER` too)
  const m = /^Bearer +(.+)$/i.exec(h);
  const given = Buffer.from(m ? m[1] : '');
  const want = Buffer.from(ctx.apiToken);
  if (!m || given.length !== want.length || !timingSafeEqual(given, want)) {
    throw new HttpError(401, 'missing or wrong bearer token', { 'www-authenticate': 'Bearer realm="async-state-sync"' });
  }
}

function pathId(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new HttpError(400, 'bad percent-encoding in path');
  }
}

/** `/overview`'s `?recent=` (default OVERVIEW_RECENT, at most MAX_OVERVIEW_RECENT; anything else is a 400). */
function recentParam(url: URL): number {
  const r = url.searchParams.get('recent');
  if (r === null) return OVERVIEW_RECENT;
  if (!/^\d{1,7}$/.test(r) || Number(r) > MAX_OVERVIEW_RECENT) throw new HttpError(400, `recent must be a whole number of at most ${MAX_OVERVIEW_RECENT}`);
  return Number(r);
}

function writeOptions(url: URL): WriteOptions | undefined {
  const w = url.searchParams.get('write');
  const t = url.searchParams.get('timeoutMs');
  if (w === null && t === null) return undefined;
  const o: WriteOptions = {};
  if (w !== null) o.write = w as WriteOptions['write'];
  if (t !== null) {
    if (!/^\d+$/.test(t)) throw new HttpError(400, 'timeoutMs must be a whole number');
    // Node fires a longer timer at once (it clamps to 1 ms), so a huge value would time out immediately
    if (Number(t) > MAX_TIMEOUT_MS) throw new HttpError(400, `timeoutMs must be at most ${MAX_TIMEOUT_MS}`);
    o.timeoutMs = Number(t);
  }
  return o;
}

/**
 * The request target as a URL. Node's parser lets through targets that are no URL (`GET http://[::1
 * HTTP/1.1`): a 400, not a TypeError from `new URL`.
 */
function requestUrl(target: string | undefined): URL {
  try {
    // an origin-form target ("/path") is a path even when it starts with "//" (which `new URL(target, base)`
    // reads as a host: "//x/state" would route as "/state")
    if (target === undefined) return new URL('http://node.invalid/');
    return target.startsWith('/') ? new URL(`http://node.invalid${target}`) : new URL(target, 'http://node.invalid');
  } catch {
    throw new HttpError(400, 'malformed request target');
  }
}

/**
 * Did the request fail because the client went away? Node fails the body stream with `Error('aborted')`, code
 * ECONNRESET, when the connection closes before the body ended (reset or not).
 */
function clientGone(req: IncomingMessage, res: ServerResponse, e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  const netCode = code === 'ECONNRESET' || code === 'EPIPE' || code === 'ECONNABORTED' || code === 'ERR_STREAM_PREMATURE_CLOSE';
  return netCode && (req.destroyed || res.destroyed);
}

/** A request target for a log line (a path can be 16 KiB). */
function truncate(target: string | undefined): string | undefined {
  return target !== undefined && target.length > 200 ? `${target.slice(0, 200)}...` : target;
}

/** The request handler. */
export function createHttpHandler(ctx: HttpContext): (req: IncomingMessage, res: ServerResponse) => void {
  const startedAt = ctx.startedAt ?? Date.now();
  let page: string | undefined;
  const streams: StreamSlots = { active: 0, byAddress: new Map() };
  return (req, res) => {
    void handle(req, res).catch((e: unknown) => {
      if (clientGone(req, res, e)) {
        // the client aborted (reset, closed mid-body): its problem, not the node's, and nobody to answer
        ctx.logger?.debug('http client went away', { method: req.method, url: truncate(req.url), error: e });
        res.destroy();
        return;
      }
      if (res.headersSent) {
        // failed mid-answer (a streamed /state): the status is out, so cut the body short for the client to see
        ctx.logger?.error('http handler failed mid-response', { method: req.method, url: truncate(req.url), error: e });
        res.destroy();
        return;
      }
      if (e instanceof HttpError) json(res, e.status, { error: e.message, code: HTTP_ERROR_CODES[e.status] ?? 'E_HTTP' }, e.headers);
      else if (e instanceof ValidationError) json(res, 400, { error: e.message, code: e.code });
      // a value out of bounds (a counter past Number.MAX_SAFE_INTEGER, tagged E_RANGE by the cluster API): the
      // request's fault, nothing changed; any other RangeError (a stack overflow, say) is ours: 500 and a log
      else if (e instanceof RangeError && (e as { code?: unknown }).code === 'E_RANGE') json(res, 400, { error: e.message, code: 'E_RANGE' });
      else if (e instanceof TimeoutError) json(res, 504, { error: e.message, code: e.code });
      else if (e instanceof RangeError && (e as { code?: unknown }).code === 'E_EXHAUSTED') {
        // this replica cannot record writes any more (a peer claimed its dots or a key's timestamp up to the top)
        ctx.logger?.error('write refused: replica exhausted', { method: req.method, url: truncate(req.url), error: e });
        json(res, 503, { error: e.message, code: 'E_EXHAUSTED' });
      }
      else {
        ctx.logger?.error('http handler failed', { method: req.method, url: truncate(req.url), error: e });
        json(res, 500, { error: e instanceof CrdtError ? e.message : 'internal error', code: e instanceof CrdtError ? e.code : undefined });
      }
    });
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = requestUrl(req.url);
    const path = url.pathname;
    const method = req.method ?? 'GET';
    if (method === 'GET' || method === 'HEAD') {
      if (path === '/') {
        page ??= dashboardHtml({ nodeId: ctx.nodeId, region: ctx.region });
        return send(res, 200, page, 'text/html; charset=utf-8');
      }
      if (path === '/state') return await sendState(ctx, res, method === 'HEAD', streams, req.socket.remoteAddress ?? '');
      if (path === '/overview') return json(res, 200, overviewDocument(ctx, recentParam(url)));
      if (path === '/summary') return json(res, 200, summaryDocument(ctx));
      if (path === '/metrics') return send(res, 200, ctx.metrics(), 'text/plain; version=0.0.4; charset=utf-8');
      if (path === '/healthz') return json(res, 200, { status: 'ok', nodeId: ctx.nodeId, region: ctx.region, uptimeSeconds: Math.round((Date.now() - startedAt) / 1000) });
      if (/^\/vms\/[^/]+$/.test(path)) {
        const vm = ctx.cluster.getVMState(pathId(path.slice(5)));
        return vm ? json(res, 200, vm) : json(res, 404, { error: 'no such VM', code: HTTP_ERROR_CODES[404] });
      }
      // write-only paths: the method is wrong, not the path (as for any other method there)
      if (/^\/counters\/[^/]+$/.test(path)) throw new HttpError(405, 'method not allowed', { allow: 'POST' });
      if (/^\/assignments\/[^/]+$/.test(path)) throw new HttpError(405, 'method not allowed', { allow: 'PUT' });
      throw new HttpError(404, 'not found');
    }

    if (READ_ONLY_PATHS.has(path)) throw new HttpError(405, 'method not allowed', { allow: 'GET, HEAD' });
    const vmMatch = /^\/vms\/([^/]+)$/.exec(path);
    const asgMatch = /^\/assignments\/([^/]+)$/.exec(path);
    const ctrMatch = /^\/counters\/([^/]+)$/.exec(path);
    const known = vmMatch || asgMatch || ctrMatch || path.startsWith('/admin/');
    if (!known) throw new HttpError(404, 'not found');
    authorize(ctx, req);

    if (vmMatch && method === 'PUT') {
      const body = await readJson(req);
      await ctx.cluster.updateVMState(pathId(vmMatch[1]), body as never, writeOptions(url));
      return send(res, 204);
    }
    if (vmMatch && method === 'DELETE') {
      await readBody(req);
      await ctx.cluster.removeVM(pathId(vmMatch[1]), writeOptions(url));
      return send(res, 204);
    }
    if (asgMatch && method === 'PUT') {
      const body = (await readJson(req)) as { nodeId?: unknown } | null;
      await ctx.cluster.assignVM(pathId(asgMatch[1]), (body ?? {}).nodeId as string, writeOptions(url));
      return send(res, 204);
    }
    if (ctrMatch && method === 'POST') {
      const body = (await readJson(req)) as { delta?: unknown } | null;
      // the delta is required: an empty or other body adding 1 (incrementCounter's default) hid client bugs
      if (body === null || typeof body !== 'object' || Array.isArray(body) || !Number.isSafeInteger(body.delta)) {
        throw new HttpError(400, 'body must be { "delta": <safe integer> }');
      }
      await ctx.cluster.incrementCounter(pathId(ctrMatch[1]), body.delta as number, writeOptions(url));
      return send(res, 204);
    }
    if (method === 'POST' && path === '/admin/peers') {
      const body = (await readJson(req)) as { id?: unknown; address?: unknown } | null;
      const id = body?.id;
      const address = typeof body?.address === 'string' ? peerAddress(body.address) : undefined;
      if (typeof id !== 'string' || !id || id === ctx.nodeId || typeof address !== 'string' || !/^wss?:\/\/[^/]+/.test(address)) {
        throw new HttpError(400, 'body must be { "id": "<another node id>", "address": "ws://host:port" } (or "host:port")');
      }
      ctx.admin.addPeer(id, address);
      return send(res, 204);
    }
    if (method === 'POST' && path === '/admin/partition') {
      const body = (await readJson(req)) as { peers?: unknown } | null;
      const peers = body?.peers;
      if (!Array.isArray(peers) || !peers.every((p) => typeof p === 'string' && p.length > 0)) throw new HttpError(400, 'body must be { "peers": ["id", ...] }');
      ctx.admin.partition(peers as string[]);
      ctx.logger?.warn('partition on', { peers });
      return send(res, 204);
    }
    if (method === 'POST' && path === '/admin/heal') {
      await readBody(req);
      ctx.admin.heal();
      ctx.logger?.warn('partition healed');
      return send(res, 204);
    }
    if (path.startsWith('/admin/')) throw new HttpError(404, 'not found');
    const allow = vmMatch ? 'GET, HEAD, PUT, DELETE' : asgMatch ? 'PUT' : 'POST';
    throw new HttpError(405, 'method not allowed', { allow });
  }
}
