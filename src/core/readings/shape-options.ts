/**
 * How a node reads messages as readings: the `shape` and `quality` options (declared once here for
 * every node that reads messages: SHAPE_OPTIONS) and the property names a sink maps, resolved once.
 */
import { readOptions, type OptionTable } from '../shared/option-table';

export const INPUT_SHAPES = ['auto', 'single', 'named-values', 'registers', 'opcua'] as const;
export type InputShape = (typeof INPUT_SHAPES)[number];

export const QUALITY_POLICIES = ['good-only', 'keep-uncertain', 'keep-all'] as const;
export type QualityPolicy = (typeof QUALITY_POLICIES)[number];

/**
 * The two options of every node that reads messages, as its option table declares them (see
 * option-table.ts): spread into the node's table, read by readShapeOptions().
 */
export const SHAPE_OPTIONS = {
  shape: { kind: 'choice', name: 'Input shape', doc: 'What each shape reads: docs/input-shapes.md. Batches from a telemetry-batcher are never read again.', default: 'auto', choices: INPUT_SHAPES },
  quality: { kind: 'choice', name: 'OPC UA quality', doc: '`good-only` refuses them (they reach the sink\'s dead-letter output); `keep-uncertain` and `keep-all` store them with kind `uncertain` / `bad`.', default: 'good-only', choices: QUALITY_POLICIES },
} as const satisfies OptionTable;

export interface ShapeOptions {
  /** How messages are read. Default 'auto'. */
  shape?: InputShape;
  /** Between msg.topic and a field name or register. Default '/'. */
  separator?: string;
  /** OPC UA values whose status is not Good: refused ('good-only'), or stored with kind 'uncertain' / 'bad'. Default 'good-only'. */
  quality?: QualityPolicy;
  /** The payload keys row-mapping reads; an object with any of them is one reading. Defaults as in MappingOptions. */
  valueProperty?: string;
  sourceProperty?: string;
  kindProperty?: string;
  seqProperty?: string;
  /** Fields of a named-values object that hold the time of all its readings, first present wins. Default ['time', 'ts', 'timestamp']. */
  timeProperty?: string | string[];
}

export interface ResolvedShapeOptions {
  shape: InputShape;
  separator: string;
  quality: QualityPolicy;
  valueProperty: string;
  readingKeys: ReadonlySet<string>;
  timeProperties: readonly string[];
}

function propertyName(name: unknown, option: string): string {
  if (typeof name !== 'string' || name.length === 0 || name === '__proto__' || name === 'constructor' || name === 'prototype') {
    throw new Error(`shape option ${option} must be a non-empty property name, got ${JSON.stringify(name)}`);
  }
  return name;
}

/** Fills in defaults and validates; throws on a bad option so a misconfiguration shows at deploy. */
export function resolveShapeOptions(options: ShapeOptions = {}): ResolvedShapeOptions {
  const shape = options.shape ?? SHAPE_OPTIONS.shape.default;
  if (!(INPUT_SHAPES as readonly string[]).includes(shape)) throw new Error(`shape option shape must be one of ${INPUT_SHAPES.join(', ')}, got ${JSON.stringify(shape)}`);
  const quality = options.quality ?? SHAPE_OPTIONS.quality.default;
  if (!(QUALITY_POLICIES as readonly string[]).includes(quality)) throw new Error(`shape option quality must be one of ${QUALITY_POLICIES.join(', ')}, got ${JSON.stringify(quality)}`);
  const separator = options.separator ?? '/';
  if (typeof separator !== 'string' || separator.includes('\u0000')) throw new Error('shape option separator must be a string without NUL characters');
  const valueProperty = propertyName(options.valueProperty ?? 'value', 'valueProperty');
  const readingKeys = new Set([
    valueProperty,
    propertyName(options.sourceProperty ?? 'source', 'sourceProperty'),
    propertyName(options.kindProperty ?? 'kind', 'kindProperty'),
    propertyName(options.seqProperty ?? 'seq', 'seqProperty'),
  ]);
  const timeList = options.timeProperty === undefined ? ['time', 'ts', 'timestamp'] : Array.isArray(options.timeProperty) ? options.timeProperty : [options.timeProperty];
  const timeProperties = timeList.map((name) => propertyName(name, 'timeProperty'));
  return { shape, separator, quality, valueProperty, readingKeys, timeProperties };
}

/** Options as resolveShapeOptions() gives them without any: shape auto, quality good-only. */
export const DEFAULT_SHAPE_OPTIONS = resolveShapeOptions();

/**
 * The `shape` and `quality` options of a node as the editor saves them (strings, or missing in a
 * flow written by hand), resolved; `mapping` passes a sink's property names so both read a payload alike.
 */
export function readShapeOptions(def: Record<string, unknown>, mapping: Omit<ShapeOptions, 'shape' | 'quality'> = {}): ResolvedShapeOptions {
  return resolveShapeOptions({ ...mapping, ...readOptions(SHAPE_OPTIONS, def) });
}
