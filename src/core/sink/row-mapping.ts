/**
 * Turns a TelemetryRecord into one row of the narrow telemetry table, or into a rejection that
 * says why not. Mapping never throws: whatever a flow sends, the answer is a row or a reason, so
 * one odd event can never stop the events around it.
 *
 * Rules (property names in quotes are the defaults; each is configurable):
 * - a record with `refused` set (a reading its shape refused, see shapes.ts) is rejected with that reason.
 * - payload: a number (the value), a boolean (value 1 or 0), or a plain object carrying the
 *   fields below. Strings, arrays, Buffers, null and undefined are rejected.
 * - source: payload."source" when it is present, else msg.topic. It must be a non-empty string
 *   of at most 256 characters without NUL characters; a present but non-string payload."source"
 *   is rejected rather than silently replaced by the topic.
 * - time: the first of payload."time", payload."ts", msg.timestamp that is present, else the time
 *   the sink received the batch. Accepted forms: a Date, epoch milliseconds (a number), or an ISO
 *   8601 string (read as UTC when it carries no offset). Times outside 2000-01-01 .. 2100-01-01
 *   (configurable) are rejected: a time in January 1970 is almost always epoch seconds sent as
 *   milliseconds, and far-future times are clock or unit errors that would otherwise create
 *   useless partitions.
 * - value: the payload itself when it is a number or boolean, else payload."value" (number or
 *   boolean). NaN and +-Infinity are rejected. A missing (or null) value is allowed only when the
 *   row stores something else: a kind, or (with extra on) other fields; the row then has value
 *   NULL. With extra off, other fields would be thrown away, so such a reading is rejected.
 * - seq: record.seq (msg.seq, or the number the first of our nodes gave it) else payload."seq" else 0;
 *   a safe integer.
 *   (source, time, seq) is the row's identity: a retried or replayed batch maps to the same rows.
 * - kind: payload."kind" else msg.kind; a string of at most 256 characters, or NULL.
 * - extra (only when enabled): every other own field of the payload object, as jsonb. Keys named
 *   __proto__, constructor or prototype are never copied (at any depth); Dates become ISO strings,
 *   bigints strings, non-finite numbers null, functions/symbols/undefined are left out. Nesting
 *   deeper than 16 levels, NUL characters, or more than 16 KiB of JSON reject the row.
 */
import type { TelemetryRecord } from '../readings/records';
import { describe, isDate, isPlainObject } from '../readings/values';
import { OPTIONS } from '../../options/timescale-sink';

export interface MappingOptions {
  /** Payload properties read for the time, first present wins. Defaults of these five: the sink's options (src/options/timescale-sink.ts). */
  timeProperty?: string | string[];
  sourceProperty?: string;
  valueProperty?: string;
  kindProperty?: string;
  seqProperty?: string;
  /** Copy the payload's remaining fields into the row's extra (jsonb). Default false. */
  extra?: boolean;
  /** Largest accepted extra, in characters of JSON. Default 16384. */
  maxExtraLength?: number;
  /** Longest accepted source and kind. Default 256. */
  maxTextLength?: number;
  /** Earliest accepted time, epoch ms. Default 2000-01-01T00:00:00Z. */
  minTimeMs?: number;
  /** Latest accepted time (exclusive), epoch ms. Default 2100-01-01T00:00:00Z. */
  maxTimeMs?: number;
}

export interface ResolvedMappingOptions {
  timeProperties: string[];
  sourceProperty: string;
  valueProperty: string;
  kindProperty: string;
  seqProperty: string;
  extra: boolean;
  maxExtraLength: number;
  maxTextLength: number;
  minTimeMs: number;
  maxTimeMs: number;
  /** The payload keys that are not extra fields (the property names above). */
  reservedKeys: ReadonlySet<string>;
  /** All five property names are the defaults (see readsByName). */
  defaultNames: boolean;
  /** "payload.<property>" of each property above, for the reasons, made once rather than per row. */
  labels: { source: string; value: string; kind: string; seq: string; time: string[] };
}

export interface TelemetryRow {
  /** Epoch milliseconds. */
  time: number;
  source: string;
  kind: string | null;
  value: number | null;
  seq: number;
  extra: Record<string, unknown> | null;
}

export type MappingResult = { ok: true; row: TelemetryRow } | { ok: false; reason: string };

/**
 * A batch's rows as one array per column: what the insert's parameters are built from. The writer
 * holds a batch's rows until its statement completes (a batch with a bad row is split and sent
 * again), so an object per row would wait with them and be promoted by V8 (npm run bench, item c).
 */
export class RowColumns {
  readonly time: number[] = [];
  readonly source: string[] = [];
  readonly kind: Array<string | null> = [];
  readonly value: Array<number | null> = [];
  readonly seq: number[] = [];
  readonly extra: Array<Record<string, unknown> | null> = [];

  get length(): number {
    return this.time.length;
  }

  add(time: number, source: string, kind: string | null, value: number | null, seq: number, extra: Record<string, unknown> | null): void {
    this.time.push(time);
    this.source.push(source);
    this.kind.push(kind);
    this.value.push(value);
    this.seq.push(seq);
    this.extra.push(extra);
  }

  /** Rows from (inclusive) to end (exclusive), as a batch of their own. */
  slice(from: number, end: number): RowColumns {
    const part = new RowColumns();
    for (let i = from; i < end; i++) part.add(this.time[i], this.source[i], this.kind[i], this.value[i], this.seq[i], this.extra[i]);
    return part;
  }
}

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);
/**
 * The names mapRecordUnsafe reads directly: sourceProperty, valueProperty, kindProperty, seqProperty,
 * then the timeProperty list, as the options' defaults have them (a test holds the two equal).
 */
const BY_NAME = ['source', 'value', 'kind', 'seq', 'time', 'ts'];
const MAX_EXTRA_DEPTH = 16;
const ISO_8601 = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)?(Z|[+-]\d{2}:?\d{2})?$/i;

export const DEFAULT_MIN_TIME_MS = Date.UTC(2000, 0, 1);
export const DEFAULT_MAX_TIME_MS = Date.UTC(2100, 0, 1);
const EARLIEST_FOUR_DIGIT_YEAR_MS = Date.parse('0001-01-01T00:00:00Z');
const LATEST_FOUR_DIGIT_YEAR_MS = Date.UTC(10000, 0, 1);

function checkPropertyName(name: unknown, option: string): string {
  if (typeof name !== 'string' || name.length === 0 || FORBIDDEN_KEYS.has(name)) {
    throw new Error(`mapping option ${option} must be a non-empty property name, got ${JSON.stringify(name)}`);
  }
  return name;
}

function positiveNumber(value: number | undefined, fallback: number, option: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) throw new Error(`mapping option ${option} must be a positive number`);
  return value;
}

/** The names in a comma-separated list of property names (the Time from option). */
export function propertyNames(list: string): string[] {
  return list.split(',').map((name) => name.trim()).filter((name) => name !== '');
}

/** Fills in defaults and validates; throws on a bad option so a misconfiguration shows at deploy. */
export function resolveMappingOptions(options: MappingOptions = {}): ResolvedMappingOptions {
  const timeList = options.timeProperty === undefined ? propertyNames(OPTIONS.timeProperty.default) : Array.isArray(options.timeProperty) ? options.timeProperty : [options.timeProperty];
  if (timeList.length === 0) throw new Error('mapping option timeProperty needs at least one property name');
  const minTimeMs = options.minTimeMs ?? DEFAULT_MIN_TIME_MS;
  const maxTimeMs = options.maxTimeMs ?? DEFAULT_MAX_TIME_MS;
  if (!Number.isFinite(minTimeMs) || !Number.isFinite(maxTimeMs) || minTimeMs >= maxTimeMs) throw new Error('mapping options minTimeMs/maxTimeMs must be finite with minTimeMs < maxTimeMs');
  // Beyond these, toISOString() writes signed 6-digit years that PostgreSQL does not read back.
  if (minTimeMs < EARLIEST_FOUR_DIGIT_YEAR_MS || maxTimeMs > LATEST_FOUR_DIGIT_YEAR_MS) throw new Error('mapping options minTimeMs/maxTimeMs must stay within the years 0001..9999');
  const timeProperties = timeList.map((name) => checkPropertyName(name, 'timeProperty'));
  const sourceProperty = checkPropertyName(options.sourceProperty ?? OPTIONS.sourceProperty.default, 'sourceProperty');
  const valueProperty = checkPropertyName(options.valueProperty ?? OPTIONS.valueProperty.default, 'valueProperty');
  const kindProperty = checkPropertyName(options.kindProperty ?? OPTIONS.kindProperty.default, 'kindProperty');
  const seqProperty = checkPropertyName(options.seqProperty ?? OPTIONS.seqProperty.default, 'seqProperty');
  return {
    timeProperties,
    sourceProperty,
    valueProperty,
    kindProperty,
    seqProperty,
    extra: options.extra === true,
    maxExtraLength: positiveNumber(options.maxExtraLength, 16384, 'maxExtraLength'),
    maxTextLength: positiveNumber(options.maxTextLength, 256, 'maxTextLength'),
    minTimeMs,
    maxTimeMs,
    reservedKeys: new Set([sourceProperty, valueProperty, kindProperty, seqProperty, ...timeProperties]),
    defaultNames: sameNames([sourceProperty, valueProperty, kindProperty, seqProperty, ...timeProperties], BY_NAME),
    labels: {
      source: `payload.${sourceProperty}`,
      value: `payload.${valueProperty}`,
      kind: `payload.${kindProperty}`,
      seq: `payload.${seqProperty}`,
      time: timeProperties.map((name) => `payload.${name}`)
    }
  };
}

function sameNames(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((name, i) => name === b[i]);
}

/** Parses one accepted time form to epoch ms, or explains why not. */
function parseTime(raw: unknown, where: string): number | string {
  let ms: number;
  if (typeof raw === 'number') {
    if (!Number.isFinite(raw)) return `${where} is ${describe(raw)}, expected epoch milliseconds`;
    ms = raw;
  } else if (typeof raw === 'string') {
    const trimmed = raw.trim();
    const match = ISO_8601.exec(trimmed);
    if (!match) return `${where} ${JSON.stringify(raw.slice(0, 40))} is not an ISO 8601 time`;
    // Without an offset JavaScript would read a date-time as local time: the same flow would then
    // write different times on differently configured gateways. UTC is the only stable reading.
    const dateOnly = trimmed.length === 10;
    ms = Date.parse(match[1] || dateOnly ? trimmed : `${trimmed}Z`);
    if (Number.isNaN(ms)) return `${where} ${JSON.stringify(raw.slice(0, 40))} is not a valid time`;
  } else if (isDate(raw)) {
    ms = raw.getTime();
    if (Number.isNaN(ms)) return `${where} is an invalid Date`;
  } else {
    return `${where} is ${describe(raw)}, expected a Date, epoch milliseconds or an ISO 8601 string`;
  }
  return ms;
}

function checkText(value: string, what: string, max: number): string | null {
  if (value.length > max) return `${what} is ${value.length} characters, more than ${max}`;
  if (value.includes('\u0000')) return `${what} contains a NUL character`;
  return null;
}

interface ExtraState {
  failure: string | null;
}

/** Copies a value into something JSON can carry, dropping dangerous keys; sets state.failure on a reason to reject. */
function sanitizeExtra(value: unknown, depth: number, state: ExtraState): unknown {
  if (state.failure) return undefined;
  if (depth > MAX_EXTRA_DEPTH) {
    state.failure = `extra fields are nested deeper than ${MAX_EXTRA_DEPTH} levels`;
    return undefined;
  }
  switch (typeof value) {
    case 'string':
      if (value.includes('\u0000')) state.failure = 'extra fields contain a NUL character (jsonb cannot store it)';
      return value;
    case 'number':
      return Number.isFinite(value) ? value : null;
    case 'boolean':
      return value;
    case 'bigint':
      return value.toString();
    case 'undefined':
    case 'function':
    case 'symbol':
      return undefined;
  }
  if (value === null) return null;
  if (isDate(value)) return Number.isNaN(value.getTime()) ? null : value.toISOString();
  if (Array.isArray(value)) {
    return value.map((item) => {
      const copy = sanitizeExtra(item, depth + 1, state);
      return copy === undefined ? null : copy;
    });
  }
  if (Buffer.isBuffer(value)) return value.toString('base64');
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value as object)) {
    if (FORBIDDEN_KEYS.has(key)) continue;
    if (key.includes('\u0000')) {
      state.failure = 'extra fields contain a NUL character (jsonb cannot store it)';
      return undefined;
    }
    const copy = sanitizeExtra((value as Record<string, unknown>)[key], depth + 1, state);
    if (copy !== undefined) out[key] = copy;
  }
  return out;
}

/**
 * Maps one record. `receivedAt` (epoch ms) is the time used when neither the payload nor the
 * message carries one; pass the same value when a batch is retried so its rows keep their identity.
 */
export function mapRecord(record: TelemetryRecord, receivedAt: number, options: ResolvedMappingOptions): MappingResult {
  const rows = new RowColumns();
  const reason = mapRow(record, receivedAt, options, rows);
  if (reason !== null) return { ok: false, reason };
  return { ok: true, row: { time: rows.time[0], source: rows.source[0], kind: rows.kind[0], value: rows.value[0], seq: rows.seq[0], extra: rows.extra[0] } };
}

/**
 * Whether rows may read the payload's fields by the default names (BY_NAME) directly, as named
 * loads V8 makes fast, instead of one pass over the payload's keys (bench/README.md, "The sink's
 * writer"). Only own fields count, so only while nothing gave Object.prototype a property of those
 * names: checked once per batch.
 */
export function readsByName(options: ResolvedMappingOptions): boolean {
  if (!options.defaultNames) return false;
  for (const name of BY_NAME) if (Object.prototype.hasOwnProperty.call(Object.prototype, name)) return false;
  return true;
}

/** mapRecord for the writer's hot path: adds the row to `rows` and returns null, or returns the reason it was rejected. */
export function mapRow(record: TelemetryRecord, receivedAt: number, options: ResolvedMappingOptions, rows: RowColumns, byName = readsByName(options)): string | null {
  try {
    return mapRecordUnsafe(record, receivedAt, options, rows, byName);
  } catch (err) {
    // Getters and proxies in a payload can throw; the promise is a reason, never an exception.
    return `payload could not be read: ${err instanceof Error ? err.message : String(err)}`;
  }
}

function mapRecordUnsafe(record: TelemetryRecord, receivedAt: number, options: ResolvedMappingOptions, rows: RowColumns, byName: boolean): string | null {
  if (record === null || typeof record !== 'object') return `record is ${describe(record)}`;
  // A reading the node that shaped it refused (shapes.ts): rejected with that node's reason.
  if (typeof record.refused === 'string') return record.refused;
  const payload = record.payload;
  let fields: Record<string, unknown> | null = null;
  let value: number | null = null;

  if (typeof payload === 'number') {
    if (!Number.isFinite(payload)) return `value is ${describe(payload)}, expected a finite number`;
    value = payload;
  } else if (typeof payload === 'boolean') {
    value = payload ? 1 : 0;
  } else if (isPlainObject(payload)) {
    fields = payload;
    // Another realm's object (a function node's) may inherit from its own Object.prototype, which
    // readsByName did not check: its fields are read in the pass over its own keys.
    if (byName) {
      const proto: unknown = Object.getPrototypeOf(payload);
      if (proto !== Object.prototype && proto !== null) byName = false;
    }
  } else if (payload === undefined || payload === null) {
    return 'payload is empty';
  } else {
    return `payload is ${describe(payload)}, expected a number, a boolean or a plain object`;
  }

  // The payload's fields the options name: by the default names directly (readsByName), else in
  // one pass over its keys, as a lookup by a configured name costs V8 a generic keyed load each.
  // Both read only those fields (a getter elsewhere is not called); a non-enumerable own field,
  // which JSON and Node-RED's clone never carry, is seen by name only.
  let fromSource: unknown;
  let fromValue: unknown;
  let fromSeq: unknown;
  let fromKind: unknown;
  let fromTime: unknown;
  let timeAt = -1;
  if (fields && byName) {
    // BY_NAME, one by one.
    fromSource = fields.source;
    fromValue = fields.value;
    fromSeq = fields.seq;
    fromKind = fields.kind;
    const time = fields.time;
    const ts = fields.ts;
    if (time !== undefined && time !== null) {
      fromTime = time;
      timeAt = 0;
    } else if (ts !== undefined && ts !== null) {
      fromTime = ts;
      timeAt = 1;
    }
  } else if (fields) {
    const { sourceProperty, valueProperty, seqProperty, kindProperty, timeProperties, reservedKeys } = options;
    for (const key in fields) {
      // Own fields only, as everywhere here (a polluted Object.prototype adds nothing).
      if (!reservedKeys.has(key) || !Object.prototype.hasOwnProperty.call(fields, key)) continue;
      const field = fields[key];
      if (field === undefined) continue;
      if (key === sourceProperty) fromSource = field;
      if (key === valueProperty) fromValue = field;
      if (key === seqProperty) fromSeq = field;
      if (key === kindProperty) fromKind = field;
      if (field !== null) {
        // The first of the time properties that is present wins, whatever the payload's key order.
        const at = timeProperties.indexOf(key);
        if (at >= 0 && (timeAt < 0 || at < timeAt)) {
          timeAt = at;
          fromTime = field;
        }
      }
    }
  }

  // source
  let source: unknown = record.topic;
  let sourceWhere = 'msg.topic';
  if (fromSource !== undefined) {
    source = fromSource;
    sourceWhere = options.labels.source;
  }
  if (source === undefined || source === null || source === '') return `no source: set msg.topic or ${options.labels.source}`;
  if (typeof source !== 'string') return `${sourceWhere} is ${describe(source)}, expected a string`;
  const sourceProblem = checkText(source, sourceWhere, options.maxTextLength);
  if (sourceProblem) return sourceProblem;

  // time
  let rawTime: unknown;
  let timeWhere = '';
  if (timeAt >= 0) {
    rawTime = fromTime;
    timeWhere = options.labels.time[timeAt];
  }
  if (rawTime === undefined && record.timestamp !== undefined && record.timestamp !== null) {
    rawTime = record.timestamp;
    timeWhere = 'msg.timestamp';
  }
  if (rawTime === undefined) {
    rawTime = receivedAt;
    timeWhere = 'time of receipt';
  }
  const timeMs = parseTime(rawTime, timeWhere);
  if (typeof timeMs === 'string') return timeMs;
  if (timeMs < options.minTimeMs || timeMs >= options.maxTimeMs) {
    const shown = new Date(timeMs).toISOString();
    const hint = timeMs >= 0 && timeMs < 1e11 ? ' (epoch seconds instead of milliseconds?)' : '';
    return `${timeWhere} ${shown} is outside ${new Date(options.minTimeMs).toISOString()} .. ${new Date(options.maxTimeMs).toISOString()}${hint}`;
  }

  // value
  let hasContent = false;
  if (fields) {
    const rawValue = fromValue;
    if (typeof rawValue === 'number') {
      if (!Number.isFinite(rawValue)) return `${options.labels.value} is ${describe(rawValue)}, expected a finite number`;
      value = rawValue;
      hasContent = true;
    } else if (typeof rawValue === 'boolean') {
      value = rawValue ? 1 : 0;
      hasContent = true;
    } else if (rawValue !== undefined && rawValue !== null) {
      return `${options.labels.value} is ${describe(rawValue)}, expected a number or a boolean`;
    }
  } else {
    hasContent = true;
  }

  // seq
  let seq: unknown = 0;
  let seqWhere = 'seq';
  if (record.seq !== undefined && record.seq !== null) {
    seq = record.seq;
    seqWhere = 'msg.seq';
  } else if (fromSeq !== undefined && fromSeq !== null) {
    seq = fromSeq;
    seqWhere = options.labels.seq;
  }
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq)) return `${seqWhere} is ${describe(seq)}, expected an integer`;

  // kind
  let kind: string | null = null;
  let rawKind: unknown = fromKind;
  let kindWhere = options.labels.kind;
  if (rawKind === undefined || rawKind === null) {
    rawKind = record.kind;
    kindWhere = 'msg.kind';
  }
  if (rawKind !== undefined && rawKind !== null && rawKind !== '') {
    if (typeof rawKind !== 'string') return `${kindWhere} is ${describe(rawKind)}, expected a string`;
    const kindProblem = checkText(rawKind, kindWhere, options.maxTextLength);
    if (kindProblem) return kindProblem;
    kind = rawKind;
    hasContent = true;
  }

  // extra: stored only when on; with it off, the other fields are not something the row stores
  let extra: Record<string, unknown> | null = null;
  if (fields && options.extra) {
    const rest: Record<string, unknown> = {};
    let restCount = 0;
    for (const key in fields) {
      if (!Object.prototype.hasOwnProperty.call(fields, key) || options.reservedKeys.has(key) || FORBIDDEN_KEYS.has(key)) continue;
      rest[key] = fields[key];
      restCount++;
    }
    if (restCount > 0) {
      hasContent = true;
      const state: ExtraState = { failure: null };
      const copy = sanitizeExtra(rest, 0, state) as Record<string, unknown> | undefined;
      if (state.failure) return state.failure;
      const json = JSON.stringify(copy);
      if (json.length > options.maxExtraLength) return `extra fields are ${json.length} characters of JSON, more than ${options.maxExtraLength}`;
      if (copy && Object.keys(copy).length > 0) extra = copy;
    }
  }
  if (!hasContent) return `payload has no ${options.valueProperty} and nothing else to store${options.extra ? '' : ' (its other fields are kept only with Extra on)'}`;

  rows.add(timeMs, source, kind, value, seq, extra);
  return null;
}
