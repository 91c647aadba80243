/**
 * Items released downstream and not yet confirmed, keyed by message id. The window of the buffer is
 * the total weight held here; an item leaves when every downstream node has completed it, or when
 * its ack deadline passes (so a node that never completes cannot freeze the buffer).
 */
interface Entry<T> {
  value: T;
  weight: number;
  deadline: number;
  /** Completions still expected (one per wired downstream node). */
  pending: number;
  /** Another item released under the same id while this one was in flight (rare: reused msg ids). */
  next: Entry<T> | undefined;
}

export class InflightTracker<T> {
  private readonly entries = new Map<string, Entry<T>>();
  private heldWeight = 0;
  private heldCount = 0;

  /** Events in flight. */
  get weight(): number {
    return this.heldWeight;
  }

  /** Items in flight. */
  get length(): number {
    return this.heldCount;
  }

  add(key: string, value: T, weight: number, expectedCompletions: number, deadline: number): void {
    const entry: Entry<T> = { value, weight, deadline, pending: expectedCompletions > 0 ? expectedCompletions : 1, next: undefined };
    const existing = this.entries.get(key);
    if (existing === undefined) {
      this.entries.set(key, entry);
    } else {
      let last = existing;
      while (last.next !== undefined) last = last.next;
      last.next = entry;
    }
    this.heldWeight += weight;
    this.heldCount++;
  }

  has(key: string): boolean {
    return this.entries.has(key);
  }

  /**
   * Records one completion for `key`. Returns the item once all expected completions arrived,
   * otherwise undefined (also for ids that are not ours).
   */
  complete(key: string): T | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (--entry.pending > 0) return undefined;
    this.entries.delete(key);
    // Re-inserting moves a reused id behind the others, keeping the map roughly in deadline order for expire().
    if (entry.next !== undefined) this.entries.set(key, entry.next);
    return this.settle(entry);
  }

  /**
   * Removes every item whose deadline is at or before `now`, oldest first. An item that `spare`
   * vouches for (a downstream node still holds it) gets a new deadline, `extended`, instead.
   */
  expire(now: number, onExpired: (value: T, weight: number) => void, spare?: { has(key: string): boolean; extended: number }): void {
    let spared: Array<[string, Entry<T>]> | undefined;
    // Map iteration follows insertion order and deadlines grow with insertion, so stop at the first live one.
    for (const [key, entry] of this.entries) {
      if (entry.deadline > now) break;
      this.entries.delete(key);
      if (spare !== undefined && spare.has(key)) {
        for (let e: Entry<T> | undefined = entry; e !== undefined; e = e.next) e.deadline = Math.max(e.deadline, spare.extended);
        (spared ??= []).push([key, entry]);
        continue;
      }
      let head: Entry<T> | undefined = entry;
      while (head !== undefined && head.deadline <= now) {
        onExpired(this.settle(head), head.weight);
        head = head.next;
      }
      if (head !== undefined) this.entries.set(key, head);
    }
    // Behind the others again, so the map stays in deadline order.
    for (const [key, entry] of spared ?? []) this.entries.set(key, entry);
  }

  /** Whether any item's deadline is at or before `now` (cheap: the oldest is first). */
  due(now: number): boolean {
    for (const entry of this.entries.values()) return entry.deadline <= now;
    return false;
  }

  /** Every item in flight, in release order, left in place. */
  *values(): Iterable<T> {
    for (const entry of this.entries.values()) for (let e: Entry<T> | undefined = entry; e !== undefined; e = e.next) yield e.value;
  }

  /** Removes and returns every item in flight, in release order. */
  drain(): T[] {
    const all: T[] = [];
    for (const entry of this.entries.values()) {
      for (let e: Entry<T> | undefined = entry; e !== undefined; e = e.next) all.push(this.settle(e));
    }
    this.entries.clear();
    return all;
  }

  private settle(entry: Entry<T>): T {
    this.heldWeight -= entry.weight;
    this.heldCount--;
    return entry.value;
  }
}
