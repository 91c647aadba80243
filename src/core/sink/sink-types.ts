/** The counters and the dead-letter entries of timescale-sink (README, "timescale-sink"). */
import type { TelemetryRecord } from '../readings/records';

export type SinkState = 'starting' | 'up' | 'retrying' | 'down' | 'misconfigured' | 'closing';

/**
 * Exact counters, in messages and events. At any moment receivedEvents = written + duplicates +
 * rejected + deadLetteredEvents + refusedEvents + closedEvents + inFlightEvents + queuedEvents.
 */
export interface SinkCounters {
  /** Messages and events taken in (stats requests not included). */
  receivedMessages: number;
  receivedEvents: number;
  /** Rows inserted. */
  written: number;
  /** Rows skipped because a row with the same (source, time, seq) was already there: a re-send. */
  duplicates: number;
  /** Rows rejected (mapping or database data error), each sent to the dead-letter output. */
  rejected: number;
  /** Messages whose write failed for good (transient failures past the attempts, a permanent error) and their events. */
  deadLetteredBatches: number;
  deadLetteredEvents: number;
  /** Messages refused because the queue was full (done(err)). */
  refusedMessages: number;
  refusedEvents: number;
  /** Messages handed back unwritten because the node closed (completed as 'returned'). */
  closedMessages: number;
  closedEvents: number;
  /** Statement attempts after the first (the probe's attempts during an outage included). */
  retries: number;
  /** Write calls started (several plain messages may share one). */
  writes: number;
  inFlight: number;
  inFlightEvents: number;
  queued: number;
  queuedEvents: number;
}

export interface SinkStats extends SinkCounters {
  state: SinkState;
  /** While down or misconfigured: the SQLSTATE or error code, and since when (epoch ms). */
  code: string;
  since: number;
  /** The host written to (`db2:5433`): with a host list, the one that accepts writes; '' before the first connection. */
  host: string;
  /** The table has a unique key on written columns only: a re-sent row is skipped, never stored twice. */
  idempotent: boolean;
  /** The key holds source, time and seq: two readings that share a source and a time stay two rows. */
  distinctRows: boolean;
  /** What setting up the table refused or found amiss (policies, key, column types), each logged once. */
  tableNotices: number;
  /** Plain messages that are not readings (a subscription id, a status, an empty poll): completed, never stored; outside receivedEvents. */
  ignored: number;
  /** Why the last of them is not a reading. */
  ignoredReason: string;
  /** Rows written per second over the last 5 s (one decimal), the rate the badge shows: a gauge, not a total. */
  rowsPerSecond: number;
}

export interface DeadLetterEntry {
  /** The record as the sink received it; record.payload is the original event. */
  record: TelemetryRecord;
  reason: string;
  code: string;
}
