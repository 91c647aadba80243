import { isRecordGroup } from '../readings/records';
import { isPlainReading, readingCount, shapeMessage, type ResolvedShapeOptions } from '../readings/shapes';

/** A message as the buffer takes it in and sends it on (a Node-RED message, without its type). */
export interface BufferMessage {
  _msgid?: string;
  topic?: unknown;
  payload?: unknown;
  [key: string]: unknown;
}

/** What the buffer holds for one entry of its ring (or its disk tier). */
export interface HeldItem {
  msg: BufferMessage;
  /** Completes the message upstream (Node-RED's done): once, when the item leaves the buffer or earlier. */
  done: (err?: Error) => void;
  /** msg is one reading's TelemetryRecord, taken at ingest; its upstream was completed then. */
  record?: true;
  /** A message held as it came: the readings it counts for (at least 1), when known at ingest. */
  weight?: number;
  /** One reading of several of a message: its share of the message's approximate size (the memory limit). */
  size?: number;
}

/** The done() of an item whose upstream was completed already (or never existed: read back from a file). */
export const noUpstream = (): void => undefined;

/**
 * What the buffer writes of an item (to its encoded part, the disk tier, the spool): a message as
 * it is, a reading's record as a record group of one, so that it comes back as a record and is never
 * read as a message again (shaped a second time, a record could change: a refused one would lose
 * its reason, an explicit shape would refuse it).
 */
export function persisted(held: HeldItem): Record<string, unknown> {
  return held.record === true ? { telemetryRecords: true, payload: [held.msg] } : held.msg;
}

/** An item read back (see persisted), under a new message id; its upstream was completed when it was written. */
export function readBack(msg: Record<string, unknown>, newId: () => string): HeldItem {
  if (isRecordGroup(msg) && msg.payload.length === 1 && typeof msg.payload[0] === 'object' && msg.payload[0] !== null) {
    return { msg: msg.payload[0] as unknown as BufferMessage, done: noUpstream, record: true };
  }
  msg._msgid = newId();
  return { msg, done: noUpstream };
}

/** The readings a message held as it came counts for, read with these shape options: at least 1. */
export function messageWeight(msg: BufferMessage, shapes: ResolvedShapeOptions): number {
  return isPlainReading(msg, shapes) ? 1 : Math.max(1, readingCount(shapeMessage(msg, shapes)));
}

/** The events an item counts for. */
export function weightOf(held: HeldItem, shapes: ResolvedShapeOptions): number {
  return held.record === true ? 1 : (held.weight ?? messageWeight(held.msg, shapes));
}
