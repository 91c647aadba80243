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
 * - Errors: see retry.ts for the classes and run() for what each does. The database unavailable or
 *   misconfigured -> every write waits at the gate (database-gate.ts) while one probes. Transient
 *   -> bounded attempts with backoff and the same rows again. Data errors -> bisect the batch until
 *   each bad row stands alone; good halves are written, each bad row is rejected with the
 *   database's message and SQLSTATE. Anything else -> WriteFailedError at once.
 *
 * Preparing the table (creating or checking it, the unique key, the hypertable and TimescaleDB
 * policies) is in table-setup.ts.
 */
import { EventEmitter } from 'events';
import type { TelemetryRecord } from '../readings/records';
import { mapRecord, resolveMappingOptions, type MappingOptions, type ResolvedMappingOptions, type TelemetryRow } from './row-mapping';
import { DatabaseGate } from './database-gate';
import { backoffDelay, classifyError, probeDelay, resolveBackoffOptions, sleep as defaultSleep, AbortedError, type BackoffOptions, type ErrorClassification, type ErrorKind, type ResolvedBackoffOptions, type Sleep } from './retry';
import { COLUMN_ORDER, prepareTable, quoteIdentifier, resolveTimescaleOptions, WriterConfigError, type ColumnMap, type ColumnName, type PrepareResult, type Queryable, type ResolvedTimescaleOptions, type SchemaMode, type TimescaleOptions } from './table-setup';

export { quoteIdentifier, timescaleStatements, uniqueIndexName, intervalSeconds, resolveTimescaleOptions, WriterConfigError } from './table-setup';
export type { ColumnMap, ColumnName, PolicyReport, PolicyStatus, PrepareResult, Queryable, SchemaMode, SqlStatement, TableNotice, TableNoticeCode, TimescaleOptions } from './table-setup';

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

const ARRAY_TYPES: Record<ColumnName, string> = { time: 'int8[]', source: 'text[]', kind: 'text[]', value: 'float8[]', seq: 'int8[]', extra: 'jsonb[]' };
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
  private readonly timescale: ResolvedTimescaleOptions;
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
    this.timescale = resolveTimescaleOptions(options.timescale);
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
      const attempt = prepareTable(this.pool, { schema: this.schema, table: this.table, mode: this.mode, columns: this.columns, written: this.written, timescale: this.timescale });
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
}
