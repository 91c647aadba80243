/**
 * A bounded FIFO of weighted items (a weight is the number of events an item carries), preallocated
 * so that push and pop never allocate, with an explicit policy for what happens when it is full.
 */

import { ByteLog } from './byte-log';
import { DROP_POLICIES, type DropListener, type DropPolicy, type EventStore, type RingCounters } from './event-store';
import { OPTIONS } from '../../options/telemetry-buffer';

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

/** A bound on the bytes the ring holds, besides its capacity in events. */
export interface ByteBound<T> {
  /** Most bytes held (approximately: as sizeOf estimates objects, exactly for what is held encoded). */
  maxBytes: number;
  /** The approximate size of an item held as an object (e.g. approximateSize of its message). */
  sizeOf(item: T): number;
}

/** Marks a slot whose item is in the byte log. */
const IN_LOG = Symbol('in byte log');

/**
 * With `compact`, an item that had to push older ones out (drop-oldest on a full ring) is kept as
 * text in one off-heap block (ByteLog) instead of as objects, and so is every item taken in while
 * the ring still holds text: behind that backlog it would wait a whole turnover and most likely be
 * dropped old (under overload the room a release makes lasts one push). Under sustained overload
 * the whole ring turns into text within one turnover: its backlog is one block of bytes, and every
 * message dies young instead of being dropped after seconds as old garbage that V8 collects late
 * (which is what made an overloaded Node-RED's RSS grow by hundreds of MiB). A ring that has not
 * overflowed since it last held no text, however deep, holds objects and pays nothing.
 */
export class RingBuffer<T> implements EventStore<T> {
  readonly capacity: number;
  readonly policy: DropPolicy;
  private readonly slots: (T | typeof IN_LOG | undefined)[];
  private readonly weights: Uint32Array;
  private readonly onDrop: DropListener<T> | undefined;
  private readonly compact: CompactOptions<T> | undefined;
  private readonly bound: ByteBound<T> | undefined;
  /** With a byte bound: the size counted for each slot. */
  private readonly sizes: Float64Array | undefined;
  private bytes = 0;
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

  constructor(capacity: number, policy: DropPolicy = 'drop-oldest', onDrop?: DropListener<T>, compact?: CompactOptions<T>, bound?: ByteBound<T>) {
    const { min, max } = OPTIONS.capacity;
    if (!Number.isSafeInteger(capacity) || capacity < min || capacity > max) {
      throw new RangeError(`ring capacity must be a whole number of events from ${min} to ${max}, got ${String(capacity)}`);
    }
    if (!DROP_POLICIES.includes(policy)) {
      throw new RangeError(`drop policy must be one of ${DROP_POLICIES.join(', ')}, got ${String(policy)}`);
    }
    if (bound !== undefined && !(bound.maxBytes > 0)) throw new RangeError(`memory limit must be a positive number of bytes, got ${String(bound.maxBytes)}`);
    this.capacity = capacity;
    this.policy = policy;
    this.onDrop = onDrop;
    this.compact = compact;
    this.bound = bound;
    this.sizes = bound === undefined ? undefined : new Float64Array(capacity);
    if (bound !== undefined) this.push = this.pushBounded;
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

  /** The size the byte bound counts for this item (0 without a bound). */
  sizeOf(item: T): number {
    return this.bound === undefined ? 0 : this.bound.sizeOf(item);
  }

  /** Whether an item of this weight and size (sizeOf) fits now without dropping anything. */
  hasRoom(weight: number, size: number): boolean {
    return this.events + weight <= this.capacity && (this.bound === undefined || this.bytes + size <= this.bound.maxBytes);
  }

  /**
   * Stores the item unless the policy drops it; returns whether it was stored. `size`: what it
   * counts against a memory limit, when the caller knows it (else its sizeOf).
   */
  push(item: T, weight = 1, _size?: number): boolean {
    // Without a memory limit. A ring with one has pushBounded as its push (see the constructor): a
    // branch here made push too large for V8 to inline, +3 ns per push (bench/ring.js).
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
      while (this.events + w > this.capacity) this.dropHead();
    }
    let tail = this.head + this.count;
    if (tail >= this.capacity) tail -= this.capacity;
    this.slots[tail] = (full || this.inLog > 0) && this.compact !== undefined ? this.toLog(item, tail) : item;
    this.weights[tail] = w;
    this.count++;
    this.events += w;
    if (this.events > this.highWater) this.highWater = this.events;
    return true;
  }

  /** push() with a memory limit: the same policy at whichever bound, events or bytes, is reached first. */
  private pushBounded(item: T, weight = 1, size?: number): boolean {
    const w = weight >= 1 ? Math.floor(weight) : 1;
    const bound = this.bound as ByteBound<T>;
    // Sized before it counts as received: a sizeOf that throws leaves the counters as they were.
    const s = size ?? bound.sizeOf(item);
    this.received += w;
    if (w > this.capacity || s > bound.maxBytes) {
      this.droppedOversize += w;
      this.onDrop?.(item, w, 'oversize');
      return false;
    }
    const full = !this.hasRoom(w, s);
    if (full) {
      if (this.policy === 'drop-newest') {
        this.droppedOverflow += w;
        this.onDrop?.(item, w, 'overflow');
        return false;
      }
      while (!this.hasRoom(w, s)) this.dropHead();
    }
    let tail = this.head + this.count;
    if (tail >= this.capacity) tail -= this.capacity;
    this.slots[tail] = (full || this.inLog > 0) && this.compact !== undefined ? this.toLog(item, tail) : item;
    this.weights[tail] = w;
    this.count++;
    this.events += w;
    // Held encoded, it takes exactly its bytes; the estimate was only for choosing what to drop.
    const held = this.slots[tail] === IN_LOG ? (this.logLengths as Uint32Array)[tail] : s;
    (this.sizes as Float64Array)[tail] = held;
    this.bytes += held;
    while (this.bytes > bound.maxBytes && this.count > 1) this.dropHead();
    if (this.events > this.highWater) this.highWater = this.events;
    return true;
  }

  /** Drop-oldest: the oldest item goes, counted, and reported unless it was settled when it was encoded. */
  private dropHead(): void {
    const oldWeight = this.weights[this.head];
    this.droppedOverflow += oldWeight;
    if (this.slots[this.head] === IN_LOG) {
      // Under sustained overload nearly every drop is one of these: decoding it only to throw it away
      // cost the overloaded process a decode (and a new message id) per dropped message.
      this.discardHead();
    } else {
      // Removed before the call: `onDrop?.(this.removeHead(), ...)` skips its arguments without a listener.
      const old = this.removeHead();
      this.onDrop?.(old, oldWeight, 'overflow');
    }
  }

  /**
   * Whether an item of this weight pushed now would be kept as the object (not as text, not
   * dropped). `size`: what it counts against a byte bound (without one, the answer is as if it fit).
   */
  keepsAsObject(weight: number, size = 0): boolean {
    const w = weight >= 1 ? Math.floor(weight) : 1;
    if (w > this.capacity || (this.bound !== undefined && size > this.bound.maxBytes)) return false;
    if (this.compact === undefined) return this.hasRoom(w, size) || this.policy === 'drop-oldest';
    return this.hasRoom(w, size) && this.inLog === 0;
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
      ...(this.bound === undefined ? {} : { bytes: this.bytes }),
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
    const needed = this.log.bytes + (typeof text === 'string' ? text.length * 3 : text.length);
    if (needed > this.log.allocated) this.log.reserve(this.logSizeFor(needed));
    (this.logStarts as Float64Array)[slot] = this.log.append(text);
    (this.logLengths as Uint32Array)[slot] = this.log.lastLength;
    this.inLog++;
    return IN_LOG;
  }

  /**
   * The block for the text a ring holds when it needs more than it has: sized at once for a whole
   * ring of text at the average entry so far (under overload the whole ring turns into text) plus
   * a sixteenth, rather than doubled from 1 MiB, which left a block of each size behind for V8 to
   * collect (15 MiB on the way to 16 in npm run bench's item f) and a last one up to twice the size
   * needed. An estimate that proves short grows by a quarter.
   */
  private logSizeFor(needed: number): number {
    const wholeRing = (needed / (this.inLog + 1)) * this.capacity * 1.0625;
    return Math.max(needed * 1.25, this.bound === undefined ? wholeRing : Math.min(wholeRing, this.bound.maxBytes * 1.0625));
  }

  private removeHead(): T {
    const h = this.head;
    let item = this.slots[h] as T;
    if ((item as unknown) === IN_LOG) item = this.decodeHeld(h);
    this.advanceHead(h);
    return item;
  }

  /** The item held encoded in slot h, decoded, and its bytes released (kept out of removeHead, which V8 inlines). */
  private decodeHeld(h: number): T {
    const log = this.log as ByteLog;
    const start = (this.logStarts as Float64Array)[h];
    const length = (this.logLengths as Uint32Array)[h];
    const codec = (this.compact as CompactOptions<T>).codec;
    const at = log.contiguousAt(start, length);
    // Decoded before it is released: releasing the last entry may give the block back.
    const item = at >= 0 && codec.decodeRange !== undefined ? codec.decodeRange(log.buffer, at, at + length) : codec.decode(log.read(start, length));
    this.releaseText(h);
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
    if (this.sizes !== undefined) this.bytes -= this.sizes[h];
    this.head = h + 1 === this.capacity ? 0 : h + 1;
    this.count--;
  }
}
