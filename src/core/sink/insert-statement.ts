/**
 * The INSERT a batch is sent as, and its parameters. Why each choice, with the figures that made
 * it: bench/README.md ("The sink's writer") and docs/architecture.md ("Delivery").
 * - One statement, `INSERT INTO t (...) SELECT u.c1, u.c2, ... FROM unnest($1::timestamptz[],
 *   $2::text[], ...) AS u(c1, c2, ...)`: one array parameter per column, so a batch of any size is
 *   one round trip with at most six parameters (a multi-row VALUES list hits node-postgres' 65,535
 *   bind-parameter limit at 10-13k rows, and was slower).
 * - Not COPY: no faster here, and it cannot say ON CONFLICT DO NOTHING for a retried batch (the
 *   idempotent form, through a staging table, was slower still).
 * - source and kind as plain text arrays, each distinct text encoded once: a dictionary of
 *   positions costs the server more the more sources a batch holds.
 * - The arrays in PostgreSQL's binary format (binary-arrays.ts; extra stays a jsonb text literal):
 *   numbers as bytes, times as timestamptz microseconds, nothing for the server to parse.
 * - Idempotency: the auto table has a UNIQUE index on (time, source, seq) with seq NOT NULL
 *   DEFAULT 0 (a NULL seq would let a retried row in twice). A batch retried after an ambiguous
 *   failure inserts nothing the second time; those rows count as `duplicates`, not lost.
 * - ON CONFLICT DO NOTHING only when a conflict is possible (a unique or exclusion violation, a
 *   retry after an ambiguous failure, duplicates in the writer's previous batch): the plain
 *   statement inserts every row or none and costs the server less per row.
 */
import { float8Array, int8Array, textArray, timestamptzArray } from './binary-arrays';
import type { RowColumns } from './row-mapping';
import { quoteIdentifier, type ColumnName } from './table-spec';

const ARRAY_TYPES: Record<ColumnName, string> = { time: 'timestamptz[]', source: 'text[]', kind: 'text[]', value: 'float8[]', seq: 'int8[]', extra: 'jsonb[]' };

/** Quotes one text element of a PostgreSQL array literal. */
function arrayText(value: string): string {
  // Most values hold neither character: skip the regular expression for them.
  if (value.indexOf('"') < 0 && value.indexOf('\\') < 0) return `"${value}"`;
  return `"${value.replace(/[\\"]/g, '\\$&')}"`;
}

/** A column's statement parameter: one array of the batch's values. */
const COLUMN_PARAMETER: Record<ColumnName, (rows: RowColumns) => Buffer | string> = {
  time: (rows) => timestamptzArray(rows.time),
  source: (rows) => textArray(rows.source),
  kind: (rows) => textArray(rows.kind),
  value: (rows) => float8Array(rows.value),
  seq: (rows) => int8Array(rows.seq),
  // jsonb's binary form is a version byte and the same text: a literal costs nothing more.
  extra: (rows) => `{${rows.extra.map((extra) => (extra === null ? 'NULL' : arrayText(JSON.stringify(extra)))).join(',')}}`,
};

/** The INSERT of the written columns into one table, in its plain and its ON CONFLICT DO NOTHING form. */
export class InsertStatement {
  /** Sent first. */
  readonly plain: string;
  /** Sent when some of the rows may already be in the table. */
  readonly idempotent: string;

  constructor(
    target: string,
    columns: Partial<Record<ColumnName, string>>,
    private readonly written: readonly ColumnName[]
  ) {
    const names = written.map((column) => quoteIdentifier(columns[column]));
    const arrays = written.map((column, i) => `$${i + 1}::${ARRAY_TYPES[column]}`);
    const aliases = written.map((_column, i) => `c${i + 1}`);
    this.plain = `INSERT INTO ${target} (${names.join(', ')}) SELECT ${aliases.map((alias) => `u.${alias}`).join(', ')} FROM unnest(${arrays.join(', ')}) AS u(${aliases.join(', ')})`;
    this.idempotent = `${this.plain} ON CONFLICT DO NOTHING`;
  }

  /** The statement's parameters for these rows. */
  parameters(rows: RowColumns): Array<Buffer | string> {
    return this.written.map((column) => COLUMN_PARAMETER[column](rows));
  }
}
