'use strict';
// Which indexes the auto table should have: the insert cost of each variant a TimescaleDB expert
// would consider, next to what it costs the queries users run, in one run.
//
//   npm run bench:index                        plain PostgreSQL (embedded) variants only
//   TELEMETRY_TIMESCALE_TEST_URL=... npm run bench:index    and the hypertable variants
//   BENCH_ROWS=2000000 BENCH_BATCH=1000        rows per variant, rows per statement
//
// Every variant gets the same rows (100 sources over two days, the simulator's shape) through the
// sink's own statement (the plain INSERT ... SELECT FROM unnest(...)), one connection each, batches
// interleaved so noise hits all alike. Insert cost = the backend's CPU per row (/proc/<pid>/stat of
// each connection's server process) and wall time; size per row after the load. Then each query,
// 15 times, median execution time from EXPLAIN (ANALYZE):
//   latest    the latest value of each of the 100 sources (one LIMIT 1 lookup per source)
//   hour      one source over an hour, in time order
//   minute    every source over one minute, averaged
const fs = require('fs');
const { Pool } = require('pg');
const { startEmbeddedPostgres } = require('../scripts/embedded-pg.js');
const { InsertStatement } = require('../nodes/lib/core/sink/insert-statement.js');
const { RowColumns } = require('../nodes/lib/core/sink/row-mapping.js');

const ROWS = Number(process.env.BENCH_ROWS || 2_000_000);
const BATCH = Number(process.env.BENCH_BATCH || 1000);
const SOURCES = 100;
const T0 = Date.UTC(2026, 0, 1);
const SPAN_MS = 2 * 86_400_000;
const RUNS = 15;
const TICK = 100; // USER_HZ: /proc times are in 1/100 s

const COLUMNS = 'time timestamptz NOT NULL, source text NOT NULL, kind text, value double precision, seq bigint NOT NULL DEFAULT 0, extra jsonb';
const WRITTEN = ['time', 'source', 'kind', 'value', 'seq'];
const NAMES = { time: 'time', source: 'source', kind: 'kind', value: 'value', seq: 'seq' };
const INSERT = (t) => new InsertStatement(t, NAMES, WRITTEN).plain;

const PLAIN = {
  'pg: unique (source, time, seq)': ['CREATE UNIQUE INDEX ON %t (source, time, seq)'],
  'pg: + (time DESC)': ['CREATE UNIQUE INDEX ON %t (source, time, seq)', 'CREATE INDEX ON %t (time DESC)'],
  'pg: unique (time, source, seq)': ['CREATE UNIQUE INDEX ON %t (time, source, seq)'],
};
const HYPER = {
  'ts: default (time DESC) + unique (source, time, seq)': { defaults: true, indexes: ['CREATE UNIQUE INDEX ON %t (source, time, seq)'] },
  'ts: unique (source, time, seq) only': { defaults: false, indexes: ['CREATE UNIQUE INDEX ON %t (source, time, seq)'] },
  'ts: unique (source, time DESC, seq) only': { defaults: false, indexes: ['CREATE UNIQUE INDEX ON %t (source, time DESC, seq)'] },
  'ts: unique (time, source, seq) only': { defaults: false, indexes: ['CREATE UNIQUE INDEX ON %t (time, source, seq)'] },
};

function batchParams(from) {
  const rows = new RowColumns();
  for (let i = from; i < from + BATCH; i++) {
    rows.add(T0 + Math.floor((i * SPAN_MS) / ROWS), `plant/line1/sensor-${i % SOURCES}`, null, Math.round(Math.sin(i) * 10000) / 100, Math.floor(i / SOURCES) + 1, null);
  }
  return new InsertStatement('unused', NAMES, WRITTEN).parameters(rows);
}

function cpuTicks(pid) {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return Number(fields[11]) + Number(fields[12]); // utime + stime
}

async function variantsOn(url, variants, hyper) {
  const out = [];
  for (const [name, spec] of Object.entries(variants)) {
    const pool = new Pool({ connectionString: url, max: 1 });
    const client = await pool.connect();
    const table = `bench_idx_${out.length}_${hyper ? 'ts' : 'pg'}`;
    await client.query(`DROP TABLE IF EXISTS ${table}`);
    await client.query(`CREATE TABLE ${table} (${COLUMNS})`);
    if (hyper) await client.query(`SELECT create_hypertable('${table}', by_range('time', INTERVAL '1 day'), create_default_indexes => ${spec.defaults})`);
    for (const sql of hyper ? spec.indexes : spec) await client.query(sql.replace('%t', table));
    const pid = (await client.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;
    out.push({ name, table, client, pool, pid, ms: 0, ticks: 0 });
  }
  return out;
}

async function load(variants) {
  for (let from = 0; from < ROWS; from += BATCH) {
    const params = batchParams(from);
    for (const v of variants) {
      const ticks = cpuTicks(v.pid);
      const started = process.hrtime.bigint();
      await v.client.query(INSERT(v.table), params);
      v.ms += Number(process.hrtime.bigint() - started) / 1e6;
      v.ticks += cpuTicks(v.pid) - ticks;
    }
  }
  for (const v of variants) {
    await v.client.query(`VACUUM ANALYZE ${v.table}`);
    const size = await v.client.query(`SELECT ${v.name.startsWith('ts') ? `(SELECT total_bytes FROM hypertable_detailed_size('${v.table}'))` : `pg_total_relation_size('${v.table}')`} AS bytes`);
    v.bytesPerRow = Number(size.rows[0].bytes) / ROWS;
  }
}

async function median(client, sql, params) {
  const times = [];
  let plan = '';
  for (let i = 0; i < RUNS; i++) {
    const r = await client.query(`EXPLAIN (ANALYZE, FORMAT JSON) ${sql}`, params);
    const p = r.rows[0]['QUERY PLAN'][0];
    times.push(p['Execution Time']);
    plan = p.Plan['Node Type'] + (p.Plan.Plans ? ` > ${p.Plan.Plans.map((x) => x['Index Name'] ?? x['Node Type']).join(', ')}` : '');
  }
  times.sort((a, b) => a - b);
  return { ms: times[Math.floor(RUNS / 2)], plan };
}

async function queries(v) {
  const sources = Array.from({ length: SOURCES }, (_, s) => `plant/line1/sensor-${s}`);
  const hourStart = new Date(T0 + SPAN_MS / 2).toISOString();
  const q = {
    latest: await median(v.client, `SELECT s.source, l.time, l.value FROM unnest($1::text[]) AS s(source), LATERAL (SELECT time, value FROM ${v.table} t WHERE t.source = s.source ORDER BY time DESC LIMIT 1) l`, [sources]),
    hour: await median(v.client, `SELECT time, value FROM ${v.table} WHERE source = $1 AND time >= $2::timestamptz AND time < $2::timestamptz + interval '1 hour' ORDER BY time`, [sources[7], hourStart]),
    minute: await median(v.client, `SELECT source, avg(value) FROM ${v.table} WHERE time >= $1::timestamptz AND time < $1::timestamptz + interval '1 minute' GROUP BY source`, [hourStart]),
  };
  return q;
}

function report(variants, results) {
  console.log(`\n${ROWS.toLocaleString('en-US')} rows per variant, ${BATCH} per statement, ${SOURCES} sources over 2 days\n`);
  console.log('| variant | server CPU us/row | wall us/row | bytes/row | latest per source ms | one source, 1 h ms | all sources, 1 min ms |');
  console.log('|---|---:|---:|---:|---:|---:|---:|');
  variants.forEach((v, i) => {
    const r = results[i];
    console.log(`| ${v.name} | ${((v.ticks * 1e6) / TICK / ROWS).toFixed(2)} | ${((v.ms * 1000) / ROWS).toFixed(2)} | ${v.bytesPerRow.toFixed(0)} | ${r.latest.ms.toFixed(2)} | ${r.hour.ms.toFixed(2)} | ${r.minute.ms.toFixed(2)} |`);
  });
  console.log('\nplans:');
  variants.forEach((v, i) => console.log(`  ${v.name}: latest ${results[i].latest.plan}; hour ${results[i].hour.plan}; minute ${results[i].minute.plan}`));
}

(async () => {
  const server = await startEmbeddedPostgres();
  const all = [];
  try {
    all.push(...(await variantsOn(server.url(), PLAIN, false)));
    const tsUrl = process.env.TELEMETRY_TIMESCALE_TEST_URL;
    if (tsUrl) all.push(...(await variantsOn(tsUrl, HYPER, true)));
    else console.log('TELEMETRY_TIMESCALE_TEST_URL is not set: the hypertable variants are left out');
    await load(all);
    const results = [];
    for (const v of all) results.push(await queries(v));
    report(all, results);
  } finally {
    for (const v of all) {
      await v.client.query(`DROP TABLE IF EXISTS ${v.table}`).catch(() => undefined);
      v.client.release();
      await v.pool.end();
    }
    await server.destroy();
  }
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
