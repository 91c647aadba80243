/**
 * What reading a message gives (ShapeResult): the readings to store and those refused, each with
 * its reason, or "not a reading". The Collector numbers a message's readings as it collects them.
 */
import type { TelemetryMessageLike, TelemetryRecord } from './records';
import { describe, isDate } from './values';

/** A message as the shape readers take it: any property may be there, or a getter that throws. */
export type InputMessage = TelemetryMessageLike & Record<string, unknown>;

/** What a message was read as. 'events' (array payload) and 'records' (record group) only come from auto or single. */
export type ReadShape = 'records' | 'single' | 'events' | 'named-values' | 'registers' | 'opcua';

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

/** Collects the readings of one message; reading i gets msg.seq + i when the message carries a seq (as array payloads always did). */
export class Collector {
  readonly readings: TelemetryRecord[] = [];
  readonly refused: RefusedReading[] = [];
  private readonly seq: number | undefined;

  constructor(msg: InputMessage) {
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
export function refuseWhole(msg: InputMessage, reason: string, shape: ReadShape): ShapeResult {
  const out = new Collector(msg);
  out.add({ topic: typeof msg.topic === 'string' ? msg.topic : undefined, payload: msg.payload, timestamp: msg.timestamp, kind: msg.kind }, reason);
  return out.result(shape);
}

/** Why a value cannot be a reading's value, or undefined when it can (a finite number or a boolean). */
export function valueProblem(value: unknown, where: string): string | undefined {
  if (typeof value === 'boolean') return undefined;
  if (typeof value === 'number') return Number.isFinite(value) ? undefined : `${where} is ${String(value)}, expected a finite number`;
  return `${where} is ${describe(value)}, expected a number or a boolean`;
}

/** Dates become epoch ms, so a record reads the same before and after JSON (spool, disk tier). */
export function plainTime(time: unknown): unknown {
  return isDate(time) ? time.getTime() : time;
}
