/**
 * A bounded FIFO of weighted items (a weight is the number of events an item carries), preallocated
 * so that push and pop never allocate, with an explicit policy for what happens when it is full.
 */

import { ByteLog } from './byte-log';

export const DROP_POLICIES = ['drop-oldest', 'drop-newest'] as const;
export type DropPolicy = (typeof DROP_POLICIES)[number];

/** Why events left without being delivered. 'disk-error': a disk tier could not store or read them back. */
export type DropReason = 'overflow' | 'oversize' | 'disk-error';

export interface RingCounters {
  /** Events offered with push(). */
  received: number;
  /** Events handed out by shift()/popBatch(). */
  released: number;
  /** Events dropped because the ring was full (by the drop policy). */
  droppedOverflow: number;
  /** Events dropped because one item alone carried more events than the whole capacity. */
  droppedOversize: number;
  /** Only with a disk tier: events it could not store (codec or file error) or lost after storing them. */
  droppedDiskError?: number;
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

/**
 * Told of every item a drop policy removes, except one held as text: that one was settled when it
 * was encoded (onEncoded), so it is counted and its bytes released without decoding it.
 */
export type DropListener<T> = (item: T, weight: number, reason: DropReason) => void;

/** Turns an item into bytes (or a string, stored as UTF-8) and back, for the compact part of the ring. */
export interface ItemCodec<T> {
  /** The item encoded, or undefined to keep it as it is (it cannot be encoded). Copied at once. */
  encode(item: T): Uint8Array | string | undefined;
  /** `data` is a view into the ring's block: read it, do not keep it. */
  decode(data: Buffer): T;
  /** Optional, preferred when present: decode block[start..end) (no view per item; see unpackMessage). */
  decodeRange?(block: Buffer, start: number, end: number): T;
}

export interface CompactOptions<T> {
  codec: ItemCodec<T>;
  /** An item was turned into text: the object is no longer needed (its upstream can be completed). */
  onEncoded?(item: T): void;
}

/** Marks a slot whose item is in the byte log. */
const IN_LOG = Symbol('in byte log');

/**
 * With `compact`, an item that had to push older ones out (drop-oldest on a full ring) is kept as
 * text in one off-heap block (ByteLog) instead of as objects. Under sustained overload the whole
 * ring turns into text within one turnover: its backlog is one block of bytes, and every message
 * dies young instead of being dropped after seconds as old garbage that V8 collects late (which is
 * what made an overloaded Node-RED's RSS grow by hundreds of MiB). A ring that is not full, however
 * deep, holds objects and pays nothing.
 */
export class RingBuffer<T> implements EventStore<T> {
  readonly capacity: number;
  readonly policy: DropPolicy;
  private readonly slots: (T | typeof IN_LOG | undefined)[];
  private readonly weights: Uint32Array;
  private readonly onDrop: DropListener<T> | undefined;
  private readonly compact: CompactOptions<T> | undefined;
  private log: ByteLog | undefined;
  private logStarts: Float64Array | undefined;
  private logLengths: Uint32Array | undefined;
  private inLog = 0;
  private head = 0;
  private count = 0;
  private events = 0;
  private received = 0;
  private released = 0;
  private droppedOverflow = 0;
  private droppedOversize = 0;
  private highWater = 0;
  private drained = 0;

  constructor(capacity: number, policy: DropPolicy = 'drop-oldest', onDrop?: DropListener<T>, compact?: CompactOptions<T>) {
    if (!Number.isSafeInteger(capacity) || capacity < 1 || capacity > 50_000_000) {
      throw new RangeError(`ring capacity must be a whole number of events from 1 to 50000000, got ${String(capacity)}`);
    }
    if (!DROP_POLICIES.includes(policy)) {
      throw new RangeError(`drop policy must be one of ${DROP_POLICIES.join(', ')}, got ${String(policy)}`);
    }
    this.capacity = capacity;
    this.policy = policy;
    this.onDrop = onDrop;
    this.compact = compact;
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
    const full = this.events + w > this.capacity;
    if (full) {
      if (this.policy === 'drop-newest') {
        this.droppedOverflow += w;
        this.onDrop?.(item, w, 'overflow');
        return false;
      }
      while (this.events + w > this.capacity) {
        const oldWeight = this.weights[this.head];
        this.droppedOverflow += oldWeight;
        if (this.slots[this.head] === IN_LOG) {
          // Under sustained overload nearly every drop is one of these: parsing it only to throw it away
          // cost the overloaded process a JSON.parse (and a new message id) per dropped message.
          this.discardHead();
        } else {
          // Removed before the call: `onDrop?.(this.removeHead(), ...)` skips its arguments without a listener.
          const old = this.removeHead();
          this.onDrop?.(old, oldWeight, 'overflow');
        }
      }
    }
    let tail = this.head + this.count;
    if (tail >= this.capacity) tail -= this.capacity;
    this.slots[tail] = full && this.compact !== undefined ? this.toLog(item, tail) : item;
    this.weights[tail] = w;
    this.count++;
    this.events += w;
    if (this.events > this.highWater) this.highWater = this.events;
    return true;
  }

  /** Whether an item of this weight pushed now would be kept as the object (not as text, not dropped). */
  keepsAsObject(weight: number): boolean {
    const w = weight >= 1 ? Math.floor(weight) : 1;
    if (w > this.capacity) return false;
    const full = this.events + w > this.capacity;
    return !full || (this.policy === 'drop-oldest' && this.compact === undefined);
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

  /** Items held as text, and the bytes they take (the block itself may be up to twice as large). */
  compactCounters(): { items: number; bytes: number } {
    return { items: this.inLog, bytes: this.log?.bytes ?? 0 };
  }

  private toLog(item: T, slot: number): T | typeof IN_LOG {
    let text: Uint8Array | string | undefined;
    try {
      text = (this.compact as CompactOptions<T>).codec.encode(item);
    } catch {
      text = undefined; // nested too deep, a throwing getter...: kept as it is
    }
    if (text === undefined) return item;
    (this.compact as CompactOptions<T>).onEncoded?.(item);
    if (this.log === undefined) {
      this.log = new ByteLog();
      this.logStarts = new Float64Array(this.capacity);
      this.logLengths = new Uint32Array(this.capacity);
    }
    (this.logStarts as Float64Array)[slot] = this.log.append(text);
    (this.logLengths as Uint32Array)[slot] = this.log.lastLength;
    this.inLog++;
    return IN_LOG;
  }

  private removeHead(): T {
    const h = this.head;
    let item = this.slots[h] as T;
    if ((item as unknown) === IN_LOG) {
      const log = this.log as ByteLog;
      const start = (this.logStarts as Float64Array)[h];
      const length = (this.logLengths as Uint32Array)[h];
      const codec = (this.compact as CompactOptions<T>).codec;
      const at = log.contiguousAt(start, length);
      // Decoded before it is released: releasing the last entry may give the block back.
      item = at >= 0 && codec.decodeRange !== undefined ? codec.decodeRange(log.buffer, at, at + length) : codec.decode(log.read(start, length));
      this.releaseText(h);
    }
    this.advanceHead(h);
    return item;
  }

  /** Removes the oldest item, which is held as text, without decoding it. */
  private discardHead(): void {
    const h = this.head;
    this.releaseText(h);
    this.advanceHead(h);
  }

  private releaseText(h: number): void {
    (this.log as ByteLog).release((this.logStarts as Float64Array)[h], (this.logLengths as Uint32Array)[h]);
    this.inLog--;
  }

  private advanceHead(h: number): void {
    this.slots[h] = undefined; // let the message be collected
    this.events -= this.weights[h];
    this.head = h + 1 === this.capacity ? 0 : h + 1;
    this.count--;
  }
}
