/** The counters and the dead-letter entries of timescale-sink (see docs/sink-options.md). */
import type { TelemetryRecord } from './records';

export type SinkState = 'starting' | 'up' | 'retrying' | 'down' | 'closing';

export interface SinkStats {
  state: SinkState;
  /** Messages and events taken in (stats requests not included). */
  receivedMessages: number;
  receivedEvents: number;
  /** Rows inserted. */
  written: number;
  /** Rows skipped because a row with the same (source, time, seq) was already there. */
  duplicates: number;
  /** Rows rejected (mapping or database data error), each sent to the dead-letter output. */
  rejected: number;
  /** Messages whose write failed for good (retries exhausted, schema or permanent error) and their events. */
  deadLetteredBatches: number;
  deadLetteredEvents: number;
  /** Messages refused because the queue was full (done(err)). */
  refusedMessages: number;
  refusedEvents: number;
  /** Messages handed back unwritten because the node closed (done(err) "not written: node closed"). */
  closedMessages: number;
  closedEvents: number;
  /** Retries of write statements (attempts after the first). */
  retries: number;
  /** Write calls started (several plain messages may share one). */
  writes: number;
  inFlight: number;
  inFlightEvents: number;
  queued: number;
  queuedEvents: number;
}

export interface DeadLetterEntry {
  /** The record as the sink received it; record.payload is the original event. */
  record: TelemetryRecord;
  reason: string;
  code: string;
}
