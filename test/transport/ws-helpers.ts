/** Helpers shared by the WebSocket transport tests. */
import type { WebSocketTransport } from '../../src/transport/websocket.js';

/** Polls `cond` every 10 ms; throws naming `what` after `limitMs` (real time: these tests use real sockets). */
export async function waitFor(cond: () => boolean, what: string, limitMs = 10_000): Promise<void> {
  const end = Date.now() + limitMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The messages `t` receives from now on, as [from, bytes]. */
export function inbox(t: WebSocketTransport): Array<[string, number[]]> {
  const got: Array<[string, number[]]> = [];
  t.onMessage((from, bytes) => got.push([from, [...bytes]]));
  return got;
}
