import { InflightTracker } from './inflight';
import type { DropListener, DropPolicy, DropReason, EventStore } from './event-store';
import { ByteBound, CompactOptions, RingBuffer } from './ring-buffer';
import type { Completion } from '../shared/completion';

export interface BufferOptions {
  /** Events the ring holds. */
  capacity: number;
  policy: DropPolicy;
  /** Events released downstream and not yet completed, at most. */
  window: number;
  /** After this long without a completion, a released item counts as unacknowledged and its credit returns. */
  ackTimeoutMs: number;
}

export type Outcome = 'delivered' | 'failed' | 'unacknowledged';

/** Items released in one message: they complete, expire and come back together. */
interface Group<T> {
  items: T[];
  weights: number[];
}

export interface BufferHooks<T> {
  /** The id of the message that carries `items` downstream (its own id for a single item). */
  keyOf(items: readonly T[]): string;
  /** Sends downstream now, oldest first: each group travels as one message, with id keys[i], and completes as one. */
  release(groups: T[][], keys: string[]): void;
  /**
   * Events one message may carry when it carries several items. 1 (the default) sends every item
   * as its own message; more lets a downstream node that understands groups (telemetry-batcher)
   * receive one message, and complete one, per group instead of per event.
   */
  groupLimit?(): number;
  /** An item left the buffer for good: dropped by policy, or finished downstream. */
  settled(item: T, outcome: Outcome | DropReason): void;
  /** How many downstream nodes must complete an item before its credit returns. */
  expectedCompletions(): number;
  now(): number;
}

/** Exact counters, in events. received = depth + inFlight + delivered + failed + unacknowledged + dropped + drained. */
export interface BufferStats {
  received: number;
  depth: number;
  capacity: number;
  highWater: number;
  inFlight: number;
  window: number;
  delivered: number;
  failed: number;
  unacknowledged: number;
  droppedOverflow: number;
  droppedOversize: number;
  /** Events a disk tier could not store or read back (codec or file errors); 0 without one. */
  droppedDiskError: number;
  dropped: number;
  drained: number;
  /** Of depth, the items and bytes kept as text off the heap (the compact part of the ring). */
  heldAsText: number;
  heldAsTextBytes: number;
  /** With a memory limit: the approximate bytes the ring holds, and the limit (0: no limit). */
  ringBytes: number;
  maxBytes: number;
}

/**
 * The buffer without Node-RED: a ring in front of a credit window. Items leave the ring only while
 * the events in flight fit the window, so the ring fills exactly when downstream is slower than the
 * producer, and only then does the drop policy act.
 */
export class BufferCore<T> {
  /** Where items wait: the ring alone, or the ring in front of a disk tier (TieredStore). */
  private readonly store: EventStore<T>;
  /** The in-memory ring (the whole store, or the tier in front of the disk). */
  private readonly memory: RingBuffer<T>;
  readonly inflight = new InflightTracker<Group<T>>();
  private readonly options: BufferOptions;
  private readonly hooks: BufferHooks<T>;
  private readonly maxBytes: number;
  private delivered = 0;
  private failed = 0;
  private unacknowledged = 0;
  private inflightDrained = 0;
  /** Items handed back unprocessed by downstream (e.g. a redeployed node): sent again before the ring. */
  private readonly returned: { item: T; weight: number }[] = [];
  private returnedWeight = 0;
  /** While true nothing is released (downstream nodes are being replaced by a deploy). */
  private pausedNow = false;
  /**
   * The window in use: the configured one, until downstream hands a message back because it is
   * full. Then it shrinks to what downstream held at that moment and grows again by what is
   * confirmed, so a buffer whose window exceeds what the next node can hold does not resend in a loop.
   */
  private effectiveWindow: number;

  /**
   * `makeStore` builds another EventStore around the ring (the disk tier); it gets the ring and the
   * listener that settles what a drop policy removes.
   * `compact` keeps what a full ring takes in encoded (see RingBuffer); `bound` limits the bytes the
   * ring holds besides its events.
   */
  constructor(
    options: BufferOptions,
    hooks: BufferHooks<T>,
    makeStore?: (ring: RingBuffer<T>, onDrop: DropListener<T>) => EventStore<T>,
    compact?: CompactOptions<T>,
    bound?: ByteBound<T>,
  ) {
    if (!Number.isSafeInteger(options.window) || options.window < 1) {
      throw new RangeError(`window must be a whole number of events >= 1, got ${String(options.window)}`);
    }
    if (!(options.ackTimeoutMs > 0)) {
      throw new RangeError(`ack timeout must be a positive number of milliseconds, got ${String(options.ackTimeoutMs)}`);
    }
    this.options = options;
    this.effectiveWindow = options.window;
    this.hooks = hooks;
    const onDrop: DropListener<T> = (item, _weight, reason) => hooks.settled(item, reason);
    const ring = new RingBuffer<T>(options.capacity, options.policy, onDrop, compact, bound);
    this.maxBytes = bound?.maxBytes ?? 0;
    this.memory = ring;
    this.store = makeStore === undefined ? ring : makeStore(ring, onDrop);
  }

  /**
   * Takes an item from the producer; never blocks, never throws for a full ring. With `pumpNow`
   * false the item waits for the next pump(), so items arriving together can travel together.
   * `size`: what it counts against a memory limit, when the caller knows it.
   */
  offer(item: T, weight: number, pumpNow = true, size?: number): void {
    this.store.push(item, weight, size);
    if (pumpNow) this.pump();
  }

  /**
   * Whether the in-memory ring would keep an item of this weight offered now as the object (not as
   * text, not dropped). A full ring in front of a disk tier says no: the item goes to disk.
   */
  keepsAsObject(weight: number): boolean {
    return this.memory.keepsAsObject(weight);
  }

  /** Release nothing until resume() (downstream nodes are being replaced by a deploy, or not started yet). */
  pause(): void {
    this.pausedNow = true;
  }

  resume(): void {
    this.pausedNow = false;
  }

  get isPaused(): boolean {
    return this.pausedNow;
  }

  /** Events released downstream and not yet completed. */
  get inFlightEvents(): number {
    return this.inflight.weight;
  }

  /** Whether a message with this key is released and not yet completed. */
  isInFlight(key: string): boolean {
    return this.inflight.has(key);
  }

  /** Events in the in-memory ring (without what waits on disk). */
  get ringDepth(): number {
    return this.memory.depth;
  }

  /** Releases as much as the window allows. */
  pump(): void {
    const store = this.store;
    const returned = this.returned;
    if (this.isPaused || (store.length === 0 && returned.length === 0)) return;
    const inflight = this.inflight;
    const window = this.effectiveWindow;
    const limit = this.hooks.groupLimit?.() ?? 1;
    let groups: T[][] | undefined;
    const keys: string[] = [];
    let group: Group<T> | undefined;
    let groupWeight = 0;
    let deadline = 0;
    let expected = 0;
    const close = (): void => {
      if (group === undefined) return;
      const key = this.hooks.keyOf(group.items);
      inflight.add(key, group, groupWeight, expected, deadline);
      (groups as T[][]).push(group.items);
      keys.push(key);
      group = undefined;
      groupWeight = 0;
    };
    for (;;) {
      const fromReturned = returned.length > 0;
      const weight = fromReturned ? returned[0].weight : store.peekWeight();
      if (weight === 0) break;
      // The group being filled is not in the tracker yet but counts against the window.
      const held = inflight.weight + groupWeight;
      // An item heavier than the whole window still goes when nothing else is in flight.
      if (held + weight > window && held > 0) break;
      if (groups === undefined) {
        groups = [];
        deadline = this.hooks.now() + this.options.ackTimeoutMs;
        expected = this.hooks.expectedCompletions();
      }
      let item: T;
      if (fromReturned) {
        item = (returned.shift() as { item: T }).item;
        this.returnedWeight -= weight;
      } else {
        item = store.shift() as T;
      }
      if (group !== undefined && groupWeight + weight > limit) close();
      if (group === undefined) group = { items: [], weights: [] };
      group.items.push(item);
      group.weights.push(weight);
      groupWeight += weight;
    }
    close();
    if (groups !== undefined) this.hooks.release(groups, keys);
  }

  /**
   * A downstream node completed the message with this key. 'returned' means it gave the message
   * back unprocessed, so it is sent again. Returns whether the key was ours.
   */
  completed(key: string, completion: Completion): boolean {
    const inflight = this.inflight;
    const before = inflight.weight;
    if (!inflight.has(key)) return false;
    const group = inflight.complete(key);
    if (group === undefined) return true; // more completions expected
    const weight = before - inflight.weight;
    if (completion === 'returned') {
      this.takeBack(group);
      // While paused (a deploy) the handing back is expected and says nothing about capacity.
      if (!this.isPaused) this.effectiveWindow = Math.max(1, inflight.weight);
      return true;
    }
    this.effectiveWindow = Math.min(this.options.window, this.effectiveWindow + weight);
    const outcome = completion === 'ok' ? 'delivered' : completion;
    if (outcome === 'failed') this.failed += weight;
    else if (outcome === 'unacknowledged') this.unacknowledged += weight;
    else this.delivered += weight;
    for (const item of group.items) this.hooks.settled(item, outcome);
    return true;
  }

  /**
   * Everything in flight goes back to be sent again, as if handed back: for when the node it was
   * sent to is gone without completing it (replaced by a deploy). Returns the events taken back.
   */
  resendInFlight(): number {
    const weight = this.inflight.weight;
    for (const group of this.inflight.drain()) this.takeBack(group);
    return weight;
  }

  /** A released group waits again, ahead of the ring. */
  private takeBack(group: Group<T>): void {
    for (let i = 0; i < group.items.length; i++) {
      this.returned.push({ item: group.items[i], weight: group.weights[i] });
      this.returnedWeight += group.weights[i];
    }
  }

  /**
   * Returns credit for items whose ack deadline passed; returns how many messages expired. `held`
   * names what the nodes downstream still hold (custody): those get a new deadline instead.
   */
  expire(held?: () => Set<string> | undefined): number {
    const now = this.hooks.now();
    if (!this.inflight.due(now)) return 0;
    const ids = held?.();
    let expired = 0;
    const spare = ids === undefined ? undefined : { has: (key: string) => ids.has(key), extended: now + this.options.ackTimeoutMs };
    this.inflight.expire(
      now,
      (group, weight) => {
        this.unacknowledged += weight;
        expired++;
        for (const item of group.items) this.hooks.settled(item, 'unacknowledged');
      },
      spare
    );
    return expired;
  }

  /** Removes everything held (ring first, then in flight), for a spool on shutdown. */
  drain(): { queued: T[]; inFlight: T[] } {
    const queued = this.returned.map((r) => r.item).concat(this.store.drain());
    this.inflightDrained += this.inflight.weight + this.returnedWeight;
    this.returned.length = 0;
    this.returnedWeight = 0;
    const inFlight: T[] = [];
    for (const group of this.inflight.drain()) for (const item of group.items) inFlight.push(item);
    return { queued, inFlight };
  }

  stats(): BufferStats {
    const store = this.store.counters();
    const text = this.memory.compactCounters();
    return {
      received: store.received,
      depth: store.depth + this.returnedWeight,
      capacity: this.store.capacity,
      highWater: store.highWater,
      inFlight: this.inflight.weight,
      window: this.options.window,
      delivered: this.delivered,
      failed: this.failed,
      unacknowledged: this.unacknowledged,
      droppedOverflow: store.droppedOverflow,
      droppedOversize: store.droppedOversize,
      droppedDiskError: store.droppedDiskError ?? 0,
      dropped: store.droppedOverflow + store.droppedOversize + (store.droppedDiskError ?? 0),
      drained: store.drained + this.inflightDrained,
      heldAsText: text.items,
      heldAsTextBytes: text.bytes,
      ringBytes: this.memory.counters().bytes ?? 0,
      maxBytes: this.maxBytes,
    };
  }
}
