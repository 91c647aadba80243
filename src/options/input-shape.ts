/**
 * The two options of every node that reads messages from input nodes (buffer, batcher, sink): how a
 * message is read into readings, and what happens to an OPC UA value that is not Good (see
 * src/core/readings/shapes.ts). Declared once here; each node's table includes them.
 */
import type { OptionTable } from '../core/shared/option-table';
import { INPUT_SHAPES, QUALITY_POLICIES } from '../core/readings/shapes';

export const SHAPE_OPTIONS = {
  shape: { kind: 'choice', name: 'Input shape', default: 'auto', choices: INPUT_SHAPES },
  quality: { kind: 'choice', name: 'OPC UA quality', default: 'good-only', choices: QUALITY_POLICIES },
} as const satisfies OptionTable;
