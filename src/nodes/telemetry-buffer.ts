import { BufferCore, Outcome } from '../core/buffer/buffer-core';
import { diskBadgeText, diskDirFor, DiskSpillOptions, diskTierSettings, formatBytes, openDiskTier, sequencesAfter } from '../core/buffer/disk-spill';
import { packMessage, unpackMessage } from '../core/buffer/message-codec';
import type { DiskCounters } from '../core/buffer/disk-tier';
import { TieredStore } from '../core/buffer/tiered-store';
import { readOptions } from '../core/shared/option-table';
import { OPTIONS } from '../options/telemetry-buffer';
import { DropLog } from '../core/shared/drop-log';
import { ResendGuard } from '../core/buffer/resend-guard';
import { hasSequence, isRecordGroup, RecordGroup, recordOf, shortLivedRecordOf, stampRecords, TelemetryRecord } from '../core/readings/records';
import { isPlainReading, readingCount, recordsOf, resolveShapeOptions, ResolvedShapeOptions, shapeMessage } from '../core/readings/shapes';
import { approximateSize, DropReason } from '../core/buffer/ring-buffer';
import { SequenceJournal, SequenceStamper } from '../core/readings/sequence';
import { Totals } from '../core/shared/totals';
import { restoreSpool, spoolFileFor, writeSpool } from '../core/buffer/spool';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { installAdminEndpoints, publishStats } from './admin';
import { heldBy, markReleased, recordGroupLimit, watchCompletions } from './completions';
import { followDeploys } from './deploys';
import type { DoneFn, Node, NodeDef, NodeMessage, RedAPI } from './red';
import { ThrottledStatus } from './status';

interface Held {
  msg: NodeMessage;
  done: DoneFn;
  /** msg is one reading's TelemetryRecord, taken at ingest; its upstream was completed then. */
  record?: true;
  /** A message held as it came: the readings it counts for (at least 1), when known at ingest. */
  weight?: number;
  /** One reading of several of a message: its share of the message's approximate size (see sizeOf below). */
  size?: number;
}

const noUpstream = (): void => undefined;

/** Counters that add up across instances (see Totals); `dropped` and `drained` are sums of others but add up the same way. */
const CUMULATIVE = [
  'received', 'delivered', 'failed', 'unacknowledged', 'droppedOverflow', 'droppedOversize', 'droppedDiskError', 'dropped', 'drained',
  'restored', 'spooled', 'spoolLost', 'spoolErrors', 'spoolBadLines', 'spoolBadBytes', 'resentSkipped', 'ignored',
] as const;

export = function (RED: RedAPI): void {
  installAdminEndpoints(RED);

  function withNewId(msg: Record<string, unknown>): NodeMessage {
    msg._msgid = RED.util.generateId();
    return msg as NodeMessage;
  }

  /**
   * What the buffer writes of an item (to its encoded part, the disk, the spool): a message as it
   * is, a reading's record as a record group of one, so that it comes back as a record and is never
   * read as a message again (shaped a second time, a record could change: a refused one would lose
   * its reason, an explicit shape would refuse it).
   */
  function persisted(held: Held): Record<string, unknown> {
    return held.record === true ? { telemetryRecords: true, payload: [held.msg] } : (held.msg as Record<string, unknown>);
  }

  /** An item read back (see persisted); its upstream was completed when it was written. */
  function readBack(msg: Record<string, unknown>): Held {
    if (isRecordGroup(msg) && msg.payload.length === 1 && typeof msg.payload[0] === 'object' && msg.payload[0] !== null) {
      return { msg: msg.payload[0] as unknown as NodeMessage, done: noUpstream, record: true };
    }
    return { msg: withNewId(msg), done: noUpstream };
  }

  function TelemetryBuffer(this: Node, def: NodeDef): void {
    RED.nodes.createNode(this, def);
    const node = this;
    let core: BufferCore<Held>;
    let ackTimeoutMs: number;
    let statsIntervalMs: number;
    let stampSequence: boolean;
    let shapeOptions: ResolvedShapeOptions;
    let memoryBound = false;
    let window: number;
    let disk: DiskSpillOptions;
    let tiered: TieredStore<Held> | undefined;
    // Set below once the disk tier is open: flush once per event-loop turn after spilling.
    let scheduleFlush: () => void = () => undefined;
    let lastCompletionAt = Date.now();
    const spoolDir = typeof def.spoolDir === 'string' && def.spoolDir !== '' ? def.spoolDir : path.join(RED.settings.userDir ?? os.tmpdir(), 'telemetry-spool');
    try {
      const o = readOptions(OPTIONS, def);
      disk = diskTierSettings(o);
      shapeOptions = resolveShapeOptions({ shape: o.shape, quality: o.quality });
      const policy = o.dropPolicy;
      const capacity = o.capacity;
      const memoryLimitMB = o.memoryLimit;
      memoryBound = memoryLimitMB > 0;
      ackTimeoutMs = o.ackTimeout * 1000;
      statsIntervalMs = o.statsInterval * 1000;
      stampSequence = o.stampSequence;
      window = o.window;
      core = new BufferCore<Held>(
        {
          capacity,
          policy,
          window,
          ackTimeoutMs,
        },
        {
          keyOf,
          release,
          groupLimit: () => {
            groupLimit = recordGroupLimit(downstream);
            return Math.max(1, groupLimit);
          },
          settled,
          expectedCompletions: () => downstream.length,
          now: Date.now,
        },
        // Store-and-forward: the ring overflows into a bounded segmented log on disk.
        disk.enabled
          ? (ring, onDrop) =>
              (tiered = new TieredStore<Held>(ring, openDiskTier<Held>(diskDirFor(spoolDir, node.id), disk, policy, readBack, diskStateChanged, persisted), {
                replayRate: disk.replayRate,
                now: Date.now,
                onSpill: (held) => {
                  held.done();
                  scheduleFlush();
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
            decode: (bytes) => readBack(unpackMessage(bytes, true)),
            decodeRange: (block, start, end) => readBack(unpackMessage(block, true, start, end)),
          },
          onEncoded: (held) => held.done(),
        },
        memoryLimitMB > 0 ? { maxBytes: memoryLimitMB * 1024 * 1024, sizeOf: (held) => held.size ?? approximateSize(held.msg) } : undefined,
      );
    } catch (err) {
      node.error(`telemetry-buffer not started: ${(err as Error).message}`);
      node.status({ fill: 'red', shape: 'ring', text: 'bad config' });
      node.on('input', (_msg, _send, done) => done(new Error(`telemetry-buffer not started: ${(err as Error).message}`)));
      return;
    }

    const downstream = (def.wires?.[0] ?? []).slice();
    /** Readings per record group the nodes downstream take (0: they are not all telemetry-batchers, and get the messages as they came). */
    let groupLimit = 0;
    // Sequence numbers continue across redeploys and restarts through the journal beside the spool.
    const sequences = new SequenceStamper();
    const journal = new SequenceJournal(`${spoolFileFor(spoolDir, node.id).replace(/\.jsonl$/, '')}.sequences`);
    try {
      const opened = journal.open(sequences);
      if (!opened.clean) node.warn(`the previous run did not close cleanly: what it held in memory is lost (gaps in seq); sequence numbers skip ahead`);
    } catch (err) {
      node.warn(`sequence numbers of ${journal.file} could not be read (${(err as Error).message}): numbering starts again`);
    }
    let pumpScheduled = false;
    let closing = false;
    /** Messages that are not readings (a subscription id, a status, an empty poll), taken in into batchers and not kept; the last one's reason. */
    let ignored = 0;
    let ignoredReason = '';
    let lastDropped = 0;
    let dropping = false;

    /**
     * The id a released group travels under. A message keeps its own, unless a message with the same
     * id is still in flight: node-red-contrib-opcua sends every change of a monitored item under the
     * id of the message that asked for it, and a completion must find the message it is for.
     */
    function keyOf(items: readonly Held[]): string {
      if (items.length === 1 && items[0].record !== true) {
        const msg = items[0].msg;
        if (typeof msg._msgid !== 'string' || core.inflight.has(msg._msgid)) msg._msgid = RED.util.generateId();
        return msg._msgid as string;
      }
      return RED.util.generateId();
    }

    function release(groups: Held[][], keys: string[]): void {
      // One send per message: Node-RED deep-copies every message after the first in a single send().
      for (let i = 0; i < groups.length; i++) {
        const group = groups[i];
        let msg: NodeMessage;
        if (group.length === 1 && (group[0].record !== true || groupLimit === 0)) {
          msg = group[0].msg;
        } else {
          // Into batchers a reading always travels as a record, so nobody reads it as a message again.
          const records: TelemetryRecord[] = [];
          for (const held of group) {
            if (held.record === true) records.push(held.msg as TelemetryRecord);
            else for (const record of recordsOf(shapeMessage(held.msg, shapeOptions))) records.push(record);
          }
          const recordGroup: RecordGroup & { _msgid: string } = { _msgid: keys[i], payload: records, telemetryRecords: true };
          msg = recordGroup as unknown as NodeMessage;
        }
        markReleased(msg);
        node.send([msg, null]);
      }
      // With nothing wired, nobody will ever complete these: they are delivered as sent.
      if (downstream.length === 0) for (const key of keys) core.completed(key, 'ok');
    }

    function settled(held: Held, _outcome: Outcome | DropReason): void {
      held.done();
    }

    /** The readings a message held as it came counts for: readingCount with this buffer's shape options, at least 1. */
    function messageWeight(msg: NodeMessage): number {
      return isPlainReading(msg, shapeOptions) ? 1 : Math.max(1, readingCount(shapeMessage(msg, shapeOptions)));
    }

    function weightOf(held: Held): number {
      return held.record === true ? 1 : (held.weight ?? messageWeight(held.msg));
    }

    function schedulePump(): void {
      if (pumpScheduled) return;
      pumpScheduled = true;
      setImmediate(() => {
        pumpScheduled = false;
        core.pump();
      });
    }

    const stopWatching = watchCompletions(RED, downstream, (msgId, completion) => {
      if (core.completed(msgId, completion)) {
        lastCompletionAt = Date.now();
        schedulePump();
      }
    });

    // What the nodes after still hold (a sink waiting out an outage) is spared by the ack timeout.
    const expiryTimer = setInterval(() => {
      if (core.expire(() => heldBy(downstream)) > 0) schedulePump();
    }, Math.min(1000, Math.max(10, ackTimeoutMs / 4)));
    expiryTimer.unref();

    const spoolFile = spoolFileFor(spoolDir, node.id);
    /**
     * restored: events read back from the spool at start (counted as received again). spooled:
     * events written to it at close; spoolLost: events drained at close that could not be written
     * (drained = spooled + spoolLost). spoolBadLines/Bytes: what a restore could not read back (the
     * file is then kept aside). spoolErrors: restores and spools that failed in part or whole.
     */
    const spoolCounters = { restored: 0, spooled: 0, spoolLost: 0, spoolErrors: 0, spoolBadLines: 0, spoolBadBytes: 0 };
    const replayMeter = { at: Date.now(), replayed: tiered?.diskCounters().replayed ?? 0, rate: 0 };
    /** Seconds to replay the disk backlog at the rate seen lately (bounded by the configured rate). */
    const drainSeconds = (d: DiskCounters): number => (d.diskDepth === 0 ? 0 : replayMeter.rate > 0 ? d.diskDepth / replayMeter.rate : Infinity);
    const diskStats = (): (DiskCounters & { diskDrainSeconds: number }) | Record<string, never> => {
      if (tiered === undefined) return {};
      const d = tiered.diskCounters();
      const eta = drainSeconds(d);
      return { ...d, diskDrainSeconds: Number.isFinite(eta) ? Math.round(eta) : -1 };
    };
    // What an MQTT broker sends again after a deploy (see ResendGuard), carried over a restart in a small file.
    const resend = new ResendGuard();
    const resendFile = `${spoolFile.replace(/\.jsonl$/, '')}.resend.json`;
    let resentSkipped = 0;
    try {
      const saved = JSON.parse(fs.readFileSync(resendFile, 'utf8')) as { savedAt: number; lately: string[] };
      fs.rmSync(resendFile, { force: true });
      if (Date.now() - saved.savedAt < 60_000 && Array.isArray(saved.lately)) resend.arm(saved.lately.filter((f) => typeof f === 'string'), Date.now());
    } catch {
      /* no deploy just before this start */
    }
    // Totals continue across redeploys and restarts. What this instance took back from the last one
    // (restored from the spool, found on disk) was counted then as received and as handed over
    // (drained): counted once, it is no longer handed over.
    const totals = new Totals<(typeof CUMULATIVE)[number]>(`${spoolFile.replace(/\.jsonl$/, '')}.totals.json`, CUMULATIVE);
    const instanceStats = () => ({ ...core.stats(), ...spoolCounters, ...diskStats(), resentSkipped, ignored, ignoredReason });
    const telemetryStats = (): ReturnType<typeof instanceStats> & { sources: number; sourcesForgotten: number } => {
      const current = instanceStats();
      const carriedIn = current.restored + ((current as { diskRecovered?: number }).diskRecovered ?? 0);
      const all = totals.add(current as ReturnType<typeof instanceStats> & Record<(typeof CUMULATIVE)[number], number>);
      all.received -= carriedIn;
      all.drained -= carriedIn;
      return { ...all, sources: sequences.sources, sourcesForgotten: sequences.forgotten };
    };
    function saveState(closingNow: boolean): void {
      try {
        const s = telemetryStats() as unknown as Record<(typeof CUMULATIVE)[number], number> & { depth: number; inFlight: number };
        // Whatever is held now counts as handed over: after a crash the next start finds what it can.
        if (!closingNow) s.drained += s.depth + s.inFlight;
        else s.drained += s.depth; // at close only the disk still holds events
        totals.save(s);
      } catch (err) {
        node.warn(`could not save the totals to ${totals.file}: ${(err as Error).message}`);
      }
    }
    const saveTimer = setInterval(() => {
      saveState(false);
      journal.save(sequences, (err) => node.warn(`could not save the sequence numbers to ${journal.file}: ${err.message}`));
    }, 1000);
    saveTimer.unref();
    node.telemetryStats = telemetryStats;
    const unpublish = publishStats(node, telemetryStats);

    function sendStats(): void {
      node.send([null, { topic: 'stats', payload: telemetryStats() }]);
    }
    const statsTimer = statsIntervalMs > 0 ? setInterval(sendStats, statsIntervalMs) : undefined;
    statsTimer?.unref();

    const dropLog = new DropLog(`the buffer is full (capacity ${core.stats().capacity} events, policy ${core.policy}): the nodes after it are slower than the line`);
    const status = new ThrottledStatus(node, () => {
      const s = core.stats();
      dropping = s.dropped > lastDropped;
      lastDropped = s.dropped;
      const line = dropLog.check(s.dropped, Date.now());
      if (line !== undefined) node.warn(line);
      const d = tiered?.diskCounters();
      if (d !== undefined && d.diskDepth > 0) {
        // Three facts, under 20 characters each, shown in turn (2 s each): backlog, time to drain, drops.
        const text = diskBadgeText(Math.floor(Date.now() / 2000), d.diskDepth, d.diskBacklogBytes, drainSeconds(d), s.dropped);
        return { fill: dropping ? 'red' : 'yellow', shape: 'dot', text };
      }
      const ringDepth = tiered === undefined ? s.depth : tiered.ring.depth;
      const fill = ringDepth / s.capacity;
      const pct = s.depth > 0 && fill < 0.01 ? '<1' : String(Math.round(fill * 100));
      return {
        fill: dropping || fill >= 0.9 ? 'red' : fill >= 0.5 ? 'yellow' : 'green',
        shape: s.depth > 0 || s.inFlight > 0 ? 'dot' : 'ring',
        text: `${pct}% dropped ${s.dropped}`,
      };
    });
    status.refresh();

    // Nothing is released until the flow has started (a message sent while the flow is still
    // starting can find no receiver and vanish), nor while a deploy replaces nodes downstream.
    core.paused = true;
    const resumeAfterDeploy = (): void => {
      clearTimeout(startTimer);
      core.paused = false;
      if (!closing) schedulePump();
    };
    let lateBeforeDeploy: string[] = [];
    const stopFollowingDeploys = followDeploys(RED, downstream, {
      pause: () => {
        core.paused = true;
        lateBeforeDeploy = resend.lately(Date.now());
      },
      lost: () => {
        const events = core.resendInFlight();
        if (events > 0) node.log(`a deploy replaced the next node before it confirmed ${events} events: sending them again`);
      },
      resume: () => {
        resend.arm(lateBeforeDeploy, Date.now());
        lateBeforeDeploy = [];
        resumeAfterDeploy();
      },
    });
    // Fallback for a runtime that never announces flows:started to this node.
    const startTimer = setTimeout(resumeAfterDeploy, 2000);

    // The disk tier: records go to the OS once per event-loop turn (a killed process loses none of
    // them), to the platter every fsync interval (a power cut loses at most that much), with the
    // replay cursor. A timer keeps replay going while the token bucket refills.
    let flushScheduled = false;
    function syncDisk(clean = false): void {
      if (tiered === undefined) return;
      if (clean) tiered.disk.close();
      else tiered.disk.sync();
    }
    function diskFailed(err: unknown): void {
      node.error(`disk spool ${tiered?.disk.dir ?? ''}: ${(err as Error).message}`);
    }
    /** Once when the disk tier starts failing, once when it works again: never once per event. */
    function diskStateChanged(err: Error | undefined): void {
      const dir = diskDirFor(spoolDir, node.id);
      if (err !== undefined) node.error(`disk spool ${dir} fails (${err.message}): events that cannot be stored or read back are dropped and counted (droppedDiskError)`);
      else node.log(`disk spool ${dir} works again`);
    }
    let syncTimer: NodeJS.Timeout | undefined;
    let replayTimer: NodeJS.Timeout | undefined;
    if (tiered !== undefined) {
      const t = tiered;
      const flushNow = (): void => {
        flushScheduled = false;
        try {
          if (disk.fsyncIntervalMs === 0) syncDisk();
          else t.disk.flush();
        } catch (err) {
          diskFailed(err);
        }
      };
      const nodeFlush = (): void => {
        if (flushScheduled || closing) return;
        flushScheduled = true;
        setImmediate(flushNow);
      };
      scheduleFlush = nodeFlush;
      if (disk.fsyncIntervalMs > 0) {
        syncTimer = setInterval(() => {
          try {
            syncDisk();
          } catch (err) {
            diskFailed(err);
          }
        }, disk.fsyncIntervalMs);
        syncTimer.unref();
      }
      replayTimer = setInterval(() => {
        const now = Date.now();
        const replayed = t.diskCounters().replayed;
        if (now - replayMeter.at >= 2000) {
          const rate = ((replayed - replayMeter.replayed) * 1000) / (now - replayMeter.at);
          replayMeter.rate = rate > 0 ? rate : t.disk.depth > 0 && core.inflight.weight === 0 && !core.paused ? disk.replayRate : 0;
          replayMeter.at = now;
          replayMeter.replayed = replayed;
        }
        if (core.inflight.weight === 0) lastCompletionAt = now;
        t.forceSpill = disk.spillAfterMs > 0 && now - lastCompletionAt > disk.spillAfterMs;
        if (t.disk.depth > 0) schedulePump();
      }, 50);
      replayTimer.unref();
      const d = t.diskCounters();
      if (d.diskRecovered > 0 || d.tornTailRecords > 0) {
        node.log(`disk spool: ${d.diskRecovered} events (${formatBytes(d.diskBacklogBytes)}) left by the previous run will be replayed${d.tornTailRecords > 0 ? `; a torn tail of ${d.tornTailBytes} bytes was cut off` : ''}`);
      }
      // A disk tier of an earlier version kept the sequence numbers in its state file.
      sequences.restore(sequencesAfter(t.disk.recoveredState));
    }

    // What the previous instance spooled on close goes first, and its sequence numbers continue
    // before the first new message is stamped.
    // Read line by line: a spool may be larger than one string can hold.
    const restore = restoreSpool<NodeMessage>(spoolFile, {
      onHeader: (header) => sequences.restore(header.sequences),
      onMessage: (msg) => {
        if (isRecordGroup(msg)) {
          // Readings kept as records (see persisted): each is one reading again.
          for (const record of msg.payload) {
            spoolCounters.restored++;
            core.offer({ msg: (typeof record === 'object' && record !== null ? record : { payload: record }) as NodeMessage, done: noUpstream, record: true }, 1);
          }
          return;
        }
        msg._msgid = RED.util.generateId();
        const weight = messageWeight(msg);
        spoolCounters.restored += weight;
        core.offer({ msg, done: noUpstream, weight }, weight);
      },
    });
    spoolCounters.spoolBadLines += restore.badLines;
    spoolCounters.spoolBadBytes += restore.badBytes;
    if (restore.restored > 0) node.log(`restored ${restore.restored} messages (${spoolCounters.restored} events) spooled at the last shutdown`);
    if (restore.error !== undefined || restore.badLines > 0) {
      spoolCounters.spoolErrors++;
      const why = restore.error !== undefined ? restore.error.message : `${restore.badLines} unreadable lines`;
      const kept = restore.keptAs !== undefined ? `kept as ${restore.keptAs}, never read again` : 'it stays where it is (the next spool keeps it aside)';
      node.error(`could not restore the spool ${spoolFile}: ${why}; ${restore.badBytes} bytes not restored, ${kept}`);
    }

    node.on('input', (msg, _send, done) => {
      inputTurn++;
      if (closing) {
        // After the spool was written: nobody will keep this message.
        done(new Error('telemetry-buffer is closing: message not taken'));
        return;
      }
      if (msg.control === 'stats') {
        sendStats();
        done();
        return;
      }
      const fingerprint = ResendGuard.fingerprint(msg);
      if (fingerprint !== undefined && resend.check(fingerprint, Date.now())) {
        resentSkipped++;
        done();
        return;
      }
      // Into telemetry-batchers, a message is taken in as its readings, and what arrives in one
      // event-loop turn leaves as one record group.
      groupLimit = recordGroupLimit(downstream);
      const grouping = groupLimit > 0;
      if (isPlainReading(msg, shapeOptions)) {
        // One reading, exactly as the message has it (a simulator's, MQTT's, most flows'): the hot path.
        // On: every reading is numbered here. Off: the producer's own msg.seq or payload.seq is kept,
        // and only a reading without one is numbered, so no two readings become one row.
        if (stampSequence || !hasSequence(msg as TelemetryRecord)) msg.seq = sequences.reserve(typeof msg.topic === 'string' ? msg.topic : '', 1);
        // Fixing the time at ingest makes a retried or replayed reading map to the same row.
        if (msg.timestamp === undefined) msg.timestamp = Date.now();
        if (grouping) {
          // A batcher reads only the record, so the buffer keeps only the record and completes the
          // message now: the message and Node-RED's done() closure die young instead of being
          // promoted by V8 while the reading waits for its commit (npm run bench, item c).
          // Two literals on purpose (see shortLivedRecordOf): what a full ring turns into text at once
          // must not share the allocation site of what waits as an object for its commit.
          const held: Held = core.keepsAsObject(1)
            ? { msg: recordOf(msg) as NodeMessage, done: noUpstream, record: true }
            : { msg: shortLivedRecordOf(msg) as NodeMessage, done: noUpstream, record: true };
          core.offer(held, 1, false);
          done();
          schedulePump();
          return;
        }
        core.offer({ msg, done, weight: 1 }, 1);
        return;
      }
      const shaped = shapeMessage(msg, shapeOptions);
      if (grouping) {
        // Into batchers a message becomes its readings here: each is one entry of the ring, numbered
        // in its own source before the drop decision (a dropped reading is a gap in its source), and
        // the message is completed now, as a one-reading message is.
        if (shaped.outcome === 'not-a-reading') {
          ignored++;
          ignoredReason = shaped.reason;
          done();
          return;
        }
        const records = recordsOf(shaped);
        stampRecords(records, sequences, stampSequence);
        // The input's own time wins (an OPC UA source timestamp, a payload's ts); the buffer's clock
        // fills in only where there is none.
        const now = Date.now();
        for (const record of records) if (record.timestamp === undefined || record.timestamp === null) record.timestamp = now;
        if (records.length === 1) {
          core.offer({ msg: records[0] as NodeMessage, done: noUpstream, record: true }, 1, false);
        } else {
          // Each reading's share of the message's size: the size of 100 readings one by one cost more
          // than everything else the buffer does with them (npm run bench, item d).
          const size = memoryBound ? Math.ceil(approximateSize(msg) / records.length) + 64 : 0;
          for (const record of records) core.offer({ msg: record as NodeMessage, done: noUpstream, record: true, size }, 1, false);
        }
        done();
        schedulePump();
        return;
      }
      // In front of any other node (MQTT out, HTTP request) a message goes on as it came, counting
      // for its readings; msg.seq is then the first of that many numbers of msg.topic.
      const weight = Math.max(1, readingCount(shaped));
      if (stampSequence || !hasSequence(msg as TelemetryRecord)) msg.seq = sequences.reserve(typeof msg.topic === 'string' ? msg.topic : '', weight);
      if (msg.timestamp === undefined) msg.timestamp = Date.now();
      core.offer({ msg, done, weight }, weight);
    });

    // Messages a producer sent just before the deploy stopped this node are still being delivered:
    // take them in for a few event-loop turns (until one turn brings none), so the spool has them too.
    let inputTurn = 0;
    function whenQuiet(then: () => void): void {
      const deadline = Date.now() + 200;
      let seen = -1;
      const check = (): void => {
        if (inputTurn === seen || Date.now() > deadline) then();
        else {
          seen = inputTurn;
          setImmediate(check);
        }
      };
      setImmediate(check);
    }

    node.on('close', (removed, closed) => whenQuiet(() => {
      closing = true;
      const lately = resend.lately(Date.now());
      if (!removed && lately.length > 0) {
        try {
          fs.mkdirSync(path.dirname(resendFile), { recursive: true });
          fs.writeFileSync(resendFile, JSON.stringify({ savedAt: Date.now(), lately }));
        } catch (err) {
          node.warn(`could not save what an MQTT broker may send again to ${resendFile}: ${(err as Error).message}`);
        }
      }
      stopFollowingDeploys();
      clearTimeout(startTimer);
      stopWatching();
      unpublish();
      clearInterval(expiryTimer);
      if (syncTimer !== undefined) clearInterval(syncTimer);
      if (replayTimer !== undefined) clearInterval(replayTimer);
      if (statsTimer !== undefined) clearInterval(statsTimer);
      status.stop();
      // Released-but-unconfirmed first: they are older than what still waits in the ring.
      const { queued, inFlight } = core.drain();
      const all = inFlight.concat(queued);
      let events = 0;
      for (const held of all) events += weightOf(held);
      try {
        const { skipped, skippedAt } = writeSpool(spoolFile, {}, all.map(persisted));
        let lost = 0;
        for (const i of skippedAt) lost += weightOf(all[i]);
        spoolCounters.spooled += events - lost;
        spoolCounters.spoolLost += lost;
        if (all.length > 0) {
          node.log(`spooled ${all.length - skipped} unconfirmed messages to ${spoolFile}${removed ? ' (this node was deleted: import the file or restore the node to replay them)' : ''}`);
        }
        if (skipped > 0) {
          spoolCounters.spoolErrors++;
          node.error(`could not spool ${skipped} unconfirmed messages (${lost} events) that cannot be written as JSON (nested too deep?)`);
        }
      } catch (err) {
        spoolCounters.spoolErrors++;
        spoolCounters.spoolLost += events;
        node.error(`could not spool ${all.length} unconfirmed messages to ${spoolFile}: ${(err as Error).message}`);
      }
      for (const held of all) held.done();
      // The disk keeps its records for the next run, with its cursor.
      try {
        syncDisk(true);
      } catch (err) {
        diskFailed(err);
      }
      clearInterval(saveTimer);
      try {
        if (removed) {
          totals.remove();
          journal.remove();
        } else {
          saveState(true);
          journal.close(sequences);
        }
      } catch (err) {
        node.warn(`could not save the sequence numbers to ${journal.file}: ${(err as Error).message}`);
      }
      closed();
    }));
  }

  RED.nodes.registerType('telemetry-buffer', TelemetryBuffer);
};
