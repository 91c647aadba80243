/**
 * What the buffer keeps its items in: the storage contract, the drop policies and why events leave
 * undelivered. The in-memory ring (ring-buffer.ts) is one store; the ring in front of a disk tier
 * (tiered-store.ts) implements the same contract, so the buffer does not change.
 */

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
  /** Only with a byte bound: the approximate bytes held now (see approximateSize). */
  bytes?: number;
}

/** The storage contract the buffer depends on. */
export interface EventStore<T> {
  readonly capacity: number;
  /** Events held now. */
  readonly depth: number;
  /** Items held now. */
  readonly length: number;
  /** `size`: the item's size for a memory limit, when the caller knows it (else the store estimates it). */
  push(item: T, weight: number, size?: number): boolean;
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

