/**
 * Preparing the table (src/core/sink/table-setup.ts): the checks of an existing table, auto mode for a
 * role that may only INSERT, the unique key, and TimescaleDB's hypertable and policies against a
 * real TimescaleDB (Apache-2 edition, which refuses compression and retention policies).
 */
import assert from 'node:assert/strict';
import { Client, Pool } from 'pg';
import type { TelemetryRecord } from '../src/core/readings/records';
import { prepareTable } from '../src/core/sink/table-setup';
import type { TableSpec } from '../src/core/sink/table-spec';
import { intervalSeconds, resolveTimescaleOptions, timescaleStatements, TimescaleWriter, uniqueIndexName, WriterConfigError, type PrepareResult, type Queryable, type TimescaleWriterOptions } from '../src/core/sink/timescale-writer';
import { say } from '../src/core/shared/text';
import { english } from '../src/nodes/i18n';
import { badgesOf, helper } from './support/node-red';
import { createTestDatabase, externalServer } from './support/postgres';
import { createTimescaleDatabase, timescaleDbOrSkip } from './support/timescaledb';
import { waitUntil } from './support/wait';

const T0 = Date.UTC(2025, 0, 1);

function records(count: number, { source = 'line1', start = 0, value = (i: number) => i / 2 }: { source?: string; start?: number; value?: (i: number) => number } = {}): TelemetryRecord[] {
  const out: TelemetryRecord[] = [];
  for (let i = start; i < start + count; i++) out.push({ topic: source, seq: i, timestamp: T0 + i * 1000, payload: { value: value(i), kind: 'temp' } });
  return out;
}

/** The pool, with every statement sent through it recorded. */
function recording(pool: Pool): Queryable & { texts: string[] } {
  const texts: string[] = [];
  return {
    texts,
    query: (text: string, values?: unknown[]) => {
      texts.push(text);
      return pool.query(text, values);
    }
  };
}

/** Statements that change the schema or TimescaleDB's settings: a role with only INSERT may send none. */
function ddl(texts: string[]): string[] {
  return texts.filter((text) => /^\s*(CREATE|ALTER|DROP|CALL)\b|create_hypertable|add_\w+_policy|set_chunk_time_interval/i.test(text));
}

/** A config error's words say in the en-US catalog exactly what its English message says. */
function saysItsMessage(err: WriterConfigError): boolean {
  assert.equal(err.words && say(err.words, english('timescale-sink')), err.message);
  return true;
}

function codes(result: PrepareResult): string[] {
  return result.notices.map((notice) => notice.code);
}

function auto(table: string, timescale: TimescaleWriterOptions['timescale'] = {}): TableSpec {
  return { schema: 'public', table, mode: 'auto', columns: { time: 'time', source: 'source', kind: 'kind', value: 'value', seq: 'seq', extra: 'extra' }, written: ['time', 'source', 'kind', 'value', 'seq'], timescale: resolveTimescaleOptions(timescale) };
}

/**
 * For a describe(): a login role (with a password) made before its tests and dropped after them;
 * returns the pool connected as it. `database` gives the admin client and URL of the outer suite.
 */
function loginRole(role: string, database: () => { admin: Client; url: string }): () => Pool {
  let pool: Pool | undefined;
  before(async function () {
    const { admin, url } = database();
    const password = `pw-${Math.random().toString(36).slice(2)}`;
    await admin.query(`DROP ROLE IF EXISTS ${role}`);
    await admin.query(`CREATE ROLE ${role} LOGIN PASSWORD '${password}'`);
    const target = new URL(url);
    target.username = role;
    target.password = password;
    pool = new Pool({ connectionString: target.toString(), max: 2 });
    pool.on('error', () => undefined);
  });
  after(async function () {
    const { admin } = database();
    await pool?.end();
    await admin.query(`DROP OWNED BY ${role}`).catch(() => undefined);
    await admin.query(`DROP ROLE IF EXISTS ${role}`).catch(() => undefined);
  });
  return () => pool as Pool;
}

/** As an administrator: the auto table's columns, with or without its unique key, and only INSERT on it for `role`. */
async function grantedTable(admin: Client, name: string, role: string, { key = true } = {}): Promise<void> {
  await admin.query(`CREATE TABLE ${name} (time timestamptz NOT NULL, source text NOT NULL, kind text, value double precision, seq bigint NOT NULL DEFAULT 0, extra jsonb)`);
  if (key) await admin.query(`CREATE UNIQUE INDEX ${name}_key ON ${name} (source, time, seq)`);
  await admin.query(`GRANT INSERT ON ${name} TO ${role}`);
}

describe('table setup: intervals, names and statements (no database)', function () {
  it('reads intervals with a unit and refuses a number without one ("30" is 30 seconds to PostgreSQL)', function () {
    assert.equal(intervalSeconds('1 day'), 86400);
    assert.equal(intervalSeconds(' 12 Hours '), 43200);
    assert.equal(intervalSeconds('1 day 06:00'), 108000);
    assert.equal(intervalSeconds('2 weeks 3d'), 17 * 86400);
    assert.equal(intervalSeconds('1.5h'), 5400);
    assert.equal(intervalSeconds('1 month'), 30 * 86400);
    assert.throws(() => intervalSeconds('30'), /has no unit: PostgreSQL would read 30 as 30 seconds/);
    assert.throws(() => intervalSeconds('1 day 30'), /has no unit/);
    assert.throws(() => intervalSeconds('1 fortnight'), /unknown unit "fortnight"/);
    assert.throws(() => intervalSeconds('1 constructor'), /unknown unit/);
    assert.throws(() => intervalSeconds('0 days'), /is zero/);
    assert.throws(() => intervalSeconds('-1 day'), /cannot be read/);
    assert.throws(() => intervalSeconds('1000000000 days'), /longer than 100 years/);
    assert.throws(() => intervalSeconds('1 day ago'), /cannot be read/);
  });

  it('refuses such an interval when the writer is made, with code INTERVAL', function () {
    const pool: Queryable = { query: async () => ({ rowCount: 0, rows: [] }) };
    const refused = (timescale: object, pattern: RegExp) =>
      assert.throws(() => new TimescaleWriter(pool, { timescale }), (err: WriterConfigError) => err instanceof WriterConfigError && err.code === 'INTERVAL' && pattern.test(err.message));
    refused({ chunkInterval: '30' }, /^chunk interval "30" has no unit/);
    refused({ compressAfter: '7' }, /^compress after "7" has no unit/);
    refused({ retention: '90' }, /^drop after "90" has no unit/);
    refused({ chunkInterval: '500 ms' }, /shorter than 1 second/);
    assert.deepEqual(resolveTimescaleOptions({ chunkInterval: ' 6 hours ', compressAfter: '', retention: null }), { chunkInterval: '6 hours', compressAfter: null, retention: null });
    assert.deepEqual(resolveTimescaleOptions(), { chunkInterval: '1 day', compressAfter: null, retention: null });
  });

  it('names the unique index so that two long table names never share it', function () {
    assert.equal(uniqueIndexName('telemetry'), 'telemetry_time_source_seq_key');
    const shared = 'plant_north_line_04_press_station_telemetry'; // 43 characters
    const one = uniqueIndexName(`${shared}_raw_a`);
    const two = uniqueIndexName(`${shared}_raw_b`);
    assert.notEqual(one, two);
    for (const name of [one, two, uniqueIndexName('x'.repeat(63)), uniqueIndexName('ü'.repeat(31))]) assert.ok(Buffer.byteLength(name) <= 63, name);
  });

  it('uses the columnstore API from TimescaleDB 2.18, segmented by source and ordered by the rest of the key', function () {
    const options = resolveTimescaleOptions({ chunkInterval: '6 hours', compressAfter: '7 days', retention: '90 days' });
    const current = timescaleStatements('public', 'telemetry', '2.22.1', options);
    assert.deepEqual(current.enableCompression, {
      text: `ALTER TABLE "public"."telemetry" SET (timescaledb.enable_columnstore = true, timescaledb.segmentby = 'source', timescaledb.orderby = 'time DESC, seq DESC')`,
      values: []
    });
    assert.deepEqual(current.compressionPolicy, { text: 'CALL add_columnstore_policy($1::regclass, after => $2::interval, if_not_exists => TRUE)', values: ['"public"."telemetry"', '7 days'] });
    assert.deepEqual(current.hypertableDefaultInterval, { text: 'SELECT create_hypertable($1::regclass, by_range($2::name), if_not_exists => TRUE, migrate_data => TRUE, create_default_indexes => FALSE)', values: ['"public"."telemetry"', 'time'] });
    const before = timescaleStatements('public', 'telemetry', '2.17.2', options);
    assert.equal(before.enableCompression?.text, `ALTER TABLE "public"."telemetry" SET (timescaledb.compress, timescaledb.compress_segmentby = 'source', timescaledb.compress_orderby = 'time DESC, seq DESC')`);
    assert.equal(before.compressionPolicy?.text, 'SELECT add_compression_policy($1::regclass, compress_after => $2::interval, if_not_exists => TRUE)');
    assert.equal(timescaleStatements('public', 'telemetry', '2.11.0', options).hypertableDefaultInterval.text, 'SELECT create_hypertable($1::regclass, $2::name, if_not_exists => TRUE, migrate_data => TRUE, create_default_indexes => FALSE)');
  });
});

describe('table setup against PostgreSQL', function () {
  let url: string;
  let pool: Pool;
  let admin: Client;

  before(async function () {
    url = await createTestDatabase('table_setup');
    pool = new Pool({ connectionString: url, max: 4 });
    pool.on('error', () => undefined);
    admin = new Client({ connectionString: url });
    await admin.connect();
  });

  after(async function () {
    await pool?.end();
    await admin?.end();
  });

  async function count(table: string): Promise<number> {
    const { rows } = await pool.query(`SELECT count(*)::int AS n FROM ${table}`);
    return rows[0].n as number;
  }

  describe('existing mode checks the table before the first row', function () {
    it('refuses a NOT NULL column without a default that nothing fills, and sends no row', async function () {
      await admin.query(`CREATE TABLE plant_a (time timestamptz NOT NULL, source text NOT NULL, value float8, seq bigint NOT NULL, line text NOT NULL,
        id bigserial, created timestamptz NOT NULL DEFAULT now(), ident int GENERATED ALWAYS AS IDENTITY, doubled float8 GENERATED ALWAYS AS (value * 2) STORED, UNIQUE (source, time, seq))`);
      const db = recording(pool);
      let inserts = -1;
      // The write waits (misconfigured) without sending a row; on its probe's first wait a person fixes the table.
      const sleep = async (): Promise<void> => {
        inserts = db.texts.filter((text) => text.startsWith('INSERT')).length;
        await admin.query('ALTER TABLE plant_a ALTER COLUMN line SET DEFAULT \'line 1\'');
      };
      const writer = new TimescaleWriter(db, { table: 'plant_a', mode: 'existing', columns: { kind: null }, sleep });
      await assert.rejects(writer.prepare(), (err: WriterConfigError) => saysItsMessage(err) && err.code === 'NOT_NULL' && /NOT NULL column "line" without a default/.test(err.message) && !/"created"|"ident"|"id"|"doubled"/.test(err.message));
      const states: string[] = [];
      writer.on('state', (change: { state: string; code?: string }) => states.push(`${change.state} ${change.code ?? ''}`.trim()));
      // Serial, identity, default and generated columns fill themselves; a default on `line` fixes it.
      assert.equal((await writer.write(records(2000))).written, 2000);
      assert.equal(inserts, 0, 'no row was sent while the table did not fit');
      assert.deepEqual(states, ['misconfigured NOT_NULL', 'up']);
    });

    it('refuses a smallint sequence column and warns about an integer one', async function () {
      await admin.query('CREATE TABLE seq_small (time timestamptz NOT NULL, source text NOT NULL, value float8, seq smallint NOT NULL, UNIQUE (source, time, seq))');
      await assert.rejects(new TimescaleWriter(pool, { table: 'seq_small', mode: 'existing', columns: { kind: null } }).prepare(), (err: WriterConfigError) => saysItsMessage(err) && err.code === 'SEQ_TYPE' && /32,767/.test(err.message) && /TYPE bigint/.test(err.message));
      await admin.query('CREATE TABLE seq_int (time timestamptz NOT NULL, source text NOT NULL, value float8, seq integer NOT NULL, UNIQUE (source, time, seq))');
      const writer = new TimescaleWriter(pool, { table: 'seq_int', mode: 'existing', columns: { kind: null } });
      const result = await writer.prepare();
      assert.deepEqual(codes(result), ['SEQ_INTEGER']);
      assert.match(result.warnings[0], /2,147,483,647.*ALTER TABLE "public"."seq_int" ALTER COLUMN "seq" TYPE bigint/);
      assert.equal((await writer.write(records(10))).written, 10);
    });

    it('warns that an integer value column rounds readings (21.5 is stored as 22)', async function () {
      await admin.query('CREATE TABLE rounded (time timestamptz NOT NULL, source text NOT NULL, value integer, seq bigint NOT NULL, UNIQUE (source, time, seq))');
      const writer = new TimescaleWriter(pool, { table: 'rounded', mode: 'existing', columns: { kind: null } });
      const result = await writer.prepare();
      assert.deepEqual(codes(result), ['VALUE_ROUNDED']);
      assert.match(result.notices[0].reason, /21.5 is stored as 22/);
      await writer.write([{ topic: 'press', seq: 1, timestamp: T0, payload: 21.5 }]);
      assert.deepEqual((await pool.query('SELECT value FROM rounded')).rows, [{ value: 22 }]);
    });
  });

  describe('auto mode for a role that may only INSERT', function () {
    const role = 'table_setup_writer';
    const writerPool = loginRole(role, () => ({ admin, url }));

    it('writes into a table and key an administrator made, sending no CREATE', async function () {
      await grantedTable(admin, 'granted', role);
      const db = recording(writerPool());
      const writer = new TimescaleWriter(db, { table: 'granted' });
      const result = await writer.prepare();
      assert.deepEqual({ idempotent: result.idempotent, mergesReadings: result.mergesReadings, keys: result.keys, notices: result.notices }, { idempotent: true, mergesReadings: false, keys: [{ name: 'granted_key', columns: ['source', 'time', 'seq'] }], notices: [] });
      assert.deepEqual(ddl(db.texts), []);
      assert.deepEqual(await writer.write(records(100)), { written: 100, duplicates: 0, rejected: [], attempts: 1, statements: 1 });
      assert.equal((await writer.write(records(100))).duplicates, 100, 'a replay is skipped: the key works for this role');
      assert.equal(await count('granted'), 100);
    });

    it('reports a table without a key it may not create (not idempotent), and still writes', async function () {
      await grantedTable(admin, 'keyless', role, { key: false });
      const writer = new TimescaleWriter(writerPool(), { table: 'keyless' });
      const result = await writer.prepare();
      assert.equal(result.idempotent, false);
      assert.equal(result.mergesReadings, false);
      assert.deepEqual(codes(result), ['NO_UNIQUE_KEY']);
      assert.equal(result.notices[0].sqlstate, '42501');
      assert.match(result.warnings[0], /can be stored twice.*CREATE UNIQUE INDEX ON "public"."keyless" \("source", "time", "seq"\)/);
      assert.equal((await writer.write(records(10))).written, 10);
    });
  });

  it('writes into a schema and a table whose names need quoting (a hyphen, a space, a quote, a long multi-byte name)', async function () {
    const names = [['plant-north', 'line-1'], ['public', 'press "A" 2'], ['public', 'ü'.repeat(31)]];
    for (const [schema, table] of names) {
      const writer = new TimescaleWriter(pool, { schema, table });
      const result = await writer.prepare();
      assert.equal(result.idempotent, true, table);
      assert.equal((await writer.write(records(10))).written, 10, table);
      assert.equal((await writer.write(records(10))).duplicates, 10, `${table}: a replay is skipped`);
      const quoted = `"${schema.replace(/"/g, '""')}"."${table.replace(/"/g, '""')}"`;
      assert.equal(await count(quoted), 10, table);
      const { rows } = await pool.query('SELECT n.nspname AS schema, c.relname AS table FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass($1)', [quoted]);
      assert.deepEqual(rows, [{ schema, table }], 'the name is stored as written, not cut short');
    }
    assert.ok(Buffer.byteLength(uniqueIndexName('ü'.repeat(31))) <= 63, 'the index name fits in 63 bytes');
  });

  it('gives two tables whose names share 43 characters a unique index each', async function () {
    const shared = 'plant_north_line_04_press_station_telemetry';
    for (const table of [`${shared}_raw_a`, `${shared}_raw_b`]) {
      const writer = new TimescaleWriter(pool, { table });
      const result = await writer.prepare();
      assert.equal(result.idempotent, true, table);
      assert.deepEqual(result.keys, [{ name: uniqueIndexName(table), columns: ['time', 'source', 'seq'] }]);
      await writer.write(records(10));
      assert.equal((await writer.write(records(10))).duplicates, 10, `${table}: a replay is skipped`);
    }
  });

  it('says so when another relation has the name its unique index needs, instead of writing without a key', async function () {
    await admin.query('CREATE TABLE clash_time_source_seq_key (id int)');
    await assert.rejects(new TimescaleWriter(pool, { table: 'clash' }).prepare(), (err: WriterConfigError) => saysItsMessage(err) && err.code === 'INDEX_NAME' && /clash_time_source_seq_key/.test(err.message));
  });

  it('reports a key that leaves out seq: different readings with one source and time are merged', async function () {
    await admin.query('CREATE TABLE coarse (time timestamptz NOT NULL, source text NOT NULL, kind text, value double precision, seq bigint NOT NULL DEFAULT 0, extra jsonb)');
    await admin.query('ALTER TABLE coarse ADD CONSTRAINT coarse_source_time UNIQUE (source, time)');
    const db = recording(pool);
    const writer = new TimescaleWriter(db, { table: 'coarse' });
    const result = await writer.prepare();
    assert.equal(result.idempotent, true);
    assert.equal(result.mergesReadings, true);
    assert.deepEqual(codes(result), ['KEY_MERGES_READINGS']);
    assert.match(result.warnings[0], /leaves out "seq".*stored as one row/);
    assert.deepEqual(ddl(db.texts), [], 'no second index: it would not stop the merging');
    const outcome = await writer.write([{ topic: 'cam', seq: 1, timestamp: T0, payload: 1 }, { topic: 'cam', seq: 2, timestamp: T0, payload: 2 }]);
    assert.deepEqual([outcome.written, outcome.duplicates], [1, 1]);
  });

  it('without TimescaleDB, compression and retention are a notice, and the rows go in', async function () {
    const writer = new TimescaleWriter(pool, { table: 'plain_policies', timescale: { compressAfter: '7 days', retention: '90 days' } });
    const result = await writer.prepare();
    assert.deepEqual(codes(result), ['NO_TIMESCALEDB']);
    assert.deepEqual(result.policies, {
      chunkInterval: { configured: '1 day', actual: null, status: 'unavailable' },
      compressAfter: { configured: '7 days', actual: null, status: 'unavailable' },
      retention: { configured: '90 days', actual: null, status: 'unavailable' }
    });
    assert.equal((await writer.write(records(10))).written, 10);
  });
});

describe('table setup against TimescaleDB (TELEMETRY_TIMESCALE_TEST_URL)', function () {
  let url: string;
  let pool: Pool;
  let admin: Client;
  /** The Apache-2 edition refuses compression and retention policies; the Timescale License edition sets them. */
  let apache: boolean;

  before(async function () {
    timescaleDbOrSkip(this);
    url = await createTimescaleDatabase('table_setup_tsdb');
    pool = new Pool({ connectionString: url, max: 4 });
    pool.on('error', () => undefined);
    admin = new Client({ connectionString: url });
    await admin.connect();
    apache = (await admin.query("SELECT current_setting('timescaledb.license') AS license")).rows[0].license === 'apache';
  });

  function apacheOnly(context: Mocha.Context): void {
    if (!apache) {
      console.log('      (this server has the Timescale License edition: the test of refused or faked policies is for the Apache-2 edition)');
      context.skip();
    }
  }

  after(async function () {
    await pool?.end();
    await admin?.end();
  });

  async function count(table: string): Promise<number> {
    const { rows } = await pool.query(`SELECT count(*)::int AS n FROM ${table}`);
    return rows[0].n as number;
  }

  async function chunkInterval(table: string): Promise<string | null> {
    const { rows } = await pool.query("SELECT time_interval::text AS interval FROM timescaledb_information.dimensions WHERE hypertable_name = $1 AND column_name = 'time'", [table]);
    return rows[0]?.interval ?? null;
  }

  it('makes the hypertable when the extension lives in a schema of its own, calling its functions there', async function () {
    const other = await createTestDatabase('table_setup_tsdb_schema', externalServer(process.env.TELEMETRY_TIMESCALE_TEST_URL as string));
    const setup = new Client({ connectionString: other });
    await setup.connect();
    const otherPool = new Pool({ connectionString: other, max: 2 });
    try {
      await setup.query('CREATE SCHEMA "Time Scale"');
      await setup.query('CREATE EXTENSION IF NOT EXISTS timescaledb SCHEMA "Time Scale"');
      const writer = new TimescaleWriter(otherPool, { table: 'elsewhere', timescale: { chunkInterval: '6 hours', compressAfter: null, retention: null } });
      const result = await writer.prepare();
      assert.equal(result.hypertable, true, JSON.stringify(result.notices));
      assert.deepEqual(result.notices, []);
      assert.equal((await writer.write([{ topic: 'press-1', seq: 1, timestamp: Date.UTC(2026, 0, 1), payload: 1.5 }])).written, 1);
      const { rows } = await setup.query("SELECT time_interval::text AS interval FROM timescaledb_information.dimensions WHERE hypertable_name = 'elsewhere'");
      assert.deepEqual(rows, [{ interval: '06:00:00' }]);
    } finally {
      await otherPool.end();
      await setup.end();
    }
  });

  it('makes a hypertable with the configured chunk interval and writes every row, although compression and retention are refused', async function () {
    const options = { table: 'hyper', timescale: { chunkInterval: '6 hours', compressAfter: '7 days', retention: '90 days' } };
    const writer = new TimescaleWriter(pool, options);
    const result = await writer.prepare();
    assert.match(result.timescaledb ?? '', /^2\.\d+\./);
    assert.equal(result.hypertable, true);
    assert.equal(await chunkInterval('hyper'), '06:00:00');
    if (apache) {
      assert.deepEqual(codes(result), ['COMPRESSION_REFUSED', 'RETENTION_REFUSED']);
      for (const notice of result.notices) {
        assert.equal(notice.sqlstate, '0A000');
        assert.match(notice.message, /refused \(0A000: .*apache.*license.*\)\. The rows are written .*Apache-2 edition/);
      }
    } else {
      assert.deepEqual(result.notices, []);
    }
    const refusedOr = (interval: string) => (apache ? { configured: interval, actual: null, status: 'refused' } : { configured: interval, actual: interval, status: 'applied' });
    assert.deepEqual(result.policies, {
      chunkInterval: { configured: '6 hours', actual: '06:00:00', status: 'applied' },
      compressAfter: refusedOr('7 days'),
      retention: refusedOr('90 days')
    });
    assert.deepEqual(await writer.write(records(1000)), { written: 1000, duplicates: 0, rejected: [], attempts: 1, statements: 1 });
    assert.equal(await count('hyper'), 1000);
    // Deployed again: the same refusals are reported (or the policies found), the chunk interval is found as configured.
    const again = await new TimescaleWriter(pool, options).prepare();
    assert.deepEqual(codes(again), apache ? ['COMPRESSION_REFUSED', 'RETENTION_REFUSED'] : []);
    assert.equal(again.policies.chunkInterval.status, 'present');
  });

  it('makes a hypertable of a table whose schema and name need quoting (plant-north."line-1")', async function () {
    const writer = new TimescaleWriter(pool, { schema: 'plant-north', table: 'line-1', timescale: { chunkInterval: '6 hours' } });
    const result = await writer.prepare();
    assert.equal(result.hypertable, true);
    assert.equal(result.idempotent, true);
    assert.equal(await chunkInterval('line-1'), '06:00:00');
    assert.equal((await writer.write(records(100))).written, 100);
    assert.equal((await writer.write(records(100))).duplicates, 100);
    assert.equal(await count('"plant-north"."line-1"'), 100);
    assert.equal((await new TimescaleWriter(pool, { schema: 'plant-north', table: 'line-1', timescale: { chunkInterval: '6 hours' } }).prepare()).policies.chunkInterval.status, 'present', 'found again on the next deploy');
  });

  it("sends the documented calls of both compression APIs, which the Apache edition refuses only for its license", async function () {
    apacheOnly(this);
    await new TimescaleWriter(pool, { table: 'api_check' }).prepare();
    const options = resolveTimescaleOptions({ compressAfter: '7 days', retention: '90 days' });
    for (const version of ['2.17.2', '2.22.1']) {
      const statements = timescaleStatements('public', 'api_check', version, options);
      for (const statement of [statements.enableCompression, statements.compressionPolicy, statements.retentionPolicy]) {
        // An unknown option is 22023, an unknown argument 42883, bad syntax 42601: these get as far as the license check.
        await assert.rejects(pool.query(statement?.text as string, statement?.values), (err: { code?: string }) => err.code === '0A000', `${version}: ${statement?.text}`);
      }
    }
  });

  it("falls back to TimescaleDB's default chunk interval when the server refuses the configured one", async function () {
    // prepareTable directly: the writer's own check would refuse this interval before the server sees it.
    const result = await prepareTable(pool, { ...auto('fallback'), timescale: { chunkInterval: 'soon', compressAfter: null, retention: null } });
    assert.equal(result.hypertable, true);
    assert.deepEqual(codes(result), ['CHUNK_INTERVAL_REFUSED']);
    assert.equal(result.notices[0].sqlstate, '22007');
    assert.equal(await chunkInterval('fallback'), '7 days');
    assert.deepEqual(result.policies.chunkInterval, { configured: 'soon', actual: '7 days', status: 'refused' });
  });

  it('reports a chunk interval that differs from the configured one, and keeps it', async function () {
    await new TimescaleWriter(pool, { table: 'rechunked', timescale: { chunkInterval: '1 day' } }).prepare();
    const db = recording(pool);
    const writer = new TimescaleWriter(db, { table: 'rechunked', timescale: { chunkInterval: '6 hours' } });
    const result = await writer.prepare();
    assert.deepEqual(codes(result), ['CHUNK_INTERVAL_DIFFERS']);
    assert.match(result.warnings[0], /has a chunk interval of 1 day, configured 6 hours.*set_chunk_time_interval\('"public"."rechunked"', INTERVAL '6 hours'\)/);
    assert.deepEqual(result.policies.chunkInterval, { configured: '6 hours', actual: '1 day', status: 'differs' });
    assert.deepEqual(ddl(db.texts), []);
    assert.equal(await chunkInterval('rechunked'), '1 day');
    assert.equal((await writer.write(records(10))).written, 10);
  });

  it('reports compression and retention policies that differ, and leaves them as they are', async function () {
    apacheOnly(this);
    await new TimescaleWriter(pool, { table: 'managed' }).prepare();
    // The Apache edition cannot add policies: put two in its job catalog as the licensed edition would, never scheduled.
    const { rows } = await admin.query("SELECT id FROM _timescaledb_catalog.hypertable WHERE table_name = 'managed'");
    const id = rows[0].id as number;
    for (const [proc, config] of [['policy_compression', { hypertable_id: id, compress_after: '3 days' }], ['policy_retention', { hypertable_id: id, drop_after: '30 days' }]] as const) {
      await admin.query(
        `INSERT INTO _timescaledb_config.bgw_job (application_name, schedule_interval, max_runtime, max_retries, retry_period, proc_schema, proc_name, scheduled, hypertable_id, config)
         VALUES ($1, '1 day', '0', -1, '1 hour', '_timescaledb_functions', $2, false, $3, $4)`,
        [`${proc} [test]`, proc, id, config]
      );
    }
    const db = recording(pool);
    const differing = await new TimescaleWriter(db, { table: 'managed', timescale: { compressAfter: '7 days', retention: '90 days' } }).prepare();
    assert.deepEqual(codes(differing), ['COMPRESSION_DIFFERS', 'RETENTION_DIFFERS']);
    assert.match(differing.warnings[0], /compresses chunks after 3 days, configured 7 days.*CALL remove_columnstore_policy\('"public"."managed"'\); CALL add_columnstore_policy\('"public"."managed"', after => INTERVAL '7 days'\)/);
    assert.match(differing.warnings[1], /drops chunks after 30 days, configured 90 days.*could delete data/);
    assert.deepEqual([differing.policies.compressAfter, differing.policies.retention], [
      { configured: '7 days', actual: '3 days', status: 'differs' },
      { configured: '90 days', actual: '30 days', status: 'differs' }
    ]);
    assert.deepEqual(ddl(db.texts), []);
    const matching = await new TimescaleWriter(pool, { table: 'managed', timescale: { compressAfter: '72 hours', retention: '30 days' } }).prepare();
    assert.deepEqual(matching.notices, []);
    assert.deepEqual([matching.policies.compressAfter.status, matching.policies.retention.status], ['present', 'present']);
    // Left empty, the fields leave the table's policies alone and say what they are.
    const unmanaged = await new TimescaleWriter(pool, { table: 'managed' }).prepare();
    assert.deepEqual([unmanaged.notices, unmanaged.policies.retention], [[], { configured: null, actual: '30 days', status: 'off' }]);
  });

  describe('a role that does not own the table', function () {
    const role = 'table_setup_tsdb_writer';
    const writerPool = loginRole(role, () => ({ admin, url }));

    it('cannot make a hypertable of a plain table: reported, and the rows go into the plain table', async function () {
      await grantedTable(admin, 'not_mine', role);
      const writer = new TimescaleWriter(writerPool(), { table: 'not_mine', timescale: { compressAfter: '7 days' } });
      const result = await writer.prepare();
      assert.equal(result.hypertable, false);
      assert.deepEqual(codes(result), ['HYPERTABLE_REFUSED']);
      assert.equal(result.notices[0].sqlstate, '42501');
      assert.match(result.warnings[0], /stays a plain PostgreSQL table: create_hypertable was refused \(42501: .*\)\. The rows are written to the plain table/);
      assert.equal(result.policies.compressAfter.status, 'unavailable');
      assert.equal((await writer.write(records(100))).written, 100);
      assert.equal(await count('not_mine'), 100);
    });

    it('with only INSERT on a prepared hypertable, sends no DDL and writes', async function () {
      await grantedTable(admin, 'prepared_hyper', role);
      await admin.query("SELECT create_hypertable('prepared_hyper', by_range('time', INTERVAL '1 day'))");
      const db = recording(writerPool());
      const writer = new TimescaleWriter(db, { table: 'prepared_hyper' });
      const result = await writer.prepare();
      assert.deepEqual([result.hypertable, result.idempotent, result.notices, result.policies.chunkInterval], [true, true, [], { configured: '1 day', actual: '1 day', status: 'present' }]);
      assert.deepEqual(ddl(db.texts), []);
      assert.equal((await writer.write(records(100))).written, 100);
    });
  });

  it('checks an existing hypertable like any existing table', async function () {
    await admin.query('CREATE TABLE readings (ts timestamptz NOT NULL, device text NOT NULL, reading float8, n smallint NOT NULL, UNIQUE (device, ts, n))');
    await admin.query("SELECT create_hypertable('readings', by_range('ts', INTERVAL '12 hours'))");
    const columns = { time: 'ts', source: 'device', value: 'reading', seq: 'n', kind: null };
    await assert.rejects(new TimescaleWriter(pool, { table: 'readings', mode: 'existing', columns }).prepare(), (err: WriterConfigError) => saysItsMessage(err) && err.code === 'SEQ_TYPE');
    await admin.query('ALTER TABLE readings ALTER COLUMN n TYPE bigint, ADD COLUMN site text NOT NULL');
    await assert.rejects(new TimescaleWriter(pool, { table: 'readings', mode: 'existing', columns }).prepare(), (err: WriterConfigError) => saysItsMessage(err) && err.code === 'NOT_NULL' && /"site"/.test(err.message));
    await admin.query('ALTER TABLE readings DROP COLUMN site');
    const writer = new TimescaleWriter(pool, { table: 'readings', mode: 'existing', columns });
    const result = await writer.prepare();
    assert.deepEqual([result.hypertable, result.idempotent, result.notices, result.policies.chunkInterval], [true, true, [], { configured: null, actual: '12:00:00', status: 'off' }]);
    assert.equal((await writer.write(records(10))).written, 10);
  });

  describe('timescale-sink in a real Node-RED runtime', function () {
    const connectionNode = require('../nodes/timescale-connection.js');
    const sinkNode = require('../nodes/timescale-sink.js');

    afterEach(async function () {
      await helper.unload();
    });

    it('with Compress after and Drop after set, writes every row on the Apache edition and logs each refusal', async function () {
      apacheOnly(this);
      const target = new URL(url);
      const flow = [
        { id: 'conn', type: 'timescale-connection', host: target.hostname, port: target.port, database: target.pathname.slice(1), tls: 'off' },
        { id: 'sink', type: 'timescale-sink', connection: 'conn', table: 'sink_policies', mode: 'auto', chunkInterval: '12 hours', compressAfter: '7 days', retention: '90 days', statsInterval: '0', wires: [[], []] }
      ];
      await helper.load([connectionNode, sinkNode], flow, { conn: { user: decodeURIComponent(target.username), password: decodeURIComponent(target.password) } });
      helper.getNode('sink').receive({ payload: records(500), batch: { id: 1, count: 500, reason: 'size' } });
      await waitUntil('the 500 rows', async () => (await count('sink_policies').catch(() => 0)) === 500, 30_000, 50);
      assert.equal(await count('sink_policies'), 500);
      assert.equal(await chunkInterval('sink_policies'), '12:00:00');
      const warnings = helper.log().args.map((args: unknown[]) => JSON.stringify(args)).filter((line: string) => /0A000/.test(line));
      assert.equal(warnings.filter((line: string) => /compression after 7 days/.test(line)).length, 1, warnings.join('\n'));
      assert.equal(warnings.filter((line: string) => /retention \(drop after 90 days\)/.test(line)).length, 1, warnings.join('\n'));
      // The badge and the stats keep saying so while rows go in.
      const sink = helper.getNode('sink');
      await waitUntil('the notices in the stats', async () => sink.telemetryStats().tableNotices > 0, 30_000, 50);
      const s = sink.telemetryStats();
      assert.deepEqual([s.state, s.tableNotices, s.idempotent, s.distinctRows], ['up', 2, true, true]);
      const badges = (): Array<{ fill?: string; text?: string }> => badgesOf('sink');
      await waitUntil('the badge to say so', async () => badges().some((b) => b.fill === 'yellow' && /^\d+(\.\dk)? rows\/s !policy$/.test(b.text ?? '')), 30_000, 50);
      assert.ok(badges().every((b) => !b.text || b.text.length < 20));
    });
  });
});
