import { appendRecords, TelemetryMessageLike, TelemetryRecord } from '../readings/records';

export interface BatcherOptions {
  /** Events in a batch, at most (a single larger message still forms one batch of its own). */
  maxSize: number;
  /** A batch is flushed this long after its first event arrived, if it did not fill up first. */
  maxAgeMs: number;
  /** Batches sent and not yet completed downstream, at most. */
  maxOpenBatches: number;
  /**
   * Events held at most (being filled, waiting, out for writing); a message that would go beyond
   * is refused. A message arriving when nothing is held is always taken, however large.
   */
  maxHeldEvents: number;
}

export type FlushReason = 'size' | 'age' | 'flush';

export interface Batch<I> {
  records: TelemetryRecord[];
  /** What was received to build this batch (the node keeps each message's done()). */
  inputs: I[];
  reason: FlushReason;
  firstAt: number;
  /** Set when first sent: its place in sending order, which a batch sent again keeps. */
  sentOrder?: number;
}

/**
 * Assembles records into batches by size or age, whichever comes first. At most `maxOpenBatches`
 * are out for writing; closed batches wait behind them, and everything held is bounded by
 * `maxHeldEvents`. Timers live in the node; this holds only state.
 */
export class BatchAssembler<I> {
  readonly options: BatcherOptions;
  private current: Batch<I> | undefined;
  private currentEvents = 0;
  private readonly waiting: Batch<I>[] = [];
  private open = 0;
  private heldEvents = 0;
  private sentCount = 0;

  constructor(options: BatcherOptions) {
    for (const key of ['maxSize', 'maxOpenBatches', 'maxHeldEvents'] as const) {
      if (!Number.isSafeInteger(options[key]) || options[key] < 1) throw new RangeError(`${key} must be a whole number >= 1`);
    }
    if (!(options.maxAgeMs >= 0)) throw new RangeError('maxAgeMs must be >= 0');
    this.options = options;
  }

  /** Events held: being filled, waiting, and out for writing. */
  get events(): number {
    return this.heldEvents;
  }

  get openBatches(): number {
    return this.open;
  }

  get waitingBatches(): number {
    return this.waiting.length;
  }

  /** Start time of the batch being filled, or undefined when it is empty (the node arms its age timer from this). */
  get currentSince(): number | undefined {
    return this.current?.firstAt;
  }

  /** Adds one message. Returns false (nothing changed) when it would take the held events beyond the bound. */
  add(msg: TelemetryMessageLike, input: I, now: number): boolean {
    const records: TelemetryRecord[] = [];
    appendRecords(msg, records);
    return this.addRecords(records, input, now);
  }

  /** Adds the records of one message (see appendRecords); false when they would take the held events beyond the bound. */
  addRecords(records: readonly TelemetryRecord[], input: I, now: number): boolean {
    const n = records.length;
    if (this.heldEvents > 0 && this.heldEvents + n > this.options.maxHeldEvents) return false;
    if (this.current !== undefined && this.currentEvents + n > this.options.maxSize) this.close('size');
    if (this.current === undefined) {
      this.current = { records: [], inputs: [], reason: 'size', firstAt: now };
      this.currentEvents = 0;
    }
    const into = this.current.records;
    for (let i = 0; i < n; i++) into.push(records[i]);
    this.current.inputs.push(input);
    this.currentEvents += n;
    this.heldEvents += n;
    if (this.currentEvents >= this.options.maxSize) this.close('size');
    return true;
  }

  /** Every batch held: being filled, waiting, and (from `open`) out for writing is the caller's to add. */
  *unsent(): Iterable<Batch<I>> {
    yield* this.waiting;
    if (this.current !== undefined) yield this.current;
  }

  /** Closes the batch being filled, if any: it waits for an open slot. */
  close(reason: FlushReason): void {
    if (this.current === undefined) return;
    this.current.reason = reason;
    this.waiting.push(this.current);
    this.current = undefined;
    this.currentEvents = 0;
  }

  /** The next batch to send, if an open slot is free. The caller must call completed() for it later. */
  next(): Batch<I> | undefined {
    if (this.open >= this.options.maxOpenBatches || this.waiting.length === 0) return undefined;
    this.open++;
    const batch = this.waiting.shift() as Batch<I>;
    if (batch.sentOrder === undefined) batch.sentOrder = this.sentCount++;
    return batch;
  }

  /** A sent batch finished downstream (written, failed or handed back). */
  completed(batch: Batch<I>): void {
    this.open--;
    this.heldEvents -= batch.records.length;
  }

  /** Sent batches whose receiver is gone without completing them: first in line again, in sending order. */
  resend(batches: Batch<I>[]): void {
    this.open -= batches.length;
    for (const batch of batches) {
      const order = batch.sentOrder ?? -1;
      let i = 0;
      while (i < this.waiting.length && (this.waiting[i].sentOrder ?? Infinity) < order) i++;
      this.waiting.splice(i, 0, batch);
    }
  }

  /** Everything not yet sent, oldest first (for shutdown). */
  drainUnsent(): Batch<I>[] {
    const all = this.waiting.splice(0);
    if (this.current !== undefined) all.push(this.current);
    this.current = undefined;
    this.currentEvents = 0;
    for (const batch of all) this.heldEvents -= batch.records.length;
    return all;
  }
}
