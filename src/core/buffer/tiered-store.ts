import type { DiskCounters } from './disk-counters';
import type { DiskTier } from './disk-tier';
import type { DropListener, DropReason, EventStore, RingCounters } from './event-store';
import type { RingBuffer } from './ring-buffer';
import type { DiskState } from './segment-files';

export interface TieredOptions<T> {
  /** Most events per second read back from disk (the database is not flooded when it returns). */
  replayRate: number;
  now(): number;
  /** An item went to disk: the message in memory is no longer needed (its upstream can be completed). */
  onSpill?(item: T, weight: number): void;
  /** An item offered to the disk was refused: by the drop policy at the byte cap ('overflow'), or because it could not be stored ('disk-error'). */
  onDrop?: DropListener<T>;
}

/**
 * The ring in front of a disk tier, behind the same EventStore contract as the ring alone, so the
 * buffer's counting identity holds unchanged: received = depth + released + dropped + drained, with
 * depth = ring depth + disk depth and dropped including what the disk cap dropped.
 *
 * Where an item goes: to the ring while it has room (and spilling is not forced); otherwise to disk.
 * Live data keeps using the ring while a disk backlog replays: the two are interleaved event for
 * event (a fair share each), and the disk share is limited to `replayRate` events per second by a
 * token bucket. Order is kept within each tier (FIFO), so per source the replay is in order.
 */
export class TieredStore<T> implements EventStore<T> {
  readonly ring: RingBuffer<T>;
  readonly disk: DiskTier<T>;
  /** Set while downstream has not confirmed anything for too long: new items go straight to disk. */
  forceSpill = false;
  private readonly options: TieredOptions<T>;
  private received: number;
  /** Events the disk tier threw for instead of counting them itself (it should not): still counted. */
  private unexpected = 0;
  private balance = 0;
  private tokens = 0;
  private lastRefill: number;
  private choice: 'ring' | 'disk' | undefined;

  constructor(ring: RingBuffer<T>, disk: DiskTier<T>, options: TieredOptions<T>) {
    if (!(options.replayRate > 0)) throw new RangeError(`replay rate must be a positive number of events per second, got ${String(options.replayRate)}`);
    this.ring = ring;
    this.disk = disk;
    this.options = options;
    // What the previous run left on disk is held here now: counted as received, like a restored spool.
    this.received = disk.depth;
    this.lastRefill = options.now();
  }

  get capacity(): number {
    return this.ring.capacity;
  }

  get depth(): number {
    return this.ring.depth + this.disk.depth;
  }

  get length(): number {
    return this.ring.length + (this.disk.depth > 0 ? 1 : 0);
  }

  push(item: T, weight: number, size?: number): boolean {
    const w = weight >= 1 ? Math.floor(weight) : 1;
    this.choice = undefined;
    const ring = this.ring;
    const counted = size ?? ring.sizeOf(item);
    // What fits neither the ring's capacity nor its memory limit goes to disk (too many events for the ring alone: dropped there).
    if (w > ring.capacity || (!this.forceSpill && ring.hasRoom(w, counted))) {
      this.received += w;
      return ring.push(item, w, counted); // the ring counts its own received; ours covers both tiers
    }
    this.received += w;
    let stored = false;
    let reason: DropReason = 'disk-error';
    try {
      stored = this.disk.push(item, w);
      if (this.disk.refusedFor === 'overflow') reason = 'overflow';
    } catch {
      this.unexpected += w;
    }
    if (stored) this.options.onSpill?.(item, w);
    else this.options.onDrop?.(item, w, reason);
    return stored;
  }

  peekWeight(): number {
    const c = this.choose();
    if (c === undefined) return 0;
    return c === 'ring' ? this.ring.peekWeight() : this.disk.peekWeight();
  }

  shift(): T | undefined {
    const c = this.choose();
    this.choice = undefined;
    if (c === undefined) return undefined;
    if (c === 'ring') {
      const w = this.ring.peekWeight();
      if (this.disk.depth > 0) this.balance -= w;
      return this.ring.shift();
    }
    const got = this.disk.shift();
    if (got === undefined) return undefined;
    this.tokens -= got.weight;
    if (this.ring.length > 0) this.balance += got.weight;
    return got.item;
  }

  /** Only the ring: the disk keeps its records across the restart (the shutdown spool takes the ring). */
  drain(): T[] {
    this.choice = undefined;
    return this.ring.drain();
  }

  /** Events the disk may hand out now (for the node's replay timer and the time-to-drain estimate). */
  replayAllowance(): number {
    this.refill();
    return this.tokens;
  }

  counters(): RingCounters {
    const r = this.ring.counters();
    const d = this.disk.counters();
    return {
      received: this.received,
      released: r.released + d.replayed,
      droppedOverflow: r.droppedOverflow + d.diskDroppedOverflow,
      droppedOversize: r.droppedOversize,
      droppedDiskError: d.diskDroppedError + d.diskLost + this.unexpected,
      depth: r.depth + d.diskDepth,
      highWater: r.highWater,
      drained: r.drained,
      ...(r.bytes === undefined ? {} : { bytes: r.bytes }),
    };
  }

  diskCounters(): DiskCounters {
    return this.disk.counters();
  }

  /** Events waiting on disk. */
  get diskDepth(): number {
    return this.disk.depth;
  }

  /** The disk tier's directory. */
  get diskDir(): string {
    return this.disk.dir;
  }

  /** The disk tier's state file as the previous run left it (its sequence numbers), if any. */
  get recoveredDiskState(): DiskState | undefined {
    return this.disk.recoveredState;
  }

  /** Hands what was spilled to the operating system (a killed process loses none of it). */
  flushDisk(): void {
    this.disk.flush();
  }

  /** Flushes, fsyncs and saves the replay cursor (a power cut loses none of it). */
  syncDisk(): void {
    this.disk.sync();
  }

  /** Syncs and closes the disk tier: its records stay for the next run. */
  closeDisk(): void {
    this.disk.close();
  }

  private refill(): void {
    const now = this.options.now();
    const rate = this.options.replayRate;
    // A burst of at most 100 ms of replay, so a pause does not turn into a flood.
    this.tokens = Math.min(rate / 10, this.tokens + ((now - this.lastRefill) * rate) / 1000);
    this.lastRefill = now;
  }

  private choose(): 'ring' | 'disk' | undefined {
    if (this.choice !== undefined) return this.choice;
    const ringHas = this.ring.length > 0;
    if (this.disk.depth === 0) {
      this.balance = 0;
      return (this.choice = ringHas ? 'ring' : undefined);
    }
    this.refill();
    // A record heavier than the burst still goes once the bucket is full.
    const w = this.disk.peekWeight();
    const diskMay = w > 0 && (this.tokens >= w || this.tokens >= this.options.replayRate / 10);
    // Fairness counts only turns the disk could have taken: no credit piles up while the bucket is empty.
    if (!diskMay) this.balance = 0;
    if (diskMay && (!ringHas || this.balance <= 0)) return (this.choice = 'disk');
    return (this.choice = ringHas ? 'ring' : undefined);
  }
}
