import { OPTIONS as SINK_OPTIONS } from '../../options/timescale-sink';
import { isDate, isPlainObject } from './values';

/**
 * The unit that travels from telemetry-batcher to timescale-sink: one reading, with the parts of the
 * message it came in that the sink needs to build a row (shapes.ts reads a message as its readings).
 * The first of our nodes that takes it in stamps `seq` and, when it has none, `timestamp`, so a
 * batch that is retried, spooled or replayed maps to exactly the same rows.
 */
export interface TelemetryRecord {
  /** msg.topic of the message the event arrived in (the default source). */
  topic?: string;
  /** The event itself: a number or boolean, or an object such as {value, time, source, kind, ...}. */
  payload: unknown;
  /** msg.timestamp: epoch ms, ISO string or Date. */
  timestamp?: unknown;
  /** Per-source sequence number: msg.seq, or the number the first of our nodes that took the reading in gave it. */
  seq?: number;
  /** msg.kind, when the producer sets one. */
  kind?: unknown;
  /**
   * Why this reading must not be stored (an OPC UA status that is not Good, a value that is not a
   * number): it travels and counts like any reading, and the sink rejects it with this reason.
   */
  refused?: string;
}

/** The fields of a Node-RED message that records are built from. */
export interface TelemetryMessageLike {
  topic?: unknown;
  payload?: unknown;
  timestamp?: unknown;
  seq?: unknown;
  kind?: unknown;
  /** True on a record group (see RecordGroup). */
  telemetryRecords?: unknown;
}

/**
 * What telemetry-buffer sends to telemetry-batchers (and only to them): the events of several
 * messages, already as records, in one message. One Node-RED delivery and one completion per group
 * instead of per event is most of what the pipeline costs at one event per message.
 */
export interface RecordGroup {
  payload: TelemetryRecord[];
  telemetryRecords: true;
}

export function isRecordGroup(msg: TelemetryMessageLike): msg is RecordGroup {
  return msg.telemetryRecords === true && Array.isArray(msg.payload);
}

/** How many events a message carries: a payload that is an array of N events counts N (at least 1). */
export function eventCount(msg: TelemetryMessageLike): number {
  const payload = msg.payload;
  return Array.isArray(payload) && payload.length > 0 ? payload.length : 1;
}

/**
 * Appends the events of one message to `out` as records. An array payload of N events gives N
 * records numbered msg.seq, msg.seq + 1, ... (the buffer reserves that range for the message).
 */
export function appendRecords(msg: TelemetryMessageLike, out: TelemetryRecord[]): void {
  if (isRecordGroup(msg)) {
    for (const record of msg.payload as unknown[]) out.push(asRecord(record));
    return;
  }
  const payload = msg.payload;
  if (Array.isArray(payload) && payload.length > 0) {
    const topic = typeof msg.topic === 'string' ? msg.topic : undefined;
    const seq = typeof msg.seq === 'number' && Number.isFinite(msg.seq) ? msg.seq : undefined;
    for (let i = 0; i < payload.length; i++) {
      out.push({ topic, payload: payload[i], timestamp: msg.timestamp, seq: seq === undefined ? undefined : seq + i, kind: msg.kind });
    }
    return;
  }
  out.push(recordOf(msg));
}

/**
 * An element of a batch or record group as a record our nodes can number and time: an object as it
 * is, a frozen or sealed one copied, anything else as the payload of one.
 */
export function asRecord(element: unknown): TelemetryRecord {
  if (element === null || typeof element !== 'object') return { payload: element };
  return Object.isExtensible(element) ? (element as TelemetryRecord) : { ...(element as TelemetryRecord) };
}

/** The elements of a batch (a telemetry-batcher's msg.payload) as records (asRecord): the same array when each is one already. */
export function recordsIn(elements: readonly unknown[]): TelemetryRecord[] {
  for (const element of elements) if (element === null || typeof element !== 'object' || !Object.isExtensible(element)) return elements.map(asRecord);
  return elements as TelemetryRecord[];
}

/**
 * The record of a message whose payload is one event (not an array, not a record group). A plain
 * object payload is copied (its top level): a record waits for its commit, and holding the
 * producer's own object would teach V8, at the producer's allocation site, that its payloads live
 * long (pretenuring). From then on every payload that producer makes goes straight to the old
 * generation, also under overload, when a full ring encodes it at once: in npm run bench's item f
 * the heap cycled up to 180 MiB instead of 80. The copy, made here, lives as long as the record.
 * `seq` and `timestamp` are the message's own unless the caller (the buffer's intake) fixed them.
 */
export function recordOf(msg: TelemetryMessageLike, seq: unknown = msg.seq, timestamp: unknown = msg.timestamp): TelemetryRecord {
  return {
    topic: typeof msg.topic === 'string' ? msg.topic : undefined,
    payload: ownCopy(msg.payload),
    timestamp,
    seq: typeof seq === 'number' && Number.isFinite(seq) ? seq : undefined,
    kind: msg.kind,
  };
}

/**
 * A plain object's top level copied (about 40 ns for a reading), also one a function node made (in
 * its own VM context: the copy is the runtime's); anything else (a number, a Buffer, a Date, an
 * array, an object without a prototype) as it is, and so is an object that cannot be copied (a
 * getter or a proxy that throws): taking a message in must not throw.
 */
function ownCopy(payload: unknown): unknown {
  if (typeof payload !== 'object' || payload === null) return payload;
  try {
    const proto = Object.getPrototypeOf(payload);
    if (proto === Object.prototype) return { ...(payload as Record<string, unknown>) };
    return proto !== null && isPlainObject(payload) ? runtimeCopy(payload) : payload;
  } catch {
    return payload;
  }
}

/** A function node's object as the runtime's, its Dates too: MessagePack keeps only the runtime's Dates as Dates. */
function runtimeCopy(payload: Record<string, unknown>): Record<string, unknown> {
  const copy = { ...payload };
  for (const key of Object.keys(copy)) {
    const value = copy[key];
    if (isDate(value)) copy[key] = new Date(value.getTime());
  }
  return copy;
}

/**
 * recordOf for a record that will not be kept as an object (a full ring takes it in as text, or
 * drops it): the same fields from a literal of its own, and the payload shared, as it dies young
 * with the message. V8 decides per literal whether to allocate its objects straight in the old
 * generation (pretenuring). Records that wait for their commit teach it that recordOf's records
 * live long; under overload, sharing that literal put every record the buffer took in into the old
 * generation, only to be dropped at once, and the heap grew to four times what it held (npm run
 * bench, item f). So the body is written twice on purpose: one function for both (also one
 * recompiled from recordOf's source with new Function) lets the heap grow again in item f;
 * test/records.test.ts keeps the two equal.
 */
export function shortLivedRecordOf(msg: TelemetryMessageLike, seq: unknown = msg.seq, timestamp: unknown = msg.timestamp): TelemetryRecord {
  return {
    topic: typeof msg.topic === 'string' ? msg.topic : undefined,
    payload: msg.payload,
    timestamp,
    seq: typeof seq === 'number' && Number.isFinite(seq) ? seq : undefined,
    kind: msg.kind,
  };
}

/** Whether a record carries a sequence number of its own: msg.seq, or a number in payload.seq. */
export function hasSequence(record: TelemetryRecord, seqProperty = 'seq'): boolean {
  if (typeof record.seq === 'number') return true;
  const payload = record.payload;
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) return false;
  try {
    return typeof (payload as Record<string, unknown>)[seqProperty] === 'number';
  } catch {
    return false; // a getter that throws: numbered here, and the sink rejects the reading with the reason
  }
}

/** The payload fields a row's identity is read from besides its time: the sink's Seq from and Source from. */
export interface RowFields {
  seq: string;
  source: string;
}

/** The sink's defaults, for a record with no sink of ours after it. */
export const DEFAULT_ROW_FIELDS: RowFields = Object.freeze({ seq: SINK_OPTIONS.seqProperty.default, source: SINK_OPTIONS.sourceProperty.default });

/**
 * The source a reading is numbered in: the one its row will have, read as the sink reads it
 * (row-mapping.ts): a plain object payload's own field `sourceProperty` when it is a string, else
 * msg.topic. Numbered per topic instead, two readings of one source and time arriving under two
 * topics would take the same number and become one row. Where the sink would reject the reading
 * (a source that is not a string, a payload that is not a plain object) the number does not matter.
 */
export function sourceOf(record: { topic?: unknown; payload?: unknown }, sourceProperty: string): string {
  const payload = record.payload;
  if (isPlainObject(payload) && Object.prototype.hasOwnProperty.call(payload, sourceProperty)) {
    try {
      const source = payload[sourceProperty];
      if (typeof source === 'string') return source;
    } catch {
      // a getter that throws: the sink rejects the reading with the reason
    }
  }
  return typeof record.topic === 'string' ? record.topic : '';
}

/**
 * Numbers, per source, every record that has no sequence number of its own, so two readings that
 * share a source and a time never become one row. Returns how many were numbered.
 */
export function stampMissing(records: readonly TelemetryRecord[], stamper: { reserve(source: string, count: number): number }, fields: RowFields = DEFAULT_ROW_FIELDS): number {
  return stampRecords(records, stamper, false, fields);
}

/**
 * Numbers records per the source their rows will have: all of them (`every`), or only those
 * without a sequence number of their own. Consecutive records of one source take one range.
 * Returns how many were numbered.
 */
export function stampRecords(records: readonly TelemetryRecord[], stamper: { reserve(source: string, count: number): number }, every: boolean, fields: RowFields = DEFAULT_ROW_FIELDS): number {
  let stamped = 0;
  const n = records.length;
  for (let i = 0; i < n; ) {
    if (!every && hasSequence(records[i], fields.seq)) {
      i++;
      continue;
    }
    const source = sourceOf(records[i], fields.source);
    let end = i + 1;
    while (end < n && sourceOf(records[end], fields.source) === source && (every || !hasSequence(records[end], fields.seq))) end++;
    stamped += end - i;
    let seq = stamper.reserve(source, end - i);
    for (; i < end; i++) records[i].seq = seq++;
  }
  return stamped;
}
