import assert from 'assert';
import { Pool } from 'pg';
import { float8Array, int8Array, textArray, timestamptzArray } from '../src/core/sink/binary-arrays';
import { createTestDatabase } from './support/postgres';

/** What PostgreSQL reads from each binary array, shown as text by the server itself. */
describe('binary arrays, read back by a real PostgreSQL', function () {
  let pool: Pool;

  before(async function () {
    pool = new Pool({ connectionString: await createTestDatabase('binary_arrays_test'), max: 1 });
    // The session's zone must not change what a timestamptz is: show it in UTC to compare.
    await pool.query("SET TIME ZONE 'UTC'");
  });

  after(async function () {
    await pool?.end();
  });

  async function serverText(sql: string, value: Buffer): Promise<string> {
    const result = await pool.query(`SELECT ${sql} AS shown`, [value]);
    return result.rows[0].shown as string;
  }

  it('int8[]: the whole range of safe integers, negative ones too', async function () {
    const values = [0, 1, -1, 4294967295, 4294967296, -4294967297, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, 17];
    assert.strictEqual(await serverText('$1::int8[]::text', int8Array(values)), `{${values.join(',')}}`);
  });

  it('float8[]: exact doubles, signed zero and NULLs', async function () {
    const values = [21.5, 0.1, -0, 1e-300, 1.7976931348623157e308, -123456.789, null, 5e-324];
    const result = await pool.query('SELECT unnest($1::float8[]) AS v', [float8Array(values)]);
    assert.deepStrictEqual(result.rows.map((r) => r.v), values);
    assert.strictEqual(Object.is(result.rows[2].v, -0), true, 'minus zero stays minus zero');
  });

  it('timestamptz[]: each millisecond exactly, before 1970 and after 2038, whatever the session zone', async function () {
    const times = [Date.UTC(2000, 0, 1), Date.UTC(2000, 0, 1) - 1, Date.UTC(1969, 11, 31, 23, 59, 59, 999), 1_700_000_000_123, Date.UTC(2099, 11, 31, 23, 59, 59, 999), Date.UTC(2040, 1, 29, 12)];
    await pool.query("SET TIME ZONE 'America/St_Johns'");
    try {
      const result = await pool.query("SELECT (extract(epoch FROM t) * 1000)::int8::text AS ms, to_char(t AT TIME ZONE 'UTC', 'US') AS micros FROM unnest($1::timestamptz[]) AS t", [timestamptzArray(times)]);
      assert.deepStrictEqual(result.rows.map((r) => Number(r.ms)), times);
      assert.deepStrictEqual(result.rows.map((r) => r.micros), times.map((t) => String((((t % 1000) + 1000) % 1000) * 1000).padStart(6, '0')));
    } finally {
      await pool.query("SET TIME ZONE 'UTC'");
    }
    // A fraction of a millisecond (a payload's epoch ms may carry one) rounds to the microsecond.
    assert.strictEqual(await serverText('($1::timestamptz[])[1]::text', timestamptzArray([Date.UTC(2025, 0, 1) + 0.5])), '2025-01-01 00:00:00.0005+00');
  });

  it('text[]: any text, multi-byte characters and the characters an array literal would quote', async function () {
    const texts = ['plain', '', 'NULL', 'quote " and \\ backslash', '{brace},comma', 'ümlaut °C 温度 🏭', 'tab\tnewline\n'];
    const result = await pool.query('SELECT unnest($1::text[]) AS t', [textArray(texts)]);
    assert.deepStrictEqual(result.rows.map((r) => r.t), texts);
  });

  it('text[]: NULLs, and a text that repeats (encoded once) at every place it appears', async function () {
    const texts = ['line1/temp', null, 'ümlaut', 'line1/temp', null, '', 'ümlaut', 'line1/temp'];
    const result = await pool.query('SELECT t FROM unnest($1::text[]) WITH ORDINALITY AS u(t, n) ORDER BY n', [textArray(texts)]);
    assert.deepStrictEqual(result.rows.map((r) => r.t), texts);
  });

  it('empty arrays of every type', async function () {
    for (const [type, value] of [['int8', int8Array([])], ['float8', float8Array([])], ['timestamptz', timestamptzArray([])], ['text', textArray([])]] as const) {
      assert.strictEqual(await serverText(`cardinality($1::${type}[])::text`, value), '0', type);
    }
  });
});
