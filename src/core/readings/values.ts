/**
 * Small questions about values of unknown type that the shape readers and the row mapping ask:
 * asked without throwing, and (those on the hot path) without allocating. A function node's code
 * runs in a VM context of its own, so what it makes has that context's prototypes: these answer
 * for such values as for the runtime's own (`instanceof Date` would not).
 */
import { types } from 'util';

export function wholeNumberOf(value: unknown): number | undefined {
  const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

export function isObject(value: unknown): boolean {
  return typeof value === 'object' && value !== null;
}

export function hasOwnKeys(object: object): boolean {
  for (const key in object) if (Object.prototype.hasOwnProperty.call(object, key)) return true;
  return false;
}

/** An object literal's or JSON.parse's object, or Object.create(null): of this realm or a function node's. */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null || isForeignObjectPrototype(proto);
}

const OBJECT_SOURCE = Function.prototype.toString.call(Object);

/** Another realm's Object.prototype: no prototype of its own, and that realm's Object as its constructor. */
function isForeignObjectPrototype(proto: object): boolean {
  if (Object.getPrototypeOf(proto) !== null || !Object.prototype.hasOwnProperty.call(proto, 'constructor')) return false;
  const constructor: unknown = (proto as { constructor?: unknown }).constructor;
  return typeof constructor === 'function' && Function.prototype.toString.call(constructor) === OBJECT_SOURCE;
}

/** A Date, of this realm or a function node's. */
export function isDate(value: unknown): value is Date {
  return types.isDate(value);
}

export function truncate(text: string): string {
  return text.length > 80 ? `${text.slice(0, 80)}...` : text;
}

/** A value as a reason names it: `NaN`, `a string ("...")`, `a Date`, `a Map`, `an object`. */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'missing';
  if (typeof value === 'number') return Number.isNaN(value) ? 'NaN' : String(value);
  if (Array.isArray(value)) return 'an array';
  if (isDate(value)) return 'a Date';
  if (Buffer.isBuffer(value)) return 'a Buffer';
  if (typeof value === 'string') return `a string (${JSON.stringify(truncate(value))})`;
  if (typeof value === 'object') return isPlainObject(value) ? 'an object' : `a ${className(value)}`;
  return `a ${typeof value}`;
}

/** The class an object was made by, for a reason (`Map`, `Uint8Array`); `object` when it cannot tell. */
function className(value: object): string {
  try {
    const name: unknown = (Object.getPrototypeOf(value) as { constructor?: { name?: unknown } } | null)?.constructor?.name;
    return typeof name === 'string' && name !== '' ? name : 'object';
  } catch {
    return 'object'; // a proxy that throws
  }
}
