/**
 * Gets the table ready for the writer: checks it (existing mode) or creates what is missing (auto
 * mode), and with TimescaleDB makes it a hypertable with the configured chunk interval, compression
 * and retention. Runs once per writer, before the first row.
 *
 * Two rules:
 * - Nothing that only makes the table better may stop the rows. A TimescaleDB call the server
 *   refuses (the Apache-2 edition refuses compression and retention with 0A000, a role that does
 *   not own the table gets 42501) becomes one TableNotice: what was refused, why, what to do.
 *   Only a table the rows cannot go into (missing, wrong column types, a NOT NULL column nothing
 *   fills) is a WriterConfigError.
 * - A role with only INSERT on a table an administrator prepared runs no DDL: the catalog is read
 *   first, and CREATE / ALTER / create_hypertable / policies are sent only for what is missing.
 *   What exists and differs from the configuration (another chunk interval, compress_after or
 *   drop_after) is reported, never changed: it may be a DBA's decision, and a shorter retention
 *   applied by a redeploy would delete data for good.
 *
 * TimescaleDB calls, as documented for 2.x (values always as parameters):
 * - create_hypertable(rel, by_range(col, interval), if_not_exists, migrate_data) from 2.13, the
 *   older create_hypertable(rel, col, chunk_time_interval => ...) before.
 *   https://www.tigerdata.com/docs/reference/timescaledb/hypertables/create_hypertable
 * - Compression from 2.18 (the columnstore API): ALTER TABLE ... SET (timescaledb.enable_columnstore,
 *   timescaledb.segmentby, timescaledb.orderby) and CALL add_columnstore_policy(rel, after => ...);
 *   before 2.18 ALTER TABLE ... SET (timescaledb.compress, compress_segmentby, compress_orderby) and
 *   add_compression_policy(rel, compress_after => ...).
 *   https://www.tigerdata.com/docs/api/latest/hypercore/alter_table/
 *   https://www.tigerdata.com/docs/api/latest/hypercore/add_columnstore_policy
 *   https://www.tigerdata.com/docs/api/latest/compression/alter_table_compression
 * - add_retention_policy(rel, drop_after => ..., if_not_exists => true).
 * - What exists is read from timescaledb_information.hypertables, .dimensions and .jobs.
 * Compression segments by source (one source's readings are queried together and compress well
 * together) and orders by time DESC, seq DESC: with every column of the unique key in segmentby or
 * orderby, a late row inserted into a compressed chunk is checked against the key using the
 * batches' min/max metadata instead of decompressing them (TimescaleDB 2.16+; 2.11+ accepts INSERT
 * and ON CONFLICT DO NOTHING into compressed chunks at all).
 */
import { createHash } from 'crypto';
import { classifyError } from './retry';

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

export interface TimescaleOptions {
  /** Chunk interval of a new hypertable, a PostgreSQL interval with a unit. Default '1 day'. */
  chunkInterval?: string;
  /** Compress chunks older than this interval; null or '' = no compression. */
  compressAfter?: string | null;
  /** Drop chunks older than this interval; null or '' = keep everything. */
  retention?: string | null;
}

export type ResolvedTimescaleOptions = { chunkInterval: string; compressAfter: string | null; retention: string | null };

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

// ---- intervals ---------------------------------------------------------------------------------

/** Seconds per unit, for the units PostgreSQL's interval input accepts that make sense here ("m" is minutes to PostgreSQL). */
const INTERVAL_UNITS = new Map<string, number>();
for (const [seconds, names] of [
  [1e-6, 'us usec usecs microsecond microseconds'],
  [1e-3, 'ms msec msecs millisecond milliseconds'],
  [1, 's sec secs second seconds'],
  [60, 'm min mins minute minutes'],
  [3600, 'h hr hrs hour hours'],
  [86400, 'd day days'],
  [7 * 86400, 'w week weeks'],
  [30 * 86400, 'mon mons month months'],
  [365.25 * 86400, 'y yr yrs year years']
] as Array<[number, string]>) {
  for (const name of names.split(' ')) INTERVAL_UNITS.set(name, seconds);
}
const MAX_INTERVAL_SECONDS = 100 * 365.25 * 86400;

/**
 * Reads a PostgreSQL interval such as "1 day", "12 hours", "90 days", "1 day 06:00" and returns
 * its length in seconds (months as 30 days). Throws a plain Error saying what is wrong. A number
 * without a unit is refused: PostgreSQL reads "30" as 30 seconds, which nobody means for a chunk
 * interval or a retention. Keep in step with interval() in src/nodes/timescale-sink.html.
 */
export function intervalSeconds(text: string): number {
  const input = text.trim().toLowerCase();
  if (input === '') throw new Error('is empty');
  // A time of day (hh:mm[:ss]) or a number with its unit, each with the spaces around it.
  const part = /\s*(?:(\d+):(\d\d)(?::(\d\d(?:\.\d+)?))?(?![\d:])|(\d+(?:\.\d+)?)\s*([a-z]*))\s*/y;
  let seconds = 0;
  let clock = false;
  for (part.lastIndex = 0; part.lastIndex < input.length; ) {
    const at = part.lastIndex;
    const match = part.exec(input);
    if (!match || part.lastIndex === at) throw new Error(`cannot be read at "${input.slice(at)}": write a number and a unit, e.g. "1 day" or "12 hours"`);
    const [, hours, minutes, clockSeconds, amount, unitName] = match;
    if (hours !== undefined) {
      if (clock) throw new Error('has two times of day');
      clock = true;
      seconds += Number(hours) * 3600 + Number(minutes) * 60 + Number(clockSeconds ?? 0);
      continue;
    }
    if (unitName === '') throw new Error(`has no unit: PostgreSQL would read ${amount} as ${amount} seconds; write the unit, e.g. "${amount} days", "${amount} hours" or "${amount} minutes"`);
    const unit = INTERVAL_UNITS.get(unitName);
    if (unit === undefined) throw new Error(`has an unknown unit "${unitName}": use seconds, minutes, hours, days, weeks, months or years`);
    seconds += Number(amount) * unit;
  }
  if (!(seconds > 0)) throw new Error('is zero');
  if (seconds > MAX_INTERVAL_SECONDS) throw new Error('is longer than 100 years');
  return seconds;
}

/** The writer's TimescaleDB options with defaults, each interval checked (WriterConfigError code INTERVAL). */
export function resolveTimescaleOptions(options: TimescaleOptions = {}): ResolvedTimescaleOptions {
  const check = (value: unknown, label: string, minSeconds: number): string | null => {
    if (value === undefined || value === null || (typeof value === 'string' && value.trim() === '')) return null;
    if (typeof value !== 'string') throw new WriterConfigError(`${label} must be a PostgreSQL interval such as "1 day", got ${JSON.stringify(value)}`, 'INTERVAL');
    let seconds: number;
    try {
      seconds = intervalSeconds(value);
    } catch (err) {
      throw new WriterConfigError(`${label} "${value.trim()}" ${(err as Error).message}`, 'INTERVAL');
    }
    if (seconds < minSeconds) throw new WriterConfigError(`${label} "${value.trim()}" is shorter than ${minSeconds} second${minSeconds === 1 ? '' : 's'}`, 'INTERVAL');
    return value.trim();
  };
  return {
    // TimescaleDB warns below 1 s: such chunks are far too many tables.
    chunkInterval: check(options.chunkInterval, 'chunk interval', 1) ?? '1 day',
    compressAfter: check(options.compressAfter, 'compress after', 0),
    retention: check(options.retention, 'drop after', 0)
  };
}

// ---- what prepare() reports ------------------------------------------------------------------------

export type TableNoticeCode =
  | 'HYPERTABLE_REFUSED'
  | 'CHUNK_INTERVAL_REFUSED'
  | 'CHUNK_INTERVAL_DIFFERS'
  | 'COMPRESSION_REFUSED'
  | 'COMPRESSION_DIFFERS'
  | 'RETENTION_REFUSED'
  | 'RETENTION_DIFFERS'
  | 'NO_TIMESCALEDB'
  | 'NO_UNIQUE_KEY'
  | 'KEY_MERGES_READINGS'
  | 'SEQ_INTEGER'
  | 'VALUE_ROUNDED'
  | 'TIME_WITHOUT_ZONE';

/** One thing about the table an operator should know; the rows are written regardless. */
export interface TableNotice {
  code: TableNoticeCode;
  /** What was refused or found, e.g. 'compression (compress after 7 days) of "public"."telemetry"'. */
  subject: string;
  /** Why: the server's answer with its SQLSTATE, or what the catalog shows. */
  reason: string;
  /** What to do about it (often the exact statement to run). */
  action: string;
  /** The SQLSTATE of a refusal. */
  sqlstate?: string;
  /** `${subject}: ${reason}. ${action}`, one line for the log. */
  message: string;
}

/**
 * off: the sink does not manage it (empty field, or existing mode). applied: set by this prepare().
 * present: the table already had it as configured. differs: the table has another value, which is
 * kept and reported. refused: the server refused to set it. unavailable: no TimescaleDB or no hypertable.
 */
export type PolicyStatus = 'off' | 'applied' | 'present' | 'differs' | 'refused' | 'unavailable';

export interface PolicyReport {
  /** The configured interval (null: none). */
  configured: string | null;
  /** What the table has after prepare() (null: none or unknown). */
  actual: string | null;
  status: PolicyStatus;
}

export interface PrepareResult {
  mode: SchemaMode;
  /** Installed timescaledb version, or null on plain PostgreSQL. */
  timescaledb: string | null;
  hypertable: boolean;
  /** A unique index on written columns only exists: a resent row conflicts instead of being stored twice. */
  idempotent: boolean;
  /**
   * Some unique index leaves out the source, time or sequence column, so two different readings
   * that share what it covers are stored as one row (the second counted as a duplicate).
   */
  mergesReadings: boolean;
  /** The unique indexes that make writes idempotent (names and key columns). */
  keys: Array<{ name: string; columns: string[] }>;
  policies: { chunkInterval: PolicyReport; compressAfter: PolicyReport; retention: PolicyReport };
  notices: TableNotice[];
  /** notices[i].message: one line each, for the node to log once. */
  warnings: string[];
}

// ---- the table ------------------------------------------------------------------------------------

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

const COMPATIBLE_TYPES: Record<ColumnName, string[]> = {
  time: ['timestamp with time zone', 'timestamp without time zone'],
  source: ['text', 'character varying', 'character', 'name', 'citext'],
  kind: ['text', 'character varying', 'character', 'name', 'citext'],
  value: ['double precision', 'real', 'numeric', 'bigint', 'integer', 'smallint'],
  seq: ['bigint', 'integer', 'numeric', 'smallint'],
  extra: ['jsonb', 'json']
};

const INTEGER_TYPES = new Set(['bigint', 'integer', 'smallint']);

interface TableColumn {
  name: string;
  /** format_type of the column's base type, without modifiers: 'character varying', 'bigint'. */
  type: string;
  notNull: boolean;
  /** A default, a serial, an identity or a generated column: something fills it when the INSERT does not. */
  filled: boolean;
}

/** The SQL the auto table is created with. seq NOT NULL DEFAULT 0: a NULL never conflicts in a unique index. */
function createTableSql(target: string): string {
  return `CREATE TABLE IF NOT EXISTS ${target} (
        "time" timestamptz NOT NULL,
        "source" text NOT NULL,
        "kind" text,
        "value" double precision,
        "seq" bigint NOT NULL DEFAULT 0,
        "extra" jsonb
      )`;
}

const KEY_SUFFIX = '_time_source_seq_key';

/**
 * The name of the auto table's unique index: `<table>_time_source_seq_key` when it fits in 63
 * characters, else the table name cut short plus a hash of the whole name, so two long table names
 * that share their first characters never get the same index name.
 */
export function uniqueIndexName(table: string): string {
  if (table.length + KEY_SUFFIX.length <= MAX_IDENTIFIER_LENGTH) return `${table}${KEY_SUFFIX}`;
  const hash = createHash('sha256').update(table).digest('hex').slice(0, 8);
  const suffix = `_${hash}_key`;
  return `${table.slice(0, MAX_IDENTIFIER_LENGTH - suffix.length)}${suffix}`;
}

export interface SqlStatement {
  text: string;
  values: unknown[];
}

export interface TimescaleStatements {
  /** create_hypertable with the configured chunk interval. */
  hypertable: SqlStatement;
  /** create_hypertable with TimescaleDB's default chunk interval: the fallback when the configured one is refused. */
  hypertableDefaultInterval: SqlStatement;
  enableCompression: SqlStatement | null;
  compressionPolicy: SqlStatement | null;
  retentionPolicy: SqlStatement | null;
}

function versionAtLeast(version: string, major: number, minor: number): boolean {
  const [ma, mi] = version.split('.').map((part) => Number.parseInt(part, 10));
  return ma > major || (ma === major && mi >= minor);
}

/** The TimescaleDB statements prepare() may send for an auto-mode table (pure, for tests and review). */
export function timescaleStatements(schema: string, table: string, version: string, options: ResolvedTimescaleOptions): TimescaleStatements {
  const target = `${quoteIdentifier(schema, 'schema')}.${quoteIdentifier(table, 'table')}`;
  const generalized = versionAtLeast(version, 2, 13);
  const columnstore = versionAtLeast(version, 2, 18);
  const hypertable = (interval: string | null): SqlStatement => {
    if (generalized) {
      return interval === null
        ? { text: 'SELECT create_hypertable($1::regclass, by_range($2::name), if_not_exists => TRUE, migrate_data => TRUE, create_default_indexes => FALSE)', values: [target, 'time'] }
        : { text: 'SELECT create_hypertable($1::regclass, by_range($2::name, $3::interval), if_not_exists => TRUE, migrate_data => TRUE, create_default_indexes => FALSE)', values: [target, 'time', interval] };
    }
    return interval === null
      ? { text: 'SELECT create_hypertable($1::regclass, $2::name, if_not_exists => TRUE, migrate_data => TRUE, create_default_indexes => FALSE)', values: [target, 'time'] }
      : { text: 'SELECT create_hypertable($1::regclass, $2::name, chunk_time_interval => $3::interval, if_not_exists => TRUE, migrate_data => TRUE, create_default_indexes => FALSE)', values: [target, 'time', interval] };
  };
  const compress = options.compressAfter;
  let enableCompression: SqlStatement | null = null;
  let compressionPolicy: SqlStatement | null = null;
  if (compress) {
    enableCompression = columnstore
      ? { text: `ALTER TABLE ${target} SET (timescaledb.enable_columnstore = true, timescaledb.segmentby = 'source', timescaledb.orderby = 'time DESC, seq DESC')`, values: [] }
      : { text: `ALTER TABLE ${target} SET (timescaledb.compress, timescaledb.compress_segmentby = 'source', timescaledb.compress_orderby = 'time DESC, seq DESC')`, values: [] };
    compressionPolicy = columnstore
      ? { text: 'CALL add_columnstore_policy($1::regclass, after => $2::interval, if_not_exists => TRUE)', values: [target, compress] }
      : { text: 'SELECT add_compression_policy($1::regclass, compress_after => $2::interval, if_not_exists => TRUE)', values: [target, compress] };
  }
  return {
    hypertable: hypertable(options.chunkInterval),
    hypertableDefaultInterval: hypertable(null),
    enableCompression,
    compressionPolicy,
    retentionPolicy: options.retention ? { text: 'SELECT add_retention_policy($1::regclass, drop_after => $2::interval, if_not_exists => TRUE)', values: [target, options.retention] } : null
  };
}

function sqlText(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Prepares the table once: see the file's comment. Rejects with WriterConfigError, or with the database's error when it is unreachable. */
export async function prepareTable(pool: Queryable, spec: TableSpec): Promise<PrepareResult> {
  try {
    return await new TableSetup(pool, spec).run();
  } catch (err) {
    // Two sinks preparing the same new table at once race in the catalog; the loser's second try sees what the winner made.
    const code = errorCode(err);
    if (spec.mode === 'auto' && (code === '23505' || code === '42P07' || code === '42710')) return new TableSetup(pool, spec).run();
    throw err;
  }
}

interface PolicyPlan {
  /** The table's policy interval, null when it has none. */
  existing: string | null;
  report: PolicyReport;
  /** Sent in order when the table has no such policy. */
  statements: SqlStatement[];
  differs: { code: TableNoticeCode; subject: string; reason: string; action: string };
  refused: { code: TableNoticeCode; subject: string; consequence: string; field: string };
}

class TableSetup {
  private readonly target: string;
  private readonly notices: TableNotice[] = [];

  constructor(
    private readonly pool: Queryable,
    private readonly spec: TableSpec
  ) {
    this.target = `${quoteIdentifier(spec.schema, 'schema')}.${quoteIdentifier(spec.table, 'table')}`;
  }

  private notice(code: TableNoticeCode, subject: string, reason: string, action: string, sqlstate?: string): void {
    this.notices.push({ code, subject, reason, action, ...(sqlstate ? { sqlstate } : {}), message: `${subject}: ${reason}. ${action}` });
  }

  /** A refusal becomes a notice; an unreachable server still fails prepare() so the sink tries again. */
  private refused(err: unknown): { sqlstate: string; reason: string } {
    const info = classifyError(err);
    if (info.kind === 'unavailable' || info.kind === 'transient') throw err;
    return { sqlstate: info.code, reason: `refused (${info.code}: ${info.message})` };
  }

  async run(): Promise<PrepareResult> {
    const spec = this.spec;
    let columns = await this.describeTable();
    if (columns.size === 0 && spec.mode === 'auto') {
      const namespace = await this.pool.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [spec.schema]);
      if (namespace.rows.length === 0) await this.pool.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdentifier(spec.schema, 'schema')}`);
      await this.pool.query(createTableSql(this.target));
      columns = await this.describeTable();
    }
    this.checkColumns(columns);
    let keys = await this.uniqueKeys();
    let indexRefusal: { sqlstate: string; reason: string } | null = null;
    if (keys.length === 0 && spec.mode === 'auto') {
      indexRefusal = await this.createUniqueIndex();
      keys = await this.uniqueKeys();
      if (keys.length === 0 && !indexRefusal) {
        throw new WriterConfigError(`the unique index ${uniqueIndexName(spec.table)} on ${this.target} could not be created: another relation has that name; rename it`, 'INDEX_NAME');
      }
    }
    const { idempotent, mergesReadings } = this.judgeKeys(keys, indexRefusal);

    const version = await this.timescaleVersion();
    const policies: PrepareResult['policies'] = {
      chunkInterval: { configured: spec.mode === 'auto' ? spec.timescale.chunkInterval : null, actual: null, status: 'off' },
      compressAfter: { configured: spec.mode === 'auto' ? spec.timescale.compressAfter : null, actual: null, status: 'off' },
      retention: { configured: spec.mode === 'auto' ? spec.timescale.retention : null, actual: null, status: 'off' }
    };
    let hypertable = false;
    if (version) {
      const info = await this.hypertableInfo();
      hypertable = info !== null;
      if (spec.mode === 'auto') hypertable = await this.timescale(version, info, policies);
      await this.readActualPolicies(hypertable, policies);
    } else if (spec.mode === 'auto') {
      for (const policy of [policies.chunkInterval, policies.compressAfter, policies.retention]) if (policy.configured) policy.status = 'unavailable';
      if (spec.timescale.compressAfter || spec.timescale.retention) {
        this.notice('NO_TIMESCALEDB', `compression and retention of ${this.target}`, 'this database has no timescaledb extension', 'The rows are written to a plain table and nothing is compressed or dropped; install TimescaleDB (CREATE EXTENSION timescaledb) or clear "Compress after" and "Drop after"');
      }
    }
    return {
      mode: spec.mode,
      timescaledb: version,
      hypertable,
      idempotent,
      mergesReadings,
      keys,
      policies,
      notices: this.notices,
      warnings: this.notices.map((notice) => notice.message)
    };
  }

  /** The table's columns (empty when there is no such table). Reads pg_catalog, which needs no privilege on the table. */
  private async describeTable(): Promise<Map<string, TableColumn>> {
    const result = await this.pool.query(
      `SELECT a.attname AS name, format_type(COALESCE(NULLIF(t.typbasetype, 0), a.atttypid), NULL) AS type, a.attnotnull AS not_null,
              (a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> '') AS filled
         FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
        WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped`,
      [this.target]
    );
    const columns = new Map<string, TableColumn>();
    for (const row of result.rows as Array<{ name: string; type: string; not_null: boolean; filled: boolean }>) {
      columns.set(row.name, { name: row.name, type: row.type, notNull: row.not_null, filled: row.filled });
    }
    return columns;
  }

  /** Throws WriterConfigError for a table the rows cannot go into; notes what only loses precision. */
  private checkColumns(columns: Map<string, TableColumn>): void {
    const { spec, target } = this;
    if (columns.size === 0) throw new WriterConfigError(`table ${target} does not exist (or this user cannot see it)`, 'NO_TABLE');
    const nameOf = (column: ColumnName): string => spec.columns[column] as string;
    const missing = spec.written.filter((column) => !columns.has(nameOf(column))).map(nameOf);
    if (missing.length > 0) throw new WriterConfigError(`table ${target} has no column ${missing.map((name) => JSON.stringify(name)).join(', ')}`, 'NO_COLUMN');
    for (const column of spec.written) {
      const name = nameOf(column);
      const type = (columns.get(name) as TableColumn).type;
      if (!COMPATIBLE_TYPES[column].includes(type)) throw new WriterConfigError(`column ${JSON.stringify(name)} of ${target} is ${type}; ${column} needs one of: ${COMPATIBLE_TYPES[column].join(', ')}`, 'COLUMN_TYPE');
    }
    const written = new Set(spec.written.map(nameOf));
    const unfilled = [...columns.values()].filter((column) => column.notNull && !column.filled && !written.has(column.name)).map((column) => JSON.stringify(column.name));
    if (unfilled.length > 0) {
      throw new WriterConfigError(
        `table ${target} has NOT NULL column${unfilled.length === 1 ? '' : 's'} ${unfilled.join(', ')} without a default, which the sink does not write: every row would be refused. Map ${unfilled.length === 1 ? 'it' : 'them'} to a field, give ${unfilled.length === 1 ? 'it' : 'them'} a DEFAULT, or drop NOT NULL`,
        'NOT_NULL'
      );
    }
    const seq = spec.written.includes('seq') ? (columns.get(nameOf('seq')) as TableColumn) : undefined;
    if (seq?.type === 'smallint') {
      throw new WriterConfigError(
        `column ${JSON.stringify(seq.name)} of ${target} is smallint: sequence numbers count every reading of a source and pass 32,767 after 9 hours at one reading a second; from then on every row would be refused. Run ALTER TABLE ${target} ALTER COLUMN ${quoteIdentifier(seq.name)} TYPE bigint`,
        'SEQ_TYPE'
      );
    }
    if (seq?.type === 'integer') {
      this.notice(
        'SEQ_INTEGER',
        `column ${JSON.stringify(seq.name)} of ${target} is integer`,
        'sequence numbers count every reading of a source and pass 2,147,483,647 after 68 years at one reading a second but 25 days at 1,000; from then on every row of that source is refused as out of range',
        `Run ALTER TABLE ${target} ALTER COLUMN ${quoteIdentifier(seq.name)} TYPE bigint`
      );
    }
    const value = spec.written.includes('value') ? (columns.get(nameOf('value')) as TableColumn) : undefined;
    if (value && INTEGER_TYPES.has(value.type)) {
      this.notice('VALUE_ROUNDED', `column ${JSON.stringify(value.name)} of ${target} is ${value.type}`, 'readings are rounded to whole numbers (21.5 is stored as 22)', `If readings have decimals, run ALTER TABLE ${target} ALTER COLUMN ${quoteIdentifier(value.name)} TYPE double precision`);
    }
    const time = columns.get(nameOf('time')) as TableColumn;
    if (time.type === 'timestamp without time zone') {
      this.notice('TIME_WITHOUT_ZONE', `column ${JSON.stringify(time.name)} of ${target} is timestamp without time zone`, "times are stored in the session's time zone and lose their offset", `Prefer timestamptz: ALTER TABLE ${target} ALTER COLUMN ${quoteIdentifier(time.name)} TYPE timestamptz`);
    }
  }

  /** Unique indexes (valid, immediate, no predicate, no expression) whose key columns the writer all fills. */
  private async uniqueKeys(): Promise<Array<{ name: string; columns: string[] }>> {
    const result = await this.pool.query(
      `SELECT c.relname AS name, array_agg(a.attname::text ORDER BY k.n) AS columns
         FROM pg_index i
         JOIN pg_class c ON c.oid = i.indexrelid
         CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, n)
         JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
        WHERE i.indrelid = $1::regclass AND i.indisunique AND i.indisvalid AND i.indimmediate AND i.indpred IS NULL
          AND NOT (0 = ANY (i.indkey::int2[])) AND k.n <= i.indnkeyatts
        GROUP BY c.relname
        ORDER BY c.relname`,
      [this.target]
    );
    const written = new Set(this.spec.written.map((column) => this.spec.columns[column] as string));
    return (result.rows as Array<{ name: string; columns: string[] }>).filter((row) => row.columns.every((name) => written.has(name)));
  }

  /** Creates the auto table's unique key; returns the refusal when the role may not (it is then reported, not fatal). */
  private async createUniqueIndex(): Promise<{ sqlstate: string; reason: string } | null> {
    const name = quoteIdentifier(uniqueIndexName(this.spec.table), 'index');
    try {
      // Time first: each new row goes to the index's right edge (where the newest rows are), which
      // costs PostgreSQL half the CPU per row of (source, time, seq) and serves the queries over recent
      // time windows. README, "The TimescaleDB table"; `npm run bench:index` measures the choice.
      await this.pool.query(`CREATE UNIQUE INDEX ${name} ON ${this.target} ("time", "source", "seq")`);
      return null;
    } catch (err) {
      const code = errorCode(err);
      // 42P07 or a unique violation in pg_class: another sink created it a moment ago.
      if (code === '42P07' || (code === '23505' && /^pg_class/.test(String((err as { constraint?: unknown }).constraint ?? '')))) return null;
      if (code === '23505') {
        throw new WriterConfigError(`table ${this.target} already holds duplicate (source, time, seq) rows, so the unique index that makes retries safe cannot be created: remove the duplicates`, 'DUPLICATES');
      }
      return this.refused(err);
    }
  }

  private judgeKeys(keys: Array<{ name: string; columns: string[] }>, indexRefusal: { sqlstate: string; reason: string } | null): { idempotent: boolean; mergesReadings: boolean } {
    const { spec, target } = this;
    const distinguishing = (['source', 'time', 'seq'] as ColumnName[]).filter((column) => spec.written.includes(column)).map((column) => spec.columns[column] as string);
    if (keys.length === 0) {
      const wanted = distinguishing.map((name) => quoteIdentifier(name)).join(', ');
      this.notice(
        'NO_UNIQUE_KEY',
        `table ${target} has no unique index on written columns only`,
        `${indexRefusal ? `creating one was ${indexRefusal.reason}; ` : ''}a batch retried after an ambiguous failure (committed, but the answer lost) can be stored twice`,
        `Have the table's owner run: CREATE UNIQUE INDEX ON ${target} (${wanted})`,
        indexRefusal?.sqlstate
      );
      return { idempotent: false, mergesReadings: false };
    }
    const seqName = spec.written.includes('seq') ? (spec.columns.seq as string) : null;
    const merging = keys.filter((key) => !distinguishing.every((name) => key.columns.includes(name)) || seqName === null);
    for (const key of merging) {
      const left = seqName === null ? 'the table has no sequence column' : `it leaves out ${distinguishing.filter((name) => !key.columns.includes(name)).map((name) => JSON.stringify(name)).join(', ')}`;
      this.notice(
        'KEY_MERGES_READINGS',
        `the unique index ${JSON.stringify(key.name)} on ${target} (${key.columns.join(', ')})`,
        `${left}, so two different readings of a source that share ${key.columns.join(', ')} are stored as one row and the second is counted as a duplicate`,
        seqName === null ? 'Add a bigint sequence column, map it, and include it in the key' : `Make the key (${distinguishing.join(', ')})`
      );
    }
    return { idempotent: true, mergesReadings: merging.length > 0 };
  }

  private async timescaleVersion(): Promise<string | null> {
    const result = await this.pool.query("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'");
    const row = result.rows[0] as { extversion?: string } | undefined;
    return row?.extversion ?? null;
  }

  /** null when the table is not a hypertable. */
  private async hypertableInfo(): Promise<{ compressionEnabled: boolean } | null> {
    const result = await this.pool.query('SELECT compression_enabled FROM timescaledb_information.hypertables WHERE hypertable_schema = $1 AND hypertable_name = $2', [this.spec.schema, this.spec.table]);
    const row = result.rows[0] as { compression_enabled: boolean } | undefined;
    return row ? { compressionEnabled: row.compression_enabled === true } : null;
  }

  /** Auto mode: makes the hypertable and adds the configured policies that are missing. Returns whether the table is a hypertable. */
  private async timescale(version: string, info: { compressionEnabled: boolean } | null, policies: PrepareResult['policies']): Promise<boolean> {
    const { spec, target } = this;
    const options = spec.timescale;
    const statements = timescaleStatements(spec.schema, spec.table, version, options);
    if (!info) {
      try {
        await this.pool.query(statements.hypertable.text, statements.hypertable.values);
        policies.chunkInterval.status = 'applied';
      } catch (err) {
        const first = this.refused(err);
        try {
          await this.pool.query(statements.hypertableDefaultInterval.text, statements.hypertableDefaultInterval.values);
          policies.chunkInterval.status = 'refused';
          this.notice('CHUNK_INTERVAL_REFUSED', `chunk interval ${JSON.stringify(options.chunkInterval)} of ${target}`, first.reason, "The hypertable was made with TimescaleDB's default chunk interval; set one the server accepts, e.g. \"1 day\"", first.sqlstate);
        } catch (again) {
          const second = this.refused(again);
          for (const policy of [policies.chunkInterval, policies.compressAfter, policies.retention]) if (policy.configured) policy.status = 'unavailable';
          this.notice(
            'HYPERTABLE_REFUSED',
            `${target} stays a plain PostgreSQL table`,
            `create_hypertable was ${second.reason}`,
            `The rows are written to the plain table, without chunks, compression or retention. To make it a hypertable, have the table's owner run: SELECT create_hypertable(${sqlText(target)}, by_range('time', INTERVAL ${sqlText(options.chunkInterval)}), migrate_data => true)`,
            second.sqlstate
          );
          return false;
        }
      }
    }
    const jobs = await this.policyJobs();
    const after = options.compressAfter;
    if (after && statements.enableCompression && statements.compressionPolicy) {
      const [remove, add] = versionAtLeast(version, 2, 18)
        ? [`CALL remove_columnstore_policy(${sqlText(target)})`, `CALL add_columnstore_policy(${sqlText(target)}, after => INTERVAL ${sqlText(after)})`]
        : [`SELECT remove_compression_policy(${sqlText(target)})`, `SELECT add_compression_policy(${sqlText(target)}, compress_after => INTERVAL ${sqlText(after)})`];
      await this.policy({
        existing: jobs.compression,
        report: policies.compressAfter,
        statements: info?.compressionEnabled ? [statements.compressionPolicy] : [statements.enableCompression, statements.compressionPolicy],
        differs: { code: 'COMPRESSION_DIFFERS', subject: `${target} compresses chunks after ${jobs.compression}, configured ${after}`, reason: 'an existing policy is kept as it is', action: `To use the configured one, run: ${remove}; ${add}; or set "Compress after" to ${jobs.compression}` },
        refused: { code: 'COMPRESSION_REFUSED', subject: `compression after ${after} of ${target}`, consequence: 'The rows are written uncompressed.', field: '"Compress after"' }
      });
    }
    const dropAfter = options.retention;
    if (dropAfter && statements.retentionPolicy) {
      await this.policy({
        existing: jobs.retention,
        report: policies.retention,
        statements: [statements.retentionPolicy],
        differs: {
          code: 'RETENTION_DIFFERS',
          subject: `${target} drops chunks after ${jobs.retention}, configured ${dropAfter}`,
          reason: 'an existing policy is kept as it is (changing it could delete data at once)',
          action: `To use the configured one, run: SELECT remove_retention_policy(${sqlText(target)}); SELECT add_retention_policy(${sqlText(target)}, drop_after => INTERVAL ${sqlText(dropAfter)}); or set "Drop after" to ${jobs.retention}`
        },
        refused: { code: 'RETENTION_REFUSED', subject: `retention (drop after ${dropAfter}) of ${target}`, consequence: 'The rows are written and kept.', field: '"Drop after"' }
      });
    }
    if (policies.chunkInterval.status === 'off') await this.compareChunkInterval(policies.chunkInterval);
    return true;
  }

  private async compareChunkInterval(report: PolicyReport): Promise<void> {
    const result = await this.pool.query(
      `SELECT time_interval::text AS actual, time_interval = $3::interval AS same
         FROM timescaledb_information.dimensions WHERE hypertable_schema = $1 AND hypertable_name = $2 AND dimension_number = 1`,
      [this.spec.schema, this.spec.table, report.configured]
    );
    const row = result.rows[0] as { actual: string | null; same: boolean | null } | undefined;
    if (!row || row.same === null) return;
    if (row.same) {
      report.status = 'present';
      return;
    }
    report.status = 'differs';
    report.actual = row.actual;
    this.notice(
      'CHUNK_INTERVAL_DIFFERS',
      `${this.target} has a chunk interval of ${row.actual}, configured ${report.configured}`,
      'an existing hypertable keeps its own chunk interval',
      `To use the configured one for new chunks, run: SELECT set_chunk_time_interval(${sqlText(this.target)}, INTERVAL ${sqlText(report.configured as string)}); or set "Chunks" to ${row.actual}`
    );
  }

  /** The table's compression and retention policies, as timescaledb_information.jobs shows them. */
  private async policyJobs(): Promise<{ compression: string | null; retention: string | null }> {
    const result = await this.pool.query(
      `SELECT proc_name, COALESCE(config->>'compress_after', 'created before ' || (config->>'compress_created_before')) AS compress_after,
              COALESCE(config->>'drop_after', 'created before ' || (config->>'drop_created_before')) AS drop_after
         FROM timescaledb_information.jobs
        WHERE hypertable_schema = $1 AND hypertable_name = $2 AND proc_name IN ('policy_compression', 'policy_retention')`,
      [this.spec.schema, this.spec.table]
    );
    const jobs = { compression: null as string | null, retention: null as string | null };
    for (const row of result.rows as Array<{ proc_name: string; compress_after: string | null; drop_after: string | null }>) {
      if (row.proc_name === 'policy_compression') jobs.compression = row.compress_after ?? '?';
      else jobs.retention = row.drop_after ?? '?';
    }
    return jobs;
  }

  private async sameInterval(a: string, b: string): Promise<boolean> {
    try {
      const result = await this.pool.query('SELECT $1::interval = $2::interval AS same', [a, b]);
      return (result.rows[0] as { same: boolean }).same === true;
    } catch (err) {
      if (['unavailable', 'transient'].includes(classifyError(err).kind)) throw err;
      return false; // not an interval ("created before ...", an integer time): not the configured value
    }
  }

  /**
   * One policy: an existing one is compared, never changed (a difference is reported); a missing one
   * is added, and a refusal is reported.
   */
  private async policy(plan: PolicyPlan): Promise<void> {
    const { existing, report } = plan;
    if (existing !== null) {
      report.actual = existing;
      report.status = (await this.sameInterval(existing, report.configured as string)) ? 'present' : 'differs';
      if (report.status === 'differs') this.notice(plan.differs.code, plan.differs.subject, plan.differs.reason, plan.differs.action);
      return;
    }
    try {
      for (const statement of plan.statements) await this.pool.query(statement.text, statement.values);
      report.status = 'applied';
      report.actual = report.configured;
    } catch (err) {
      const refusal = this.refused(err);
      report.status = 'refused';
      this.notice(plan.refused.code, plan.refused.subject, refusal.reason, `${plan.refused.consequence} ${policyAdvice(refusal.sqlstate, plan.refused.field)}`, refusal.sqlstate);
    }
  }

  /** Fills in what the table has where prepare() did not already learn it (existing mode, fields left empty). */
  private async readActualPolicies(hypertable: boolean, policies: PrepareResult['policies']): Promise<void> {
    if (!hypertable) return;
    const { chunkInterval, compressAfter, retention } = policies;
    if (chunkInterval.actual === null) {
      const result = await this.pool.query('SELECT time_interval::text AS actual FROM timescaledb_information.dimensions WHERE hypertable_schema = $1 AND hypertable_name = $2 AND dimension_number = 1', [this.spec.schema, this.spec.table]);
      chunkInterval.actual = (result.rows[0] as { actual: string | null } | undefined)?.actual ?? null;
    }
    if (compressAfter.actual === null || retention.actual === null) {
      const jobs = await this.policyJobs();
      compressAfter.actual ??= jobs.compression;
      retention.actual ??= jobs.retention;
    }
  }
}

/** What to do about a refused policy, by SQLSTATE. */
function policyAdvice(sqlstate: string, field: string): string {
  if (sqlstate === '0A000') return `The Apache-2 edition of TimescaleDB has no compression or retention policies (they need the Timescale License edition); clear ${field} to silence this`;
  if (sqlstate === '42501') return `Only the table's owner may set it: connect as the owner once, or have it set by an administrator; clear ${field} to silence this`;
  return `Check ${field}, or clear it`;
}
