/** telemetry-batcher's options: the one place their defaults and ranges are written (see option-table.ts). */
import type { OptionTable } from '../core/shared/option-table';
import { SHAPE_OPTIONS } from '../core/readings/shape-options';

export const OPTIONS = {
  maxSize: { kind: 'integer', name: 'Batch size', doc: 'A full batch is sent; a message is never split, so one larger message is a batch of its own.', default: 1000, min: 1, max: 1_000_000, unit: 'events' },
  maxAge: { kind: 'number', name: 'Max age', doc: 'Unless it fills up first.', default: 1000, min: 0, max: 86_400_000, unit: 'ms' },
  maxOpenBatches: { kind: 'integer', name: 'Open batches', doc: 'Batches sent and not yet confirmed by the next node; closed batches wait behind them.', default: 4, min: 1, max: 1000, unit: 'batches' },
  maxHeld: { kind: 'integer', name: 'Max held', doc: 'Being filled, waiting, out for writing; a message beyond is handed back to a telemetry-buffer in front, or refused with an error.', default: 50_000, min: 1, max: 50_000_000, unit: 'events' },
  ackTimeout: { kind: 'number', name: 'Ack timeout', doc: 'A batch that the next node neither confirms nor holds for this long is given up and reported upstream as unacknowledged.', default: 120, min: 0.001, max: 86_400, unit: 's' },
  ...SHAPE_OPTIONS,
} as const satisfies OptionTable;
