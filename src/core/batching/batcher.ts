/**
 * What a telemetry-batcher does, without Node-RED: takes messages in as readings, sends them in
 * batches by size or age, and completes each message only when the batch it went out in is
 * completed downstream, with that batch's outcome (so the database's pace and its failures reach
 * the buffer in front). It owns its state and timers; the node file wires it to Node-RED and to the
 * contract between our nodes (src/contract/index.ts) through `BatcherPorts`. How pressure travels
 * and what a deploy does to it: docs/architecture.md.
 */
import { InflightTracker } from '../buffer/inflight';
import { appendRecords, isRecordGroup, recordOf, stampMissing, type RowFields, type TelemetryRecord } from '../readings/records';
import { SequenceJournal, SequenceStamper } from '../readings/sequence';
import { isPlainReading, recordsOf, shapeMessage, type ResolvedShapeOptions } from '../readings/shapes';
import type { InputMessage } from '../readings/shape-result';
import type { Completion } from '../shared/completion';
import { Totals } from '../shared/totals';
import { compactCount } from '../shared/badge-text';
import { errorText, type Translate } from '../shared/text';
import { Batch, BatchAssembler, type BatcherOptions, type FlushReason } from './batch-assembler';

export interface BatcherInput {
  msg: InputMessage & { _msgid?: unknown };
  /** The message's done(): called once, when its batch completes (or at once when it is not taken). */
  done: (err?: Error) => void;
}

/** What goes out on the batch output: the records, and what the batch is. (A type, not an interface: a Node-RED message takes it.) */
export type BatchMessage = {
  _msgid: string;
  payload: TelemetryRecord[];
  batch: { id: string; count: number; reason: FlushReason; firstAt: number };
};

export interface BatcherStats {
  receivedMessages: number;
  receivedEvents: number;
  batchesSent: number;
  batchesCompleted: number;
  batchesFailed: number;
  batchesReturned: number;
  /** Sent again because a deploy replaced the node they were sent to before it completed them. */
  batchesResent: number;
  batchesUnacknowledged: number;
  refusedMessages: number;
  refusedEvents: number;
  heldEvents: number;
  openBatches: number;
  waitingBatches: number;
  flushedBySize: number;
  flushedByAge: number;
  flushedByRequest: number;
  /** Messages that are not readings (a subscription id, a status, an empty poll): completed, not kept. */
  ignored: number;
  /** Why the last of them is not a reading. */
  ignoredReason: string;
}

/** Counters that add up across instances (see Totals). */
const CUMULATIVE = ['receivedMessages', 'receivedEvents', 'batchesSent', 'batchesCompleted', 'batchesFailed', 'batchesReturned', 'batchesResent', 'batchesUnacknowledged', 'refusedMessages', 'refusedEvents', 'flushedBySize', 'flushedByAge', 'flushedByRequest', 'ignored'] as const;

export interface BatcherSettings extends BatcherOptions {
  /** A sent batch neither completed nor held downstream for this long is given up ('unacknowledged'). */
  ackTimeoutMs: number;
  /** How a message that no node before read is read as readings. */
  shape: ResolvedShapeOptions;
  /** Nodes wired to the batch output: each completes a batch; with none, a batch is complete when sent. */
  downstreamCount: number;
  /** Totals and sequence numbers outlive the instance in `<fileBase>.totals.json` and `<fileBase>.sequences`. */
  fileBase: string;
}

/** How the batcher reaches the node it runs in and the contract between our nodes. */
export interface BatcherPorts {
  sendBatch(msg: BatchMessage): void;
  newId(): string;
  /** contract markCompletion: how the coming done() of a message reads upstream. */
  markCompletion(msg: object, completion: Exclude<Completion, 'ok'>): void;
  /** contract canHandBack: a buffer in front keeps `msg` if it is handed back. */
  canHandBack(msg: object): boolean;
  /** contract heldBy(downstream): the ids of the messages the nodes after still hold. */
  heldDownstream(): Set<string> | undefined;
  /** contract rowFieldsOf(downstream): the payload fields a reading's own sequence number and source are read from after this node. */
  rowFields(): RowFields;
  log(text: string): void;
  warn(text: string): void;
  /** Words for the log and the badge in the user's language (src/core/shared/text.ts). */
  t: Translate;
}

export interface BatcherBadge {
  fill: 'red' | 'yellow' | 'green';
  shape: 'ring' | 'dot';
  text: string;
}

/** How long the badge stays red after the last refused message: long enough to be seen. */
export const REFUSAL_SHOWN_MS = 5000;

export class Batcher {
  private readonly assembler: BatchAssembler<BatcherInput>;
  private readonly open = new InflightTracker<Batch<BatcherInput>>();
  /** Batches put back to be sent again: already counted when first sent. */
  private readonly toResend = new Set<Batch<BatcherInput>>();
  private readonly counts: BatcherStats = {
    receivedMessages: 0, receivedEvents: 0, batchesSent: 0, batchesCompleted: 0, batchesFailed: 0,
    batchesReturned: 0, batchesResent: 0, batchesUnacknowledged: 0, refusedMessages: 0, refusedEvents: 0, heldEvents: 0, openBatches: 0,
    waitingBatches: 0, flushedBySize: 0, flushedByAge: 0, flushedByRequest: 0, ignored: 0, ignoredReason: '',
  };
  private readonly totals: Totals<(typeof CUMULATIVE)[number]>;
  private readonly sequences = new SequenceStamper();
  private readonly journal: SequenceJournal;
  private readonly saveTimer: NodeJS.Timeout;
  private readonly expiryTimer: NodeJS.Timeout;
  private ageTimer: NodeJS.Timeout | undefined;
  private ageTimerFor: number | undefined;
  private closing = false;
  private paused = false;
  /** Paused because the flows run without the node after this one (absent()). */
  private nextNodeOff = false;
  private lastRefusedAt = -Infinity;
  /** Messages refused since refusing started (refusals less than REFUSAL_SHOWN_MS apart are one episode). */
  private refusedLately = 0;

  constructor(
    private readonly settings: BatcherSettings,
    private readonly ports: BatcherPorts
  ) {
    this.assembler = new BatchAssembler<BatcherInput>(settings);
    this.totals = new Totals(`${settings.fileBase}.totals.json`, CUMULATIVE);
    this.journal = new SequenceJournal(`${settings.fileBase}.sequences`);
    try {
      this.journal.open(this.sequences);
    } catch (err) {
      ports.warn(ports.t('log.sequencesUnreadable', { file: this.journal.file, error: (err as Error).message }));
    }
    this.saveTimer = setInterval(() => this.saveState(), 1000);
    this.saveTimer.unref();
    this.expiryTimer = setInterval(() => this.expire(), Math.min(1000, Math.max(10, settings.ackTimeoutMs / 4)));
    this.expiryTimer.unref();
  }

  /**
   * Events one record group from a buffer may carry: a tenth of a batch, so that a group that does
   * not fit closes a batch at least nine tenths full (a message is never split across batches).
   */
  get recordGroupLimit(): number {
    return Math.max(1, Math.floor(this.settings.maxSize / 10));
  }

  get heldEvents(): number {
    return this.assembler.events;
  }

  get openBatches(): number {
    return this.assembler.openBatches;
  }

  /** As many batches out as Open batches allows: what comes now waits. */
  get atOpenLimit(): boolean {
    return this.assembler.openBatches >= this.settings.maxOpenBatches;
  }

  /**
   * The badge names the present state and its reason: red while it refuses messages (held events
   * at Max held, with how many were refused), yellow while batches wait for the next node to confirm (Open batches reached),
   * else green. Red ends once nothing was refused for REFUSAL_SHOWN_MS.
   */
  badge(now: number): BatcherBadge {
    const t = this.ports.t;
    const params = { open: this.openBatches, max: this.settings.maxOpenBatches, held: compactCount(this.heldEvents), refused: compactCount(this.refusedLately) };
    const shape = this.heldEvents > 0 ? 'dot' : 'ring';
    if (now - this.lastRefusedAt < REFUSAL_SHOWN_MS) return { fill: 'red', shape, text: t('status.full', params) };
    if (this.nextNodeOff) return { fill: 'yellow', shape, text: t('status.nextNodeOff', params) };
    if (this.atOpenLimit) return { fill: 'yellow', shape, text: t('status.atOpenLimit', params) };
    return { fill: 'green', shape, text: t('status.open', params) };
  }

  /** Takes one message in (not a control message); calls its done() now or when its batch completes. */
  receive(msg: BatcherInput['msg'], done: BatcherInput['done']): void {
    let records: TelemetryRecord[];
    if (isRecordGroup(msg)) {
      // Readings a buffer in front took in: never read as a message again.
      records = [];
      appendRecords(msg, records);
    } else if (isPlainReading(msg, this.settings.shape)) {
      records = [recordOf(msg)];
    } else {
      const shaped = shapeMessage(msg, this.settings.shape);
      if (shaped.outcome === 'not-a-reading') {
        this.counts.ignored++;
        this.counts.ignoredReason = shaped.reason;
        done();
        return;
      }
      records = recordsOf(shaped);
    }
    // Readings that no node before numbered are numbered here (before the decision to take them,
    // so a refusal shows as a gap), and none merges with another that shares its source and time.
    try {
      stampMissing(records, this.sequences, this.ports.rowFields());
    } catch (err) {
      // A record made elsewhere that takes no number (frozen, a getter that throws): the message
      // fails with the reason and counts as ignored, as it never entered.
      this.counts.ignored++;
      this.counts.ignoredReason = this.ports.t('log.notStamped', { error: errorText(err, this.ports.t) });
      done(new Error(this.counts.ignoredReason));
      return;
    }
    // Arriving after close (sent just before a deploy stopped this node): held by nobody, so refused.
    if (this.closing || !this.assembler.addRecords(records, { msg, done }, Date.now())) {
      this.refuse(msg, done, records.length);
      return;
    }
    this.counts.receivedMessages++;
    this.counts.receivedEvents += records.length;
    this.sendReady();
  }

  /** Sends the batch being filled now (control "flush"). */
  flush(): void {
    this.assembler.close('flush');
    this.sendReady();
  }

  /** A node after completed a message: if it is one of our batches, its messages complete with it. */
  completed(msgId: string, completion: Completion): void {
    if (this.finish(msgId, completion) && !this.closing) this.sendReady();
  }

  // The deploy handlers (contract followDeploys).
  pause(): void {
    this.paused = true;
  }

  lost(): void {
    const batches = this.open.drain();
    if (batches.length === 0) return;
    this.sendAgain(batches);
    this.ports.log(this.ports.t('log.resendAfterDeploy', { batches: batches.length }));
  }

  resume(): void {
    if (this.nextNodeOff) this.ports.log(this.ports.t('log.nextNodeBack'));
    this.paused = false;
    this.nextNodeOff = false;
    if (!this.closing) this.sendReady();
  }

  /** The flows have started without the node after this one (disabled): hold every batch until it is back. */
  absent(): void {
    if (!this.nextNodeOff) this.ports.log(this.ports.t('log.nextNodeOff'));
    this.paused = true;
    this.nextNodeOff = true;
  }

  /** The ids of every message held here, waiting or out (contract declareCustody). */
  *heldIds(): Iterable<string> {
    for (const batch of this.assembler.unsent()) for (const input of batch.inputs) if (typeof input.msg._msgid === 'string') yield input.msg._msgid;
    for (const batch of this.open.values()) for (const input of batch.inputs) if (typeof input.msg._msgid === 'string') yield input.msg._msgid;
  }

  /** The counters, with what earlier instances counted, and the gauges now. */
  stats(): BatcherStats {
    return { ...this.totals.add(this.counts), heldEvents: this.assembler.events, openBatches: this.assembler.openBatches, waitingBatches: this.assembler.waitingBatches };
  }

  /** Stops the timers and hands everything held back upstream, none of it confirmed written; `removed`: the node was deleted. */
  close(removed: boolean): void {
    this.closing = true;
    clearInterval(this.saveTimer);
    clearInterval(this.expiryTimer);
    if (this.ageTimer !== undefined) clearTimeout(this.ageTimer);
    for (const batch of this.open.drain()) this.finishBatch(batch, 'returned');
    for (const batch of this.assembler.drainUnsent()) {
      for (const input of batch.inputs) {
        this.ports.markCompletion(input.msg, 'returned');
        input.done();
      }
    }
    try {
      if (removed) {
        this.totals.remove();
        this.journal.remove();
      } else {
        this.totals.save(this.totals.add(this.counts));
        this.journal.close(this.sequences);
      }
    } catch (err) {
      this.ports.warn(this.ports.t('log.totalsNotSaved', { file: this.settings.fileBase, error: (err as Error).message }));
    }
  }

  private refuse(msg: BatcherInput['msg'], done: BatcherInput['done'], events: number): void {
    this.counts.refusedMessages++;
    this.counts.refusedEvents += events;
    const now = Date.now();
    if (now - this.lastRefusedAt >= REFUSAL_SHOWN_MS) this.refusedLately = 0;
    this.refusedLately++;
    this.lastRefusedAt = now;
    if (this.ports.canHandBack(msg)) {
      // A buffer in front keeps it (and, when full, slows down to what is confirmed): no loss, no error.
      this.ports.markCompletion(msg, 'returned');
      done();
    } else if (this.closing) {
      done(new Error(this.ports.t('log.closingNotTaken')));
    } else {
      done(new Error(this.ports.t('log.fullNotTaken', { held: this.assembler.events })));
    }
  }

  /** Sends what the open-batch limit allows, then re-arms the age timer for the batch being filled. */
  private sendReady(): void {
    for (let batch = this.paused ? undefined : this.assembler.next(); batch !== undefined; batch = this.assembler.next()) {
      if (!this.toResend.delete(batch)) this.countFlush(batch.reason);
      const id = this.ports.newId();
      this.open.add(id, batch, 1, this.settings.downstreamCount, Date.now() + this.settings.ackTimeoutMs);
      this.counts.batchesSent++;
      this.ports.sendBatch({ _msgid: id, payload: batch.records, batch: { id, count: batch.records.length, reason: batch.reason, firstAt: batch.firstAt } });
      if (this.settings.downstreamCount === 0) this.finish(id, 'ok');
    }
    this.armAgeTimer();
  }

  private countFlush(reason: FlushReason): void {
    if (reason === 'size') this.counts.flushedBySize++;
    else if (reason === 'age') this.counts.flushedByAge++;
    else this.counts.flushedByRequest++;
  }

  private armAgeTimer(): void {
    const since = this.assembler.currentSince;
    if (since === this.ageTimerFor) return;
    if (this.ageTimer !== undefined) clearTimeout(this.ageTimer);
    this.ageTimer = undefined;
    this.ageTimerFor = since;
    if (since === undefined || this.closing) return;
    this.ageTimer = setTimeout(() => {
      this.ageTimer = undefined;
      this.ageTimerFor = undefined;
      this.assembler.close('age');
      this.sendReady();
    }, Math.max(0, since + this.settings.maxAgeMs - Date.now()));
  }

  private finish(id: string, completion: Completion): boolean {
    const batch = this.open.complete(id);
    if (batch === undefined) return false;
    if (completion === 'returned' && this.paused && !this.closing) {
      // Handed back by a node that a deploy is stopping, while this batcher stays: it sends the
      // batch to the new node itself, so nothing depends on a buffer in front to resend it.
      this.sendAgain([batch]);
      return true;
    }
    this.finishBatch(batch, completion);
    return true;
  }

  private finishBatch(batch: Batch<BatcherInput>, completion: Completion): void {
    this.assembler.completed(batch);
    if (completion === 'returned') this.counts.batchesReturned++;
    else if (completion === 'failed') this.counts.batchesFailed++;
    else if (completion === 'ok') this.counts.batchesCompleted++;
    // The outcome travels upstream with each input, so the buffer counts (or redelivers) truthfully.
    for (const input of batch.inputs) {
      if (completion !== 'ok') this.ports.markCompletion(input.msg, completion);
      input.done();
    }
  }

  /** Puts sent batches back first in line; sendReady() sends them once not paused. */
  private sendAgain(batches: Batch<BatcherInput>[]): void {
    this.assembler.resend(batches);
    for (const batch of batches) this.toResend.add(batch);
    this.counts.batchesResent += batches.length;
  }

  /**
   * A batch the node after holds (a sink waiting out an outage) is spared: only one nobody holds
   * expires, and its events count upstream as unacknowledged, never as delivered.
   */
  private expire(): void {
    const now = Date.now();
    if (!this.open.due(now)) return;
    const held = this.ports.heldDownstream();
    let expired = 0;
    this.open.expire(
      now,
      (batch) => {
        expired++;
        this.counts.batchesUnacknowledged++;
        this.finishBatch(batch, 'unacknowledged');
      },
      held === undefined ? undefined : { has: (id) => held.has(id), extended: now + this.settings.ackTimeoutMs }
    );
    if (expired > 0) this.sendReady();
  }

  private saveState(): void {
    try {
      this.totals.save(this.totals.add(this.counts));
      this.journal.save(this.sequences, (err) => this.ports.warn(this.ports.t('log.sequencesNotSaved', { file: this.journal.file, error: err.message })));
    } catch (err) {
      this.ports.warn(this.ports.t('log.totalsNotSaved', { file: this.settings.fileBase, error: (err as Error).message }));
    }
  }
}
