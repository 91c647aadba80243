import * as os from 'os';
import * as path from 'path';
import { Batch, BatchAssembler, FlushReason } from '../core/batching/batch-assembler';
import { InflightTracker } from '../core/buffer/inflight';
import { readOptions } from '../core/shared/option-table';
import { OPTIONS } from '../options/telemetry-batcher';
import { appendRecords, isRecordGroup, recordOf, stampMissing, type TelemetryRecord } from '../core/readings/records';
import { isPlainReading, resolveShapeOptions, recordsOf, shapeMessage, type ResolvedShapeOptions } from '../core/readings/shapes';
import { SequenceJournal, SequenceStamper } from '../core/readings/sequence';
import { Totals } from '../core/shared/totals';
import { installAdminEndpoints, publishStats } from './admin';
import { acceptRecordGroups, canHandBack, Completion, declareCustody, followDeploys, heldBy, markCompletion, watchCompletions } from './contract';
import type { DoneFn, Node, NodeDef, NodeMessage, RedAPI } from './red';
import { compactCount, ThrottledStatus } from './status';

interface Input {
  msg: NodeMessage;
  done: DoneFn;
}

interface BatcherStats {
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

export = function (RED: RedAPI): void {
  installAdminEndpoints(RED);

  function TelemetryBatcher(this: Node, def: NodeDef): void {
    RED.nodes.createNode(this, def);
    const node = this;
    let assembler: BatchAssembler<Input>;
    let ackTimeoutMs: number;
    let shapeOptions: ResolvedShapeOptions;
    try {
      const o = readOptions(OPTIONS, def);
      assembler = new BatchAssembler<Input>({ maxSize: o.maxSize, maxAgeMs: o.maxAge, maxOpenBatches: o.maxOpenBatches, maxHeldEvents: o.maxHeld });
      ackTimeoutMs = o.ackTimeout * 1000;
      shapeOptions = resolveShapeOptions({ shape: o.shape, quality: o.quality });
    } catch (err) {
      const message = `telemetry-batcher not started: ${(err as Error).message}`;
      node.error(message);
      node.status({ fill: 'red', shape: 'ring', text: 'bad config' });
      node.on('input', (_msg, _send, done) => done(new Error(message)));
      return;
    }

    const downstream = (def.wires?.[0] ?? []).slice();
    // A buffer in front may send record groups: up to a tenth of a batch each, so that a group that
    // does not fit closes a batch at least nine tenths full (a message is never split across batches).
    const withdrawGroups = acceptRecordGroups(node.id, Math.max(1, Math.floor(assembler.options.maxSize / 10)));
    const open = new InflightTracker<Batch<Input>>();
    const stats: BatcherStats = {
      receivedMessages: 0, receivedEvents: 0, batchesSent: 0, batchesCompleted: 0, batchesFailed: 0,
      batchesReturned: 0, batchesResent: 0, batchesUnacknowledged: 0, refusedMessages: 0, refusedEvents: 0, heldEvents: 0, openBatches: 0,
      waitingBatches: 0, flushedBySize: 0, flushedByAge: 0, flushedByRequest: 0, ignored: 0, ignoredReason: '',
    };
    // Totals and sequence numbers outlive this instance (a redeploy, a restart).
    const stateDir = typeof def.spoolDir === 'string' && def.spoolDir !== '' ? def.spoolDir : path.join(RED.settings.userDir ?? os.tmpdir(), 'telemetry-spool');
    const fileBase = path.join(stateDir, node.id.replace(/[^A-Za-z0-9_.-]/g, '_'));
    const totals = new Totals<(typeof CUMULATIVE)[number]>(`${fileBase}.totals.json`, CUMULATIVE);
    const sequences = new SequenceStamper();
    const journal = new SequenceJournal(`${fileBase}.sequences`);
    try {
      journal.open(sequences);
    } catch (err) {
      node.warn(`sequence numbers of ${fileBase}.sequences could not be read (${(err as Error).message}): numbering starts again`);
    }
    function saveState(): void {
      try {
        totals.save(totals.add(stats));
        journal.save(sequences, (err) => node.warn(`could not save the sequence numbers to ${journal.file}: ${err.message}`));
      } catch (err) {
        node.warn(`could not save the totals and sequence numbers to ${fileBase}: ${(err as Error).message}`);
      }
    }
    const saveTimer = setInterval(saveState, 1000);
    saveTimer.unref();
    let ageTimer: NodeJS.Timeout | undefined;
    let ageTimerFor: number | undefined;
    let closing = false;
    let paused = false;
    /** Batches put back to be sent again: already counted when first sent. */
    const toResend = new Set<Batch<Input>>();

    function countFlush(reason: FlushReason): void {
      if (reason === 'size') stats.flushedBySize++;
      else if (reason === 'age') stats.flushedByAge++;
      else stats.flushedByRequest++;
    }

    /** Sends what the open-batch limit allows, then re-arms the age timer for the batch being filled. */
    function sendReady(): void {
      for (let batch = paused ? undefined : assembler.next(); batch !== undefined; batch = assembler.next()) {
        if (!toResend.delete(batch)) countFlush(batch.reason);
        const id = RED.util.generateId();
        open.add(id, batch, 1, downstream.length, Date.now() + ackTimeoutMs);
        stats.batchesSent++;
        node.send([{ _msgid: id, payload: batch.records, batch: { id, count: batch.records.length, reason: batch.reason, firstAt: batch.firstAt } }, null]);
        if (downstream.length === 0) finish(id, 'ok');
      }
      armAgeTimer();
    }

    function armAgeTimer(): void {
      const since = assembler.currentSince;
      if (since === ageTimerFor) return;
      if (ageTimer !== undefined) clearTimeout(ageTimer);
      ageTimer = undefined;
      ageTimerFor = since;
      if (since === undefined || closing) return;
      ageTimer = setTimeout(() => {
        ageTimer = undefined;
        ageTimerFor = undefined;
        assembler.close('age');
        sendReady();
      }, Math.max(0, since + assembler.options.maxAgeMs - Date.now()));
    }

    function finishBatch(batch: Batch<Input>, completion: Completion): void {
      assembler.completed(batch);
      if (completion === 'returned') stats.batchesReturned++;
      else if (completion === 'failed') stats.batchesFailed++;
      else if (completion === 'ok') stats.batchesCompleted++;
      // The outcome travels upstream with each input, so the buffer counts (or redelivers) truthfully.
      for (const input of batch.inputs) {
        if (completion !== 'ok') markCompletion(input.msg, completion);
        input.done();
      }
    }

    /** Puts sent batches back first in line; sendReady() sends them once not paused. */
    function sendAgain(batches: Batch<Input>[]): void {
      assembler.resend(batches);
      for (const batch of batches) toResend.add(batch);
      stats.batchesResent += batches.length;
    }

    function finish(id: string, completion: Completion): boolean {
      const batch = open.complete(id);
      if (batch === undefined) return false;
      if (completion === 'returned' && paused && !closing) {
        // Handed back by a node that a deploy is stopping, while this batcher stays: it sends the
        // batch to the new node itself, so nothing depends on a buffer in front to resend it.
        sendAgain([batch]);
        return true;
      }
      finishBatch(batch, completion);
      return true;
    }

    const stopWatching = watchCompletions(RED, downstream, (msgId, completion) => {
      if (finish(msgId, completion) && !closing) sendReady();
    });
    const stopFollowingDeploys = followDeploys(RED, downstream, {
      pause: () => {
        paused = true;
      },
      lost: () => {
        const batches = open.drain();
        if (batches.length === 0) return;
        sendAgain(batches);
        node.log(`a deploy replaced the next node before it confirmed ${batches.length} batches: sending them again`);
      },
      resume: () => {
        paused = false;
        if (!closing) sendReady();
      },
    });

    // A batch the node after holds (a sink waiting out an outage) is spared: only one nobody holds
    // expires, and its events count upstream as unacknowledged, never as delivered.
    const expiryTimer = setInterval(() => {
      const now = Date.now();
      if (!open.due(now)) return;
      const held = heldBy(downstream);
      let expired = 0;
      open.expire(
        now,
        (batch) => {
          expired++;
          stats.batchesUnacknowledged++;
          finishBatch(batch, 'unacknowledged');
        },
        held === undefined ? undefined : { has: (id) => held.has(id), extended: now + ackTimeoutMs }
      );
      if (expired > 0) sendReady();
    }, Math.min(1000, Math.max(10, ackTimeoutMs / 4)));
    expiryTimer.unref();

    const telemetryStats = (): BatcherStats => ({
      ...totals.add(stats),
      heldEvents: assembler.events,
      openBatches: assembler.openBatches,
      waitingBatches: assembler.waitingBatches,
    });
    node.telemetryStats = telemetryStats;
    const unpublish = publishStats(node, telemetryStats);
    // What this node holds it answers for, however long the node after takes (see declareCustody).
    const withdrawCustody = declareCustody(node.id, function* () {
      for (const batch of assembler.unsent()) for (const input of batch.inputs) if (typeof input.msg._msgid === 'string') yield input.msg._msgid;
      for (const batch of open.values()) for (const input of batch.inputs) if (typeof input.msg._msgid === 'string') yield input.msg._msgid;
    });

    const status = new ThrottledStatus(node, () => {
      const held = assembler.events;
      return {
        fill: stats.refusedMessages > 0 ? 'red' : assembler.openBatches >= assembler.options.maxOpenBatches ? 'yellow' : 'green',
        shape: held > 0 ? 'dot' : 'ring',
        text: `${assembler.openBatches} open, ${compactCount(held)} held`,
      };
    });
    status.refresh();

    node.on('input', (msg, _send, done) => {
      if (msg.control === 'flush') {
        assembler.close('flush');
        sendReady();
        done();
        return;
      }
      if (msg.control === 'stats') {
        node.send([null, { topic: 'stats', payload: telemetryStats() }]);
        done();
        return;
      }
      let records: TelemetryRecord[];
      if (isRecordGroup(msg)) {
        // Readings a buffer in front took in: never read as a message again.
        records = [];
        appendRecords(msg, records);
      } else if (isPlainReading(msg, shapeOptions)) {
        records = [recordOf(msg)];
      } else {
        const shaped = shapeMessage(msg, shapeOptions);
        if (shaped.outcome === 'not-a-reading') {
          stats.ignored++;
          stats.ignoredReason = shaped.reason;
          done();
          return;
        }
        records = recordsOf(shaped);
      }
      // Readings that no node before numbered are numbered here (before the decision to take them,
      // so a refusal shows as a gap), and none merges with another that shares its source and time.
      stampMissing(records, sequences);
      // Arriving after close (sent just before a deploy stopped this node): held by nobody, so refused.
      if (closing || !assembler.addRecords(records, { msg, done }, Date.now())) {
        stats.refusedMessages++;
        stats.refusedEvents += records.length;
        if (canHandBack(msg)) {
          // A buffer in front keeps it (and, when full, slows down to what is confirmed): no loss, no error.
          markCompletion(msg, 'returned');
          done();
        } else if (closing) {
          done(new Error('telemetry-batcher is closing: message not taken'));
        } else {
          done(new Error(`telemetry-batcher is full (${assembler.events} events held): put a telemetry-buffer in front of it so the database sets the pace`));
        }
        return;
      }
      stats.receivedMessages++;
      stats.receivedEvents += records.length;
      sendReady();
    });

    node.on('close', (removed, closed) => {
      closing = true;
      withdrawGroups();
      withdrawCustody();
      clearInterval(saveTimer);
      stopWatching();
      stopFollowingDeploys();
      unpublish();
      clearInterval(expiryTimer);
      if (ageTimer !== undefined) clearTimeout(ageTimer);
      status.stop();
      // Nothing held here was confirmed written: hand it all back so the buffer keeps it.
      for (const batch of open.drain()) finishBatch(batch, 'returned');
      for (const batch of assembler.drainUnsent()) {
        for (const input of batch.inputs) {
          markCompletion(input.msg, 'returned');
          input.done();
        }
      }
      try {
        if (removed) {
          totals.remove();
          journal.remove();
        } else {
          totals.save(totals.add(stats));
          journal.close(sequences);
        }
      } catch (err) {
        node.warn(`could not save the totals and sequence numbers to ${fileBase}: ${(err as Error).message}`);
      }
      closed();
    });
  }

  RED.nodes.registerType('telemetry-batcher', TelemetryBatcher);
};
