/**
 * Writes batches of telemetry records into a PostgreSQL / TimescaleDB table: one statement per
 * batch, idempotent, with bounded retries, and with bad rows isolated instead of sinking the batch.
 *
 * How a batch is written, and why:
 * - One statement, `INSERT INTO t (...) SELECT to_timestamp(u.c1 / 1000.0::float8), ($3::text[])[u.c2],
 *   ... FROM unnest($1::int8[], $2::int4[], ...) AS u(c1, c2, ...)`: each column travels as one
 *   array parameter (two for source and kind, see below), so a batch of any size is one round
 *   trip with at most eight parameters (a multi-row VALUES list hits node-postgres' 65,535
 *   bind-parameter limit at 10-13k rows, and measured about 4x slower than unnest).
 * - unnest rather than COPY, by measurement (bench/sink.js, same machine, same run, same indexed
 *   table): COPY text straight into the table runs at 0.90x of the plain unnest INSERT (it reads
 *   ISO times, which costs the server more than epoch milliseconds), and it cannot say ON CONFLICT
 *   DO NOTHING for a retried batch. The idempotent COPY (into a temporary staging table, then
 *   INSERT ... SELECT ... ON CONFLICT DO NOTHING, in a transaction: four round trips) measured
 *   0.53x: no gain, for a pinned connection, a transaction and the pg-copy-streams dependency.
 * - source and kind travel as a dictionary (each distinct text once, per row its position): a
 *   batch holds a few dozen of each, so this is about half the bytes on the wire (28 instead of 51
 *   per row of the simulator's data), and less work for the client; PostgreSQL's CPU per row is the same.
 * - The array parameters are serialised here as PostgreSQL array literals rather than left to
 *   node-postgres, which quotes every element one call at a time; the rows are already validated,
 *   so the text is built in one pass. Times travel as epoch milliseconds and become timestamptz in
 *   the statement: formatting an ISO string per row was the writer's largest cost (12 % of the
 *   whole pipeline's CPU in `npm run bench` item c); a JavaScript time is whole milliseconds, which
 *   to_timestamp() turns into exactly the same microsecond value.
 * - Idempotency: the auto table has a UNIQUE index on (source, time, seq) with seq NOT NULL
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
 * - Errors: see retry.ts for the classes. Retryable -> backoff with full jitter and the same rows
 *   again. Data errors -> bisect the batch until each bad row stands alone; good halves are
 *   written, each bad row is rejected with the database's message and SQLSTATE. Schema errors and
 *   permanent errors -> WriteFailedError at once.
 *
 * TimescaleDB calls (made only when the timescaledb extension is installed in the database), as
 * documented for TimescaleDB 2.x:
 * - create_hypertable(relation, by_range(column, interval), if_not_exists, migrate_data) (>= 2.13)
 *   https://www.tigerdata.com/docs/reference/timescaledb/hypertables/create_hypertable
 *   and before 2.13 the old form create_hypertable(relation, time_column_name,
 *   chunk_time_interval => ..., if_not_exists => ..., migrate_data => ...)
 *   https://www.tigerdata.com/docs/api/latest/hypertable/create_hypertable_old
 * - ALTER TABLE ... SET (timescaledb.compress, timescaledb.compress_segmentby = '...',
 *   timescaledb.compress_orderby = '... DESC') and add_compression_policy(hypertable,
 *   compress_after => interval, if_not_exists => true). Superseded in 2.18 by the columnstore
 *   names but still supported, so one form works on every 2.x:
 *   https://www.tigerdata.com/docs/api/latest/compression/alter_table_compression
 *   https://www.tigerdata.com/docs/api/latest/compression/add_compression_policy
 * - add_retention_policy(relation, drop_after => interval, if_not_exists => true)
 *   https://www.tigerdata.com/docs/api/latest/data-retention/add_retention_policy/
 * With if_not_exists an existing policy is kept as it is (TimescaleDB only warns when its
 * interval differs): changing a policy is left to the DBA.
 */
import { EventEmitter } from 'events';
import type { TelemetryRecord } from './records';
import { mapRecord, resolveMappingOptions, type MappingOptions, type ResolvedMappingOptions, type TelemetryRow } from './row-mapping';
import { DatabaseGate } from './database-gate';
import { backoffDelay, classifyError, probeDelay, resolveBackoffOptions, sleep as defaultSleep, AbortedError, type BackoffOptions, type ErrorClassification, type ErrorKind, type ResolvedBackoffOptions, type Sleep } from './retry';

/** The part of a pg.Pool (or pg.Client) the writer uses. */
export interface Queryable {
  query(text: string, values?: unknown[]): Promise<{ rowCount: number | null; rows: unknown[] }>;
}

export type SchemaMode = 'auto' | 'existing';

/** The logical columns of a telemetry row. */
export type ColumnName = 'time' | 'source' | 'kind' | 'value' | 'seq' | 'extra';

/**
 * Existing mode: the user's column for each logical column. time and source are required; set any
 * other to null (or '') when the table has no such column. Unset keys default to the same name
 * (extra only when extra is enabled).
 */
export type ColumnMap = Partial<Record<ColumnName, string | null>>;

export interface TimescaleOptions {
  /** create_hypertable chunk interval, a PostgreSQL interval. Default '1 day'. */
  chunkInterval?: string;
  /** Compress chunks older than this interval; null or '' = no compression. */
  compressAfter?: string | null;
  /** Drop chunks older than this interval; null or '' = keep everything. */
  retention?: string | null;
}

export interface TimescaleWriterOptions {
  /** Default 'public'. */
  schema?: string;
  /** Default 'telemetry'. */
  table?: string;
  /** 'auto' (default) creates the table; 'existing' writes into the user's table. */
  mode?: SchemaMode;
  /** Existing mode only. */
  columns?: ColumnMap;
  /** Store the payload's other fields in the jsonb extra column. Default false. */
  extra?: boolean;
  /** Auto mode only, and only when the timescaledb extension is installed. */
  timescale?: TimescaleOptions;
  retry?: BackoffOptions;
  mapping?: MappingOptions;
  /** For tests: the jitter source (default Math.random). */
  random?: () => number;
  /** For tests: how to wait between attempts (default setTimeout, abortable). */
  sleep?: Sleep;
  /** For tests: the clock (default Date.now). */
  now?: () => number;
}

export type WriterOptions = TimescaleWriterOptions;

export interface WriteOptions {
  /** Epoch ms used as the time of rows that carry none. Keep it when retrying a batch. Default now. */
  receivedAt?: number;
  /** Aborting stops waiting for the next attempt (a statement already sent still completes). */
  signal?: AbortSignal;
}

export interface RejectedRecord {
  record: TelemetryRecord;
  reason: string;
  /** 'MAPPING' for rows that never reached the database, else the SQLSTATE. */
  code?: string;
}

export interface WriteOutcome {
  /** Rows this call inserted. */
  written: number;
  /**
   * Valid rows the table already held: replays, or rows an earlier attempt of this same call
   * committed before the connection dropped. Either way the row is in the table exactly once.
   */
  duplicates: number;
  /** Rows that cannot be written: mapping failures and rows the database refused. */
  rejected: RejectedRecord[];
  /** 1 + the number of retries after retryable errors (0 when no row reached the database). */
  attempts: number;
  /** Statements sent, bisection included. */
  statements: number;
}

/**
 * up: statements go through. retrying: a batch retries a transient failure on a reachable database
 * (deadlock, serialization), with bounded attempts. down: the database is not there (refused, reset,
 * timed out, shutting down, read-only, full); misconfigured: a person must act (password, database,
 * privilege, table). While down or misconfigured every batch waits and one probe retries.
 */
export type WriterStateName = 'up' | 'retrying' | 'down' | 'misconfigured';

/** Emitted as 'state' once per change (and per change of reason), so a node logs one line per outage, not one per retry. */
export interface WriterState {
  state: WriterStateName;
  previous: WriterStateName | 'unknown';
  /** The failed attempt that caused the change (0 for 'up'). */
  attempt: number;
  maxAttempts: number;
  code?: string;
  message?: string;
  /** Epoch ms at which this state began: for down and misconfigured, the first failure. */
  since: number;
}

export type WriterStateChange = WriterState;

/**
 * Emitted as 'retry' before each wait: for a status badge ("retry 3/10 40P01") and the retries
 * counter, not for logs. While the database is down or misconfigured, the probe's attempts have no
 * bound (maxAttempts Infinity).
 */
export interface WriterRetryEvent {
  attempt: number;
  maxAttempts: number;
  delayMs: number;
  code: string;
  message: string;
}

export interface PrepareResult {
  mode: SchemaMode;
  /** Installed timescaledb version, or null on plain PostgreSQL. */
  timescaledb: string | null;
  hypertable: boolean;
  /** False when no unique index covers only written columns: retries could then duplicate rows. */
  idempotent: boolean;
  /** Things an operator should know (for the node to log once). */
  warnings: string[];
}

/** A batch that could not be written: retries exhausted, a permanent or schema error, or aborted. */
export class WriteFailedError extends Error {
  readonly code: string;
  readonly kind: ErrorKind | 'aborted';
  readonly attempts: number;
  readonly causeMessage: string;
  /** Rows of this batch already inserted before the failure (they are safe to send again). */
  readonly written: number;
  /** Rows already rejected before the failure. */
  readonly rejected: RejectedRecord[];

  constructor(classification: Omit<ErrorClassification, 'kind'> & { kind: ErrorKind | 'aborted' }, attempts: number, written = 0, rejected: RejectedRecord[] = []) {
    const after = classification.kind === 'transient' ? ` after ${attempts} attempt${attempts === 1 ? '' : 's'}` : '';
    super(`write failed${after}: ${classification.code}: ${classification.message}`);
    this.name = 'WriteFailedError';
    this.code = classification.code;
    this.kind = classification.kind;
    this.attempts = attempts;
    this.causeMessage = classification.message;
    this.written = written;
    this.rejected = rejected;
  }
}

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
const MAX_IDENTIFIER_LENGTH = 63;
const COLUMN_ORDER: ColumnName[] = ['time', 'source', 'kind', 'value', 'seq', 'extra'];
const ARRAY_TYPES: Record<ColumnName, string> = { time: 'int8[]', source: 'text[]', kind: 'text[]', value: 'float8[]', seq: 'int8[]', extra: 'jsonb[]' };
const COMPATIBLE_TYPES: Record<ColumnName, string[]> = {
  time: ['timestamp with time zone', 'timestamp without time zone'],
  source: ['text', 'character varying', 'character', 'name', 'citext'],
  kind: ['text', 'character varying', 'character', 'name', 'citext'],
  value: ['double precision', 'real', 'numeric', 'bigint', 'integer', 'smallint'],
  seq: ['bigint', 'integer', 'numeric', 'smallint'],
  extra: ['jsonb', 'json']
};

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

export interface SqlStatement {
  text: string;
  values: unknown[];
}

/** The TimescaleDB statements prepare() sends for an auto-mode table (pure, for tests and review). */
export function timescaleStatements(schema: string, table: string, version: string, options: Required<TimescaleOptions>): { hypertable: SqlStatement; enableCompression: SqlStatement | null; compressionPolicy: SqlStatement | null; retentionPolicy: SqlStatement | null } {
  const target = `${quoteIdentifier(schema, 'schema')}.${quoteIdentifier(table, 'table')}`;
  const [major, minor] = version.split('.').map((part) => Number.parseInt(part, 10));
  const generalized = major > 2 || (major === 2 && minor >= 13);
  const hypertable: SqlStatement = generalized
    ? { text: 'SELECT create_hypertable($1::regclass, by_range($2::name, $3::interval), if_not_exists => TRUE, migrate_data => TRUE)', values: [target, 'time', options.chunkInterval] }
    : { text: 'SELECT create_hypertable($1::regclass, $2::name, chunk_time_interval => $3::interval, if_not_exists => TRUE, migrate_data => TRUE)', values: [target, 'time', options.chunkInterval] };
  const compress = options.compressAfter;
  const retention = options.retention;
  return {
    hypertable,
    // Segmenting by source keeps one source's readings together, which is how they are queried.
    enableCompression: compress ? { text: `ALTER TABLE ${target} SET (timescaledb.compress, timescaledb.compress_segmentby = 'source', timescaledb.compress_orderby = 'time DESC')`, values: [] } : null,
    compressionPolicy: compress ? { text: 'SELECT add_compression_policy($1::regclass, compress_after => $2::interval, if_not_exists => TRUE)', values: [target, compress] } : null,
    retentionPolicy: retention ? { text: 'SELECT add_retention_policy($1::regclass, drop_after => $2::interval, if_not_exists => TRUE)', values: [target, retention] } : null
  };
}

/** Quotes one text element of a PostgreSQL array literal. */
function arrayText(value: string): string {
  // Most sources and kinds hold neither character: skip the regular expression for them.
  if (value.indexOf('"') < 0 && value.indexOf('\\') < 0) return `"${value}"`;
  return `"${value.replace(/[\\"]/g, '\\$&')}"`;
}

function textArray(rows: TelemetryRow[], pick: (row: TelemetryRow) => string | null): string {
  const parts = new Array<string>(rows.length);
  for (let i = 0; i < rows.length; i++) {
    const value = pick(rows[i]);
    parts[i] = value === null ? 'NULL' : arrayText(value);
  }
  return `{${parts.join(',')}}`;
}

function numberArray(rows: TelemetryRow[], pick: (row: TelemetryRow) => number | null): string {
  const parts = new Array<string>(rows.length);
  for (let i = 0; i < rows.length; i++) {
    const value = pick(rows[i]);
    parts[i] = value === null ? 'NULL' : String(value);
  }
  return `{${parts.join(',')}}`;
}

/** Each distinct value once (a text array) and, per row, its 1-based position in it (an int4 array; NULL for NULL). */
function dictionaryArrays(rows: TelemetryRow[], pick: (row: TelemetryRow) => string | null): [string, string] {
  const positions = new Map<string, number>();
  const dictionary: string[] = [];
  const parts = new Array<string>(rows.length);
  for (let i = 0; i < rows.length; i++) {
    const value = pick(rows[i]);
    if (value === null) {
      parts[i] = 'NULL';
      continue;
    }
    let position = positions.get(value);
    if (position === undefined) {
      dictionary.push(arrayText(value));
      position = dictionary.length;
      positions.set(value, position);
    }
    parts[i] = String(position);
  }
  return [`{${parts.join(',')}}`, `{${dictionary.join(',')}}`];
}

/** Text columns that repeat from row to row: sent as a dictionary (see dictionaryArrays). */
const DICTIONARY_COLUMNS: ReadonlySet<ColumnName> = new Set(['source', 'kind']);

/** A column's statement parameters: one array, or for a dictionary column its positions and its dictionary. */
const COLUMN_PARAMETERS: Record<ColumnName, (rows: TelemetryRow[]) => string[]> = {
  time: (rows) => {
    const parts = new Array<string>(rows.length);
    for (let i = 0; i < rows.length; i++) parts[i] = String(rows[i].time.getTime());
    return [`{${parts.join(',')}}`];
  },
  source: (rows) => dictionaryArrays(rows, (row) => row.source),
  kind: (rows) => dictionaryArrays(rows, (row) => row.kind),
  value: (rows) => [numberArray(rows, (row) => row.value)],
  seq: (rows) => [numberArray(rows, (row) => row.seq)],
  extra: (rows) => [textArray(rows, (row) => (row.extra === null ? null : JSON.stringify(row.extra)))]
};

class DataRowsError extends Error {
  constructor(readonly classification: ErrorClassification) {
    super(classification.message);
  }
}

interface WriteContext {
  signal?: AbortSignal;
  retries: number;
  statements: number;
  written: number;
  rejected: RejectedRecord[];
  reprepared: boolean;
  /** Send the ON CONFLICT DO NOTHING form: the rows may already be in the table. */
  mayConflict: boolean;
}

/** SQLSTATEs a plain INSERT fails with where ON CONFLICT DO NOTHING would skip the row instead. */
const CONFLICT_CODES = new Set(['23505', '23P01']);

export class TimescaleWriter extends EventEmitter {
  /** The quoted, schema-qualified table name. */
  readonly target: string;
  readonly mode: SchemaMode;
  private readonly schema: string;
  private readonly table: string;
  private readonly columns: Partial<Record<ColumnName, string>>;
  private readonly written: ColumnName[];
  private readonly insertText: string;
  private readonly idempotentInsertText: string;
  /** The last batch held rows the table already had (a replay is usually more than one batch). */
  private lastBatchHadDuplicates = false;
  private readonly mapping: ResolvedMappingOptions;
  private readonly backoff: ResolvedBackoffOptions;
  private readonly timescale: Required<TimescaleOptions>;
  private readonly random: () => number;
  private readonly sleep: Sleep;
  private readonly now: () => number;
  private preparing: Promise<PrepareResult> | null = null;
  private currentState: WriterStateName | 'unknown' = 'unknown';
  private stateSince: number;
  private readonly gate: DatabaseGate;

  constructor(private readonly pool: Queryable, options: TimescaleWriterOptions = {}) {
    super();
    if (!pool || typeof pool.query !== 'function') throw new WriterConfigError('TimescaleWriter needs a pg.Pool (or anything with query(text, values))');
    this.schema = options.schema ?? 'public';
    this.table = options.table ?? 'telemetry';
    this.target = `${quoteIdentifier(this.schema, 'schema')}.${quoteIdentifier(this.table, 'table')}`;
    this.mode = options.mode ?? 'auto';
    if (this.mode !== 'auto' && this.mode !== 'existing') throw new WriterConfigError(`mode must be 'auto' or 'existing', got ${JSON.stringify(options.mode)}`);
    const extra = options.extra ?? options.mapping?.extra ?? false;
    this.mapping = resolveMappingOptions({ ...options.mapping, extra });
    this.backoff = resolveBackoffOptions(options.retry);
    this.timescale = {
      chunkInterval: options.timescale?.chunkInterval || '1 day',
      compressAfter: options.timescale?.compressAfter || null,
      retention: options.timescale?.retention || null
    };
    this.random = options.random ?? Math.random;
    this.sleep = options.sleep ?? defaultSleep;
    this.now = options.now ?? Date.now;
    this.stateSince = this.now();
    this.gate = new DatabaseGate(this.stateSince);

    this.columns = {};
    if (this.mode === 'auto') {
      for (const column of COLUMN_ORDER) this.columns[column] = column;
    } else {
      const given = options.columns ?? {};
      for (const key of Object.keys(given)) {
        if (!COLUMN_ORDER.includes(key as ColumnName)) throw new WriterConfigError(`unknown column mapping ${JSON.stringify(key)}: expected one of ${COLUMN_ORDER.join(', ')}`);
      }
      for (const column of COLUMN_ORDER) {
        const name = Object.prototype.hasOwnProperty.call(given, column) ? given[column] : column === 'extra' && !extra ? null : column;
        if (name === null || name === undefined || name === '') {
          if (column === 'time' || column === 'source') throw new WriterConfigError(`existing mode needs a column for ${column}`);
          continue;
        }
        quoteIdentifier(name, `${column} column`);
        this.columns[column] = name;
      }
    }
    this.written = COLUMN_ORDER.filter((column) => this.columns[column] !== undefined && (column !== 'extra' || extra));
    const names = this.written.map((column) => quoteIdentifier(this.columns[column]));
    // Parameters in the order COLUMN_PARAMETERS gives them: a dictionary column takes two.
    const arrays: string[] = [];
    const selected: string[] = [];
    let parameter = 0;
    this.written.forEach((column, i) => {
      const alias = `u.c${i + 1}`;
      if (DICTIONARY_COLUMNS.has(column)) {
        arrays.push(`$${++parameter}::int4[]`);
        selected.push(`($${++parameter}::text[])[${alias}]`);
      } else {
        arrays.push(`$${++parameter}::${ARRAY_TYPES[column]}`);
        selected.push(column === 'time' ? `to_timestamp(${alias} / 1000.0::float8)` : alias);
      }
    });
    const aliases = this.written.map((_column, i) => `c${i + 1}`);
    this.insertText = `INSERT INTO ${this.target} (${names.join(', ')}) SELECT ${selected.join(', ')} FROM unnest(${arrays.join(', ')}) AS u(${aliases.join(', ')})`;
    this.idempotentInsertText = `${this.insertText} ON CONFLICT DO NOTHING`;
  }

  /** The statement a batch is sent as first. */
  get insertSql(): string {
    return this.insertText;
  }

  /** The statement a batch is sent as when some of its rows may already be in the table. */
  get idempotentInsertSql(): string {
    return this.idempotentInsertText;
  }

  get state(): WriterStateName | 'unknown' {
    return this.currentState;
  }

  /**
   * Checks (existing mode) or creates (auto mode) the table, once; later calls return the same
   * result. One attempt, no retries: a failure rejects and the next call (or write) tries again.
   * Configuration problems reject with WriterConfigError.
   */
  prepare(): Promise<PrepareResult> {
    if (!this.preparing) {
      const attempt = this.mode === 'auto' ? this.prepareAuto() : this.prepareExisting();
      this.preparing = attempt;
      attempt.catch(() => {
        if (this.preparing === attempt) this.preparing = null;
      });
    }
    return this.preparing;
  }

  /**
   * Prepares the table, waiting out an outage or a misconfiguration the way a write does (so the
   * badge is right before the first row arrives). Rejects only when `signal` aborts.
   */
  async start(signal?: AbortSignal): Promise<PrepareResult> {
    const context: WriteContext = { signal, retries: 0, statements: 0, written: 0, rejected: [], reprepared: false, mayConflict: false };
    await this.run(context, undefined);
    return this.prepare();
  }

  /**
   * Writes a batch. Resolves with what happened to every record (written, duplicate or rejected);
   * rejects with WriteFailedError only when the batch as a whole could not be written (transient
   * failures past the attempts, a permanent error, or `signal` aborted). While the database is down
   * or misconfigured it waits, however long, and resolves once the rows are in.
   */
  async write(records: readonly TelemetryRecord[], options: WriteOptions = {}): Promise<WriteOutcome> {
    const receivedAt = options.receivedAt ?? this.now();
    const rejected: RejectedRecord[] = [];
    const rows: TelemetryRow[] = [];
    const origins: TelemetryRecord[] = [];
    for (const record of records) {
      const result = mapRecord(record, receivedAt, this.mapping);
      if (result.ok) {
        rows.push(result.row);
        origins.push(record);
      } else {
        rejected.push({ record, reason: result.reason, code: 'MAPPING' });
      }
    }
    if (rows.length === 0) return { written: 0, duplicates: 0, rejected, attempts: 0, statements: 0 };

    const context: WriteContext = { signal: options.signal, retries: 0, statements: 0, written: 0, rejected, reprepared: false, mayConflict: this.lastBatchHadDuplicates };
    const rejectedBefore = rejected.length;
    await this.insertIsolatingBadRows(rows, origins, context);
    const refused = rejected.length - rejectedBefore;
    const duplicates = rows.length - refused - context.written;
    this.lastBatchHadDuplicates = duplicates > 0;
    return { written: context.written, duplicates, rejected, attempts: context.retries + 1, statements: context.statements };
  }

  private async insertIsolatingBadRows(rows: TelemetryRow[], origins: TelemetryRecord[], context: WriteContext): Promise<void> {
    try {
      const values: string[] = [];
      for (const column of this.written) values.push(...COLUMN_PARAMETERS[column](rows));
      context.written += await this.run(context, async () => (await this.pool.query(context.mayConflict ? this.idempotentInsertText : this.insertText, values)).rowCount ?? 0);
    } catch (err) {
      if (!(err instanceof DataRowsError)) throw err;
      if (rows.length === 1) {
        context.rejected.push({ record: origins[0], reason: err.classification.message, code: err.classification.code });
        return;
      }
      const middle = Math.ceil(rows.length / 2);
      await this.insertIsolatingBadRows(rows.slice(0, middle), origins.slice(0, middle), context);
      await this.insertIsolatingBadRows(rows.slice(middle), origins.slice(middle), context);
    }
  }

  /**
   * The one retry loop: prepares the table, then runs `statement` (when given) until it goes
   * through. Unavailable or misconfigured: wait at the gate, or probe for everyone with
   * probeDelay(); transient: bounded attempts with backoffDelay(); data: DataRowsError for the
   * caller to bisect; anything else: WriteFailedError at once.
   */
  private run(context: WriteContext, statement: undefined): Promise<undefined>;
  private run<T>(context: WriteContext, statement: () => Promise<T>): Promise<T>;
  private async run<T>(context: WriteContext, statement: (() => Promise<T>) | undefined): Promise<T | undefined> {
    let transient = 0;
    let blocked = 0;
    try {
      for (;;) {
        if (context.signal?.aborted) throw this.aborted(context);
        try {
          await this.gate.pass(context, context.signal);
        } catch {
          throw this.aborted(context);
        }
        let classification: ErrorClassification;
        let preparing = true;
        try {
          await this.prepare();
          preparing = false;
          let result: T | undefined;
          if (statement !== undefined) {
            context.statements++;
            result = await statement();
          }
          if (this.gate.open(this.now()) || this.currentState !== 'up') this.setState('up', 0);
          return result;
        } catch (err) {
          if (!preparing && !context.mayConflict && CONFLICT_CODES.has((err as { code?: unknown }).code as string)) {
            // The plain INSERT was refused whole: nothing of it is in the table. Again, skipping what is.
            context.mayConflict = true;
            continue;
          }
          classification = err instanceof WriterConfigError ? { kind: 'config', code: err.code, message: err.message } : classifyError(err);
          // Creating or checking the table fails only for reasons a person must fix (an option, a
          // grant), unless the database is not there: its rows are not the problem.
          if (preparing && classification.kind !== 'unavailable') classification = { ...classification, kind: 'config' };
        }
        const kind = classification.kind;
        if (kind === 'data') {
          // The server answered: it is up, and only these rows are the problem.
          if (this.gate.open(this.now()) || this.currentState !== 'up') this.setState('up', 0);
          throw new DataRowsError(classification);
        }
        if (kind === 'config' && this.mode === 'auto' && !context.reprepared && (classification.code === '42P01' || classification.code === '42703')) {
          // The table (or a column) went away after prepare(): create it again, once.
          context.reprepared = true;
          this.preparing = null;
          continue;
        }
        let delayMs: number;
        let attempt: number;
        let maxAttempts: number;
        if (kind === 'unavailable' || kind === 'config') {
          // The statement may have committed although the client saw an error: the retry must skip those rows.
          if (kind === 'unavailable' && !preparing) context.mayConflict = true;
          attempt = ++blocked;
          maxAttempts = Infinity;
          const state = kind === 'unavailable' ? 'down' : 'misconfigured';
          if (this.gate.close(context, state, classification, this.now()) || this.currentState !== state) this.setState(state, attempt, classification);
          // Another write probes: this one waits at the gate.
          if (!this.gate.probing(context)) continue;
          delayMs = probeDelay(attempt, kind, this.random);
        } else if (kind === 'transient') {
          if (!preparing) context.mayConflict = true;
          attempt = ++transient;
          maxAttempts = this.backoff.maxAttempts;
          if (attempt >= maxAttempts) {
            // The database answered; this batch goes to the dead-letter output and the others go on.
            if (this.currentState === 'retrying') this.setState('up', 0);
            throw new WriteFailedError(classification, attempt, context.written, context.rejected);
          }
          if (this.currentState === 'up' || this.currentState === 'unknown') this.setState('retrying', attempt, classification);
          delayMs = backoffDelay(attempt, this.backoff, this.random);
        } else {
          throw new WriteFailedError(classification, 1, context.written, context.rejected);
        }
        const retryEvent: WriterRetryEvent = { attempt, maxAttempts, delayMs, code: classification.code, message: classification.message };
        this.emit('retry', retryEvent);
        context.retries++;
        try {
          await this.sleep(delayMs, context.signal);
        } catch (err) {
          if (err instanceof AbortedError || context.signal?.aborted) throw this.aborted(context);
          throw err;
        }
      }
    } finally {
      this.gate.leave(context);
    }
  }

  private aborted(context: WriteContext): WriteFailedError {
    return new WriteFailedError({ kind: 'aborted', code: 'ABORTED', message: 'write aborted before the batch was confirmed' }, context.retries + 1, context.written, context.rejected);
  }

  private setState(state: WriterStateName, attempt: number, cause?: ErrorClassification): void {
    const previous = this.currentState;
    this.currentState = state;
    // A closed gate keeps the start of the outage, so "down for 5 min" is true across its reasons.
    this.stateSince = state === 'down' || state === 'misconfigured' ? this.gate.since : this.now();
    const change: WriterState = { state, previous, attempt, maxAttempts: state === 'retrying' ? this.backoff.maxAttempts : Infinity, code: cause?.code, message: cause?.message, since: this.stateSince };
    this.emit('state', change);
  }

  private async tableColumns(): Promise<Map<string, string>> {
    const result = await this.pool.query('SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2', [this.schema, this.table]);
    const columns = new Map<string, string>();
    for (const row of result.rows as Array<{ column_name: string; data_type: string }>) columns.set(row.column_name, row.data_type);
    return columns;
  }

  /** Checks the mapped columns exist with usable types; returns warnings. */
  private checkColumns(columns: Map<string, string>): string[] {
    if (columns.size === 0) throw new WriterConfigError(`table ${this.target} does not exist (or this user cannot see it)`, 'NO_TABLE');
    const missing = this.written.filter((column) => !columns.has(this.columns[column] as string)).map((column) => this.columns[column] as string);
    if (missing.length > 0) throw new WriterConfigError(`table ${this.target} has no column ${missing.map((name) => JSON.stringify(name)).join(', ')}`, 'NO_COLUMN');
    const warnings: string[] = [];
    for (const column of this.written) {
      const name = this.columns[column] as string;
      const type = columns.get(name) as string;
      if (!COMPATIBLE_TYPES[column].includes(type)) throw new WriterConfigError(`column ${JSON.stringify(name)} of ${this.target} is ${type}; ${column} needs one of: ${COMPATIBLE_TYPES[column].join(', ')}`, 'COLUMN_TYPE');
      if (column === 'time' && type === 'timestamp without time zone') warnings.push(`column ${JSON.stringify(name)} is timestamp without time zone: times are stored in the session's time zone`);
    }
    return warnings;
  }

  /** True when some unique index consists only of columns the writer fills, so a resent row conflicts. */
  private async hasIdempotencyKey(): Promise<boolean> {
    const result = await this.pool.query(
      `SELECT array_agg(a.attname::text) AS columns
         FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
        WHERE i.indrelid = $1::regclass AND i.indisunique AND i.indpred IS NULL AND NOT (0 = ANY (i.indkey::int2[]))
        GROUP BY i.indexrelid`,
      [this.target]
    );
    const writtenNames = new Set(this.written.map((column) => this.columns[column] as string));
    return (result.rows as Array<{ columns: string[] }>).some((row) => row.columns.every((name) => writtenNames.has(name)));
  }

  private async timescaleVersion(): Promise<string | null> {
    const result = await this.pool.query("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'");
    const row = result.rows[0] as { extversion?: string } | undefined;
    return row?.extversion ?? null;
  }

  private async isHypertable(): Promise<boolean> {
    const result = await this.pool.query('SELECT 1 FROM timescaledb_information.hypertables WHERE hypertable_schema = $1 AND hypertable_name = $2', [this.schema, this.table]);
    return result.rows.length > 0;
  }

  private async prepareExisting(): Promise<PrepareResult> {
    const warnings = this.checkColumns(await this.tableColumns());
    const idempotent = await this.hasIdempotencyKey();
    if (!idempotent) warnings.push(`table ${this.target} has no unique index on written columns only (e.g. (source, time, seq)): a batch retried after an ambiguous failure can be stored twice`);
    const version = await this.timescaleVersion();
    return { mode: 'existing', timescaledb: version, hypertable: version ? await this.isHypertable() : false, idempotent, warnings };
  }

  private async prepareAuto(): Promise<PrepareResult> {
    try {
      return await this.createAuto();
    } catch (err) {
      // Two sinks preparing the same new table at once race in the catalog; the loser's second try sees the table.
      const code = (err as { code?: unknown }).code;
      if (code === '23505' || code === '42P07' || code === '42710') return this.createAuto();
      throw err;
    }
  }

  private async createAuto(): Promise<PrepareResult> {
    const schema = quoteIdentifier(this.schema, 'schema');
    const namespace = await this.pool.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [this.schema]);
    if (namespace.rows.length === 0) await this.pool.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
    // seq is NOT NULL DEFAULT 0: a NULL would never conflict in the unique index, and the
    // retried row would be stored twice.
    await this.pool.query(
      `CREATE TABLE IF NOT EXISTS ${this.target} (
        "time" timestamptz NOT NULL,
        "source" text NOT NULL,
        "kind" text,
        "value" double precision,
        "seq" bigint NOT NULL DEFAULT 0,
        "extra" jsonb
      )`
    );
    const warnings = this.checkColumns(await this.tableColumns());
    const suffix = '_source_time_seq_key';
    const indexName = quoteIdentifier(`${this.table.slice(0, MAX_IDENTIFIER_LENGTH - suffix.length)}${suffix}`, 'index');
    try {
      await this.pool.query(`CREATE UNIQUE INDEX IF NOT EXISTS ${indexName} ON ${this.target} ("source", "time", "seq")`);
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (code === '23505') throw new WriterConfigError(`table ${this.target} already holds duplicate (source, time, seq) rows, so the unique index that makes retries safe cannot be created: remove the duplicates`, 'DUPLICATES');
      throw err;
    }
    const version = await this.timescaleVersion();
    let hypertable = false;
    if (version) {
      const statements = timescaleStatements(this.schema, this.table, version, this.timescale);
      await this.pool.query(statements.hypertable.text, statements.hypertable.values);
      hypertable = true;
      if (statements.enableCompression && statements.compressionPolicy) {
        const enabled = await this.pool.query('SELECT compression_enabled FROM timescaledb_information.hypertables WHERE hypertable_schema = $1 AND hypertable_name = $2', [this.schema, this.table]);
        const row = enabled.rows[0] as { compression_enabled?: boolean } | undefined;
        if (!row?.compression_enabled) await this.pool.query(statements.enableCompression.text, statements.enableCompression.values);
        await this.pool.query(statements.compressionPolicy.text, statements.compressionPolicy.values);
      }
      if (statements.retentionPolicy) await this.pool.query(statements.retentionPolicy.text, statements.retentionPolicy.values);
    } else if (this.timescale.compressAfter || this.timescale.retention) {
      warnings.push('compression and retention need the timescaledb extension, which this database does not have: ignored');
    }
    const idempotent = await this.hasIdempotencyKey();
    return { mode: 'auto', timescaledb: version, hypertable, idempotent, warnings };
  }
}
