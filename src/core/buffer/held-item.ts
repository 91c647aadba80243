import { isRecordGroup, type TelemetryRecord } from '../readings/records';
import { isPlainReading, readingCount, shapeMessage, type ResolvedShapeOptions } from '../readings/shapes';

/** A message as the buffer takes it in and sends it on (a Node-RED message, without its type). */
export interface BufferMessage {
  _msgid?: string;
  topic?: unknown;
  payload?: unknown;
  [key: string]: unknown;
}

/** The done() of an item whose upstream was completed already (or never existed: read back from a file). */
export const noUpstream = (): void => undefined;

/** A message held as it came (in front of a node that is not a batcher), with its upstream done(). */
export class HeldMessage {
  constructor(
    readonly msg: BufferMessage,
    /** Completes the message upstream (Node-RED's done): once, when the item leaves the buffer or earlier. */
    readonly done: (err?: Error) => void,
    /** The readings it counts for (at least 1), when known at ingest. */
    readonly weight?: number,
  ) {}
}

/**
 * What the buffer holds for one entry of its ring (or its disk tier): a message as it came, or one
 * reading as its record, whose upstream was completed at ingest. A record is held as itself, not
 * wrapped: a reading waits for its commit long enough for V8 to promote what holds it, and one
 * object less per reading is less to promote (npm run bench, item c).
 */
export type HeldItem = HeldMessage | TelemetryRecord;

/** Completes a held message upstream; a record's upstream was completed at ingest. */
export function completeUpstream(held: HeldItem): void {
  if (held instanceof HeldMessage) held.done();
}

/** The message or record an item holds: what a memory limit sizes, and what goes on when it is released alone. */
export function contentOf(held: HeldItem): BufferMessage {
  return held instanceof HeldMessage ? held.msg : (held as BufferMessage & TelemetryRecord);
}

/**
 * What the buffer writes of an item (to its encoded part, the disk tier, the spool): a message as
 * it is, a reading's record as a record group of one, so that it comes back as a record and is never
 * read as a message again (shaped a second time, a record could change: a refused one would lose
 * its reason, an explicit shape would refuse it).
 */
export function persisted(held: HeldItem): Record<string, unknown> {
  return held instanceof HeldMessage ? held.msg : { telemetryRecords: true, payload: [held] };
}

/** An item read back (see persisted), under a new message id; its upstream was completed when it was written. */
export function readBack(msg: Record<string, unknown>, newId: () => string): HeldItem {
  if (isRecordGroup(msg) && msg.payload.length === 1 && typeof msg.payload[0] === 'object' && msg.payload[0] !== null) {
    return msg.payload[0];
  }
  msg._msgid = newId();
  return new HeldMessage(msg, noUpstream);
}

/** The readings a message held as it came counts for, read with these shape options: at least 1. */
export function messageWeight(msg: BufferMessage, shapes: ResolvedShapeOptions): number {
  return isPlainReading(msg, shapes) ? 1 : Math.max(1, readingCount(shapeMessage(msg, shapes)));
}

/** The events an item counts for. */
export function weightOf(held: HeldItem, shapes: ResolvedShapeOptions): number {
  return held instanceof HeldMessage ? (held.weight ?? messageWeight(held.msg, shapes)) : 1;
}
