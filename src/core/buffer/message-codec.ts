/**
 * How a Node-RED message is kept outside the JavaScript heap, so that it comes back as Node-RED
 * would have delivered it: a Buffer as a Buffer, a Date as a Date, nested objects and arrays as
 * they were. (JSON turns a Buffer into {type, data} and a Date into a string.)
 *
 * - Binary (MessagePack, msgpackr): the ring's off-heap part and the disk tier. Chosen by
 *   measurement (`npm run bench:spool`, bench/ring.js): faster to encode than JSON.stringify,
 *   about as fast to decode as JSON.parse, a fifth smaller, and it keeps Buffer and Date values
 *   (keys whose value is undefined are left out, as JSON does). v8.serialize keeps the types too
 *   but is three times slower than JSON for messages this small.
 * - Text (JSON lines with tagged values): the shutdown spool, a file a person can read.
 *
 * Both decoders strip the keys `__proto__`, `constructor` and `prototype` (a file is input), and
 * only pay for that when the bytes name one of them.
 */
import { Packr } from 'msgpackr';
import type { DiskCodec } from './disk-record';
import { isDate } from '../readings/values';

// skipValues is documented in msgpackr's README but missing from its type definitions.
const packr = new Packr(<ConstructorParameters<typeof Packr>[0] & { skipValues: unknown[] }>{
  // Every record stands alone: no shared structure table that a restart would have to rebuild.
  useRecords: false,
  // A decoded Buffer must not be a view into the ring's block or a disk read buffer that is reused.
  copyBuffers: true,
  largeBigIntToString: true,
  // Keys whose value is undefined are left out, as JSON does (and the message id, hidden that way):
  // reading MessagePack's undefined back cost a tenth of the decoding time.
  skipValues: [undefined],
});

/**
 * For a message carrying an array of events: MessagePack records, each distinct shape of object
 * described once in the message (maxSharedStructures 0: nothing shared between messages, so every
 * record still stands alone) and the events written as values only. For 100 events a message
 * takes 45 % of its JSON, encodes twice and decodes three times as fast; for one event the shape
 * would cost more than it saves. The same reader (packr) reads both.
 */
const recordsPackr = new Packr(<ConstructorParameters<typeof Packr>[0] & { skipValues: unknown[] }>{
  useRecords: true,
  maxSharedStructures: 0,
  copyBuffers: true,
  largeBigIntToString: true,
  skipValues: [undefined],
});

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/** The shallow copy of a message without what must not be stored: its id and HTTP in's req/res. */
function withoutTransport(msg: Record<string, unknown>): Record<string, unknown> {
  const copy: Record<string, unknown> = {};
  for (const key in msg) {
    if (key !== '_msgid' && key !== 'req' && key !== 'res' && Object.prototype.hasOwnProperty.call(msg, key)) copy[key] = msg[key];
  }
  return copy;
}

/**
 * A copy that MessagePack can take: circular references, functions and symbols left out, bigints
 * too large for 64 bits as strings (msgpackr does that itself). Only for messages the fast path
 * refused.
 */
function storable(value: unknown, seen: WeakSet<object>): unknown {
  if (typeof value === 'function' || typeof value === 'symbol') return undefined;
  if (typeof value !== 'object' || value === null) return value;
  if (Buffer.isBuffer(value) || isDate(value) || ArrayBuffer.isView(value)) return value;
  if (seen.has(value)) return undefined;
  seen.add(value);
  if (Array.isArray(value)) return value.map((item) => storable(item, seen) ?? null);
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value)) {
    const copy = storable((value as Record<string, unknown>)[key], seen);
    if (copy !== undefined) out[key] = copy;
  }
  return out;
}

/**
 * A message (or a telemetry record) as MessagePack. The bytes are msgpackr's own buffer, valid
 * until the next call: copy them at once. Throws when the message cannot be stored at all (nested
 * deeper than the stack allows, a throwing getter): the caller counts it.
 */
export function packMessage(msg: Record<string, unknown>): Buffer {
  const payload = msg.payload;
  const packer = Array.isArray(payload) && payload.length > 1 ? recordsPackr : packr;
  if (msg.req === undefined && msg.res === undefined) {
    // Hiding the id this way avoids copying the message (decoders give every message a new id).
    const id = msg._msgid;
    if (id !== undefined) msg._msgid = undefined;
    try {
      return packer.pack(msg);
    } catch {
      return packer.pack(storable(withoutTransport(msg), new WeakSet([msg])));
    } finally {
      if (id !== undefined) msg._msgid = id;
    }
  }
  return packer.pack(storable(withoutTransport(msg), new WeakSet([msg])));
}

const PROTO = Buffer.from('proto'); // in __proto__ and prototype
const CONSTRUCTOR = Buffer.from('constructor');

/** Whether these bytes may name a key that stripRiskyKeys would remove (false: certainly not). */
export function mayNameRiskyKeys(bytes: Uint8Array): boolean {
  const b = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return b.indexOf(PROTO) !== -1 || b.indexOf(CONSTRUCTOR) !== -1;
}

/** msgpackr reads a key `__proto__` as `__proto_` (so it cannot reach the prototype); both go. */
function stripRiskyKeys(value: unknown): void {
  if (typeof value !== 'object' || value === null || Buffer.isBuffer(value) || isDate(value)) return;
  if (Array.isArray(value)) {
    for (const item of value) stripRiskyKeys(item);
    return;
  }
  const record = value as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (FORBIDDEN_KEYS.has(key) || key === '__proto_') delete record[key];
    else stripRiskyKeys(record[key]);
  }
}

/**
 * The message back from packMessage's bytes, `bytes[start..end)`. `screened`: the caller knows no
 * risky key is named in them (its own bytes from memory, or a chunk it checked with
 * mayNameRiskyKeys). A record written as JSON by an earlier version (it starts with `{`, which no
 * MessagePack map does) is read as JSON.
 *
 * Pass a record's range within the buffer it was read into rather than a subarray of it: msgpackr
 * attaches a DataView to every buffer it reads, which costs an allocation and a new hidden class
 * per record when every record is a fresh subarray (a third of the disk tier's replay rate).
 */
export function unpackMessage(bytes: Buffer, screened = false, start = 0, end = bytes.length): Record<string, unknown> {
  if (bytes[start] === 0x7b) return parseMessageLine(bytes.toString('utf8', start, end));
  const value = packr.unpack(bytes, { start, end }) as unknown;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('not a message');
  if (!screened && mayNameRiskyKeys(bytes.subarray(start, end))) stripRiskyKeys(value);
  return value as Record<string, unknown>;
}

// --- JSON lines (the shutdown spool) ---

/** The key that marks a value JSON cannot carry as itself; a NUL character never starts a real key. */
const TYPE_TAG = '\u0000type';
const NEEDS_REVIVER = /"(?:__proto__|constructor|prototype|\\u0000type)"/;

/**
 * One message as a line of JSON that keeps its types: a Buffer becomes {"\u0000type": "Buffer",
 * "base64": ...}, a Date {"\u0000type": "Date", "iso": ...}. Survives what Node-RED messages may
 * carry: circular references and functions are left out, bigints become strings, req/res and the
 * message id are not written. Throws when JSON.stringify cannot (nested too deep, a throwing getter).
 */
export function toMessageLine(msg: Record<string, unknown>): string {
  const seen = new WeakSet<object>();
  return JSON.stringify(msg, function (this: Record<string, unknown>, key, value: unknown) {
    if (key === 'req' || key === 'res' || key === '_msgid') return undefined;
    // JSON.stringify has already called toJSON: a Buffer arrives as {type: 'Buffer', data}, a Date
    // as its ISO string (null when invalid); only then is the holder asked for the value itself.
    switch (typeof value) {
      case 'object': {
        if (value === null) {
          const original = this[key];
          return isDate(original) ? { [TYPE_TAG]: 'Date', iso: null } : null;
        }
        if ((value as { type?: unknown }).type === 'Buffer') {
          const original = this[key];
          if (Buffer.isBuffer(original)) return { [TYPE_TAG]: 'Buffer', base64: original.toString('base64') };
        }
        if (seen.has(value)) return undefined;
        seen.add(value);
        return value;
      }
      case 'string':
        // toISOString ends in Z and is at least 24 characters long.
        if (value.length >= 24 && value.charCodeAt(value.length - 1) === 90) {
          const original = this[key];
          if (isDate(original)) return { [TYPE_TAG]: 'Date', iso: value };
        }
        return value;
      case 'bigint':
        return value.toString();
      case 'function':
      case 'symbol':
        return undefined;
      default:
        return value;
    }
  });
}

function revive(_key: string, value: unknown): unknown {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
  const record = value as Record<string, unknown>;
  const tag = record[TYPE_TAG];
  if (tag === 'Buffer' && typeof record.base64 === 'string') return Buffer.from(record.base64, 'base64');
  if (tag === 'Date' && (typeof record.iso === 'string' || record.iso === null)) return new Date(record.iso === null ? NaN : record.iso);
  for (const key of Object.keys(record)) if (FORBIDDEN_KEYS.has(key)) delete record[key];
  return value;
}

/** A line of toMessageLine back to the message; only a line that names a tag or a risky key pays for the reviver. */
export function parseMessageLine(line: string): Record<string, unknown> {
  return JSON.parse(line, NEEDS_REVIVER.test(line) ? revive : undefined) as Record<string, unknown>;
}

/**
 * Node-RED messages as disk tier records (MessagePack). Each chunk read back is screened once for
 * the keys a decoder must strip, so a record pays for that only when its chunk names one.
 */
export function messageCodec<H>(wrap: (msg: Record<string, unknown>) => H, messageOf: (held: H) => Record<string, unknown>): DiskCodec<H> {
  return {
    encode: (held) => packMessage(messageOf(held)),
    decode: (payload, _weight, screened) => wrap(unpackMessage(payload, screened)),
    decodeRange: (chunk, start, end, _weight, screened) => wrap(unpackMessage(chunk, screened, start, end)),
    screen: (chunk) => !mayNameRiskyKeys(chunk),
  };
}
