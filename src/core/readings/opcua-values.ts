/**
 * OPC UA values as node-red-contrib-opcua sends them (a value with its StatusCode and timestamps on
 * the message, or DataValues as the payload): one reading per value, source the node id, time the
 * source timestamp; a status that is not Good is refused or kept as ShapeOptions.quality says.
 */
import type { TelemetryRecord } from './records';
import type { ResolvedShapeOptions } from './shape-options';
import { Collector, plainTime, valueProblem, type InputMessage, type ShapeResult } from './shape-result';
import { isObject } from './values';

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
export function dataValueOf(item: unknown): DataValueLike | undefined {
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
export function isOpcuaValue(msg: InputMessage, explicit: boolean): boolean {
  return statusCodeOf(msg.statusCode) !== undefined && (explicit || msg.sourceTimestamp !== undefined || msg.serverTimestamp !== undefined);
}

export function opcua(msg: InputMessage, options: ResolvedShapeOptions, explicit: boolean): ShapeResult | undefined {
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
    // Stops at the first element that is not a DataValue: an array of readings is the common case.
    const values: DataValueLike[] = [];
    for (const element of msg.payload) {
      const value = dataValueOf(element);
      if (value === undefined) return undefined;
      values.push(value);
    }
    const items = Array.isArray(msg.items) ? msg.items : Array.isArray(msg.topic) ? (msg.topic as unknown[]) : undefined;
    const out = new Collector(msg);
    values.forEach((value, i) => {
      const item = items?.[i];
      const source = isObject(item) ? nodeIdText((item as { nodeId?: unknown }).nodeId) : undefined;
      addOpcuaValue(out, options, msg, source, value);
    });
    return out.result('opcua');
  }
  return undefined;
}

function addOpcuaValue(out: Collector, options: ResolvedShapeOptions, msg: InputMessage, source: string | undefined, value: DataValueLike): void {
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
