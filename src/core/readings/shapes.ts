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
 */
import { oneOf } from '../shared/options';
import { appendRecords, isRecordGroup, type TelemetryMessageLike, type TelemetryRecord } from './records';

export const INPUT_SHAPES = ['auto', 'single', 'named-values', 'registers', 'opcua'] as const;
export type InputShape = (typeof INPUT_SHAPES)[number];

/** What a message was read as. 'events' (array payload) and 'records' (record group) only come from auto or single. */
export type ReadShape = 'records' | 'single' | 'events' | 'named-values' | 'registers' | 'opcua';

export const QUALITY_POLICIES = ['good-only', 'keep-uncertain', 'keep-all'] as const;
export type QualityPolicy = (typeof QUALITY_POLICIES)[number];

export interface ShapeOptions {
  /** How messages are read. Default 'auto'. */
  shape?: InputShape;
  /** Between msg.topic and a field name or register. Default '/'. */
  separator?: string;
  /** OPC UA values whose status is not Good: refused ('good-only'), or stored with kind 'uncertain' / 'bad'. Default 'good-only'. */
  quality?: QualityPolicy;
  /** The payload keys row-mapping reads; an object with any of them is one reading. Defaults as in MappingOptions. */
  valueProperty?: string;
  sourceProperty?: string;
  kindProperty?: string;
  seqProperty?: string;
  /** Fields of a named-values object that hold the time of all its readings, first present wins. Default ['time', 'ts', 'timestamp']. */
  timeProperty?: string | string[];
}

export interface ResolvedShapeOptions {
  shape: InputShape;
  separator: string;
  quality: QualityPolicy;
  valueProperty: string;
  readingKeys: ReadonlySet<string>;
  timeProperties: readonly string[];
}

export interface RefusedReading {
  record: TelemetryRecord;
  reason: string;
}

export type ShapeResult =
  | {
      outcome: 'readings';
      shape: ReadShape;
      /** To be stored, in the order the message carries them. */
      readings: TelemetryRecord[];
      /** Recognised readings that must not be stored (a status that is not Good, a value that is not a number). */
      refused: RefusedReading[];
    }
  | { outcome: 'not-a-reading'; reason: string };

/** How many readings a shaped message counts for (stored and refused; 0 for a message that is not a reading). */
export function readingCount(result: ShapeResult): number {
  return result.outcome === 'readings' ? result.readings.length + result.refused.length : 0;
}

/**
 * Every reading of a shaped message as the records the pipeline carries: those to store, then the
 * refused ones, each with its reason in `refused` (the sink rejects it with that reason, so it is
 * counted, and reaches the dead-letter output, like any row that cannot be stored).
 */
export function recordsOf(result: ShapeResult): TelemetryRecord[] {
  if (result.outcome !== 'readings') return [];
  if (result.refused.length === 0) return result.readings;
  const out = result.readings.slice();
  for (const refused of result.refused) out.push(refused.record);
  return out;
}

function propertyName(name: unknown, option: string): string {
  if (typeof name !== 'string' || name.length === 0 || name === '__proto__' || name === 'constructor' || name === 'prototype') {
    throw new Error(`shape option ${option} must be a non-empty property name, got ${JSON.stringify(name)}`);
  }
  return name;
}

/** Fills in defaults and validates; throws on a bad option so a misconfiguration shows at deploy. */
export function resolveShapeOptions(options: ShapeOptions = {}): ResolvedShapeOptions {
  const shape = options.shape ?? 'auto';
  if (!(INPUT_SHAPES as readonly string[]).includes(shape)) throw new Error(`shape option shape must be one of ${INPUT_SHAPES.join(', ')}, got ${JSON.stringify(shape)}`);
  const quality = options.quality ?? 'good-only';
  if (!(QUALITY_POLICIES as readonly string[]).includes(quality)) throw new Error(`shape option quality must be one of ${QUALITY_POLICIES.join(', ')}, got ${JSON.stringify(quality)}`);
  const separator = options.separator ?? '/';
  if (typeof separator !== 'string' || separator.includes('\u0000')) throw new Error('shape option separator must be a string without NUL characters');
  const valueProperty = propertyName(options.valueProperty ?? 'value', 'valueProperty');
  const readingKeys = new Set([
    valueProperty,
    propertyName(options.sourceProperty ?? 'source', 'sourceProperty'),
    propertyName(options.kindProperty ?? 'kind', 'kindProperty'),
    propertyName(options.seqProperty ?? 'seq', 'seqProperty'),
  ]);
  const timeList = options.timeProperty === undefined ? ['time', 'ts', 'timestamp'] : Array.isArray(options.timeProperty) ? options.timeProperty : [options.timeProperty];
  const timeProperties = timeList.map((name) => propertyName(name, 'timeProperty'));
  return { shape, separator, quality, valueProperty, readingKeys, timeProperties };
}

const DEFAULT_OPTIONS = resolveShapeOptions();

/**
 * The `shape` and `quality` options of a node as the editor saves them (strings, or missing in a
 * flow written by hand), resolved; `mapping` passes a sink's property names so both read a payload alike.
 */
export function readShapeOptions(def: Record<string, unknown>, mapping: Omit<ShapeOptions, 'shape' | 'quality'> = {}): ResolvedShapeOptions {
  return resolveShapeOptions({ ...mapping, shape: oneOf(def.shape, 'Input shape', INPUT_SHAPES, 'auto'), quality: oneOf(def.quality, 'OPC UA quality', QUALITY_POLICIES, 'good-only') });
}

/** Reads one message. Pass options resolved once (resolveShapeOptions); the default is auto. */
export function shapeMessage(msg: TelemetryMessageLike & Record<string, unknown>, options: ResolvedShapeOptions = DEFAULT_OPTIONS): ShapeResult {
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

type Message = TelemetryMessageLike & Record<string, unknown>;

/**
 * Whether shapeMessage would read `msg` as exactly one reading, recordOf(msg), nothing refused: the
 * message of a simulator, of MQTT, of most flows. Allocates nothing, so the nodes can take such a
 * message in as they always did (their hot path) and shape only the others.
 */
export function isPlainReading(msg: TelemetryMessageLike & Record<string, unknown>, options: ResolvedShapeOptions = DEFAULT_OPTIONS): boolean {
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

function shapeUnsafe(msg: Message, options: ResolvedShapeOptions): ShapeResult {
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

// ---------------------------------------------------------------------------------------------
// Messages that are not readings

function notAReading(msg: Message): string | undefined {
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

// ---------------------------------------------------------------------------------------------
// single and events: what the pipeline always did

function single(msg: Message): ShapeResult & { outcome: 'readings' } {
  const readings: TelemetryRecord[] = [];
  appendRecords(msg, readings);
  return { outcome: 'readings', shape: 'single', readings, refused: [] };
}

// ---------------------------------------------------------------------------------------------
// named values

function looksLikeNamedValues(payload: Record<string, unknown>, options: ResolvedShapeOptions): boolean {
  let values = 0;
  // for-in, not Object.entries: this runs for every plain object payload and must allocate nothing.
  for (const key in payload) {
    if (!Object.prototype.hasOwnProperty.call(payload, key)) continue;
    if (options.readingKeys.has(key)) return false;
    if (options.timeProperties.includes(key)) continue;
    const value = payload[key];
    if (typeof value !== 'number' && typeof value !== 'boolean') return false;
    values++;
  }
  return values > 0;
}

function namedValues(msg: Message, payload: Record<string, unknown>, options: ResolvedShapeOptions): ShapeResult {
  const topic = typeof msg.topic === 'string' ? msg.topic : '';
  let timestamp: unknown = msg.timestamp;
  for (const key of options.timeProperties) {
    const time = Object.prototype.hasOwnProperty.call(payload, key) ? payload[key] : undefined;
    if (time !== undefined && time !== null) {
      timestamp = plainTime(time);
      break;
    }
  }
  const out = new Collector(msg);
  for (const [name, value] of Object.entries(payload)) {
    if (options.timeProperties.includes(name)) continue;
    const source = topic === '' ? name : `${topic}${options.separator}${name}`;
    const problem = valueProblem(value, `payload.${name}`);
    out.add({ topic: source, payload: value, timestamp, kind: msg.kind }, problem);
  }
  if (out.count === 0) return refuseWhole(msg, 'payload has only time fields, no named values', 'named-values');
  return out.result('named-values');
}

// ---------------------------------------------------------------------------------------------
// Modbus registers

/** Source prefixes by Modbus read function code: coils, discrete inputs, holding and input registers. */
const REGISTER_PREFIX: Record<number, string> = { 1: 'coil', 2: 'di', 3: 'hr', 4: 'ir' };

interface ModbusRead {
  fc: number;
  address: number;
  quantity: number | undefined;
}

/** The request a node-red-contrib-modbus read answered: modbus-read keeps it in msg.input, modbus-flex-getter in msg.modbusRequest. */
function modbusReadOf(msg: Message): ModbusRead | undefined {
  return modbusRequestOf(msg.modbusRequest) ?? (isObject(msg.input) ? modbusRequestOf((msg.input as Record<string, unknown>).payload) : undefined);
}

function modbusRequestOf(request: unknown): ModbusRead | undefined {
  if (!isObject(request)) return undefined;
  const r = request as Record<string, unknown>;
  const fc = wholeNumber(r.fc);
  const address = wholeNumber(r.address);
  if (fc === undefined || address === undefined || REGISTER_PREFIX[fc] === undefined) return undefined;
  const quantity = wholeNumber(r.quantity);
  return { fc, address, quantity: quantity !== undefined && quantity > 0 ? quantity : undefined };
}

/** The register values of a Modbus read with its request: output 1 carries them as the payload, output 2 (the raw response) in msg.values. */
function registerValuesOf(msg: Message): { read: ModbusRead; values: unknown[] } | undefined {
  const values = Array.isArray(msg.payload) ? msg.payload : Array.isArray(msg.values) && isObject(msg.payload) ? (msg.values as unknown[]) : undefined;
  if (values === undefined) return undefined;
  const read = modbusReadOf(msg);
  return read === undefined ? undefined : { read, values };
}

function registers(msg: Message, options: ResolvedShapeOptions): ShapeResult | undefined {
  const found = registerValuesOf(msg);
  if (found === undefined) return undefined;
  const { read, values } = found;
  // Coils and discrete inputs come padded to whole bytes (3 coils read give 8 booleans).
  const count = read.quantity === undefined ? values.length : Math.min(read.quantity, values.length);
  const topic = typeof msg.topic === 'string' ? msg.topic : '';
  const prefix = REGISTER_PREFIX[read.fc];
  const out = new Collector(msg);
  for (let i = 0; i < count; i++) {
    const name = `${prefix}${read.address + i}`;
    const source = topic === '' ? name : `${topic}${options.separator}${name}`;
    out.add({ topic: source, payload: values[i], timestamp: msg.timestamp, kind: msg.kind }, valueProblem(values[i], 'the register value'));
  }
  if (out.count === 0) return undefined;
  return out.result('registers');
}

// ---------------------------------------------------------------------------------------------
// OPC UA

/** The numeric status of a StatusCode as node-opcua sends it live ({value} getter), after JSON ({value}) or copied ({_value}). */
function statusCodeOf(status: unknown): number | undefined {
  if (typeof status === 'number') return Number.isInteger(status) && status >= 0 && status <= 0xffffffff ? status : undefined;
  if (!isObject(status)) return undefined;
  const s = status as { value?: unknown; _value?: unknown };
  const value = typeof s.value === 'number' ? s.value : s._value;
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 0xffffffff ? value : undefined;
}

function statusNameOf(status: unknown): string | undefined {
  if (!isObject(status)) return undefined;
  const s = status as { name?: unknown; _name?: unknown };
  const name = typeof s.name === 'string' ? s.name : s._name;
  return typeof name === 'string' && name.length > 0 ? name : undefined;
}

type Severity = 'good' | 'uncertain' | 'bad';

/** The two top bits of an OPC UA StatusCode (Part 4, 7.34): 00 Good, 01 Uncertain, 10 and 11 Bad. */
function severityOf(code: number): Severity {
  const bits = code >>> 30;
  return bits === 0 ? 'good' : bits === 1 ? 'uncertain' : 'bad';
}

function hex(code: number): string {
  return `0x${code.toString(16).toUpperCase().padStart(8, '0')}`;
}

interface DataValueLike {
  value: unknown;
  status: unknown;
  sourceTimestamp: unknown;
  serverTimestamp: unknown;
}

/** A node-opcua DataValue, live or after JSON: {value: Variant {dataType, value}, statusCode, sourceTimestamp, serverTimestamp}. */
function dataValueOf(item: unknown): DataValueLike | undefined {
  if (!isObject(item)) return undefined;
  const d = item as Record<string, unknown>;
  if (statusCodeOf(d.statusCode) === undefined || !isObject(d.value)) return undefined;
  const variant = d.value as Record<string, unknown>;
  if (!('dataType' in variant) || !('value' in variant)) return undefined;
  return { value: variant.value, status: d.statusCode, sourceTimestamp: d.sourceTimestamp, serverTimestamp: d.serverTimestamp };
}

/** A NodeId as text: a string, or an object whose own toString (node-opcua NodeId) gives "ns=1;s=Name". */
function nodeIdText(nodeId: unknown): string | undefined {
  if (typeof nodeId === 'string') return nodeId;
  if (isObject(nodeId) && typeof (nodeId as { toString?: unknown }).toString === 'function' && (nodeId as object).toString !== Object.prototype.toString) {
    const text = String(nodeId);
    return text.length > 0 ? text : undefined;
  }
  return undefined;
}

/** `explicit`: shape 'opcua' was chosen, so msg.statusCode alone marks an OPC UA value; auto also wants a timestamp beside it (an HTTP response has a msg.statusCode too). */
function isOpcuaValue(msg: Message, explicit: boolean): boolean {
  return statusCodeOf(msg.statusCode) !== undefined && (explicit || msg.sourceTimestamp !== undefined || msg.serverTimestamp !== undefined);
}

function opcua(msg: Message, options: ResolvedShapeOptions, explicit: boolean): ShapeResult | undefined {
  // One value on the message: client read, subscribe, readmultiple (one message per item).
  if (isOpcuaValue(msg, explicit)) {
    const out = new Collector(msg);
    addOpcuaValue(out, options, msg, typeof msg.topic === 'string' ? msg.topic : undefined, { value: msg.payload, status: msg.statusCode, sourceTimestamp: msg.sourceTimestamp, serverTimestamp: msg.serverTimestamp });
    return out.result('opcua');
  }
  // A DataValue as the payload: a subscription to a group of items (topic "multiple") sends one per change.
  const single = dataValueOf(msg.payload);
  if (single !== undefined) {
    const out = new Collector(msg);
    addOpcuaValue(out, options, msg, typeof msg.topic === 'string' ? msg.topic : undefined, single);
    return out.result('opcua');
  }
  // DataValues as an array: readmultiple with payload "ALL" (items in msg.items) or its output 3 (items in msg.topic).
  if (Array.isArray(msg.payload) && msg.payload.length > 0) {
    const values = msg.payload.map(dataValueOf);
    if (values.some((v) => v === undefined)) return undefined;
    const items = Array.isArray(msg.items) ? msg.items : Array.isArray(msg.topic) ? (msg.topic as unknown[]) : undefined;
    const out = new Collector(msg);
    values.forEach((value, i) => {
      const item = items?.[i];
      const source = isObject(item) ? nodeIdText((item as { nodeId?: unknown }).nodeId) : undefined;
      addOpcuaValue(out, options, msg, source, value as DataValueLike);
    });
    return out.result('opcua');
  }
  return undefined;
}

function addOpcuaValue(out: Collector, options: ResolvedShapeOptions, msg: Message, source: string | undefined, value: DataValueLike): void {
  const sourceTime = value.sourceTimestamp ?? undefined;
  const serverTime = value.serverTimestamp ?? undefined;
  const timestamp = sourceTime !== undefined ? plainTime(sourceTime) : serverTime !== undefined ? plainTime(serverTime) : msg.timestamp;
  const record: TelemetryRecord = { topic: source, payload: value.value, timestamp, kind: msg.kind };
  if (source === undefined) {
    out.add(record, 'no node id for this OPC UA value (no msg.topic, or no msg.items for an array of DataValues)');
    return;
  }
  const code = statusCodeOf(value.status) as number;
  const severity = severityOf(code);
  const status = `${statusNameOf(value.status) ?? severity} (${hex(code)})`;
  if (severity !== 'good') {
    const kept = options.quality === 'keep-all' || (options.quality === 'keep-uncertain' && severity === 'uncertain');
    if (!kept) {
      out.add(record, `OPC UA status ${status} is ${severity}; quality ${options.quality} stores only ${options.quality === 'keep-uncertain' ? 'Good and Uncertain' : 'Good'} values`);
      return;
    }
    // Kept: the row says so in kind (always stored), and in extra (when the sink stores extra).
    const quality: Record<string, unknown> = { statusCode: code };
    const name = statusNameOf(value.status);
    if (name !== undefined) quality.statusName = name;
    if (value.value === null || value.value === undefined) {
      out.add({ ...record, payload: quality, kind: severity }, undefined);
      return;
    }
    const problem = valueProblem(value.value, 'the OPC UA value');
    out.add({ ...record, payload: problem === undefined ? { [options.valueProperty]: value.value, ...quality } : value.value, kind: severity }, problem);
    return;
  }
  out.add(record, value.value === null || value.value === undefined ? `the OPC UA value is empty (status ${status})` : valueProblem(value.value, 'the OPC UA value'));
}

// ---------------------------------------------------------------------------------------------
// helpers

/** Collects the readings of one message; reading i gets msg.seq + i when the message carries a seq (as array payloads always did). */
class Collector {
  readonly readings: TelemetryRecord[] = [];
  readonly refused: RefusedReading[] = [];
  private readonly seq: number | undefined;

  constructor(msg: Message) {
    this.seq = typeof msg.seq === 'number' && Number.isFinite(msg.seq) ? msg.seq : undefined;
  }

  get count(): number {
    return this.readings.length + this.refused.length;
  }

  add(record: TelemetryRecord, problem: string | undefined): void {
    record.seq = this.seq === undefined ? undefined : this.seq + this.count;
    if (problem === undefined) {
      this.readings.push(record);
      return;
    }
    record.refused = record.topic === undefined ? problem : `${record.topic}: ${problem}`;
    this.refused.push({ record, reason: record.refused });
  }

  result(shape: ReadShape): ShapeResult {
    return { outcome: 'readings', shape, readings: this.readings, refused: this.refused };
  }
}

/** The message as one refused reading: an explicit shape it does not fit, or a message that cannot be read. */
function refuseWhole(msg: Message, reason: string, shape: ReadShape): ShapeResult {
  const out = new Collector(msg);
  out.add({ topic: typeof msg.topic === 'string' ? msg.topic : undefined, payload: msg.payload, timestamp: msg.timestamp, kind: msg.kind }, reason);
  return out.result(shape);
}

/** Why a value cannot be a reading's value, or undefined when it can (a finite number or a boolean). */
function valueProblem(value: unknown, where: string): string | undefined {
  if (typeof value === 'boolean') return undefined;
  if (typeof value === 'number') return Number.isFinite(value) ? undefined : `${where} is ${String(value)}, expected a finite number`;
  return `${where} is ${describe(value)}, expected a number or a boolean`;
}

/** Dates become epoch ms, so a record reads the same before and after JSON (spool, disk tier). */
function plainTime(time: unknown): unknown {
  return time instanceof Date ? time.getTime() : time;
}

function wholeNumber(value: unknown): number | undefined {
  const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

function isObject(value: unknown): boolean {
  return typeof value === 'object' && value !== null;
}

function hasOwnKeys(object: object): boolean {
  for (const key in object) if (Object.prototype.hasOwnProperty.call(object, key)) return true;
  return false;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function truncate(text: string): string {
  return text.length > 80 ? `${text.slice(0, 80)}...` : text;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'missing';
  if (Array.isArray(value)) return 'an array';
  if (value instanceof Date) return 'a Date';
  if (Buffer.isBuffer(value)) return 'a Buffer';
  if (typeof value === 'string') return `a string (${JSON.stringify(truncate(value))})`;
  if (typeof value === 'object') return 'an object';
  return `a ${typeof value}`;
}
