/** timescale-sink's options: the one place their defaults and ranges are written (see option-table.ts). */
import type { OptionTable } from '../core/shared/option-table';
import { SHAPE_OPTIONS } from '../core/readings/shape-options';

export const SCHEMA_MODES = ['auto', 'existing'] as const;

/** In existing mode only: the user's table names its own columns. */
const EXISTING = { option: 'mode', is: ['existing'] } as const;

export const OPTIONS = {
  schema: { kind: 'text', name: 'Schema', doc: 'Any name up to 63 bytes: it is always quoted, so `plant-north` works and case is kept.', default: 'public', required: true, check: 'identifier' },
  table: { kind: 'text', name: 'Table', doc: 'Any name up to 63 bytes: it is always quoted, so `line-1` works and case is kept.', default: 'telemetry', required: true, check: 'identifier' },
  mode: { kind: 'choice', name: 'Mode', doc: '`auto`: create the table, its unique index and (with TimescaleDB) the hypertable if missing. `existing`: write into your table, using the column names below.', default: 'auto', choices: SCHEMA_MODES },
  extra: { kind: 'flag', name: 'Extra fields', doc: 'Stored in column `extra` (in existing mode: *Extra column*).', default: false },
  // Empty means the table has no such column; time and source it must have.
  timeColumn: { kind: 'text', name: 'Time column', doc: 'Existing mode: the column for the time; required.', default: 'time', required: true, check: 'identifier', when: EXISTING },
  sourceColumn: { kind: 'text', name: 'Source column', doc: 'Existing mode: the column for the source; required.', default: 'source', required: true, check: 'identifier', when: EXISTING },
  kindColumn: { kind: 'text', name: 'Kind column', doc: 'Existing mode: the column for the kind; empty: the table has none.', default: 'kind', optional: true, check: 'identifier', when: EXISTING },
  valueColumn: { kind: 'text', name: 'Value column', doc: 'Existing mode: the column for the value; empty: the table has none.', default: 'value', optional: true, check: 'identifier', when: EXISTING },
  seqColumn: { kind: 'text', name: 'Seq column', doc: 'Existing mode: the column for the sequence number; empty: the table has none (a re-sent row is then told apart by source and time only).', default: 'seq', optional: true, check: 'identifier', when: EXISTING },
  extraColumn: { kind: 'text', name: 'Extra column', doc: 'Existing mode, with *Extra fields* on: the jsonb column for the other payload fields.', default: 'extra', optional: true, check: 'identifier', when: EXISTING },
  timeProperty: { kind: 'text', name: 'Time from', doc: 'A comma-separated list; the first present wins.', default: 'time,ts', check: 'properties' },
  sourceProperty: { kind: 'text', name: 'Source from', doc: 'Else `msg.topic`. A telemetry-buffer or telemetry-batcher before the sink numbers each reading in this source.', default: 'source', check: 'property' },
  valueProperty: { kind: 'text', name: 'Value from', default: 'value', check: 'property' },
  kindProperty: { kind: 'text', name: 'Kind from', default: 'kind', check: 'property' },
  seqProperty: { kind: 'text', name: 'Seq from', default: 'seq', check: 'property', doc: 'A telemetry-buffer or telemetry-batcher before the sink looks for a reading\'s own number in this field too.' },
  ...SHAPE_OPTIONS,
  chunkInterval: { kind: 'text', name: 'Chunk interval', doc: 'Auto mode only; at least 1 s. An interval with its unit: `30` alone is refused (PostgreSQL would read 30 seconds).', default: '1 day', check: 'chunkInterval' },
  compressAfter: { kind: 'text', name: 'Compress after', doc: 'Auto mode only, e.g. `7 days`. A server that refuses the policy (the Apache-2 edition) gives a warning, and the rows are still written.', default: '', optional: true, check: 'interval' },
  retention: { kind: 'text', name: 'Drop after', doc: 'Auto mode only, e.g. `90 days`; empty keeps everything.', default: '', optional: true, check: 'interval' },
  maxAttempts: { kind: 'integer', name: 'Max attempts', doc: 'Attempts in total per write, for deadlocks and serialization failures on a reachable database; an outage or a misconfiguration spends none.', default: 10, min: 1, max: 1000, unit: 'attempts' },
  initialDelay: { kind: 'number', name: 'Initial delay', doc: 'The first wait is up to this long; each further one up to twice the one before.', default: 500, min: 0, max: 3_600_000, unit: 'ms' },
  maxDelay: { kind: 'number', name: 'Max delay', default: 30_000, min: 0, max: 3_600_000, unit: 'ms' },
  maxConcurrent: { kind: 'integer', name: 'Concurrency', default: 0, min: 0, max: 1000, unit: 'writes', zero: "the connection's pool size" },
  maxQueued: { kind: 'integer', name: 'Queue', doc: 'A message arriving when the queue is full is refused with an error and counted (`refusedMessages`).', default: 100_000, min: 1, max: 50_000_000, unit: 'events' },
  maxRows: { kind: 'integer', name: 'Max rows', doc: 'Plain messages waiting in the queue are merged into writes of at most this many rows; batches are written as they come.', default: 5000, min: 1, max: 10_000_000, unit: 'rows' },
  drainTimeout: { kind: 'number', name: 'On close', doc: 'Capped 3 s below Node-RED\'s close timeout.', default: 10, min: 0, max: 3600, unit: 's' },
  statsInterval: { kind: 'number', name: 'Stats every', default: 10, min: 0, max: 86_400, unit: 's', zero: 'only on request' },
} as const satisfies OptionTable;
