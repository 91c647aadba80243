/**
 * Named values: a plain object whose fields (besides its time fields) are all numbers or booleans,
 * as a PLC or gateway node sends a set of tags; one reading per field, source <topic>/<name>.
 */
import type { ResolvedShapeOptions } from './shape-options';
import { Collector, plainTime, refuseWhole, valueProblem, type InputMessage, type ShapeResult } from './shape-result';

export function looksLikeNamedValues(payload: Record<string, unknown>, options: ResolvedShapeOptions): boolean {
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

export function namedValues(msg: InputMessage, payload: Record<string, unknown>, options: ResolvedShapeOptions): ShapeResult {
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
