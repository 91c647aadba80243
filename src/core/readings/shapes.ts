/**
 * Reads one Node-RED message as the readings it carries, in the shapes that PLC, OPC UA, Modbus and
 * MQTT input nodes send, so no function node has to split or rename anything in front of the
 * pipeline. The answer is the readings as TelemetryRecords (what the sink maps to rows), the
 * readings recognised but refused (each with its reason), or "not a reading" with a reason. Never
 * throws. docs/input-shapes.md has the table of shapes, the messages each input package sends and
 * why auto decides as it does.
 *
 * Shapes (ShapeOptions.shape; 'auto' picks one per message, first match wins):
 * - not a reading (in every shape): an OPC UA subscription id, a status message (no payload, a
 *   msg.status or msg.error), a failed poll (empty payload with msg.error), an empty array or
 *   object, OPC UA browse results.
 * - opcua: msg.statusCode with msg.sourceTimestamp / msg.serverTimestamp (client read, subscribe,
 *   readmultiple), or a payload of OPC UA DataValues. Time = source timestamp. A status that is not
 *   Good is refused, or kept with kind 'uncertain' / 'bad', as ShapeOptions.quality says.
 * - registers: a Modbus read (msg.input.payload or msg.modbusRequest gives fc and address); one
 *   reading per register, source <topic>/<hr|ir|coil|di><address>.
 * - events: an array payload, one reading per element (what the pipeline always did).
 * - named-values: a plain object with none of the reading keys (value, source, kind, seq) whose
 *   fields, besides time/ts/timestamp, are all numbers or booleans; one reading per field, source
 *   <topic>/<name>, or <name> when the topic is empty.
 * - single: anything else is one reading, exactly as before (row-mapping decides).
 *
 * This file decides which shape a message has; each shape's reader has a file of its own
 * (opcua-values.ts, modbus-registers.ts, named-values.ts), the options are in shape-options.ts and
 * the answer with its Collector in shape-result.ts.
 */
import { registers, registerValuesOf } from './modbus-registers';
import { looksLikeNamedValues, namedValues } from './named-values';
import { dataValueOf, isOpcuaValue, opcua } from './opcua-values';
import { appendRecords, isRecordGroup, type TelemetryRecord } from './records';
import { DEFAULT_SHAPE_OPTIONS, type ResolvedShapeOptions } from './shape-options';
import { refuseWhole, type InputMessage, type ShapeResult } from './shape-result';
import { describe, hasOwnKeys, isObject, isPlainObject, truncate } from './values';

export { INPUT_SHAPES, QUALITY_POLICIES, SHAPE_OPTIONS, readShapeOptions, resolveShapeOptions, type InputShape, type QualityPolicy, type ResolvedShapeOptions, type ShapeOptions } from './shape-options';
export { readingCount, recordsOf, type ReadShape, type RefusedReading, type ShapeResult } from './shape-result';

/** Reads one message. Pass options resolved once (resolveShapeOptions); the default is auto. */
export function shapeMessage(msg: InputMessage, options: ResolvedShapeOptions = DEFAULT_SHAPE_OPTIONS): ShapeResult {
  try {
    return shapeUnsafe(msg, options);
  } catch (err) {
    // Getters and proxies in a message can throw; the promise is an answer, never an exception.
    // The refused record takes nothing more from the message than its topic, read carefully.
    let topic: string | undefined;
    try {
      topic = typeof msg.topic === 'string' ? msg.topic : undefined;
    } catch {
      topic = undefined;
    }
    const problem = `message could not be read: ${err instanceof Error ? err.message : String(err)}`;
    const reason = topic === undefined ? problem : `${topic}: ${problem}`;
    return { outcome: 'readings', shape: 'single', readings: [], refused: [{ record: { topic, payload: undefined, refused: reason }, reason }] };
  }
}

/**
 * Whether shapeMessage would read `msg` as exactly one reading, recordOf(msg), nothing refused: the
 * message of a simulator, of MQTT, of most flows. Allocates nothing, so the nodes can take such a
 * message in as they always did (their hot path) and shape only the others.
 */
export function isPlainReading(msg: InputMessage, options: ResolvedShapeOptions = DEFAULT_SHAPE_OPTIONS): boolean {
  try {
    const shape = options.shape;
    if (shape !== 'auto' && shape !== 'single') return false;
    const payload = msg.payload;
    if (Array.isArray(payload)) return false;
    // The common case first, without walking the payload: an object with a value field is never
    // empty, never named values, never "not a reading"; only an OPC UA value can still be one.
    if (typeof payload === 'object' && payload !== null && Object.prototype.hasOwnProperty.call(payload, options.valueProperty)) {
      if (shape === 'single') return true;
      // Property loads first: this runs for every such message, and almost none has these fields.
      return (msg.statusCode === undefined || !isOpcuaValue(msg, false)) && ((payload as { statusCode?: unknown }).statusCode === undefined || dataValueOf(payload) === undefined) && (msg.values === undefined || registerValuesOf(msg) === undefined);
    }
    if (isRecordGroup(msg) || notAReading(msg) !== undefined) return false;
    if (shape === 'single') return true;
    return !isOpcuaValue(msg, false) && dataValueOf(payload) === undefined && registerValuesOf(msg) === undefined && !(isPlainObject(payload) && looksLikeNamedValues(payload, options));
  } catch {
    return false;
  }
}

function shapeUnsafe(msg: InputMessage, options: ResolvedShapeOptions): ShapeResult {
  if (isRecordGroup(msg)) {
    const readings: TelemetryRecord[] = [];
    appendRecords(msg, readings);
    return { outcome: 'readings', shape: 'records', readings, refused: [] };
  }
  const notReading = notAReading(msg);
  if (notReading !== undefined) return { outcome: 'not-a-reading', reason: notReading };

  switch (options.shape) {
    case 'single':
      return single(msg);
    case 'opcua':
      return opcua(msg, options, true) ?? refuseWhole(msg, 'expected an OPC UA value: msg.statusCode with msg.sourceTimestamp or msg.serverTimestamp, or a payload of DataValues (shape: opcua)', 'opcua');
    case 'registers':
      return registers(msg, options) ?? refuseWhole(msg, 'expected a Modbus read: an array payload with its start address and function code in msg.input.payload (modbus-read) or msg.modbusRequest (modbus-flex-getter) (shape: registers)', 'registers');
    case 'named-values':
      return isPlainObject(msg.payload) ? namedValues(msg, msg.payload, options) : refuseWhole(msg, `payload is ${describe(msg.payload)}, expected an object of named values (shape: named-values)`, 'named-values');
    case 'auto': {
      const shaped = opcua(msg, options, false) ?? registers(msg, options);
      if (shaped !== undefined) return shaped;
      const payload = msg.payload;
      if (Array.isArray(payload)) return { ...single(msg), shape: 'events' };
      if (isPlainObject(payload) && looksLikeNamedValues(payload, options)) return namedValues(msg, payload, options);
      return single(msg);
    }
  }
}

function notAReading(msg: InputMessage): string | undefined {
  const payload = msg.payload;
  // node-red-contrib-opcua's client sends {topic: 'subscriptionId', payload: <number>} on output 1
  // when a subscription starts (102-opcuaclient.js subscribe_action_input).
  if (msg.topic === 'subscriptionId' && (typeof payload === 'number' || typeof payload === 'string') && msg.statusCode === undefined) {
    return `OPC UA subscription id ${String(payload)} (the client's own message when a subscription starts)`;
  }
  const error = errorText(msg.error);
  if (payload === undefined || payload === null || payload === '') {
    // A failed Modbus poll with "empty message on fail" has payload '' and msg.error.
    if (error !== undefined) return `the input node reported a failed read: ${error}`;
    // OPC UA client output 2: {error, endpoint, status}, no payload.
    if (payload === undefined && msg.status !== undefined && msg.status !== null) return `status message (${statusText(msg.status)})`;
  }
  if (Array.isArray(payload)) {
    if (payload.length === 0) return 'empty poll: payload is an empty array';
    if (payload.every(isBrowseReference)) return `OPC UA browse result (${payload.length} references)`;
  } else if (isPlainObject(payload) && !hasOwnKeys(payload)) {
    return 'empty poll: payload is an empty object';
  }
  return undefined;
}

function statusText(status: unknown): string {
  if (typeof status === 'string') return truncate(status);
  if (isObject(status) && typeof (status as { text?: unknown }).text === 'string') return truncate((status as { text: string }).text);
  return 'no payload';
}

function errorText(error: unknown): string | undefined {
  if (error === undefined || error === null || error === '') return undefined;
  if (typeof error === 'string') return truncate(error);
  if (typeof error === 'object' && typeof (error as { message?: unknown }).message === 'string') return truncate((error as { message: string }).message);
  return truncate(String(error));
}

/** What the OPC UA browser node and the client's browse action send per reference: {item: ReferenceDescription}. */
function isBrowseReference(element: unknown): boolean {
  const item = isObject(element) && isObject((element as { item?: unknown }).item) ? (element as { item: object }).item : element;
  return isObject(item) && 'nodeId' in (item as object) && 'browseName' in (item as object) && 'nodeClass' in (item as object);
}

function single(msg: InputMessage): ShapeResult & { outcome: 'readings' } {
  const readings: TelemetryRecord[] = [];
  appendRecords(msg, readings);
  return { outcome: 'readings', shape: 'single', readings, refused: [] };
}
