/**
 * timescale-sink without Node-RED: takes a message in (reads its shape, numbers readings no node
 * before numbered), hands it to the WriteScheduler, and says how each message ends (done, done with
 * an error, a dead-letter message, a completion mark). It follows the writer's state for the badge
 * and the log (one line per change of state, not per retry), keeps the totals and the sequence
 * numbers across redeploys, and sends the stats on its interval. The node file only wires these
 * to Node-RED.
 */
import type { OptionValues } from '../shared/option-table';
import type { OPTIONS } from '../../options/timescale-sink';
import { recordsIn, stampMissing, type RowFields, type TelemetryRecord } from '../readings/records';
import { resolveShapeOptions, recordsOf, shapeMessage, type ResolvedShapeOptions } from '../readings/shapes';
import { SequenceJournal, SequenceStamper } from '../readings/sequence';
import { RateMeter } from '../shared/rate-meter';
import { Totals } from '../shared/totals';
import { errorText, say, type Translate } from '../shared/text';
import { misconfiguredFix, REFUSAL_SHOWN_MS, REJECTION_SHOWN_MS, shortDuration, sinkBadge, type Badge } from './sink-status';
import type { DeadLetterEntry, SinkState, SinkStats } from './sink-types';
import { propertyNames } from './row-mapping';
import { TimescaleWriter, type ColumnMap, type Queryable, type TimescaleWriterOptions, type WriterRetryEvent, type WriterStateChange } from './timescale-writer';
import { WriteScheduler, type JobResult, type SinkJob } from './write-scheduler';

export type SinkOptions = OptionValues<typeof OPTIONS>;

/** The connection as the sink reports it: where it writes, and how to keep the password out of texts. */
export interface SinkDatabase {
  /** `host:port/database` for log lines. */
  readonly label: string;
  /** `host:port` written to now ('' before the first connection). */
  readonly host: string;
  readonly poolSize: number;
  redact(text: string): string;
}

/** A message as the sink reads it. */
export interface SinkInput extends Record<string, unknown> {
  topic?: unknown;
  payload?: unknown;
  batch?: unknown;
  _msgid?: unknown;
}

/** How a message ends: a dead-letter message first (if any), then a completion mark (if any), then done(error). */
export interface Finish {
  deadLetter?: { topic: 'dead-letter'; payload: DeadLetterEntry[]; deadLetter: Record<string, unknown>; batch?: unknown };
  /** For the nodes in front (see src/contract): handed back, or failed for good. */
  completion?: 'returned' | 'failed';
  /** done(new Error(error)) when set, else done(). */
  error?: string;
}

export interface SinkEvents<P> {
  /** A message this controller took is finished: called exactly once per receive(). */
  finish(port: P, how: Finish): void;
  stats(payload: SinkStats): void;
  /** 'error' lines carry a payload for a Catch node. */
  log(level: 'info' | 'warn' | 'error', text: string, payload?: Record<string, unknown>): void;
  /** The badge should be drawn again now (a change a user must see at once). */
  changed(): void;
  /** Words for the log and the badge in the user's language (src/core/shared/text.ts). */
  t: Translate;
}

export interface SinkSetup {
  /** Where the totals (`<base>.totals.json`) and the sequence numbers (`<base>.sequences`) live. */
  fileBase: string;
  /** The longest close may wait for writes to finish (Node-RED's close timeout less a margin). */
  closeLimitMs: number;
}

/** Counters that add up across instances (the gauges inFlight and queued are folded into closed on save). */
const CUMULATIVE = ['receivedMessages', 'receivedEvents', 'written', 'duplicates', 'rejected', 'deadLetteredBatches', 'deadLetteredEvents', 'refusedMessages', 'refusedEvents', 'closedMessages', 'closedEvents', 'retries', 'writes', 'ignored'] as const;

/** The writer's options from the node's: columns only in existing mode (empty = the table has none). */
export function writerOptionsOf(o: SinkOptions): TimescaleWriterOptions {
  const column = (name: string): string | null => (name === '' ? null : name);
  const columns: ColumnMap | undefined =
    o.mode === 'existing'
      ? { time: o.timeColumn, source: o.sourceColumn, kind: column(o.kindColumn), value: column(o.valueColumn), seq: column(o.seqColumn), extra: o.extra ? column(o.extraColumn) : null }
      : undefined;
  return {
    schema: o.schema,
    table: o.table,
    mode: o.mode,
    columns,
    extra: o.extra,
    timescale: { chunkInterval: o.chunkInterval, compressAfter: o.compressAfter || null, retention: o.retention || null },
    retry: { maxAttempts: o.maxAttempts, initialDelayMs: o.initialDelay, maxDelayMs: o.maxDelay },
    mapping: { timeProperty: propertyNames(o.timeProperty), sourceProperty: o.sourceProperty, valueProperty: o.valueProperty, kindProperty: o.kindProperty, seqProperty: o.seqProperty },
  };
}

interface Held<P> {
  input: SinkInput;
  port: P;
}

export class SinkController<P> {
  private readonly writer: TimescaleWriter;
  private readonly scheduler: WriteScheduler<Held<P>>;
  private readonly shapes: ResolvedShapeOptions;
  private readonly totals: Totals<(typeof CUMULATIVE)[number]>;
  private readonly sequences = new SequenceStamper();
  private readonly journal: SequenceJournal;
  private readonly statsTimer: NodeJS.Timeout;
  private readonly drainTimeoutMs: number;
  private state: SinkState = 'starting';
  private since = Date.now();
  private code = '';
  private retry = { attempt: 0, maxAttempts: 0 };
  /** What the badge keeps saying the table lacks: '!policy' or '!key'. */
  private warning = '';
  private closing = false;
  private downLogged = false;
  private table = { idempotent: true, distinctRows: true, tableNotices: 0 };
  /** Plain messages that are not readings (a subscription id, a status, an empty poll): completed, never stored. */
  private ignored = 0;
  private ignoredReason = '';
  private lastStatsAt = Date.now();
  /** Rows written per second over the last 5 s: on the badge and in the stats. */
  private readonly writeRate = new RateMeter(5000);
  private shownHost: string;
  private hostChangedAt = 0;
  /** Since when no write has finished while one is out (rows finished, for telling). */
  private waitingSince = 0;
  private finishedRows = 0;
  /** Messages refused (queue full) since refusing started; refusals less than REFUSAL_SHOWN_MS apart are one episode. */
  private lastRefusedAt = -Infinity;
  private refusedLately = 0;
  /** Rows rejected lately (sent to the dead-letter output one by one), and the last one's code: the badge says so for a while. */
  private lastRejectedAt = -Infinity;
  private rejectedLately = 0;
  private rejectedCode = '';

  constructor(
    pool: Queryable,
    private readonly o: SinkOptions,
    private readonly db: SinkDatabase,
    setup: SinkSetup,
    private readonly events: SinkEvents<P>
  ) {
    this.writer = new TimescaleWriter(pool, writerOptionsOf(o));
    this.rowFields = Object.freeze({ seq: o.seqProperty, source: o.sourceProperty });
    this.scheduler = new WriteScheduler<Held<P>>(
      this.writer,
      { maxConcurrent: o.maxConcurrent > 0 ? o.maxConcurrent : db.poolSize, maxQueued: o.maxQueued, maxRows: o.maxRows, redact: (text) => db.redact(text) },
      (job, result) => this.finished(job, result)
    );
    // A plain message is read with the mapping's own property names, so both agree on what is a
    // reading; `timestamp` stays a time field of named values, as it is by default.
    this.shapes = resolveShapeOptions({ shape: o.shape, quality: o.quality, valueProperty: o.valueProperty, sourceProperty: o.sourceProperty, kindProperty: o.kindProperty, seqProperty: o.seqProperty, timeProperty: [...new Set([...propertyNames(o.timeProperty), 'timestamp'])] });
    this.drainTimeoutMs = Math.max(0, Math.min(o.drainTimeout * 1000, setup.closeLimitMs));
    this.shownHost = db.host;
    this.totals = new Totals(`${setup.fileBase}.totals.json`, CUMULATIVE);
    this.journal = new SequenceJournal(`${setup.fileBase}.sequences`);
    try {
      this.journal.open(this.sequences);
    } catch (err) {
      events.log('warn', events.t('log.sequencesUnreadable', { file: this.journal.file, error: (err as Error).message }));
    }
    this.writer.on('retry', (event: WriterRetryEvent) => {
      this.scheduler.counters.retries++;
      this.retry = { attempt: event.attempt, maxAttempts: event.maxAttempts };
    });
    this.writer.on('state', (event: WriterStateChange) => this.stateChanged(event));
    this.writer
      .start(this.scheduler.signal)
      .then((result) => {
        for (const notice of result.notices) events.log('warn', db.redact(say(notice.words, events.t)));
        this.table = { idempotent: result.idempotent, distinctRows: result.idempotent && !result.mergesReadings, tableNotices: result.notices.length };
        if (result.notices.some((notice) => notice.code.endsWith('_REFUSED'))) this.warning = '!policy';
        else if (!this.table.distinctRows) this.warning = '!key';
        events.changed();
      })
      .catch(() => undefined); // aborted by close
    const statsMs = o.statsInterval * 1000;
    this.statsTimer = setInterval(() => {
      this.saveTotals();
      if (statsMs > 0 && Date.now() - this.lastStatsAt >= statsMs) {
        this.lastStatsAt = Date.now();
        events.stats(this.stats());
      }
    }, Math.min(1000, statsMs || 1000));
    this.statsTimer.unref();
  }

  stats(): SinkStats {
    const { state, code, since, table, ignoredReason } = this;
    const rowsPerSecond = Math.round(this.writeRate.rate(Date.now(), this.scheduler.counters.written) * 10) / 10;
    return { state, code, since, host: this.db.host, ...table, ignoredReason, rowsPerSecond, ...this.totals.add({ ...this.scheduler.counters, ignored: this.ignored }) };
  }

  /** Message ids of everything held (queued or being written): the custody this node answers for. */
  held(): Iterable<string> {
    return this.scheduler.held();
  }

  /** The payload fields a reading's own sequence number and source are read from (the Seq from and Source from options). */
  readonly rowFields: RowFields;

  /** The badge now; with a host list it names the host for a while after the writes moved to it. */
  badge(now: number): Badge {
    if (this.db.host !== this.shownHost) {
      if (this.shownHost !== '') this.hostChangedAt = now;
      this.shownHost = this.db.host;
    }
    const rate = this.writeRate.rate(now, this.scheduler.counters.written);
    const c = this.scheduler.counters;
    const finishedRows = c.written + c.duplicates + c.rejected + c.deadLetteredEvents + c.closedEvents;
    if (c.inFlight === 0 || finishedRows !== this.finishedRows) {
      this.waitingSince = now;
      this.finishedRows = finishedRows;
    }
    const waitingMs = c.inFlight > 0 ? now - this.waitingSince : 0;
    const refused = now - this.lastRefusedAt < REFUSAL_SHOWN_MS ? this.refusedLately : 0;
    const rejected = now - this.lastRejectedAt < REJECTION_SHOWN_MS ? { count: this.rejectedLately, code: this.rejectedCode } : undefined;
    const { state, code, since, warning, retry } = this;
    return sinkBadge({ state, now, rate, code, since, attempt: retry.attempt, maxAttempts: retry.maxAttempts, warning, host: this.shownHost, hostChangedAt: this.hostChangedAt, waitingMs, refused, rejected }, this.events.t);
  }

  /** Takes a message in; `events.finish(port, ...)` follows exactly once, now or when its rows are in. */
  receive(input: SinkInput, port: P): void {
    const receivedAt = Date.now();
    let records: TelemetryRecord[];
    const mergeable = !(input.batch !== undefined && Array.isArray(input.payload));
    if (!mergeable) {
      records = recordsIn(input.payload as unknown[]);
    } else {
      const shaped = shapeMessage(input, this.shapes);
      if (shaped.outcome === 'not-a-reading') {
        this.ignored++;
        this.ignoredReason = shaped.reason;
        this.events.finish(port, {});
        return;
      }
      records = recordsOf(shaped);
    }
    try {
      // The time of receipt is the last choice of the row mapping (after payload.time/ts and
      // msg.timestamp): stamped into the record, it stays the same when several messages share
      // one write and when a batch comes again (handed back, sent again after a deploy).
      for (const record of records) if (record.timestamp === undefined || record.timestamp === null) record.timestamp = receivedAt;
      // Readings that no node before numbered are numbered here, so none merges with another.
      stampMissing(records, this.sequences, this.rowFields);
    } catch (err) {
      // A record made elsewhere that takes neither (frozen, a getter that throws): its message
      // fails with the reason and counts as ignored, as it never entered.
      this.ignored++;
      this.ignoredReason = this.events.t('log.notStamped', { error: errorText(err, this.events.t) });
      this.events.finish(port, { completion: 'failed', error: this.ignoredReason });
      return;
    }
    const job: SinkJob<Held<P>> = { owner: { input, port }, id: typeof input._msgid === 'string' ? input._msgid : undefined, records, receivedAt, mergeable, finished: false };
    if (this.scheduler.offer(job) === 'refused') {
      const now = Date.now();
      if (now - this.lastRefusedAt >= REFUSAL_SHOWN_MS) this.refusedLately = 0;
      this.refusedLately++;
      this.lastRefusedAt = now;
      this.events.finish(port, { completion: 'failed', error: this.events.t('log.queueFull', { queued: this.scheduler.counters.queuedEvents }) });
    }
  }

  /**
   * Takes nothing more, lets the writes under way finish for up to the On close time, hands the
   * rest back, and saves the totals and sequence numbers (or removes them with the node).
   */
  async close(removed: boolean): Promise<void> {
    this.closing = true;
    this.state = 'closing';
    this.events.changed();
    clearInterval(this.statsTimer);
    try {
      await this.scheduler.close(this.drainTimeoutMs);
      const { closedMessages, closedEvents } = this.scheduler.counters;
      if (closedMessages > 0) this.events.log('warn', this.events.t('log.handedBack', { messages: closedMessages, events: closedEvents }));
    } finally {
      try {
        if (removed) {
          this.totals.remove();
          this.journal.remove();
        } else {
          this.saveTotals();
          this.journal.close(this.sequences);
        }
      } catch (err) {
        this.events.log('warn', this.events.t('log.totalsNotSaved', { file: this.totals.file, error: (err as Error).message }));
      }
    }
  }

  private saveTotals(): void {
    const s = this.totals.add({ ...this.scheduler.counters, ignored: this.ignored });
    // What is held now counts as handed back, so the saved totals add up without the gauges.
    s.closedMessages += s.inFlight + s.queued;
    s.closedEvents += s.inFlightEvents + s.queuedEvents;
    try {
      this.totals.save(s);
      this.journal.save(this.sequences, (err) => this.events.log('warn', this.events.t('log.sequencesNotSaved', { file: this.journal.file, error: err.message })));
    } catch (err) {
      this.events.log('warn', this.events.t('log.totalsNotSaved', { file: this.totals.file, error: (err as Error).message }));
    }
  }

  /** One log line per change of state, not per retry; a misconfiguration also reaches a Catch node once. */
  private stateChanged(event: WriterStateChange): void {
    if (this.closing) return;
    const previous = this.state;
    const blockedSince = this.since;
    this.state = event.state;
    this.since = event.since;
    this.code = event.code ?? '';
    if (event.state === 'retrying') this.retry = { attempt: event.attempt, maxAttempts: event.maxAttempts };
    const { db, code } = this;
    const counters = this.scheduler.counters;
    const t = this.events.t;
    const facts = { database: db.label, code, error: event.words ? say(event.words, t) : (event.message ?? ''), held: counters.inFlightEvents + counters.queuedEvents };
    if (event.state === 'down') {
      this.events.log('warn', db.redact(t('log.down', facts)));
      this.downLogged = true;
    } else if (event.state === 'misconfigured') {
      const text = db.redact(t('log.misconfigured', { ...facts, fix: misconfiguredFix(code, t) }));
      this.events.log('error', text, { topic: 'misconfigured', payload: { state: 'misconfigured', code, message: text } });
      this.downLogged = true;
    } else if (event.state === 'up' && this.downLogged) {
      this.downLogged = false;
      this.events.log('info', t(previous === 'misconfigured' ? 'log.acceptedAgain' : 'log.back', { database: db.label, duration: shortDuration(Date.now() - blockedSince) }));
    }
    this.events.changed();
  }

  /** A message's end, from what the scheduler says happened to its rows. */
  private finished(job: SinkJob<Held<P>>, result: JobResult): void {
    const { input, port } = job.owner;
    // Handed back, not failed: a buffer or batcher in front sends it again or spools it.
    if (result.kind === 'returned') return this.events.finish(port, { completion: 'returned' });
    const how: Finish = {};
    // A failed batch is completed with its error instead (a Catch node sees it).
    if (result.kind === 'written' && result.deadLetters.length > 0) {
      const now = Date.now();
      if (now - this.lastRejectedAt >= REJECTION_SHOWN_MS) this.rejectedLately = 0;
      this.rejectedLately += result.deadLetters.length;
      this.lastRejectedAt = now;
      this.rejectedCode = result.deadLetters[result.deadLetters.length - 1].code;
    }
    if (result.deadLetters.length > 0) {
      const failed = result.kind === 'failed' ? { error: result.error, code: result.code, written: result.written } : {};
      how.deadLetter = { topic: 'dead-letter', payload: result.deadLetters, deadLetter: { reason: result.kind === 'failed' ? 'failed' : 'rejected', count: result.deadLetters.length, ...failed } };
      if (input.batch !== undefined) how.deadLetter.batch = input.batch;
    }
    if (result.kind === 'failed') {
      how.completion = 'failed';
      // The dead letter keeps the English (an API); done(err) says it in the user's language.
      how.error = this.events.t('log.notWritten', { error: result.errorWords ? this.db.redact(say(result.errorWords, this.events.t)) : result.error });
    } else if (job.mergeable && result.deadLetters.length === job.records.length) {
      // A plain message none of whose rows could be stored is a bad message: done(err) with the
      // reason, so a Catch node sees it. A batch completes: its good rows are in.
      how.error = this.events.t('log.notWrittenRejected', { reason: result.deadLetters[0].reason });
    }
    this.events.finish(port, how);
  }
}
