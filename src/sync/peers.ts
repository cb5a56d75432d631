/**
 * Membership and peer liveness. A peer is `alive` until it misses `suspectAfter` consecutive exchanges
 * (probes or anti-entropy rounds), then `suspect` (still gossiped to), then `dead` after `deadAfter` misses
 * (skipped by gossip and eager push, still probed so it can come back). Any authenticated message from a
 * peer makes it alive again. A removed peer is remembered so its messages are dropped and it never comes back
 * unless `add` is called for it again.
 */
export type PeerState = 'alive' | 'suspect' | 'dead';

export interface Peer {
  readonly id: string;
  address: string;
  state: PeerState;
  missed: number;
  lastHeard: number;
  /** Has this peer ever answered? (peer-up fires on the first answer and on every revival) */
  heard: boolean;
}

/** The users of `PeerTable.next`, each with its own round-robin position. */
export type PeerCursor = 'probe' | 'antiEntropy';

export type LivenessEvent = { kind: 'up' | 'down'; id: string };

export class PeerTable {
  private readonly peers = new Map<string, Peer>();
  private readonly removed = new Set<string>();
  /**
   * Round-robin positions, one per use: liveness probes and anti-entropy each walk the peers on their own
   * cursor. (They shared one: with the probe interval dividing the anti-entropy interval, each anti-entropy
   * round moved it by `ae / probe + 1`, and when that was a multiple of the peer count every round picked the
   * same peer, for the node's whole life: pairs of nodes that could split the cluster into groups that never
   * reconciled a lost delta after a partition healed.)
   */
  private readonly cursors: Record<PeerCursor, number> = { probe: 0, antiEntropy: 0 };

  constructor(
    readonly suspectAfter = 2,
    readonly deadAfter = 4,
  ) {}

  add(id: string, address: string): Peer {
    this.removed.delete(id);
    let p = this.peers.get(id);
    if (p) {
      p.address = address;
      return p;
    }
    p = { id, address, state: 'alive', missed: 0, lastHeard: -1, heard: false };
    this.peers.set(id, p);
    return p;
  }

  remove(id: string): boolean {
    this.removed.add(id);
    return this.peers.delete(id);
  }

  isRemoved(id: string): boolean {
    return this.removed.has(id);
  }

  get(id: string): Peer | undefined {
    return this.peers.get(id);
  }

  get size(): number {
    return this.peers.size;
  }

  all(): Peer[] {
    return [...this.peers.values()];
  }

  /** Peers not dead (alive or suspect), in insertion order. */
  live(): Peer[] {
    const out: Peer[] = [];
    for (const p of this.peers.values()) if (p.state !== 'dead') out.push(p);
    return out;
  }

  /**
   * Start a cursor at position `at` (any u32). The engine starts its anti-entropy cursor at a hash of its
   * replica id: nodes that list their peers in the same order would otherwise all pick the same peer in the
   * same round (1,000 nodes: 999 sessions on one node per round).
   */
  startCursor(cursor: PeerCursor, at: number): void {
    this.cursors[cursor] = (at >>> 0) % 0x7fffffff;
  }

  /**
   * Next peer in round-robin order over `candidates` on the named cursor (stable, fair: every candidate is
   * picked once in `candidates.length` calls while the list stays the same).
   */
  next(candidates: Peer[], cursor: PeerCursor): Peer | undefined {
    if (!candidates.length) return undefined;
    const at = this.cursors[cursor];
    const p = candidates[at % candidates.length];
    this.cursors[cursor] = (at + 1) % 0x7fffffff;
    return p;
  }

  /** A message arrived from `id`: it is alive. Returns an 'up' event when it was not alive (or first heard). */
  heardFrom(id: string, now: number): LivenessEvent | undefined {
    const p = this.peers.get(id);
    if (!p) return undefined;
    const wasDown = p.state !== 'alive' || !p.heard;
    p.missed = 0;
    p.lastHeard = now;
    p.heard = true;
    p.state = 'alive';
    return wasDown ? { kind: 'up', id } : undefined;
  }

  /** An exchange with `id` failed. Returns a 'down' event when it just became dead. */
  missedExchange(id: string): LivenessEvent | undefined {
    const p = this.peers.get(id);
    if (!p) return undefined;
    p.missed++;
    if (p.state !== 'dead' && p.missed >= this.deadAfter) {
      p.state = 'dead';
      return { kind: 'down', id };
    }
    if (p.state === 'alive' && p.missed >= this.suspectAfter) p.state = 'suspect';
    return undefined;
  }
}
