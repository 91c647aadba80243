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
 * TimescaleDB (the hypertable and its policies) is hypertable-setup.ts.
 */
import { createHash } from 'crypto';
import { HypertableSetup } from './hypertable-setup';
import { TableNotices, type PrepareResult, type Refusal } from './table-report';
import { MAX_IDENTIFIER_LENGTH, qualifiedName, quoteIdentifier, WriterConfigError, type ColumnName, type Queryable, type TableSpec } from './table-spec';

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
 * bytes, else the table name cut short plus a hash of the whole name, so two long table names
 * that share their first characters never get the same index name.
 */
export function uniqueIndexName(table: string): string {
  if (Buffer.byteLength(table + KEY_SUFFIX) <= MAX_IDENTIFIER_LENGTH) return `${table}${KEY_SUFFIX}`;
  const hash = createHash('sha256').update(table).digest('hex').slice(0, 8);
  const suffix = `_${hash}_key`;
  // Whole characters only: a name cut inside a multi-byte character is not valid UTF-8.
  let head = '';
  for (const char of table) {
    if (Buffer.byteLength(head + char + suffix) > MAX_IDENTIFIER_LENGTH) break;
    head += char;
  }
  return `${head}${suffix}`;
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

class TableSetup {
  private readonly target: string;
  private readonly notices = new TableNotices();

  constructor(
    private readonly pool: Queryable,
    private readonly spec: TableSpec
  ) {
    this.target = qualifiedName(spec.schema, spec.table);
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
    let indexRefusal: Refusal | null = null;
    if (keys.length === 0 && spec.mode === 'auto') {
      indexRefusal = await this.createUniqueIndex();
      keys = await this.uniqueKeys();
      if (keys.length === 0 && !indexRefusal) {
        const index = uniqueIndexName(spec.table);
        throw new WriterConfigError(`the unique index ${index} on ${this.target} could not be created: another relation has that name; rename it`, 'INDEX_NAME', { key: 'config.INDEX_NAME', params: { index, table: this.target } });
      }
    }
    const { idempotent, mergesReadings } = this.judgeKeys(keys, indexRefusal);

    const { version, hypertable, policies } = await new HypertableSetup(this.pool, spec, this.notices).run();
    return {
      mode: spec.mode,
      timescaledb: version,
      hypertable,
      idempotent,
      mergesReadings,
      keys,
      policies,
      notices: this.notices.list,
      warnings: this.notices.list.map((notice) => notice.message)
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
    if (columns.size === 0) throw new WriterConfigError(`table ${target} does not exist (or this user cannot see it)`, 'NO_TABLE', { key: 'config.NO_TABLE', params: { table: target } });
    const nameOf = (column: ColumnName): string => spec.columns[column] as string;
    const missing = spec.written.filter((column) => !columns.has(nameOf(column))).map(nameOf);
    if (missing.length > 0) {
      const names = missing.map((name) => JSON.stringify(name)).join(', ');
      throw new WriterConfigError(`table ${target} has no column ${names}`, 'NO_COLUMN', { key: 'config.NO_COLUMN', params: { table: target, columns: names } });
    }
    for (const column of spec.written) {
      const name = nameOf(column);
      const type = (columns.get(name) as TableColumn).type;
      if (!COMPATIBLE_TYPES[column].includes(type)) {
        const params = { column: JSON.stringify(name), table: target, type, role: column, types: COMPATIBLE_TYPES[column].join(', ') };
        throw new WriterConfigError(`column ${params.column} of ${target} is ${type}; ${column} needs one of: ${params.types}`, 'COLUMN_TYPE', { key: 'config.COLUMN_TYPE', params });
      }
    }
    const written = new Set(spec.written.map(nameOf));
    const unfilled = [...columns.values()].filter((column) => column.notNull && !column.filled && !written.has(column.name)).map((column) => JSON.stringify(column.name));
    if (unfilled.length > 0) {
      const one = unfilled.length === 1;
      throw new WriterConfigError(
        `table ${target} has NOT NULL column${one ? '' : 's'} ${unfilled.join(', ')} without a default, which the sink does not write: every row would be refused. Map ${one ? 'it' : 'them'} to a field, give ${one ? 'it' : 'them'} a DEFAULT, or drop NOT NULL`,
        'NOT_NULL',
        { key: one ? 'config.NOT_NULL.one' : 'config.NOT_NULL.many', params: { table: target, columns: unfilled.join(', ') } }
      );
    }
    const seq = spec.written.includes('seq') ? (columns.get(nameOf('seq')) as TableColumn) : undefined;
    if (seq?.type === 'smallint') {
      const params = { column: JSON.stringify(seq.name), table: target, sql: `ALTER TABLE ${target} ALTER COLUMN ${quoteIdentifier(seq.name)} TYPE bigint` };
      throw new WriterConfigError(
        `column ${params.column} of ${target} is smallint: sequence numbers count every reading of a source and pass 32,767 after 9 hours at one reading a second; from then on every row would be refused. Run ${params.sql}`,
        'SEQ_TYPE',
        { key: 'config.SEQ_TYPE', params }
      );
    }
    if (seq?.type === 'integer') {
      this.notices.add('SEQ_INTEGER', {
        subject: { key: 'notice.SEQ_INTEGER.subject', params: { column: JSON.stringify(seq.name), table: target } },
        reason: { key: 'notice.SEQ_INTEGER.reason' },
        action: { key: 'notice.SEQ_INTEGER.action', params: { sql: `ALTER TABLE ${target} ALTER COLUMN ${quoteIdentifier(seq.name)} TYPE bigint` } }
      });
    }
    const value = spec.written.includes('value') ? (columns.get(nameOf('value')) as TableColumn) : undefined;
    if (value && INTEGER_TYPES.has(value.type)) {
      this.notices.add('VALUE_ROUNDED', {
        subject: { key: 'notice.VALUE_ROUNDED.subject', params: { column: JSON.stringify(value.name), table: target, type: value.type } },
        reason: { key: 'notice.VALUE_ROUNDED.reason' },
        action: { key: 'notice.VALUE_ROUNDED.action', params: { sql: `ALTER TABLE ${target} ALTER COLUMN ${quoteIdentifier(value.name)} TYPE double precision` } }
      });
    }
    const time = columns.get(nameOf('time')) as TableColumn;
    if (time.type === 'timestamp without time zone') {
      this.notices.add('TIME_WITHOUT_ZONE', {
        subject: { key: 'notice.TIME_WITHOUT_ZONE.subject', params: { column: JSON.stringify(time.name), table: target } },
        reason: { key: 'notice.TIME_WITHOUT_ZONE.reason' },
        action: { key: 'notice.TIME_WITHOUT_ZONE.action', params: { sql: `ALTER TABLE ${target} ALTER COLUMN ${quoteIdentifier(time.name)} TYPE timestamptz` } }
      });
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
  private async createUniqueIndex(): Promise<Refusal | null> {
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
        throw new WriterConfigError(`table ${this.target} already holds duplicate (source, time, seq) rows, so the unique index that makes retries safe cannot be created: remove the duplicates`, 'DUPLICATES', { key: 'config.DUPLICATES', params: { table: this.target } });
      }
      return this.notices.refusal(err);
    }
  }

  private judgeKeys(keys: Array<{ name: string; columns: string[] }>, indexRefusal: Refusal | null): { idempotent: boolean; mergesReadings: boolean } {
    const { spec, target } = this;
    const distinguishing = (['source', 'time', 'seq'] as ColumnName[]).filter((column) => spec.written.includes(column)).map((column) => spec.columns[column] as string);
    if (keys.length === 0) {
      const wanted = distinguishing.map((name) => quoteIdentifier(name)).join(', ');
      this.notices.add(
        'NO_UNIQUE_KEY',
        {
          subject: { key: 'notice.NO_UNIQUE_KEY.subject', params: { table: target } },
          reason: indexRefusal ? { key: 'notice.NO_UNIQUE_KEY.reasonRefused', params: { refusal: indexRefusal.words } } : { key: 'notice.NO_UNIQUE_KEY.reason' },
          action: { key: 'notice.NO_UNIQUE_KEY.action', params: { table: target, columns: wanted } }
        },
        indexRefusal?.sqlstate
      );
      return { idempotent: false, mergesReadings: false };
    }
    const seqName = spec.written.includes('seq') ? (spec.columns.seq as string) : null;
    const merging = keys.filter((key) => !distinguishing.every((name) => key.columns.includes(name)) || seqName === null);
    for (const key of merging) {
      const columns = key.columns.join(', ');
      const missing = distinguishing.filter((name) => !key.columns.includes(name)).map((name) => JSON.stringify(name)).join(', ');
      this.notices.add('KEY_MERGES_READINGS', {
        subject: { key: 'notice.KEY_MERGES_READINGS.subject', params: { index: JSON.stringify(key.name), table: target, columns } },
        reason: seqName === null ? { key: 'notice.KEY_MERGES_READINGS.reasonNoSeq', params: { columns } } : { key: 'notice.KEY_MERGES_READINGS.reasonLeavesOut', params: { missing, columns } },
        action: seqName === null ? { key: 'notice.KEY_MERGES_READINGS.actionNoSeq' } : { key: 'notice.KEY_MERGES_READINGS.action', params: { key: distinguishing.join(', ') } }
      });
    }
    return { idempotent: true, mergesReadings: merging.length > 0 };
  }

}
