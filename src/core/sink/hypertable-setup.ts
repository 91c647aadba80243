/**
 * TimescaleDB's part of setting up the table (auto mode): the hypertable with the configured chunk
 * interval, compression and retention. What exists and differs from the configuration is
 * reported, never changed (it may be a DBA's decision, and a shorter retention applied by a
 * redeploy would delete data for good); what the server refuses becomes a TableNotice.
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
import { OPTIONS } from '../../options/timescale-sink';
import { intervalSeconds } from '../shared/checks';
import { classifyError } from './error-classes';
import type { PolicyReport, PrepareResult, TableNoticeCode, TableNotices } from './table-report';
import type { Words } from '../shared/text';
import { qualifiedName, quoteIdentifier, WriterConfigError, type Queryable, type TableSpec } from './table-spec';

export { intervalSeconds };

export interface TimescaleOptions {
  /** Chunk interval of a new hypertable, a PostgreSQL interval with a unit. Default: the sink's (src/options/timescale-sink.ts). */
  chunkInterval?: string;
  /** Compress chunks older than this interval; null or '' = no compression. */
  compressAfter?: string | null;
  /** Drop chunks older than this interval; null or '' = keep everything. */
  retention?: string | null;
}

export type ResolvedTimescaleOptions = { chunkInterval: string; compressAfter: string | null; retention: string | null };

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
    chunkInterval: check(options.chunkInterval, 'chunk interval', 1) ?? OPTIONS.chunkInterval.default,
    compressAfter: check(options.compressAfter, 'compress after', 0),
    retention: check(options.retention, 'drop after', 0)
  };
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

/**
 * The TimescaleDB statements prepare() may send for an auto-mode table (pure, for tests and review).
 * `api`: the extension's schema with a dot when it is not `public`, where its functions are.
 */
export function timescaleStatements(schema: string, table: string, version: string, options: ResolvedTimescaleOptions, api = ''): TimescaleStatements {
  const target = `${quoteIdentifier(schema, 'schema')}.${quoteIdentifier(table, 'table')}`;
  const generalized = versionAtLeast(version, 2, 13);
  const columnstore = versionAtLeast(version, 2, 18);
  const hypertable = (interval: string | null): SqlStatement => {
    if (generalized) {
      return interval === null
        ? { text: `SELECT ${api}create_hypertable($1::regclass, ${api}by_range($2::name), if_not_exists => TRUE, migrate_data => TRUE, create_default_indexes => FALSE)`, values: [target, 'time'] }
        : { text: `SELECT ${api}create_hypertable($1::regclass, ${api}by_range($2::name, $3::interval), if_not_exists => TRUE, migrate_data => TRUE, create_default_indexes => FALSE)`, values: [target, 'time', interval] };
    }
    return interval === null
      ? { text: `SELECT ${api}create_hypertable($1::regclass, $2::name, if_not_exists => TRUE, migrate_data => TRUE, create_default_indexes => FALSE)`, values: [target, 'time'] }
      : { text: `SELECT ${api}create_hypertable($1::regclass, $2::name, chunk_time_interval => $3::interval, if_not_exists => TRUE, migrate_data => TRUE, create_default_indexes => FALSE)`, values: [target, 'time', interval] };
  };
  const compress = options.compressAfter;
  let enableCompression: SqlStatement | null = null;
  let compressionPolicy: SqlStatement | null = null;
  if (compress) {
    enableCompression = columnstore
      ? { text: `ALTER TABLE ${target} SET (timescaledb.enable_columnstore = true, timescaledb.segmentby = 'source', timescaledb.orderby = 'time DESC, seq DESC')`, values: [] }
      : { text: `ALTER TABLE ${target} SET (timescaledb.compress, timescaledb.compress_segmentby = 'source', timescaledb.compress_orderby = 'time DESC, seq DESC')`, values: [] };
    compressionPolicy = columnstore
      ? { text: `CALL ${api}add_columnstore_policy($1::regclass, after => $2::interval, if_not_exists => TRUE)`, values: [target, compress] }
      : { text: `SELECT ${api}add_compression_policy($1::regclass, compress_after => $2::interval, if_not_exists => TRUE)`, values: [target, compress] };
  }
  return {
    hypertable: hypertable(options.chunkInterval),
    hypertableDefaultInterval: hypertable(null),
    enableCompression,
    compressionPolicy,
    retentionPolicy: options.retention ? { text: `SELECT ${api}add_retention_policy($1::regclass, drop_after => $2::interval, if_not_exists => TRUE)`, values: [target, options.retention] } : null
  };
}

/** The sink's fields a notice tells the user to change, by their label in the user's language. */
const FIELD = {
  chunkInterval: { key: '.label.chunkInterval', text: 'Chunk interval' },
  compressAfter: { key: '.label.compressAfter', text: 'Compress after' },
  retention: { key: '.label.retention', text: 'Drop after' }
} satisfies Record<string, Words>;

function sqlText(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

interface PolicyPlan {
  /** The table's policy interval, null when it has none. */
  existing: string | null;
  report: PolicyReport;
  /** Sent in order when the table has no such policy. */
  statements: SqlStatement[];
  /** The notice when the table has another value: its parameters (notice.<code>.subject/action). */
  differs: { code: TableNoticeCode; params: Record<string, string | Words> };
  /** The notice when the server refuses: its parameters, and the field that turns it off. */
  refused: { code: TableNoticeCode; params: Record<string, string>; field: Words };
}

/** TimescaleDB's part of one prepare(): see the file's comment. */
export class HypertableSetup {
  private readonly target: string;
  /** Where TimescaleDB's functions are: its schema with a dot when it is not public (timescaleVersion). */
  private api = '';

  constructor(
    private readonly pool: Queryable,
    private readonly spec: TableSpec,
    private readonly notices: TableNotices
  ) {
    this.target = qualifiedName(spec.schema, spec.table);
  }

  /**
   * Finds TimescaleDB and the hypertable, makes it (auto mode) with the policies that are missing,
   * and reports what the table has.
   */
  async run(): Promise<{ version: string | null; hypertable: boolean; policies: PrepareResult['policies'] }> {
    const spec = this.spec;
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
        this.notices.add('NO_TIMESCALEDB', {
          subject: { key: 'notice.NO_TIMESCALEDB.subject', params: { table: this.target } },
          reason: { key: 'notice.NO_TIMESCALEDB.reason' },
          action: { key: 'notice.NO_TIMESCALEDB.action', params: { compressField: FIELD.compressAfter, dropField: FIELD.retention } }
        });
      }
    }
    return { version, hypertable, policies };
  }

  /** The extension's version, and where its functions are (`api`: its schema with a dot, when not public). */
  private async timescaleVersion(): Promise<string | null> {
    const result = await this.pool.query("SELECT extversion, extnamespace::regnamespace::text AS schema FROM pg_extension WHERE extname = 'timescaledb'");
    const row = result.rows[0] as { extversion?: string; schema?: string } | undefined;
    this.api = row?.schema !== undefined && row.schema !== 'public' ? `${row.schema}.` : '';
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
    const { spec, target, api } = this;
    const options = spec.timescale;
    const statements = timescaleStatements(spec.schema, spec.table, version, options, api);
    if (!info) {
      try {
        await this.pool.query(statements.hypertable.text, statements.hypertable.values);
        policies.chunkInterval.status = 'applied';
      } catch (err) {
        const first = this.notices.refusal(err);
        try {
          await this.pool.query(statements.hypertableDefaultInterval.text, statements.hypertableDefaultInterval.values);
          policies.chunkInterval.status = 'refused';
          this.notices.add(
            'CHUNK_INTERVAL_REFUSED',
            { subject: { key: 'notice.CHUNK_INTERVAL_REFUSED.subject', params: { interval: JSON.stringify(options.chunkInterval), table: target } }, reason: first.words, action: { key: 'notice.CHUNK_INTERVAL_REFUSED.action' } },
            first.sqlstate
          );
        } catch (again) {
          const second = this.notices.refusal(again);
          for (const policy of [policies.chunkInterval, policies.compressAfter, policies.retention]) if (policy.configured) policy.status = 'unavailable';
          this.notices.add(
            'HYPERTABLE_REFUSED',
            {
              subject: { key: 'notice.HYPERTABLE_REFUSED.subject', params: { table: target } },
              reason: { key: 'notice.HYPERTABLE_REFUSED.reason', params: { refusal: second.words } },
              action: { key: 'notice.HYPERTABLE_REFUSED.action', params: { sql: `SELECT ${api}create_hypertable(${sqlText(target)}, ${api}by_range('time', INTERVAL ${sqlText(options.chunkInterval)}), migrate_data => true)` } }
            },
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
        ? [`CALL ${api}remove_columnstore_policy(${sqlText(target)})`, `CALL ${api}add_columnstore_policy(${sqlText(target)}, after => INTERVAL ${sqlText(after)})`]
        : [`SELECT ${api}remove_compression_policy(${sqlText(target)})`, `SELECT ${api}add_compression_policy(${sqlText(target)}, compress_after => INTERVAL ${sqlText(after)})`];
      await this.policy({
        existing: jobs.compression,
        report: policies.compressAfter,
        statements: info?.compressionEnabled ? [statements.compressionPolicy] : [statements.enableCompression, statements.compressionPolicy],
        differs: { code: 'COMPRESSION_DIFFERS', params: { table: target, actual: jobs.compression ?? '', configured: after, sql: `${remove}; ${add}`, field: FIELD.compressAfter } },
        refused: { code: 'COMPRESSION_REFUSED', params: { interval: after, table: target }, field: FIELD.compressAfter }
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
          params: {
            table: target,
            actual: jobs.retention ?? '',
            configured: dropAfter,
            sql: `SELECT ${api}remove_retention_policy(${sqlText(target)}); SELECT ${api}add_retention_policy(${sqlText(target)}, drop_after => INTERVAL ${sqlText(dropAfter)})`,
            field: FIELD.retention
          }
        },
        refused: { code: 'RETENTION_REFUSED', params: { interval: dropAfter, table: target }, field: FIELD.retention }
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
    const params = { table: this.target, actual: row.actual ?? '', configured: report.configured ?? '' };
    this.notices.add('CHUNK_INTERVAL_DIFFERS', {
      subject: { key: 'notice.CHUNK_INTERVAL_DIFFERS.subject', params },
      reason: { key: 'notice.CHUNK_INTERVAL_DIFFERS.reason' },
      action: { key: 'notice.CHUNK_INTERVAL_DIFFERS.action', params: { ...params, sql: `SELECT ${this.api}set_chunk_time_interval(${sqlText(this.target)}, INTERVAL ${sqlText(report.configured as string)})`, field: FIELD.chunkInterval } }
    });
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
      if (report.status === 'differs') {
        const { code, params } = plan.differs;
        this.notices.add(code, { subject: { key: `notice.${code}.subject`, params }, reason: { key: `notice.${code}.reason` }, action: { key: `notice.${code}.action`, params } });
      }
      return;
    }
    try {
      for (const statement of plan.statements) await this.pool.query(statement.text, statement.values);
      report.status = 'applied';
      report.actual = report.configured;
    } catch (err) {
      const refusal = this.notices.refusal(err);
      report.status = 'refused';
      const { code, params, field } = plan.refused;
      const advice: Words = { key: `notice.advice.${['0A000', '42501'].includes(refusal.sqlstate) ? refusal.sqlstate : 'other'}`, params: { field } };
      this.notices.add(code, { subject: { key: `notice.${code}.subject`, params }, reason: refusal.words, action: { key: `notice.${code}.action`, params: { advice } } }, refusal.sqlstate);
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
