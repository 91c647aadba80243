/** telemetry-batcher's options: the one place their defaults and ranges are written (see option-table.ts). */
import type { OptionTable } from '../core/shared/option-table';
import { SHAPE_OPTIONS } from '../core/readings/shape-options';

export const OPTIONS = {
  maxSize: { kind: 'integer', name: 'Batch size', default: 1000, min: 1, max: 1_000_000, unit: 'events' },
  maxAge: { kind: 'number', name: 'Max age', default: 1000, min: 0, max: 86_400_000, unit: 'ms' },
  maxOpenBatches: { kind: 'integer', name: 'Open batches', default: 4, min: 1, max: 1000, unit: 'batches' },
  maxHeld: { kind: 'integer', name: 'Max held', default: 50_000, min: 1, max: 50_000_000, unit: 'events' },
  ackTimeout: { kind: 'number', name: 'Ack timeout', default: 120, min: 0.001, max: 86_400, unit: 's' },
  ...SHAPE_OPTIONS,
} as const satisfies OptionTable;
