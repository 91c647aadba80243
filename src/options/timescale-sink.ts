/** timescale-sink's options: the one place their defaults and ranges are written (see option-table.ts). */
import type { OptionTable } from '../core/shared/option-table';
import { SHAPE_OPTIONS } from '../core/readings/shape-options';

export const SCHEMA_MODES = ['auto', 'existing'] as const;

/** In existing mode only: the user's table names its own columns. */
const EXISTING = { option: 'mode', is: ['existing'] } as const;

export const OPTIONS = {
  schema: { kind: 'text', name: 'Schema', default: 'public', required: true, check: 'identifier' },
  table: { kind: 'text', name: 'Table', default: 'telemetry', required: true, check: 'identifier' },
  mode: { kind: 'choice', name: 'Mode', default: 'auto', choices: SCHEMA_MODES },
  extra: { kind: 'flag', name: 'Extra fields', default: false },
  // Empty means the table has no such column; time and source it must have.
  timeColumn: { kind: 'text', name: 'Time column', default: 'time', required: true, check: 'identifier', when: EXISTING },
  sourceColumn: { kind: 'text', name: 'Source column', default: 'source', required: true, check: 'identifier', when: EXISTING },
  kindColumn: { kind: 'text', name: 'Kind column', default: 'kind', optional: true, check: 'identifier', when: EXISTING },
  valueColumn: { kind: 'text', name: 'Value column', default: 'value', optional: true, check: 'identifier', when: EXISTING },
  seqColumn: { kind: 'text', name: 'Seq column', default: 'seq', optional: true, check: 'identifier', when: EXISTING },
  extraColumn: { kind: 'text', name: 'Extra column', default: 'extra', optional: true, check: 'identifier', when: EXISTING },
  timeProperty: { kind: 'text', name: 'Time from', default: 'time,ts', check: 'properties' },
  sourceProperty: { kind: 'text', name: 'Source from', default: 'source', check: 'property' },
  valueProperty: { kind: 'text', name: 'Value from', default: 'value', check: 'property' },
  kindProperty: { kind: 'text', name: 'Kind from', default: 'kind', check: 'property' },
  seqProperty: { kind: 'text', name: 'Seq from', default: 'seq', check: 'property' },
  ...SHAPE_OPTIONS,
  chunkInterval: { kind: 'text', name: 'Chunk interval', default: '1 day', check: 'chunkInterval' },
  compressAfter: { kind: 'text', name: 'Compress after', default: '', optional: true, check: 'interval' },
  retention: { kind: 'text', name: 'Drop after', default: '', optional: true, check: 'interval' },
  maxAttempts: { kind: 'integer', name: 'Max attempts', default: 10, min: 1, max: 1000, unit: 'attempts' },
  initialDelay: { kind: 'number', name: 'Initial delay', default: 500, min: 0, max: 3_600_000, unit: 'ms' },
  maxDelay: { kind: 'number', name: 'Max delay', default: 30_000, min: 0, max: 3_600_000, unit: 'ms' },
  maxConcurrent: { kind: 'integer', name: 'Concurrency', default: 0, min: 0, max: 1000, unit: 'writes', zero: "the connection's pool size" },
  maxQueued: { kind: 'integer', name: 'Queue', default: 100_000, min: 1, max: 50_000_000, unit: 'events' },
  maxRows: { kind: 'integer', name: 'Max rows', default: 5000, min: 1, max: 10_000_000, unit: 'rows' },
  drainTimeout: { kind: 'number', name: 'On close', default: 10, min: 0, max: 3600, unit: 's' },
  statsInterval: { kind: 'number', name: 'Stats every', default: 10, min: 0, max: 86_400, unit: 's', zero: 'only on request' },
} as const satisfies OptionTable;
