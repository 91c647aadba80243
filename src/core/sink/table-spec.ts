/**
 * The table the sink writes to, as a name and a shape: the logical columns of a telemetry row, the
 * user's column for each (existing mode), and the one way a name reaches a statement (quoted,
 * strictly checked). Setting the table up is table-setup.ts; writing to it, timescale-writer.ts.
 */
import type { ResolvedTimescaleOptions } from './hypertable-setup';

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

/** The writer's configuration or the table does not fit; retrying cannot fix it. */
export class WriterConfigError extends Error {
  readonly code: string;
  constructor(message: string, code = 'CONFIG') {
    super(message);
    this.name = 'WriterConfigError';
    this.code = code;
  }
}
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
export const MAX_IDENTIFIER_LENGTH = 63;

/**
 * Validates a SQL identifier and returns it double-quoted. Only [A-Za-z_][A-Za-z0-9_]*, at most
 * 63 characters (PostgreSQL would silently truncate a longer name): strict on purpose, so a name
 * can never carry a quote, a semicolon or anything else that changes the statement. Quoting keeps
 * the case as written: unquoted names created by CREATE TABLE are lower case.
 */
export function quoteIdentifier(name: unknown, what = 'identifier'): string {
  if (typeof name !== 'string' || !IDENTIFIER.test(name) || name.length > MAX_IDENTIFIER_LENGTH) {
    throw new WriterConfigError(`invalid ${what} ${JSON.stringify(name)}: use letters, digits and _, starting with a letter or _, at most ${MAX_IDENTIFIER_LENGTH} characters`);
  }
  return `"${name}"`;
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
