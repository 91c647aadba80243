/**
 * The table the sink writes to, as a name and a shape: the logical columns of a telemetry row, the
 * user's column for each (existing mode), and the one way a name reaches a statement (quoted,
 * strictly checked). Setting the table up is table-setup.ts; writing to it, timescale-writer.ts.
 */
import type { ResolvedTimescaleOptions } from './hypertable-setup';
import { identifier } from '../shared/checks';
import type { Words } from '../shared/text';

/** The part of a pg.Pool (or pg.Client) the writer uses. */
export interface Queryable {
  query(text: string, values?: unknown[]): Promise<{ rowCount: number | null; rows: unknown[] }>;
}

export type SchemaMode = 'auto' | 'existing';

/** The logical columns of a telemetry row. */
export type ColumnName = 'time' | 'source' | 'kind' | 'value' | 'seq' | 'extra';

export const COLUMN_ORDER: readonly ColumnName[] = ['time', 'source', 'kind', 'value', 'seq', 'extra'];

/**
 * Existing mode: the user's column for each logical column. time and source are required; set any
 * other to null (or '') when the table has no such column. Unset keys default to the same name
 * (extra only when extra is enabled).
 */
export type ColumnMap = Partial<Record<ColumnName, string | null>>;

/**
 * The writer's configuration or the table does not fit; retrying cannot fix it. The message is
 * English (the API's); `words` name it in the sink's catalog (config.<code>) for the node to say.
 */
export class WriterConfigError extends Error {
  readonly code: string;
  readonly words?: Words;
  constructor(message: string, code = 'CONFIG', words?: Words) {
    super(message);
    this.name = 'WriterConfigError';
    this.code = code;
    if (words) this.words = words;
  }
}
export const MAX_IDENTIFIER_LENGTH = 63;

/**
 * Checks a SQL identifier (the rule the editor applies too: src/core/shared/checks.ts) and returns
 * it double-quoted, each quote doubled: inside the quotes no character can end the name or change
 * the statement. Quoting keeps the case as written: unquoted names created by CREATE TABLE are lower
 * case.
 */
export function quoteIdentifier(name: unknown, what = 'identifier'): string {
  const verdict = typeof name === 'string' ? identifier(name) : { text: 'a name is needed' };
  if (verdict !== true) throw new WriterConfigError(`invalid ${what} ${JSON.stringify(name)}: ${verdict.text}`);
  const text = name as string;
  return `"${text.replace(/"/g, '""')}"`;
}

/** `"schema"."table"`, each checked. */
export function qualifiedName(schema: string, table: string): string {
  return `${quoteIdentifier(schema, 'schema')}.${quoteIdentifier(table, 'table')}`;
}

export interface TableSpec {
  schema: string;
  table: string;
  mode: SchemaMode;
  /** The table's column for each logical column the writer knows of. */
  columns: Partial<Record<ColumnName, string>>;
  /** The logical columns every INSERT fills. */
  written: readonly ColumnName[];
  timescale: ResolvedTimescaleOptions;
}
