/**
 * timescale-sink without Node-RED: a bounded number of writes in flight, a queue behind them
 * bounded in events, plain messages merged into shared writes, and each message finished exactly
 * once with what happened to its rows. The writer waits out outages and misconfigurations, so a
 * message here is finished only when its rows are in, when it failed for good, or when the node
 * closes (handed back).
 */
import { Fifo } from '../shared/fifo';
import type { TelemetryRecord } from '../readings/records';
import type { DeadLetterEntry, SinkCounters } from './sink-types';
import { WriteFailedError, type WriteOutcome } from './timescale-writer';
import { classifyError } from './error-classes';
import type { Words } from '../shared/text';

export interface SinkJob<M> {
  /** What the node needs to finish the message (its msg, send, done): opaque here. */
  owner: M;
  /** The message id, for custody queries (see src/contract). */
  id: string | undefined;
  records: TelemetryRecord[];
  receivedAt: number;
  /** Plain messages may share one write; a batch from telemetry-batcher is written on its own. */
  mergeable: boolean;
  finished: boolean;
}

export type JobResult =
  /** Every row written, already there (duplicates) or rejected (deadLetters, possibly empty). */
  | { kind: 'written'; deadLetters: DeadLetterEntry[] }
  /** The write failed as a whole (transient failures past the attempts, a permanent error). */
  | { kind: 'failed'; deadLetters: DeadLetterEntry[]; error: string; code: string; written: number; errorWords?: Words }
  /** Not confirmed written: the node is closing. */
  | { kind: 'returned' };

/** The part of TimescaleWriter the scheduler uses. */
export interface BatchWriter {
  write(records: readonly TelemetryRecord[], options: { receivedAt?: number; signal?: AbortSignal }): Promise<WriteOutcome>;
  readonly state: string;
}

export interface SchedulerOptions {
  /** Writes in flight at once. */
  maxConcurrent: number;
  /** Events waiting behind them; beyond it a message is refused (one is always taken into an empty queue). */
  maxQueued: number;
  /** Plain messages waiting are merged into writes of at most this many rows. */
  maxRows: number;
  /** Blanks the password out of error texts. */
  redact(text: string): string;
}

export class WriteScheduler<M> {
  readonly counters: SinkCounters = {
    receivedMessages: 0,
    receivedEvents: 0,
    written: 0,
    duplicates: 0,
    rejected: 0,
    deadLetteredBatches: 0,
    deadLetteredEvents: 0,
    refusedMessages: 0,
    refusedEvents: 0,
    closedMessages: 0,
    closedEvents: 0,
    retries: 0,
    writes: 0,
    inFlight: 0,
    inFlightEvents: 0,
    queued: 0,
    queuedEvents: 0
  };
  private readonly queue = new Fifo<SinkJob<M>>();
  private readonly running = new Set<SinkJob<M>[]>();
  private readonly abort = new AbortController();
  private closing = false;
  private idle: (() => void) | undefined;

  constructor(
    private readonly writer: BatchWriter,
    private readonly options: SchedulerOptions,
    private readonly finish: (job: SinkJob<M>, result: JobResult) => void
  ) {}

  /** Aborted when the node closes: the writer's waits end with it. */
  get signal(): AbortSignal {
    return this.abort.signal;
  }

  /** Takes a message's records: 'refused' when the queue is full, 'closing' (handed back at once) when the node is closing. */
  offer(job: SinkJob<M>): 'queued' | 'refused' | 'closing' {
    const events = job.records.length;
    const c = this.counters;
    c.receivedMessages++;
    c.receivedEvents += events;
    if (this.closing) {
      c.inFlight++;
      c.inFlightEvents += events;
      this.handBack(job);
      return 'closing';
    }
    const startsNow = this.running.size < this.options.maxConcurrent;
    if (!startsNow && c.queuedEvents > 0 && c.queuedEvents + events > this.options.maxQueued) {
      c.refusedMessages++;
      c.refusedEvents += events;
      return 'refused';
    }
    this.queue.push(job);
    c.queued++;
    c.queuedEvents += events;
    this.pump();
    return 'queued';
  }

  /** Message ids of everything held (queued or being written): the custody this node answers for. */
  *held(): Iterable<string> {
    for (const group of this.running) for (const job of group) if (job.id !== undefined && !job.finished) yield job.id;
    for (let i = 0, job = this.queue.at(0); job !== undefined; job = this.queue.at(++i)) if (job.id !== undefined) yield job.id;
  }

  /**
   * Stops taking work: waits up to `drainMs` for what is queued and in flight to be written (not at
   * all while the database is down or misconfigured: nothing would come of it), then hands the
   * rest back. Resolves when every message is finished and the aborted writes have settled (at
   * most one more second).
   */
  async close(drainMs: number): Promise<void> {
    this.closing = true;
    const timers: NodeJS.Timeout[] = [];
    const within = (promise: Promise<unknown>, ms: number): Promise<unknown> => Promise.race([promise, new Promise((resolve) => timers.push(setTimeout(resolve, ms)))]);
    const blocked = (): boolean => this.writer.state === 'down' || this.writer.state === 'misconfigured';
    try {
      if (!blocked() && (this.running.size > 0 || this.queue.length > 0)) {
        const drained = new Promise<void>((resolve) => (this.idle = resolve));
        const stopWhenBlocked = new Promise<void>((resolve) => {
          const check = setInterval(() => blocked() && resolve(), 100);
          timers.push(check);
        });
        await within(Promise.race([drained, stopWhenBlocked]), drainMs);
      }
      this.abort.abort();
      for (let job = this.queue.shift(); job !== undefined; job = this.queue.shift()) {
        this.counters.queued--;
        this.counters.queuedEvents -= job.records.length;
        this.counters.inFlight++;
        this.counters.inFlightEvents += job.records.length;
        this.handBack(job);
      }
      for (const group of [...this.running]) for (const job of group) this.handBack(job);
      // Give aborted writes a moment to give their connections back before the pool may end.
      if (this.running.size > 0) await within(new Promise<void>((resolve) => (this.idle = resolve)), 1000);
    } finally {
      for (const timer of timers) {
        clearTimeout(timer);
        clearInterval(timer);
      }
    }
  }

  private pump(): void {
    while (!this.abort.signal.aborted && this.running.size < this.options.maxConcurrent && this.queue.length > 0) {
      const group = this.takeGroup();
      for (const job of group) {
        this.counters.queued--;
        this.counters.queuedEvents -= job.records.length;
        this.counters.inFlight++;
        this.counters.inFlightEvents += job.records.length;
      }
      this.startWrite(group);
    }
    if (this.idle && this.running.size === 0 && this.queue.length === 0) this.idle();
  }

  private takeGroup(): SinkJob<M>[] {
    const first = this.queue.shift() as SinkJob<M>;
    const group = [first];
    if (first.mergeable) {
      let rows = first.records.length;
      for (let next = this.queue.peek(); next !== undefined && next.mergeable && rows + next.records.length <= this.options.maxRows; next = this.queue.peek()) {
        rows += next.records.length;
        group.push(this.queue.shift() as SinkJob<M>);
      }
    }
    return group;
  }

  private leave(job: SinkJob<M>): boolean {
    if (job.finished) return false;
    job.finished = true;
    this.counters.inFlight--;
    this.counters.inFlightEvents -= job.records.length;
    return true;
  }

  private handBack(job: SinkJob<M>): void {
    if (!this.leave(job)) return;
    this.counters.closedMessages++;
    this.counters.closedEvents += job.records.length;
    this.finish(job, { kind: 'returned' });
  }

  private startWrite(group: SinkJob<M>[]): void {
    this.running.add(group);
    this.counters.writes++;
    const records = group.length === 1 ? group[0].records : group.flatMap((job) => job.records);
    this.writer
      .write(records, { receivedAt: group[0].receivedAt, signal: this.abort.signal })
      .then(
        (outcome) => this.written(group, outcome),
        (err: unknown) => this.failed(group, records, err)
      )
      .finally(() => {
        this.running.delete(group);
        this.pump();
      });
  }

  private written(group: SinkJob<M>[], outcome: WriteOutcome): void {
    // Already handed back at the close deadline: those rows count as returned, not written (a
    // replay finds them and counts them as duplicates).
    if (group.every((job) => job.finished)) return;
    const c = this.counters;
    c.written += outcome.written;
    c.duplicates += outcome.duplicates;
    c.rejected += outcome.rejected.length;
    const letters = this.byJob(group, outcome.rejected);
    for (const job of group) {
      if (this.leave(job)) this.finish(job, { kind: 'written', deadLetters: letters.get(job) ?? [] });
    }
  }

  private failed(group: SinkJob<M>[], records: TelemetryRecord[], err: unknown): void {
    const failure = err instanceof WriteFailedError ? err : undefined;
    if (this.abort.signal.aborted || failure?.kind === 'aborted') {
      for (const job of group) this.handBack(job);
      return;
    }
    // Rows written or rejected before the batch failed as a whole are counted as such; the
    // dead-letter message still carries every record (resending the written ones is harmless).
    const info = failure ? { code: failure.code, message: failure.causeMessage } : classifyError(err);
    const error = this.options.redact(failure ? failure.message : `${info.code}: ${info.message}`);
    const written = failure?.written ?? 0;
    const before = new Map<TelemetryRecord, { reason: string; code?: string }>();
    for (const r of failure?.rejected ?? []) before.set(r.record, r);
    const c = this.counters;
    c.written += written;
    c.rejected += before.size;
    c.deadLetteredEvents += records.length - written - before.size;
    const reason = this.options.redact(info.message);
    for (const job of group) {
      if (!this.leave(job)) continue;
      c.deadLetteredBatches++;
      const deadLetters = job.records.map((record) => {
        const own = before.get(record);
        return own ? { record, reason: own.reason, code: own.code ?? '' } : { record, reason, code: info.code };
      });
      this.finish(job, { kind: 'failed', deadLetters, error, code: info.code, written, ...(failure ? { errorWords: failure.words } : {}) });
    }
  }

  /** Which message of a merged write each rejected row came from. */
  private byJob(group: SinkJob<M>[], rejected: WriteOutcome['rejected']): Map<SinkJob<M>, DeadLetterEntry[]> {
    const out = new Map<SinkJob<M>, DeadLetterEntry[]>();
    if (rejected.length === 0) return out;
    const owner = new Map<TelemetryRecord, SinkJob<M>>();
    if (group.length > 1) for (const job of group) for (const record of job.records) owner.set(record, job);
    for (const r of rejected) {
      const job = group.length === 1 ? group[0] : (owner.get(r.record) ?? group[0]);
      let list = out.get(job);
      if (!list) out.set(job, (list = []));
      list.push({ record: r.record, reason: r.reason, code: r.code ?? '' });
    }
    return out;
  }
}
