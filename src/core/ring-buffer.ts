/**
 * A bounded FIFO of weighted items (a weight is the number of events an item carries), preallocated
 * so that push and pop never allocate, with an explicit policy for what happens when it is full.
 */

export const DROP_POLICIES = ['drop-oldest', 'drop-newest'] as const;
export type DropPolicy = (typeof DROP_POLICIES)[number];

/** Why events left without being delivered. */
export type DropReason = 'overflow' | 'oversize';

export interface RingCounters {
  /** Events offered with push(). */
  received: number;
  /** Events handed out by shift()/popBatch(). */
  released: number;
  /** Events dropped because the ring was full (by the drop policy). */
  droppedOverflow: number;
  /** Events dropped because one item alone carried more events than the whole capacity. */
  droppedOversize: number;
  /** Events held now. */
  depth: number;
  /** Highest depth seen. */
  highWater: number;
  /** Events removed by drain() (handed to a spool on shutdown). */
  drained: number;
}

/**
 * The storage contract the buffer node depends on. The in-memory ring is one tier; a disk-backed
 * overflow tier (store-and-forward) implements the same contract so the node does not change.
 */
export interface EventStore<T> {
  readonly capacity: number;
  /** Events held now. */
  readonly depth: number;
  /** Items held now. */
  readonly length: number;
  push(item: T, weight: number): boolean;
  shift(): T | undefined;
  /** Weight of the item shift() would return next (0 when empty). */
  peekWeight(): number;
  /** Removes and returns every item, oldest first. */
  drain(): T[];
  counters(): RingCounters;
}

export type DropListener<T> = (item: T, weight: number, reason: DropReason) => void;

export class RingBuffer<T> implements EventStore<T> {
  readonly capacity: number;
  readonly policy: DropPolicy;
  private readonly slots: (T | undefined)[];
  private readonly weights: Uint32Array;
  private readonly onDrop: DropListener<T> | undefined;
  private head = 0;
  private count = 0;
  private events = 0;
  private received = 0;
  private released = 0;
  private droppedOverflow = 0;
  private droppedOversize = 0;
  private highWater = 0;
  private drained = 0;

  constructor(capacity: number, policy: DropPolicy = 'drop-oldest', onDrop?: DropListener<T>) {
    if (!Number.isSafeInteger(capacity) || capacity < 1 || capacity > 50_000_000) {
      throw new RangeError(`ring capacity must be a whole number of events from 1 to 50000000, got ${String(capacity)}`);
    }
    if (!DROP_POLICIES.includes(policy)) {
      throw new RangeError(`drop policy must be one of ${DROP_POLICIES.join(', ')}, got ${String(policy)}`);
    }
    this.capacity = capacity;
    this.policy = policy;
    this.onDrop = onDrop;
    // Every item weighs at least one event, so `capacity` slots always suffice.
    this.slots = new Array<T | undefined>(capacity).fill(undefined);
    this.weights = new Uint32Array(capacity);
  }

  get depth(): number {
    return this.events;
  }

  get length(): number {
    return this.count;
  }

  /** Stores the item unless the policy drops it; returns whether it was stored. */
  push(item: T, weight = 1): boolean {
    const w = weight >= 1 ? Math.floor(weight) : 1;
    this.received += w;
    if (w > this.capacity) {
      this.droppedOversize += w;
      this.onDrop?.(item, w, 'oversize');
      return false;
    }
    if (this.events + w > this.capacity) {
      if (this.policy === 'drop-newest') {
        this.droppedOverflow += w;
        this.onDrop?.(item, w, 'overflow');
        return false;
      }
      while (this.events + w > this.capacity) {
        const oldWeight = this.weights[this.head];
        const old = this.removeHead();
        this.droppedOverflow += oldWeight;
        this.onDrop?.(old, oldWeight, 'overflow');
      }
    }
    let tail = this.head + this.count;
    if (tail >= this.capacity) tail -= this.capacity;
    this.slots[tail] = item;
    this.weights[tail] = w;
    this.count++;
    this.events += w;
    if (this.events > this.highWater) this.highWater = this.events;
    return true;
  }

  shift(): T | undefined {
    if (this.count === 0) return undefined;
    this.released += this.weights[this.head];
    return this.removeHead();
  }

  peekWeight(): number {
    return this.count === 0 ? 0 : this.weights[this.head];
  }

  /** Pops up to `maxItems` items into `out` (appended), oldest first, and returns `out`. */
  popBatch(maxItems: number, out: T[] = []): T[] {
    let n = Math.min(maxItems, this.count);
    while (n-- > 0) out.push(this.shift() as T);
    return out;
  }

  drain(): T[] {
    const all: T[] = [];
    while (this.count > 0) {
      this.drained += this.weights[this.head];
      all.push(this.removeHead());
    }
    return all;
  }

  counters(): RingCounters {
    return {
      received: this.received,
      released: this.released,
      droppedOverflow: this.droppedOverflow,
      droppedOversize: this.droppedOversize,
      depth: this.events,
      highWater: this.highWater,
      drained: this.drained,
    };
  }

  private removeHead(): T {
    const h = this.head;
    const item = this.slots[h] as T;
    this.slots[h] = undefined; // let the message be collected
    this.events -= this.weights[h];
    this.head = h + 1 === this.capacity ? 0 : h + 1;
    this.count--;
    return item;
  }
}
