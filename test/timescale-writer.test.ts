import assert from 'assert';
import sinon from 'sinon';
import { Pool } from 'pg';
import type { TelemetryRecord } from '../src/core/readings/records';
import { TimescaleWriter, WriteFailedError, WriterConfigError, quoteIdentifier, timescaleStatements, type Queryable, type WriterRetryEvent, type WriterState } from '../src/core/sink/timescale-writer';
import { createTestDatabase, getTestServer, waitForServer, type TestServer } from './support/postgres';

const T0 = Date.UTC(2025, 0, 1);
const noWait = async (): Promise<void> => undefined;

function makeRecords(count: number, { source = 'line1', start = 0 }: { source?: string; start?: number } = {}): TelemetryRecord[] {
  const out: TelemetryRecord[] = [];
  for (let i = start; i < start + count; i++) out.push({ topic: source, seq: i, timestamp: T0 + i * 1000, payload: { value: i / 2, kind: 'temp' } });
  return out;
}

/** The pool, seen through a wrapper whose calls sinon can count or break. */
function wrap(pool: Pool): Queryable & { query: sinon.SinonSpy } {
  const wrapper = { query: (text: string, values?: unknown[]) => pool.query(text, values) };
  sinon.spy(wrapper, 'query');
  return wrapper as unknown as Queryable & { query: sinon.SinonSpy };
}

function insertCalls(db: { query: sinon.SinonSpy }): number {
  return db.query.getCalls().filter((call) => String(call.args[0]).startsWith('INSERT')).length;
}

function collectEvents(writer: TimescaleWriter): { states: WriterState[]; retries: WriterRetryEvent[] } {
  const events = { states: [] as WriterState[], retries: [] as WriterRetryEvent[] };
  writer.on('state', (change: WriterState) => events.states.push(change));
  writer.on('retry', (retry: WriterRetryEvent) => events.retries.push(retry));
  return events;
}

describe('TimescaleWriter statements (no database)', function () {
  const pool: Queryable = { query: async () => ({ rowCount: 0, rows: [] }) };

  it('refuses only names PostgreSQL cannot take (empty, a NUL, over 63 bytes) and quotes every other one whole', function () {
    for (const table of ['', '  ', 'a\u0000b', 'a'.repeat(64), 'ä'.repeat(32)]) {
      assert.throws(() => new TimescaleWriter(pool, { table }), WriterConfigError, JSON.stringify(table));
    }
    assert.throws(() => new TimescaleWriter(pool, { table: 'ä'.repeat(32) }), /is 64 bytes long/);
    assert.throws(() => new TimescaleWriter(pool, { schema: 'a\u0000' }), /invalid schema.*NUL/);
    assert.throws(() => new TimescaleWriter(pool, { mode: 'existing', columns: { value: 'v'.repeat(64) } }), /invalid value column/);
    // Inside double quotes, a doubled quote is the only character that needs care: nothing ends the name early.
    assert.strictEqual(quoteIdentifier('x"; DROP TABLE y; --'), '"x""; DROP TABLE y; --"');
    assert.strictEqual(quoteIdentifier('line-1'), '"line-1"');
    assert.strictEqual(quoteIdentifier('ä'.repeat(31)), `"${'ä'.repeat(31)}"`);
    assert.throws(() => new TimescaleWriter(pool, { mode: 'existing', columns: { time: null } }), /needs a column for time/);
    assert.throws(() => new TimescaleWriter(pool, { mode: 'existing', columns: { colour: 'x' } as never }), /unknown column mapping/);
    assert.strictEqual(quoteIdentifier('a'.repeat(63)), `"${'a'.repeat(63)}"`);
  });

  it('sends each column as one array parameter, whatever the batch size', function () {
    assert.strictEqual(
      new TimescaleWriter(pool).insertSql,
      'INSERT INTO "public"."telemetry" ("time", "source", "kind", "value", "seq") SELECT u.c1, u.c2, u.c3, u.c4, u.c5 FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::float8[], $5::int8[]) AS u(c1, c2, c3, c4, c5)'
    );
    assert.strictEqual(new TimescaleWriter(pool).idempotentInsertSql, `${new TimescaleWriter(pool).insertSql} ON CONFLICT DO NOTHING`);
    assert.strictEqual(
      new TimescaleWriter(pool, { schema: 'Plant', table: 'Readings', mode: 'existing', extra: true, columns: { time: 'ts', source: 'device', value: 'reading', kind: null, seq: 'n', extra: 'attrs' } }).insertSql,
      'INSERT INTO "Plant"."Readings" ("ts", "device", "reading", "n", "attrs") SELECT u.c1, u.c2, u.c3, u.c4, u.c5 FROM unnest($1::timestamptz[], $2::text[], $3::float8[], $4::int8[], $5::jsonb[]) AS u(c1, c2, c3, c4, c5)'
    );
  });

  it('builds the documented TimescaleDB 2.13+ calls, all values as parameters', function () {
    const statements = timescaleStatements('public', 'telemetry', '2.17.2', { chunkInterval: '1 day', compressAfter: '7 days', retention: '90 days' });
    assert.deepStrictEqual(statements.hypertable, {
      text: 'SELECT create_hypertable($1::regclass, by_range($2::name, $3::interval), if_not_exists => TRUE, migrate_data => TRUE, create_default_indexes => FALSE)',
      values: ['"public"."telemetry"', 'time', '1 day']
    });
    assert.deepStrictEqual(statements.enableCompression, {
      text: `ALTER TABLE "public"."telemetry" SET (timescaledb.compress, timescaledb.compress_segmentby = 'source', timescaledb.compress_orderby = 'time DESC, seq DESC')`,
      values: []
    });
    assert.deepStrictEqual(statements.compressionPolicy, {
      text: 'SELECT add_compression_policy($1::regclass, compress_after => $2::interval, if_not_exists => TRUE)',
      values: ['"public"."telemetry"', '7 days']
    });
    assert.deepStrictEqual(statements.retentionPolicy, {
      text: 'SELECT add_retention_policy($1::regclass, drop_after => $2::interval, if_not_exists => TRUE)',
      values: ['"public"."telemetry"', '90 days']
    });
  });

  it('falls back to the pre-2.13 create_hypertable form and leaves policies off unless asked', function () {
    const statements = timescaleStatements('public', 'telemetry', '2.11.0', { chunkInterval: '6 hours', compressAfter: null, retention: null });
    assert.strictEqual(statements.hypertable.text, 'SELECT create_hypertable($1::regclass, $2::name, chunk_time_interval => $3::interval, if_not_exists => TRUE, migrate_data => TRUE, create_default_indexes => FALSE)');
    assert.deepStrictEqual(statements.hypertable.values, ['"public"."telemetry"', 'time', '6 hours']);
    assert.strictEqual(statements.enableCompression, null);
    assert.strictEqual(statements.compressionPolicy, null);
    assert.strictEqual(statements.retentionPolicy, null);
  });
});

describe('TimescaleWriter against PostgreSQL', function () {
  let server: TestServer;
  let pool: Pool;
  let url: string;

  before(async function () {
    server = await getTestServer();
    url = await createTestDatabase('writer_test');
    pool = new Pool({ connectionString: url, max: 4, connectionTimeoutMillis: 5000 });
    // Idle connections die when a test stops the server; the pool must not crash the run.
    pool.on('error', () => undefined);
  });

  after(async function () {
    await pool?.end();
  });

  afterEach(function () {
    sinon.restore();
  });

  async function count(table: string, where = 'TRUE'): Promise<number> {
    const result = await pool.query<{ n: string }>(`SELECT count(*) AS n FROM ${table} WHERE ${where}`);
    return Number(result.rows[0].n);
  }

  it('creates the narrow table with its unique key, once, on plain PostgreSQL', async function () {
    const writer = new TimescaleWriter(pool, { table: 'prepared' });
    const result = await writer.prepare();
    assert.deepStrictEqual(result, {
      mode: 'auto',
      timescaledb: null,
      hypertable: false,
      idempotent: true,
      mergesReadings: false,
      keys: [{ name: 'prepared_time_source_seq_key', columns: ['time', 'source', 'seq'] }],
      policies: {
        chunkInterval: { configured: '1 day', actual: null, status: 'unavailable' },
        compressAfter: { configured: null, actual: null, status: 'off' },
        retention: { configured: null, actual: null, status: 'off' }
      },
      notices: [],
      warnings: []
    });
    assert.strictEqual(await writer.prepare(), result);
    const columns = await pool.query<{ column_name: string; data_type: string; is_nullable: string }>(
      "SELECT column_name, data_type, is_nullable FROM information_schema.columns WHERE table_name = 'prepared' ORDER BY ordinal_position"
    );
    assert.deepStrictEqual(
      columns.rows.map((row) => `${row.column_name} ${row.data_type} ${row.is_nullable}`),
      ['time timestamp with time zone NO', 'source text NO', 'kind text YES', 'value double precision YES', 'seq bigint NO', 'extra jsonb YES']
    );
    // A second writer (another sink, or a redeploy) finds the table as it is.
    await new TimescaleWriter(pool, { table: 'prepared' }).prepare();
  });

  it('survives two writers creating the same table at the same moment', async function () {
    const results = await Promise.all([1, 2, 3].map(() => new TimescaleWriter(pool, { table: 'raced' }).prepare()));
    assert.ok(results.every((result) => result.idempotent));
  });

  it('writes 5,000 rows in one statement and counts a replay as duplicates', async function () {
    const db = wrap(pool);
    const writer = new TimescaleWriter(db, { table: 'bulk', extra: true });
    const records = makeRecords(5000);
    records[17] = { topic: 'line1', seq: 17, timestamp: T0 + 17000, payload: { value: 1.25, kind: 'temp', unit: '°C', note: 'quote " and \\ backslash, {brace}' } };
    const outcome = await writer.write(records);
    assert.deepStrictEqual(outcome, { written: 5000, duplicates: 0, rejected: [], attempts: 1, statements: 1 });
    assert.strictEqual(insertCalls(db), 1);
    assert.strictEqual(await count('bulk'), 5000);
    const sample = await pool.query('SELECT time, source, kind, value, seq, extra FROM bulk WHERE seq IN (17, 4999) ORDER BY seq');
    assert.deepStrictEqual(sample.rows, [
      { time: new Date(T0 + 17000), source: 'line1', kind: 'temp', value: 1.25, seq: '17', extra: { unit: '°C', note: 'quote " and \\ backslash, {brace}' } },
      { time: new Date(T0 + 4999000), source: 'line1', kind: 'temp', value: 2499.5, seq: '4999', extra: null }
    ]);

    // The plain INSERT is refused whole on the first duplicate; the ON CONFLICT form then skips them all.
    const replay = await writer.write(records);
    assert.deepStrictEqual(replay, { written: 0, duplicates: 5000, rejected: [], attempts: 1, statements: 2 });
    assert.strictEqual(await count('bulk'), 5000);
  });

  it('sends ON CONFLICT DO NOTHING only while conflicts are possible, and loses or doubles nothing either way', async function () {
    const db = wrap(pool);
    const writer = new TimescaleWriter(db, { table: 'optimistic' });
    const sent = (): string[] => db.query.getCalls().map((call) => String(call.args[0])).filter((text) => text.startsWith('INSERT')).map((text) => (text.endsWith('ON CONFLICT DO NOTHING') ? 'idempotent' : 'plain'));
    const fresh = await writer.write(makeRecords(100));
    assert.deepStrictEqual(fresh, { written: 100, duplicates: 0, rejected: [], attempts: 1, statements: 1 });
    // Half already written: the plain statement is refused (23505) and inserts nothing, the idempotent one the other half.
    const overlapping = await writer.write(makeRecords(100, { start: 50 }));
    assert.deepStrictEqual(overlapping, { written: 50, duplicates: 50, rejected: [], attempts: 1, statements: 2 });
    // A replay is usually more than one batch: after duplicates the next batch goes idempotent at once...
    const replayed = await writer.write(makeRecords(50));
    assert.deepStrictEqual(replayed, { written: 0, duplicates: 50, rejected: [], attempts: 1, statements: 1 });
    // ...until a batch turns out to hold none; then plain again. A row twice in one batch is a conflict too.
    assert.strictEqual((await writer.write(makeRecords(10, { start: 150 }))).written, 10);
    const twice = [...makeRecords(5, { start: 160 }), ...makeRecords(1, { start: 160 })];
    assert.deepStrictEqual(await writer.write(twice), { written: 5, duplicates: 1, rejected: [], attempts: 1, statements: 2 });
    assert.deepStrictEqual(sent(), ['plain', 'plain', 'idempotent', 'idempotent', 'idempotent', 'plain', 'idempotent']);
    const table = await pool.query('SELECT count(*)::int AS rows, count(DISTINCT seq)::int AS seqs, min(seq)::int AS first, max(seq)::int AS last FROM optimistic');
    assert.deepStrictEqual(table.rows[0], { rows: 165, seqs: 165, first: 0, last: 164 });
  });

  it('stores sources and kinds exactly as given, whatever characters they hold', async function () {
    const db = wrap(pool);
    const writer = new TimescaleWriter(db, { table: 'odd_text' });
    const texts = ['plain', 'NULL', 'null', '', ' leading and trailing ', 'quote " and \\ backslash', '{brace},comma', 'tab\tnewline\nreturn\r', 'ümlaut °C 温度 🏭', `'; DROP TABLE x; -- $1 $$ %s /* */`, '"', '\\', 'a'.repeat(256)];
    // Every text as a source (but ''), and as the kind of another row ('' means no kind); repeats too.
    const records = [];
    let seq = 0;
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < texts.length; i++) {
        const source = texts[i] === '' ? 'empty-kind' : texts[i];
        const kind = texts[(i + round) % texts.length];
        records.push({ topic: source, seq: ++seq, timestamp: T0 + seq, payload: { value: seq, kind } });
      }
    }
    const outcome = await writer.write(records);
    assert.deepStrictEqual(outcome, { written: records.length, duplicates: 0, rejected: [], attempts: 1, statements: 1 });
    const rows = await pool.query('SELECT source, kind, value FROM odd_text ORDER BY seq');
    assert.deepStrictEqual(
      rows.rows,
      records.map((r) => ({ source: r.topic, kind: r.payload.kind === '' ? null : r.payload.kind, value: r.payload.value }))
    );
  });

  it('keeps every time to the exact millisecond (times travel as timestamptz microseconds)', async function () {
    const writer = new TimescaleWriter(pool, { table: 'exact_times' });
    const times = [Date.UTC(2000, 0, 1, 0, 0, 0, 1), Date.UTC(2024, 1, 29, 23, 59, 59, 999), 1_700_000_000_123, Date.UTC(2099, 11, 31, 23, 59, 59, 999), T0 + 333];
    const records = times.map((time, i) => ({ topic: 'exact', seq: i + 1, payload: { value: i, time } }));
    assert.strictEqual((await writer.write(records)).written, times.length);
    const rows = await pool.query("SELECT time, (extract(epoch FROM time) * 1000)::int8::text AS ms, to_char(time AT TIME ZONE 'UTC', 'US') AS micros FROM exact_times ORDER BY seq");
    assert.deepStrictEqual(rows.rows.map((r) => r.time.getTime()), times);
    assert.deepStrictEqual(rows.rows.map((r) => r.ms), times.map(String));
    assert.deepStrictEqual(rows.rows.map((r) => r.micros), times.map((t) => String((((t % 1000) + 1000) % 1000) * 1000).padStart(6, '0')), 'no stray microseconds from floating point');
  });

  it('writes the good rows of a batch whose other rows cannot be mapped', async function () {
    const writer = new TimescaleWriter(pool, { table: 'mapped' });
    const records = makeRecords(7);
    records.push({ topic: 'line1', payload: 'hot' }, { payload: 3 }, { topic: 'line1', payload: { value: NaN } });
    const outcome = await writer.write(records);
    assert.strictEqual(outcome.written, 7);
    assert.deepStrictEqual(
      outcome.rejected.map((rejected) => [rejected.record, rejected.code]),
      [
        [records[7], 'MAPPING'],
        [records[8], 'MAPPING'],
        [records[9], 'MAPPING']
      ]
    );
    assert.strictEqual(await count('mapped'), 7);
  });

  describe('existing table mode', function () {
    before(async function () {
      await pool.query('CREATE SCHEMA "Plant"');
      await pool.query(`CREATE TABLE "Plant"."Readings" (
        id bigserial PRIMARY KEY,
        ts timestamptz NOT NULL,
        device text NOT NULL,
        reading double precision CHECK (reading BETWEEN -1000 AND 1000),
        n bigint NOT NULL,
        attrs jsonb,
        UNIQUE (device, ts, n)
      )`);
    });

    const columns = { time: 'ts', source: 'device', value: 'reading', kind: null, seq: 'n', extra: 'attrs' };

    it('maps to the user column names and finds the idempotency key', async function () {
      const writer = new TimescaleWriter(pool, { schema: 'Plant', table: 'Readings', mode: 'existing', extra: true, columns });
      const off = { configured: null, actual: null, status: 'off' };
      assert.deepStrictEqual(await writer.prepare(), {
        mode: 'existing',
        timescaledb: null,
        hypertable: false,
        idempotent: true,
        mergesReadings: false,
        keys: [{ name: 'Readings_device_ts_n_key', columns: ['device', 'ts', 'n'] }],
        policies: { chunkInterval: off, compressAfter: off, retention: off },
        notices: [],
        warnings: []
      });
      const outcome = await writer.write([{ topic: 'press-2', seq: 5, timestamp: T0, payload: { value: 12.5, mode: 'auto' } }]);
      assert.strictEqual(outcome.written, 1);
      const { rows } = await pool.query('SELECT ts, device, reading, n, attrs FROM "Plant"."Readings"');
      assert.deepStrictEqual(rows, [{ ts: new Date(T0), device: 'press-2', reading: 12.5, n: '5', attrs: { mode: 'auto' } }]);
    });

    it('writes 999 rows of 1,000 and rejects the one the database refuses, with its reason', async function () {
      const db = wrap(pool);
      const writer = new TimescaleWriter(db, { schema: 'Plant', table: 'Readings', mode: 'existing', extra: true, columns });
      const records = makeRecords(1000, { source: 'press-9' });
      records[613] = { topic: 'press-9', seq: 613, timestamp: T0 + 613000, payload: { value: 5000 } };
      const outcome = await writer.write(records);
      assert.strictEqual(outcome.written, 999);
      assert.strictEqual(outcome.duplicates, 0);
      assert.strictEqual(outcome.rejected.length, 1);
      assert.strictEqual(outcome.rejected[0].record, records[613]);
      assert.strictEqual(outcome.rejected[0].code, '23514');
      assert.match(outcome.rejected[0].reason, /check constraint/);
      assert.strictEqual(await count('"Plant"."Readings"', "device = 'press-9'"), 999);
      assert.strictEqual(await count('"Plant"."Readings"', "device = 'press-9' AND n = 613"), 0);
      // Bisection: about two statements per level of a 1,000-row batch, not one per row.
      assert.ok(outcome.statements <= 2 * Math.ceil(Math.log2(1000)) + 1, `statements: ${outcome.statements}`);
      assert.strictEqual(insertCalls(db), outcome.statements);
    });

    it('rejects only the rows a trigger raises for, a row-level security policy or a view\'s check option refuses, and writes the rest', async function () {
      const shape = 'ts timestamptz NOT NULL, device text NOT NULL, reading double precision, n bigint NOT NULL';
      // A trigger that raises (PL/pgSQL's P0001) for some rows.
      await pool.query(`CREATE TABLE "Plant"."Guarded" (${shape}, UNIQUE (device, ts, n))`);
      await pool.query(`CREATE FUNCTION "Plant".too_high() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW.reading >= 45 THEN RAISE EXCEPTION 'reading % too high', NEW.reading; END IF; RETURN NEW; END $$`);
      await pool.query('CREATE TRIGGER too_high BEFORE INSERT ON "Plant"."Guarded" FOR EACH ROW EXECUTE FUNCTION "Plant".too_high()');
      // A row-level security policy (42501, as a missing privilege is) that refuses one source; forced, so it holds for the owner too.
      await pool.query(`CREATE TABLE "Plant"."Policed" (${shape}, UNIQUE (device, ts, n))`);
      await pool.query('ALTER TABLE "Plant"."Policed" ENABLE ROW LEVEL SECURITY');
      await pool.query('ALTER TABLE "Plant"."Policed" FORCE ROW LEVEL SECURITY');
      await pool.query(`CREATE POLICY writers ON "Plant"."Policed" USING (true) WITH CHECK (device <> 'press-bad')`);
      // A view with a check option (44000).
      await pool.query(`CREATE TABLE "Plant"."Base" (${shape}, UNIQUE (device, ts, n))`);
      await pool.query('CREATE VIEW "Plant"."Checked" AS SELECT * FROM "Plant"."Base" WHERE reading < 45 WITH CHECK OPTION');
      // Policies do not hold for a superuser: that table is written by a role that is not one.
      await pool.query("CREATE ROLE rls_writer LOGIN PASSWORD 'rls-writer'");
      await pool.query('GRANT USAGE ON SCHEMA "Plant" TO rls_writer');
      await pool.query('GRANT SELECT, INSERT ON "Plant"."Policed" TO rls_writer');
      const asWriter = new URL(url);
      asWriter.username = 'rls_writer';
      asWriter.password = 'rls-writer';
      const writerPool = new Pool({ connectionString: asWriter.toString(), max: 1 });
      const viewColumns = { time: 'ts', source: 'device', value: 'reading', kind: null, seq: 'n' };
      const cases: Array<[string, TelemetryRecord[], string, number]> = [
        ['Guarded', makeRecords(100, { source: 'press-t' }), 'P0001', 10],
        ['Policed', makeRecords(100, { source: 'press-p' }).map((r, i) => (i % 10 === 3 ? { ...r, topic: 'press-bad' } : r)), '42501', 10],
        ['Checked', makeRecords(100, { source: 'press-v' }), '44000', 10],
      ];
      try {
        // A policy that lets no row of this role in is the table's fault, not the rows': the batch
        // is held (misconfigured) and written once a person fixes the policy.
        await pool.query(`CREATE TABLE "Plant"."Closed" (${shape}, UNIQUE (device, ts, n))`);
        await pool.query('ALTER TABLE "Plant"."Closed" ENABLE ROW LEVEL SECURITY');
        await pool.query('CREATE POLICY nobody ON "Plant"."Closed" USING (true) WITH CHECK (false)');
        await pool.query('GRANT SELECT, INSERT ON "Plant"."Closed" TO rls_writer');
        let waits = 0;
        const closed = new TimescaleWriter(writerPool, {
          schema: 'Plant',
          table: 'Closed',
          mode: 'existing',
          columns: viewColumns,
          sleep: async () => {
            if (++waits === 2) await pool.query('ALTER POLICY nobody ON "Plant"."Closed" WITH CHECK (true)');
          },
        });
        const events = collectEvents(closed);
        await closed.prepare();
        const held = await closed.write(makeRecords(50, { source: 'press-c' }));
        assert.deepStrictEqual([held.written, held.rejected.length], [50, 0]);
        assert.deepStrictEqual(events.states.map((change) => [change.state, change.code]).slice(-2), [['misconfigured', '42501'], ['up', undefined]]);
        assert.strictEqual(await count('"Plant"."Closed"'), 50);
        for (const [table, records, code, refused] of cases) {
          const writer = new TimescaleWriter(table === 'Policed' ? writerPool : pool, { schema: 'Plant', table, mode: 'existing', columns: viewColumns });
          await writer.prepare();
          const outcome = await writer.write(records);
          assert.deepStrictEqual([outcome.written, outcome.rejected.length, outcome.duplicates], [100 - refused, refused, 0], table);
          assert.deepStrictEqual([...new Set(outcome.rejected.map((r) => r.code))], [code], table);
          assert.strictEqual(await count(`"Plant"."${table}"`), 100 - refused, table);
        }
      } finally {
        await writerPool.end();
      }
    });

    it('explains a missing table, a missing column or an unusable column type', async function () {
      await assert.rejects(new TimescaleWriter(pool, { table: 'nowhere', mode: 'existing' }).prepare(), (err: WriterConfigError) => err.code === 'NO_TABLE' && /does not exist/.test(err.message));
      await assert.rejects(new TimescaleWriter(pool, { schema: 'Plant', table: 'Readings', mode: 'existing', columns: { ...columns, kind: 'category' } }).prepare(), /has no column "category"/);
      await assert.rejects(new TimescaleWriter(pool, { schema: 'Plant', table: 'Readings', mode: 'existing', columns: { ...columns, value: 'device', source: 'ts' } }).prepare(), (err: WriterConfigError) => err.code === 'COLUMN_TYPE');
    });

    it('warns when no unique index makes retries idempotent', async function () {
      await pool.query('CREATE TABLE loose (time timestamptz NOT NULL, source text NOT NULL, value float8, id serial UNIQUE)');
      const result = await new TimescaleWriter(pool, { table: 'loose', mode: 'existing', columns: { kind: null, seq: null } }).prepare();
      assert.strictEqual(result.idempotent, false);
      assert.match(result.warnings.join('\n'), /can be stored twice/);
    });

    it('holds a batch, without bisecting, while the statement itself is wrong (class 42), and writes it once the table is fixed', async function () {
      await pool.query('CREATE TABLE shrinking (time timestamptz NOT NULL, source text NOT NULL, value float8, kind text, seq bigint NOT NULL, UNIQUE (source, time, seq))');
      const db = wrap(pool);
      let probes = 0;
      const writer = new TimescaleWriter(db, {
        table: 'shrinking',
        mode: 'existing',
        retry: { maxAttempts: 2 },
        // The probe waits; on its third wait a person fixes the table.
        sleep: async () => {
          if (++probes === 3) await pool.query('ALTER TABLE shrinking ADD COLUMN kind text');
        }
      });
      const events = collectEvents(writer);
      await writer.prepare();
      await pool.query('ALTER TABLE shrinking DROP COLUMN kind');
      const outcome = await writer.write(makeRecords(100));
      assert.deepStrictEqual(outcome, { written: 100, duplicates: 0, rejected: [], attempts: 4, statements: 4 });
      assert.strictEqual(insertCalls(db), 4, 'the whole batch each time: never bisected row by row');
      assert.deepStrictEqual(events.states.map((change) => [change.state, change.code]), [['misconfigured', '42703'], ['up', undefined]]);
      assert.ok(events.retries.every((retry) => retry.maxAttempts === Infinity && retry.code === '42703'), 'a misconfiguration spends no attempts');
    });
  });

  it('re-creates a table dropped while running (auto mode)', async function () {
    const writer = new TimescaleWriter(pool, { table: 'dropped' });
    await writer.write(makeRecords(10));
    await pool.query('DROP TABLE dropped');
    const outcome = await writer.write(makeRecords(10, { start: 10 }));
    assert.strictEqual(outcome.written, 10);
    assert.strictEqual(await count('dropped'), 10);
  });

  it('retries an ambiguous failure (committed, but the client saw an error) without duplicating a row', async function () {
    const db = wrap(pool);
    let broken = 0;
    db.query.restore();
    sinon.stub(db, 'query').callsFake(async (text: string, values?: unknown[]) => {
      const result = await pool.query(text, values);
      if (text.startsWith('INSERT') && broken++ === 0) throw new Error('Connection terminated unexpectedly');
      return result;
    });
    const writer = new TimescaleWriter(db, { table: 'ambiguous', sleep: noWait });
    const events = collectEvents(writer);
    const outcome = await writer.write(makeRecords(300));
    assert.deepStrictEqual(outcome, { written: 0, duplicates: 300, rejected: [], attempts: 2, statements: 2 });
    assert.strictEqual(await count('ambiguous'), 300);
    assert.deepStrictEqual(events.states.map((change) => change.state), ['down', 'up']);
    assert.strictEqual(events.states[0].code, 'CONN_TERMINATED');
  });

  it('dead-letters a batch after the configured attempts at a transient failure (deadlock), logging one change per state', async function () {
    const db: Queryable = {
      query: async (text: string, values?: unknown[]) => {
        if (text.startsWith('INSERT')) throw Object.assign(new Error('deadlock detected (postgres://u:hunter2@db/x)'), { code: '40P01' });
        return pool.query(text, values);
      }
    };
    const delays: number[] = [];
    const writer = new TimescaleWriter(db, { table: 'deadlocked', retry: { maxAttempts: 4 }, random: () => 1, sleep: async (ms) => void delays.push(ms) });
    const events = collectEvents(writer);
    await assert.rejects(writer.write(makeRecords(5)), (err: WriteFailedError) => {
      assert.ok(err instanceof WriteFailedError);
      assert.strictEqual(err.code, '40P01');
      assert.strictEqual(err.kind, 'transient');
      assert.strictEqual(err.attempts, 4);
      assert.ok(!err.message.includes('hunter2'), err.message);
      return true;
    });
    assert.deepStrictEqual(delays, [500, 1000, 2000]);
    assert.deepStrictEqual(events.states.map((change) => change.state), ['retrying', 'up']);
    assert.strictEqual(events.retries.length, 3);
    assert.ok(events.retries.every((retry) => retry.maxAttempts === 4));
  });

  it('waits out an outage of any length: one probe retries, the other writes wait and spend no attempt, all go in once it is back', async function () {
    let refusals = 40; // far beyond the 2 attempts allowed for transient failures
    let inserts = 0;
    const db: Queryable = {
      query: async (text: string, values?: unknown[]) => {
        if (text.startsWith('INSERT')) {
          inserts++;
          if (refusals > 0) {
            refusals--;
            throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
          }
        }
        return pool.query(text, values);
      }
    };
    const delays: number[] = [];
    const writer = new TimescaleWriter(db, { table: 'outage_gate', retry: { maxAttempts: 2 }, random: () => 1, sleep: async (ms) => void delays.push(ms) });
    await writer.prepare();
    const events = collectEvents(writer);
    const outcomes = await Promise.all([0, 1, 2].map((i) => writer.write(makeRecords(10, { source: `s${i}` }))));
    assert.deepStrictEqual(outcomes.map((o) => o.written + o.duplicates), [10, 10, 10]);
    assert.strictEqual(await count('outage_gate'), 30);
    // Three writes failed together; then only the probe tried, 37 more times, until the 41st insert went through.
    assert.strictEqual(inserts, 40 + 3);
    assert.strictEqual(delays.length, 40 - 2, 'only the probe waited between attempts');
    assert.ok(delays.every((ms) => ms <= 1000), 'a returning database is written to within a second');
    assert.deepStrictEqual(events.states.map((change) => change.state), ['down', 'up']);
    assert.strictEqual(events.states[0].code, 'ECONNREFUSED');
  });

  it('holds a batch while the password is wrong (misconfigured, no attempt spent), and writes it when the server accepts again', async function () {
    let accepted = false;
    const db: Queryable = {
      query: async (text: string, values?: unknown[]) => {
        if (!accepted) throw Object.assign(new Error('password authentication failed for user "writer"'), { code: '28P01' });
        return pool.query(text, values);
      }
    };
    let waits = 0;
    const writer = new TimescaleWriter(db, { table: 'misconfigured', retry: { maxAttempts: 1 }, sleep: async () => void (++waits === 5 && (accepted = true)) });
    const events = collectEvents(writer);
    const outcome = await writer.write(makeRecords(3));
    assert.strictEqual(outcome.written, 3);
    assert.deepStrictEqual(events.states.map((change) => [change.state, change.code]), [['misconfigured', '28P01'], ['up', undefined]]);
  });

  it('fails at once on a permanent error', async function () {
    const db: Queryable = {
      query: async (text: string, values?: unknown[]) => (text.startsWith('INSERT') ? Promise.reject(Object.assign(new Error('internal error'), { code: 'XX000' })) : pool.query(text, values))
    };
    const writer = new TimescaleWriter(db, { table: 'never', sleep: noWait });
    await assert.rejects(writer.write(makeRecords(3)), (err: WriteFailedError) => err.kind === 'permanent' && err.code === 'XX000' && err.attempts === 1);
  });

  it('stops waiting for the next attempt when the signal aborts', async function () {
    const db: Queryable = { query: async () => Promise.reject(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })) };
    const writer = new TimescaleWriter(db, { table: 'aborted' });
    const controller = new AbortController();
    writer.once('retry', () => controller.abort());
    await assert.rejects(writer.write(makeRecords(3), { signal: controller.signal }), (err: WriteFailedError) => err.kind === 'aborted' && err.code === 'ABORTED');
  });

  async function streamThroughOutage(table: string, fault: (events: { retries: WriterRetryEvent[] }) => Promise<void>): Promise<void> {
    const writer = new TimescaleWriter(pool, { table, retry: { maxAttempts: 300, initialDelayMs: 20, maxDelayMs: 200 } });
    const events = collectEvents(writer);
    await writer.prepare();
    const batches = 30;
    const batchSize = 400;
    let faultDone: Promise<void> | undefined;
    let stored = 0;
    const writes: Array<Promise<void>> = [];
    // Two batches in flight at a time, like a sink with a pool of two.
    let next = 0;
    const lane = async (): Promise<void> => {
      while (next < batches) {
        const batch = next++;
        if (batch === 8) faultDone = fault(events);
        const outcome = await writer.write(makeRecords(batchSize, { source: `s${batch % 3}`, start: batch * batchSize }));
        assert.deepStrictEqual(outcome.rejected, []);
        stored += outcome.written + outcome.duplicates;
      }
    };
    writes.push(lane(), lane());
    await Promise.all(writes);
    await faultDone;
    assert.strictEqual(stored, batches * batchSize);
    const { rows } = await pool.query<{ total: string; distinct_keys: string; min_seq: string; max_seq: string }>(
      `SELECT count(*) AS total, count(DISTINCT (source, time, seq)) AS distinct_keys, min(seq) AS min_seq, max(seq) AS max_seq FROM ${table}`
    );
    assert.deepStrictEqual(rows[0], { total: String(batches * batchSize), distinct_keys: String(batches * batchSize), min_seq: '0', max_seq: String(batches * batchSize - 1) });
    assert.ok(events.retries.length > 0, 'the outage was seen');
    assert.strictEqual(events.states[events.states.length - 1].state, 'up');
    assert.ok(events.states.filter((change) => change.state === 'retrying').length <= events.states.filter((change) => change.state === 'up').length);
  }

  /** Resolves after the writer has failed `n` more times. */
  function retriesSeen(writerEvents: () => number, n: number): Promise<void> {
    const target = writerEvents() + n;
    return new Promise((resolve) => {
      const check = () => (writerEvents() >= target ? resolve() : setTimeout(check, 20));
      check();
    });
  }

  it('delivers every row exactly once when the server is stopped mid-stream and started again', async function () {
    if (server.external) this.skip();
    await streamThroughOutage('outage_stop', async (events) => {
      await server.stop();
      // Bring it back only after the writers have been retrying against a dead server for a while.
      await retriesSeen(() => events.retries.length, 5);
      await server.start();
      await waitForServer(server.url());
    });
  });

  it('delivers every row exactly once when the server is killed (SIGKILL) mid-stream', async function () {
    if (server.external) this.skip();
    await streamThroughOutage('outage_kill', async () => {
      server.kill('SIGKILL');
      await server.start();
      await waitForServer(server.url());
    });
  });

  it('retries through a hung server (SIGSTOP) whose late commit races the retry, storing each row once', async function () {
    if (server.external) this.skip();
    // Without query and connect timeouts a hung server hangs the writer too: they turn it into
    // retryable errors ("Query read timeout" is the ambiguous kind: the INSERT may still commit).
    const hungPool = new Pool({ connectionString: url, max: 2, query_timeout: 1000, connectionTimeoutMillis: 1000 });
    hungPool.on('error', () => undefined);
    try {
      const writer = new TimescaleWriter(hungPool, { table: 'hung', retry: { maxAttempts: 200, initialDelayMs: 20, maxDelayMs: 200 } });
      const events = collectEvents(writer);
      await writer.write(makeRecords(100));
      server.freeze();
      const writing = writer.write(makeRecords(2000, { start: 100 }));
      try {
        await retriesSeen(() => events.retries.length, 3);
      } finally {
        server.thaw();
      }
      const outcome = await writing;
      assert.deepStrictEqual(outcome.rejected, []);
      assert.strictEqual(outcome.written + outcome.duplicates, 2000);
      assert.ok(events.retries.some((retry) => retry.code === 'QUERY_TIMEOUT'), JSON.stringify(events.retries.map((retry) => retry.code)));
      const { rows } = await pool.query<{ total: string; distinct_keys: string }>('SELECT count(*) AS total, count(DISTINCT (source, time, seq)) AS distinct_keys FROM hung');
      assert.deepStrictEqual(rows[0], { total: '2100', distinct_keys: '2100' });
    } finally {
      await hungPool.end();
    }
  });
});
