import { hasSequence, recordOf, shortLivedRecordOf, sourceOf, stampRecords, type RowFields, type TelemetryRecord } from '../readings/records';
import { isPlainReading, readingCount, recordsOf, shapeMessage, type ResolvedShapeOptions } from '../readings/shapes';
import type { ShapeResult } from '../readings/shape-result';
import type { SequenceStamper } from '../readings/sequence';
import { approximateSize } from './approximate-size';
import type { BufferCore } from './buffer-core';
import { type BufferMessage, type HeldItem, HeldMessage } from './held-item';

/**
 * How the buffer takes a message in: numbered (msg.seq per source) and timed at ingest, so a
 * retried or replayed reading maps to the same row; into telemetry-batchers (`grouping`) as its
 * readings, each one entry of the ring, the message completed at once; in front of any other node
 * as it came, counting for its readings.
 */
export class Intake {
  /** Messages that are not readings (a subscription id, a status, an empty poll), taken in into batchers and not kept; the last one's reason. */
  ignored = 0;
  ignoredReason = '';

  constructor(
    private readonly core: BufferCore<HeldItem>,
    private readonly shapes: ResolvedShapeOptions,
    private readonly sequences: SequenceStamper,
    private readonly stampSequence: boolean,
    /** With a memory limit: each reading of a message counts its share of the message's size. */
    private readonly hasMemoryLimit: boolean,
    private readonly schedulePump: () => void,
    /** The payload fields a reading's own number and source are read from after this node (contract rowFieldsOf). */
    private readonly rowFields: () => RowFields,
  ) {}

  take(msg: BufferMessage, done: (err?: Error) => void, grouping: boolean): void {
    const { core, shapes, sequences } = this;
    if (isPlainReading(msg, shapes)) {
      // One reading, exactly as the message has it (a simulator's, MQTT's, most flows'): the hot path.
      // On: every reading is numbered here. Off: the producer's own msg.seq or payload.seq is kept,
      // and only a reading without one is numbered, so no two readings become one row.
      const fields = this.rowFields();
      const numbered = this.stampSequence || !hasSequence(msg as TelemetryRecord, fields.seq);
      const seq = numbered ? sequences.reserve(sourceOf(msg, fields.source), 1) : msg.seq;
      // Fixing the time at ingest makes a retried or replayed reading map to the same row.
      const timestamp = msg.timestamp === undefined || msg.timestamp === null ? Date.now() : msg.timestamp;
      if (grouping) {
        // A batcher reads only the record, so the buffer keeps only the record and completes the
        // message now: the message and Node-RED's done() closure die young instead of being
        // promoted by V8 while the reading waits for its commit (npm run bench, item c). The number
        // and the time go into the record only: the message is garbage once completed.
        // Two literals on purpose (see shortLivedRecordOf): what a full ring turns into text at once
        // must not share the allocation site of what waits as an object for its commit.
        core.offer(core.keepsAsObject(1) ? recordOf(msg, seq, timestamp) : shortLivedRecordOf(msg, seq, timestamp), 1, false);
        done();
        this.schedulePump();
        return;
      }
      if (numbered) msg.seq = seq;
      if (msg.timestamp === undefined || msg.timestamp === null) msg.timestamp = timestamp;
      core.offer(new HeldMessage(msg, done, 1), 1);
      return;
    }
    const shaped = shapeMessage(msg, shapes);
    if (grouping) {
      // Into batchers a message becomes its readings here: each is one entry of the ring, numbered
      // in its own source before the drop decision (a dropped reading is a gap in its source), and
      // the message is completed now, as a one-reading message is.
      if (shaped.outcome === 'not-a-reading') {
        this.ignored++;
        this.ignoredReason = shaped.reason;
        done();
        return;
      }
      const records = recordsOf(shaped);
      stampRecords(records, sequences, this.stampSequence, this.rowFields());
      // The input's own time wins (an OPC UA source timestamp, a payload's ts); the buffer's clock
      // fills in only where there is none.
      const now = Date.now();
      for (const record of records) if (record.timestamp === undefined || record.timestamp === null) record.timestamp = now;
      if (records.length === 1) core.offer(records[0], 1, false);
      else {
        // Each reading's share of the message's size: sizing 100 readings one by one cost more
        // than everything else the buffer does with them (npm run bench, item d).
        const size = this.hasMemoryLimit ? Math.ceil(approximateSize(msg) / records.length) + 64 : undefined;
        for (const record of records) core.offer(record, 1, false, size);
      }
      done();
      this.schedulePump();
      return;
    }
    // In front of any other node (MQTT out, HTTP request) a message goes on as it came, counting
    // for its readings; msg.seq is then the first of that many numbers, free in each of their sources.
    const weight = Math.max(1, readingCount(shaped));
    const fields = this.rowFields();
    if (this.stampSequence || !hasSequence(msg as TelemetryRecord, fields.seq)) msg.seq = sequences.reserveAll(sourcesOf(msg, shaped, fields.source), weight);
    if (msg.timestamp === undefined || msg.timestamp === null) msg.timestamp = Date.now();
    core.offer(new HeldMessage(msg, done, weight), weight);
  }
}

/** The distinct sources a message's readings will have as rows (its own, when it is not read as readings). */
function sourcesOf(msg: BufferMessage, shaped: ShapeResult, sourceProperty: string): string[] {
  const sources = new Set(recordsOf(shaped).map((record) => sourceOf(record, sourceProperty)));
  return sources.size > 0 ? [...sources] : [sourceOf(msg, sourceProperty)];
}
