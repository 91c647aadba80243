import type { OptionValues } from '../shared/option-table';
import type { OPTIONS } from '../../options/telemetry-buffer';
import type { RecordGroup, RowFields, TelemetryRecord } from '../readings/records';
import { recordsOf, resolveShapeOptions, ResolvedShapeOptions, shapeMessage } from '../readings/shapes';
import { SequenceStamper } from '../readings/sequence';
import { DropLog } from '../shared/drop-log';
import { approximateSize } from './approximate-size';
import { Intake } from './intake';
import { BufferCore } from './buffer-core';
import { CarryOver, type CarryOverLog, type CarriedTotals } from './carry-over';
import { DiskTierDriver } from './disk-tier-driver';
import { diskDirFor, diskTierSettings, openDiskTier } from './disk-tier-settings';
import { type BufferMessage, completeUpstream, contentOf, type HeldItem, HeldMessage, persisted, readBack } from './held-item';
import { packMessage, unpackMessage } from './message-codec';
import { ResendGuard } from './resend-guard';
import { sequencesAfter } from './segment-files';
import { TieredStore } from './tiered-store';
import { compactCount, formatBytes } from '../shared/badge-text';
import type { Completion } from '../shared/completion';
import type { Translate } from '../shared/text';

export type BufferOptionValues = OptionValues<typeof OPTIONS>;

/** What the controller needs from the runtime around it (Node-RED, or a test). */
export interface BufferPorts {
  /** Sends one message on the first output. */
  send(msg: BufferMessage): void;
  /** Sends the counters on the second output. */
  sendStats(stats: object): void;
  log: CarryOverLog;
  /** Words for the log and the badge in the user's language (src/core/shared/text.ts). */
  t: Translate;
  newId(): string;
  now(): number;
  downstream: {
    /** Nodes wired to the first output: each must complete what is released. */
    count: number;
    /** Readings per record group they take (0: not all are telemetry-batchers; they get the messages as they came). */
    groupLimit(): number;
    /** Message ids the nodes downstream still hold (a sink waiting out an outage): spared by the ack timeout. */
    held(): Set<string> | undefined;
    /** Marks a message as released by a buffer (the nodes after may hand it back). */
    markReleased(msg: object): void;
    /** The payload fields a reading's own sequence number and source are read from after this node (the sink's Seq from and Source from). */
    rowFields(): RowFields;
  };
}

export interface BadgeState {
  fill: 'red' | 'yellow' | 'green';
  shape: 'dot' | 'ring';
  text: string;
}

/**
 * The buffer node without Node-RED: takes messages in (as they came, or as their readings when only
 * telemetry-batchers are wired after it), numbers and times them, keeps them in a BufferCore (the
 * ring, and the disk tier when on), releases them as downstream confirms, and carries what it holds
 * over a restart (CarryOver). docs/architecture.md describes the mechanisms.
 */
export class BufferController {
  private readonly core: BufferCore<HeldItem>;
  private readonly shapes: ResolvedShapeOptions;
  private readonly sequences = new SequenceStamper();
  private readonly carry: CarryOver;
  private readonly resend = new ResendGuard();
  private readonly dropLog: DropLog;
  /** The same for what the nodes after never confirmed within the ack timeout (unacknowledged). */
  private readonly unconfirmedLog: DropLog;
  private disk: DiskTierDriver<HeldItem> | undefined;
  private store: TieredStore<HeldItem> | undefined;
  private groupLimit = 0;
  private pumpScheduled = false;
  private closing = false;
  private inputTurn = 0;
  private readonly intake: Intake;
  private resentSkipped = 0;
  private lastDropped = 0;
  private lateBeforeDeploy: string[] = [];
  /** The flows run without the node after this one (disabled): nothing is released (absent()). */
  private nextNodeOff = false;
  private readonly timers: NodeJS.Timeout[] = [];

  /** Throws (a RangeError naming the option) when the options cannot make a buffer; starts nothing. */
  constructor(
    private readonly o: BufferOptionValues,
    private readonly ports: BufferPorts,
    /** Where the buffer keeps its files (spool, disk tier, totals), and the node's id that names them. */
    private readonly place: { filesDir: string; nodeId: string },
  ) {
    this.shapes = resolveShapeOptions({ shape: o.shape, quality: o.quality });
    const settings = diskTierSettings(o);
    const newId = ports.newId;
    const fromBytes = (msg: Record<string, unknown>): HeldItem => readBack(msg, newId);
    this.core = new BufferCore<HeldItem>(
      { capacity: o.capacity, policy: o.dropPolicy, window: o.window, ackTimeoutMs: o.ackTimeout * 1000 },
      {
        keyOf: (items) => this.keyOf(items),
        release: (groups, keys) => this.release(groups, keys),
        groupLimit: () => {
          this.groupLimit = ports.downstream.groupLimit();
          return Math.max(1, this.groupLimit);
        },
        settled: completeUpstream,
        expectedCompletions: () => ports.downstream.count,
        now: ports.now,
      },
      // Store and forward: the ring overflows into the disk tier.
      settings.enabled
        ? (ring, onDrop) =>
            (this.store = new TieredStore<HeldItem>(ring, openDiskTier<HeldItem>(this.diskDir, settings, o.dropPolicy, fromBytes, persisted, (err) => this.diskStateChanged(err)), {
              replayRate: settings.replayRate,
              now: ports.now,
              onSpill: (held) => {
                completeUpstream(held);
                this.disk?.afterSpill();
              },
              onDrop,
            }))
        : undefined,
      // Under overload (a full ring dropping its oldest) the backlog waits encoded outside the heap
      // (see RingBuffer). The message object is then no longer needed upstream. Its bytes never
      // leave this process, so they need no screening for risky keys.
      {
        codec: {
          encode: (held) => packMessage(persisted(held)),
          decode: (bytes) => fromBytes(unpackMessage(bytes, true)),
          decodeRange: (block, start, end) => fromBytes(unpackMessage(block, true, start, end)),
        },
        onEncoded: completeUpstream,
      },
      o.memoryLimit > 0 ? { maxBytes: o.memoryLimit * 1024 * 1024, sizeOf: (held) => approximateSize(contentOf(held)) } : undefined,
    );
    if (this.store !== undefined) {
      const core = this.core;
      this.disk = new DiskTierDriver(this.store, settings, { inFlight: () => core.inFlightEvents, paused: () => core.isPaused, pump: () => this.schedulePump(), error: (message) => ports.log.error(ports.t('log.diskTierError', { dir: this.diskDir, error: message })), now: ports.now });
    }
    this.intake = new Intake(this.core, this.shapes, this.sequences, o.stampSequence, o.memoryLimit > 0, () => this.schedulePump(), ports.downstream.rowFields);
    this.carry = new CarryOver(place.filesDir, place.nodeId, ports.log, ports.t);
    this.dropLog = new DropLog(ports.t, o.diskSpill ? ports.t('log.bufferAndDiskFull', { capacity: o.capacity, megabytes: o.diskMaxMB, policy: o.dropPolicy }) : ports.t('log.bufferFull', { capacity: o.capacity, policy: o.dropPolicy }));
    this.unconfirmedLog = new DropLog(ports.t, ports.t('log.ackTimeout', { seconds: o.ackTimeout }), undefined, { started: 'log.unconfirmedStarted', stopped: 'log.unconfirmedStopped' });
  }

  private get diskDir(): string {
    return diskDirFor(this.place.filesDir, this.place.nodeId);
  }

  /**
   * Starts the buffer paused (nothing is released until the flow has started: a message sent
   * while it is still starting can find no receiver and vanish); what the previous run left (the
   * disk tier's backlog, the spool) is taken back before the first new message is numbered.
   */
  start(): void {
    const { core, carry, ports } = this;
    carry.openJournal(this.sequences);
    this.resend.arm(carry.takeResendMemory(ports.now()), ports.now());
    this.every(1000, () => {
      carry.saveTotals(() => this.totalsNow(), false);
      carry.saveSequences(this.sequences);
    });
    if (this.o.statsInterval > 0) this.every(this.o.statsInterval * 1000, () => this.sendStats());
    // What the nodes after still hold (a sink waiting out an outage) is spared by the ack timeout.
    this.every(Math.min(1000, Math.max(10, this.o.ackTimeout * 250)), () => {
      if (core.expire(() => ports.downstream.held()) > 0) this.schedulePump();
    });
    core.pause();
    if (this.store !== undefined && this.disk !== undefined) {
      this.disk.start();
      const d = this.store.diskCounters();
      if (d.diskRecovered > 0 || d.tornTailRecords > 0) {
        ports.log.info(ports.t(d.tornTailRecords > 0 ? 'log.diskRecoveredTornTail' : 'log.diskRecovered', { events: d.diskRecovered, bytes: formatBytes(d.diskBacklogBytes), tornBytes: d.tornTailBytes }));
      }
      // A disk tier of an earlier version kept the sequence numbers in its state file.
      this.sequences.restore(sequencesAfter(this.store.recoveredDiskState));
    }
    carry.restoreSpool((held, weight) => core.offer(held, weight), this.sequences, this.shapes, ports.newId);
  }

  /** A deploy is stopping nodes: release nothing until resume(). */
  pause(): void {
    this.core.pause();
    this.lateBeforeDeploy = this.resend.lately(this.ports.now());
  }

  /** A deploy replaced the node downstream before it confirmed what it had: send that again. */
  resendLost(): void {
    const events = this.core.resendInFlight();
    if (events > 0) this.ports.log.info(this.ports.t('log.resendAfterDeploy', { events }));
  }

  /** The flow has started (again). */
  resume(): void {
    if (this.nextNodeOff) this.ports.log.info(this.ports.t('log.nextNodeBack'));
    this.nextNodeOff = false;
    this.resend.arm(this.lateBeforeDeploy, this.ports.now());
    this.lateBeforeDeploy = [];
    this.core.resume();
    if (!this.closing) this.schedulePump();
  }

  /** The flow has started without the node after (disabled): hold everything until it is back. */
  absent(): void {
    this.core.pause();
    if (!this.nextNodeOff) this.ports.log.warn(this.ports.t('log.nextNodeOff'));
    this.nextNodeOff = true;
  }

  /** A node downstream completed the message with this id (if it is ours). */
  completed(msgId: string, completion: Completion): void {
    if (this.core.completed(msgId, completion)) {
      this.disk?.completed();
      this.schedulePump();
    }
  }

  /** One message from upstream; `done` completes it there. */
  input(msg: BufferMessage, done: (err?: Error) => void): void {
    this.inputTurn++;
    if (this.closing) {
      // After the spool was written: nobody will keep this message.
      done(new Error(this.ports.t('log.closingNotTaken')));
      return;
    }
    if (msg.control === 'stats') {
      this.sendStats();
      done();
      return;
    }
    const fingerprint = ResendGuard.fingerprint(msg);
    if (fingerprint !== undefined && this.resend.check(fingerprint, this.ports.now())) {
      this.resentSkipped++;
      done();
      return;
    }
    // Into telemetry-batchers, a message is taken in as its readings, and what arrives in one
    // event-loop turn leaves as one record group.
    this.groupLimit = this.ports.downstream.groupLimit();
    this.intake.take(msg, done, this.groupLimit > 0);
  }

  /**
   * Messages a producer sent just before a deploy stopped this node are still being delivered:
   * calls `then` once a few event-loop turns brought none (200 ms at most), so the spool has them too.
   */
  whenQuiet(then: () => void): void {
    const deadline = this.ports.now() + 200;
    let seen = -1;
    const check = (): void => {
      if (this.inputTurn === seen || this.ports.now() > deadline) then();
      else {
        seen = this.inputTurn;
        setImmediate(check);
      }
    };
    setImmediate(check);
  }

  /** Stops, spools what is held, keeps the disk tier for the next run; `removed`: the node was deleted. */
  close(removed: boolean): void {
    this.closing = true;
    const lately = this.resend.lately(this.ports.now());
    if (!removed && lately.length > 0) this.carry.saveResendMemory(lately, this.ports.now());
    for (const timer of this.timers) clearInterval(timer);
    // Released-but-unconfirmed first: they are older than what still waits in the ring.
    const { queued, inFlight } = this.core.drain();
    const all = inFlight.concat(queued);
    this.carry.writeSpool(all, removed, this.shapes);
    for (const held of all) completeUpstream(held);
    if (this.disk !== undefined) {
      this.disk.close();
      const onDisk = this.disk.stats().diskDepth;
      if (removed && onDisk > 0) this.ports.log.info(this.ports.t('log.diskKeptNodeDeleted', { events: onDisk, dir: this.diskDir }));
    }
    this.carry.close(removed, this.sequences, () => this.totalsNow());
  }

  /** The counters, totals across instances (see Totals). */
  stats(): ReturnType<BufferController['instanceStats']> & { sources: number; sourcesForgotten: number } {
    const current = this.instanceStats();
    // What this instance took back from the last one (restored from the spool, found on disk) was
    // counted then as received and as handed over (drained): counted once, it is no longer handed over.
    const recovered = (current as { diskRecovered?: number }).diskRecovered ?? 0;
    // Unless the last one was killed: what it spilled after its last save of the totals is on disk
    // but in neither count. Those readings were received, and are now carried in.
    const unsaved = Math.max(0, recovered - (this.carry.totals.heldAtSave('onDisk') ?? recovered));
    const carriedIn = current.restored + recovered - unsaved;
    const all = this.carry.totals.add(current as typeof current & Record<string, number>);
    all.received -= carriedIn;
    all.drained -= carriedIn;
    return { ...all, sources: this.sequences.sources, sourcesForgotten: this.sequences.forgotten };
  }

  /**
   * The badge: fill level and drops, or while a backlog is on disk its facts in turn, or while the
   * nodes after leave what they got unconfirmed past the ack timeout, how many. Logs the start and
   * end of dropping and of that.
   */
  badge(): BadgeState {
    const s = this.core.stats();
    const dropping = s.dropped > this.lastDropped;
    this.lastDropped = s.dropped;
    // What earlier instances dropped counts on the badge and in the log, as in the stats.
    const earlier = this.carry.totals.before('dropped');
    const now = this.ports.now();
    const line = this.dropLog.check(s.dropped, now, earlier);
    if (line !== undefined) this.ports.log.warn(line);
    const unconfirmedBefore = this.carry.totals.before('unacknowledged');
    const unconfirmedLine = this.unconfirmedLog.check(s.unacknowledged, now, unconfirmedBefore);
    if (unconfirmedLine !== undefined) this.ports.log.warn(unconfirmedLine);
    if (this.unconfirmedLog.active && !dropping) return { fill: 'yellow', shape: 'dot', text: this.ports.t('status.unconfirmed', { events: compactCount(s.unacknowledged + unconfirmedBefore) }) };
    const diskText = this.disk?.badgeText(s.dropped + earlier, this.ports.t);
    // A full disk tier drops whole segments, seconds apart: red for the whole episode, not by turns.
    if (diskText !== undefined) return { fill: dropping || this.dropLog.active ? 'red' : 'yellow', shape: 'dot', text: diskText };
    const ringDepth = this.disk === undefined ? s.depth : this.core.ringDepth;
    const fill = ringDepth / s.capacity;
    const pct = s.depth > 0 && fill < 0.01 ? '<1' : String(Math.round(fill * 100));
    return {
      fill: dropping || fill >= 0.9 ? 'red' : fill >= 0.5 || this.nextNodeOff ? 'yellow' : 'green',
      shape: s.depth > 0 || s.inFlight > 0 ? 'dot' : 'ring',
      text: this.ports.t(this.nextNodeOff ? 'status.nextNodeOff' : 'status.fill', { percent: pct, dropped: compactCount(s.dropped + earlier) }),
    };
  }

  private instanceStats() {
    return { ...this.core.stats(), ...this.carry.counters, ...(this.disk?.stats() ?? {}), resentSkipped: this.resentSkipped, ignored: this.intake.ignored, ignoredReason: this.intake.ignoredReason };
  }

  private totalsNow(): CarriedTotals {
    return this.stats() as unknown as CarriedTotals;
  }

  private sendStats(): void {
    this.ports.sendStats(this.stats());
  }

  private every(ms: number, run: () => void): void {
    const timer = setInterval(run, ms);
    timer.unref();
    this.timers.push(timer);
  }

  private schedulePump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      this.core.pump();
    });
  }

  /**
   * The id a released group travels under. A message keeps its own, unless a message with the same
   * id is still in flight: node-red-contrib-opcua sends every change of a monitored item under the
   * id of the message that asked for it, and a completion must find the message it is for.
   */
  private keyOf(items: readonly HeldItem[]): string {
    const first = items[0];
    if (items.length === 1 && first instanceof HeldMessage) {
      const msg = first.msg;
      if (typeof msg._msgid !== 'string' || this.core.isInFlight(msg._msgid)) msg._msgid = this.ports.newId();
      return msg._msgid as string;
    }
    return this.ports.newId();
  }

  private release(groups: HeldItem[][], keys: string[]): void {
    // One send per message: Node-RED deep-copies every message after the first in a single send().
    for (let i = 0; i < groups.length; i++) {
      const group = groups[i];
      let msg: BufferMessage;
      const first = group[0];
      if (group.length === 1 && first instanceof HeldMessage) {
        msg = first.msg;
      } else if (group.length === 1 && this.groupLimit === 0) {
        // A record read back (disk, spool) after the buffer was rewired away from batchers goes
        // on as the message it looks like, under its key, so that its completion finds it.
        msg = contentOf(first);
        msg._msgid = keys[i];
      } else {
        // Into batchers a reading always travels as a record, so nobody reads it as a message again.
        const records: TelemetryRecord[] = [];
        for (const held of group) {
          if (held instanceof HeldMessage) for (const record of recordsOf(shapeMessage(held.msg, this.shapes))) records.push(record);
          else records.push(held);
        }
        const recordGroup: RecordGroup & { _msgid: string } = { _msgid: keys[i], payload: records, telemetryRecords: true };
        msg = recordGroup as unknown as BufferMessage;
      }
      this.ports.downstream.markReleased(msg);
      this.ports.send(msg);
    }
    // With nothing wired, nobody will ever complete these: they are delivered as sent.
    if (this.ports.downstream.count === 0) for (const key of keys) this.core.completed(key, 'ok');
  }

  /** Once when the disk tier starts failing, once when it works again: never once per event. */
  private diskStateChanged(err: Error | undefined): void {
    if (err !== undefined) this.ports.log.error(this.ports.t('log.diskTierFails', { dir: this.diskDir, error: err.message }));
    else this.ports.log.info(this.ports.t('log.diskTierWorks', { dir: this.diskDir }));
  }
}
