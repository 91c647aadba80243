/**
 * Writes batches of telemetry records into a PostgreSQL / TimescaleDB table: one statement per
 * batch, idempotent (insert-statement.ts says how), every statement through the one retry loop (retry.ts),
 * and bad rows isolated instead of sinking the batch: a data error bisects the batch until each
 * bad row stands alone; good halves are written, each bad row is rejected with the database's
 * message and SQLSTATE.
 *
 * Preparing the table (creating or checking it, the unique key, the hypertable and TimescaleDB
 * policies) is table-setup.ts and hypertable-setup.ts.
 */
import { EventEmitter } from 'events';
import { OPTIONS } from '../../options/timescale-sink';
import type { TelemetryRecord } from '../readings/records';
import { resolveTimescaleOptions, type ResolvedTimescaleOptions, type TimescaleOptions } from './hypertable-setup';
import { InsertStatement } from './insert-statement';
import { DataRowsError, POLICY_REFUSAL, resolveBackoffOptions, RetryLoop, sleep as defaultSleep, type BackoffOptions, type Sleep, type WriteContext, type WriterStateName } from './retry';
import { mapRow, readsByName, resolveMappingOptions, RowColumns, type MappingOptions, type ResolvedMappingOptions } from './row-mapping';
import { prepareTable } from './table-setup';
import type { PrepareResult } from './table-report';
import { COLUMN_ORDER, qualifiedName, quoteIdentifier, WriterConfigError, type ColumnMap, type ColumnName, type Queryable, type SchemaMode } from './table-spec';

export { quoteIdentifier, WriterConfigError } from './table-spec';
export { intervalSeconds, resolveTimescaleOptions, timescaleStatements } from './hypertable-setup';
export { uniqueIndexName } from './table-setup';
export { WriteFailedError } from './retry';
export type { WriterRetryEvent, WriterState, WriterStateChange, WriterStateName } from './retry';
export type { PolicyReport, PolicyStatus, PrepareResult, TableNotice, TableNoticeCode } from './table-report';
export type { SqlStatement, TimescaleOptions } from './hypertable-setup';
export type { ColumnMap, ColumnName, Queryable, SchemaMode } from './table-spec';

/** Defaults: the sink's (src/options/timescale-sink.ts). */
export interface TimescaleWriterOptions {
  schema?: string;
  table?: string;
  /** 'auto' creates the table; 'existing' writes into the user's table. */
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

export class TimescaleWriter extends EventEmitter {
  /** The quoted, schema-qualified table name. */
  readonly target: string;
  readonly mode: SchemaMode;
  private readonly schema: string;
  private readonly table: string;
  private readonly columns: Partial<Record<ColumnName, string>>;
  private readonly written: ColumnName[];
  private readonly insert: InsertStatement;
  /** The last batch held rows the table already had (a replay is usually more than one batch). */
  private lastBatchHadDuplicates = false;
  private readonly mapping: ResolvedMappingOptions;
  private readonly timescale: ResolvedTimescaleOptions;
  private readonly now: () => number;
  private preparing: Promise<PrepareResult> | null = null;
  private readonly retry: RetryLoop;

  constructor(private readonly pool: Queryable, options: TimescaleWriterOptions = {}) {
    super();
    if (!pool || typeof pool.query !== 'function') throw new WriterConfigError('TimescaleWriter needs a pg.Pool (or anything with query(text, values))');
    this.schema = options.schema ?? OPTIONS.schema.default;
    this.table = options.table ?? OPTIONS.table.default;
    this.target = qualifiedName(this.schema, this.table);
    this.mode = options.mode ?? OPTIONS.mode.default;
    if (this.mode !== 'auto' && this.mode !== 'existing') throw new WriterConfigError(`mode must be 'auto' or 'existing', got ${JSON.stringify(options.mode)}`);
    const extra = options.extra ?? options.mapping?.extra ?? false;
    this.mapping = resolveMappingOptions({ ...options.mapping, extra });
    this.timescale = resolveTimescaleOptions(options.timescale);
    this.now = options.now ?? Date.now;
    this.retry = new RetryLoop({
      backoff: resolveBackoffOptions(options.retry),
      prepare: () => this.prepare(),
      recreateTable: this.mode === 'auto' ? () => (this.preparing = null) : undefined,
      emit: (event: string, payload: unknown) => this.emit(event, payload),
      random: options.random ?? Math.random,
      sleep: options.sleep ?? defaultSleep,
      now: this.now,
    });


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
    this.insert = new InsertStatement(this.target, this.columns, this.written);
  }

  /** The statement a batch is sent as first. */
  get insertSql(): string {
    return this.insert.plain;
  }

  /** The statement a batch is sent as when some of its rows may already be in the table. */
  get idempotentInsertSql(): string {
    return this.insert.idempotent;
  }

  get state(): WriterStateName | 'unknown' {
    return this.retry.state;
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
    await this.retry.run(context, undefined);
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
    const rows = new RowColumns();
    const origins: TelemetryRecord[] = [];
    const byName = readsByName(this.mapping);
    for (const record of records) {
      const reason = mapRow(record, receivedAt, this.mapping, rows, byName);
      if (reason !== null) {
        rejected.push({ record, reason, code: 'MAPPING' });
      } else {
        origins.push(record);
      }
    }
    if (rows.length === 0) return { written: 0, duplicates: 0, rejected, attempts: 0, statements: 0 };

    const context: WriteContext = { signal: options.signal, retries: 0, statements: 0, written: 0, rejected, reprepared: false, mayConflict: this.lastBatchHadDuplicates };
    const rejectedBefore = rejected.length;
    await this.insertIsolatingBadRows(rows, origins, context);
    if (context.written === 0 && rejected.length - rejectedBefore === rows.length && rejected.slice(rejectedBefore).every((r) => r.code === POLICY_REFUSAL)) {
      // Not some rows a policy keeps out: the table takes none of them. Held as misconfigured,
      // they go in once a person fixes the policy or the role.
      rejected.length = rejectedBefore;
      context.policyRefusesAll = true;
      await this.insertIsolatingBadRows(rows, origins, context);
    }
    const refused = rejected.length - rejectedBefore;
    const duplicates = rows.length - refused - context.written;
    this.lastBatchHadDuplicates = duplicates > 0;
    return { written: context.written, duplicates, rejected, attempts: context.retries + 1, statements: context.statements };
  }


  private async insertIsolatingBadRows(rows: RowColumns, origins: TelemetryRecord[], context: WriteContext): Promise<void> {
    try {
      const values = this.insert.parameters(rows);
      context.written += await this.retry.run(context, async () => (await this.pool.query(context.mayConflict ? this.insert.idempotent : this.insert.plain, values)).rowCount ?? 0);
    } catch (err) {
      if (!(err instanceof DataRowsError)) throw err;
      if (rows.length === 1) {
        context.rejected.push({ record: origins[0], reason: err.classification.message, code: err.classification.code });
        return;
      }
      const middle = Math.ceil(rows.length / 2);
      await this.insertIsolatingBadRows(rows.slice(0, middle), origins.slice(0, middle), context);
      await this.insertIsolatingBadRows(rows.slice(middle, rows.length), origins.slice(middle), context);
    }
  }
}
