/**
 * `PartitionableTransport`: wraps a transport with a firewall the node can switch at run time
 * (`POST /admin/partition`, `POST /admin/heal`). While a peer is blocked, messages to it are dropped before
 * they reach the socket and messages from it are dropped on arrival; the sockets themselves stay up. This is
 * how the demo cuts a region off without touching the machine's network.
 */
import type { Scheduler } from '../time/scheduler.js';
import type { MessageHandler, Transport } from '../transport/types.js';

export class PartitionableTransport implements Transport {
  private readonly blocked = new Set<string>();
  private handler: MessageHandler = () => {};
  /** Messages dropped by the firewall, each direction. */
  droppedOut = 0;
  droppedIn = 0;

  constructor(readonly inner: Transport) {
    inner.onMessage((from, bytes) => {
      if (this.blocked.has(from)) {
        this.droppedIn++;
        return;
      }
      this.handler(from, bytes);
    });
  }

  get id(): string | undefined {
    return this.inner.id;
  }

  /** Passed through to the wrapped transport (see `Transport.authenticateWith`): with a cluster key, an inbound
   * connection becomes a send path only once it delivered a correctly tagged message. */
  authenticateWith(check: (bytes: Uint8Array) => boolean): void {
    this.inner.authenticateWith?.(check);
  }

  /** Passed through to the wrapped transport (see `Transport.useScheduler`). */
  useScheduler(scheduler: Scheduler): boolean {
    return this.inner.useScheduler?.(scheduler) ?? false;
  }

  /** The wrapped transport's seed, if any (see `Transport.seed`). */
  get seed(): number | undefined {
    return this.inner.seed;
  }

  get address(): string {
    return this.inner.address;
  }

  /** The wrapped transport's medium clock, if any (see `Transport.scheduler`). */
  get scheduler(): Transport['scheduler'] {
    return this.inner.scheduler;
  }

  /** Passed through to the wrapped transport (see `Transport.bind`). */
  bind(localId: string): void {
    this.inner.bind?.(localId);
  }

  /** Block traffic with these peers (added to any already blocked). */
  block(peerIds: string[]): void {
    for (const p of peerIds) this.blocked.add(p);
  }

  /** Unblock everything. */
  heal(): void {
    this.blocked.clear();
  }

  blockedPeers(): string[] {
    return [...this.blocked].sort();
  }

  send(peerId: string, bytes: Uint8Array): boolean {
    if (this.blocked.has(peerId)) {
      this.droppedOut++;
      return false;
    }
    return this.inner.send(peerId, bytes) !== false;
  }

  onMessage(fn: MessageHandler): void {
    this.handler = fn;
  }

  connect(peerId: string, address: string): void {
    this.inner.connect?.(peerId, address);
  }

  disconnect(peerId: string): void {
    this.inner.disconnect?.(peerId);
  }

  start(): Promise<void> {
    return this.inner.start();
  }

  stop(): Promise<void> {
    return this.inner.stop();
  }
}
