/**
 * Bounded LRU set of message ids for gossip de-duplication. A Map keeps insertion order; a hit re-inserts the
 * key so the least recently seen id is evicted first. Memory is O(capacity) whatever the uptime.
 */
export class SeenCache {
  private readonly map = new Map<string, true>();
  /** Ids evicted to stay within capacity. */
  evictions = 0;

  constructor(readonly capacity: number) {
    if (!(capacity >= 1)) throw new RangeError('seen-cache capacity must be >= 1');
  }

  /** True if the id was already present (and refreshes it); otherwise records it and returns false. */
  checkAndAdd(id: string): boolean {
    if (this.map.has(id)) {
      this.map.delete(id);
      this.map.set(id, true);
      return true;
    }
    this.map.set(id, true);
    if (this.map.size > this.capacity) {
      const oldest = this.map.keys().next().value as string;
      this.map.delete(oldest);
      this.evictions++;
    }
    return false;
  }

  /** Forget an id (a message that failed to apply, so that a copy sent again is processed). */
  delete(id: string): boolean {
    return this.map.delete(id);
  }

  has(id: string): boolean {
    return this.map.has(id);
  }

  get size(): number {
    return this.map.size;
  }

  clear(): void {
    this.map.clear();
  }
}
