/**
 * The INSERT a batch is sent as, and its parameters. How, and why:
 * - One statement, `INSERT INTO t (...) SELECT u.c1, u.c2, ... FROM unnest($1::timestamptz[],
 *   $2::text[], ...) AS u(c1, c2, ...)`: each column travels as one array parameter, so a batch
 *   of any size is one round trip with at most six parameters (a multi-row VALUES list hits
 *   node-postgres' 65,535 bind-parameter limit at 10-13k rows, and measured about 4x slower than
 *   unnest).
 * - unnest rather than COPY, by measurement (bench/sink.js, same machine, same run, same indexed
 *   table): COPY text straight into the table runs at 0.90x of the plain unnest INSERT (it reads
 *   ISO times, which costs the server more than epoch milliseconds), and it cannot say ON CONFLICT
 *   DO NOTHING for a retried batch. The idempotent COPY (into a temporary staging table, then
 *   INSERT ... SELECT ... ON CONFLICT DO NOTHING, in a transaction: four round trips) measured
 *   0.53x: no gain, for a pinned connection, a transaction and the pg-copy-streams dependency.
 * - source and kind travel as plain text arrays: PostgreSQL finds a text array's element by
 *   walking the array, so a dictionary of positions costs the server more per row the more distinct
 *   sources a batch holds (bench/README.md, "The sink's writer").
 * - The arrays travel in PostgreSQL's binary format (binary-arrays.ts; extra stays a jsonb text
 *   literal): the client writes each number's bytes instead of formatting it, the server copies
 *   them instead of parsing text, and times go as timestamptz microseconds with no conversion in
 *   the statement. Formatting an ISO string per row was once the writer's largest cost (12 % of the
 *   pipeline's CPU in `npm run bench` item c); bench/README.md has what the binary form saves.
 * - Idempotency: the auto table has a UNIQUE index on (time, source, seq) with seq NOT NULL
 *   DEFAULT 0 (NULLs are never equal in a unique index, so a NULL seq would let a retried row in
 *   twice). A batch retried after an ambiguous failure (committed, but the client saw an error)
 *   inserts nothing the second time; those rows are counted as `duplicates`, not lost.
 * - ON CONFLICT DO NOTHING only when a conflict is possible: a plain INSERT is tried first, and
 *   only a unique (23505) or exclusion (23P01) violation, a retry after an ambiguous failure, or
 *   duplicates in the writer's previous batch send the ON CONFLICT form. The plain statement
 *   either inserts every row or none, so nothing is lost or doubled by trying it; measured on the
 *   auto table (one backend, batches of 1,000) it costs PostgreSQL 10 us of CPU per row against
 *   16 us with ON CONFLICT, whose speculative insertion probes the index and then inserts. A batch
 *   that does hold duplicates pays one refused statement more (and leaves its dead tuples to
 *   autovacuum), which happens after an outage or a redeploy, not in steady flow.
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
