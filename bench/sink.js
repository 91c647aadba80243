'use strict';
// How much the sink's writer costs over raw node-postgres, measured side by side in one run:
//   (a) raw node-postgres sending the unnest INSERT a user writes by hand (bench/raw-unnest.js:
//       text arrays, epoch ms), with the arrays built the obvious way from the same records;
//   (b) TimescaleWriter.write (mapping, validation, binary arrays, retry bookkeeping);
//   (c) COPY FROM STDIN (text) straight into the table, for reference: all or nothing like the
//       plain INSERT, and no faster than it (its ISO times cost the server more to read);
//   (d) COPY into a temporary staging table + INSERT ... SELECT ... ON CONFLICT DO NOTHING in one
//       transaction: what COPY would have to do to be idempotent like (a) and (b).
// Each side has its own identical table (narrow, with the unique (source, time, seq) index) on one
// connection; batches alternate between the sides, so checkpoints and noise hit all of them alike.
//
//   npm run bench:sink                   500,000 rows in batches of 5,000 on a throwaway server
//   BENCH_ROWS=100000 BENCH_BATCH=1000 npm run bench:sink
//   TELEMETRY_PG_BENCH_URL=postgres://... npm run bench:sink   against an existing server
const { Pool } = require('pg');
const { startEmbeddedPostgres } = require('../scripts/embedded-pg.js');
const { TimescaleWriter } = require('../nodes/lib/core/sink/timescale-writer.js');
const { rawUnnestSql } = require('./raw-unnest.js');

const ROWS = Number(process.env.BENCH_ROWS || 500000);
const BATCH = Number(process.env.BENCH_BATCH || 5000);
const SOURCES = 50;
const T0 = Date.UTC(2025, 0, 1);
const WARMUP_BATCHES = 4;

function makeRecords(count) {
  const records = new Array(count);
  for (let i = 0; i < count; i++) {
    records[i] = { topic: `sensor-${i % SOURCES}`, seq: i, timestamp: T0 + i * 10, payload: { value: Math.round(Math.sin(i) * 10000) / 100 } };
  }
  return records;
}

/** The parameters built the obvious way: one array per column, times in epoch ms. */
function rawParameters(batch) {
  const times = new Array(batch.length);
  const sources = new Array(batch.length);
  const kinds = new Array(batch.length);
  const values = new Array(batch.length);
  const seqs = new Array(batch.length);
  for (let i = 0; i < batch.length; i++) {
    const record = batch[i];
    times[i] = record.timestamp;
    sources[i] = record.topic;
    kinds[i] = null;
    values[i] = record.payload.value;
    seqs[i] = record.seq;
  }
  return [times, sources, kinds, values, seqs];
}

function copyEscape(text) {
  return text.replace(/[\\\t\n\r]/g, (c) => ({ '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' })[c]);
}

/** A minimal node-postgres "submittable" for COPY ... FROM STDIN (what pg-copy-streams does). */
function copyFrom(text, payload) {
  let settle;
  const done = new Promise((resolve, reject) => { settle = { resolve, reject }; });
  let error = null;
  let rowCount = 0;
  const submittable = {
    submit(connection) { connection.query(text); },
    handleCopyInResponse(connection) {
      connection.sendCopyFromChunk(payload);
      connection.endCopyFrom();
    },
    handleCommandComplete(msg) { rowCount = Number(String(msg.text).split(' ').pop()); },
    handleError(err) { error = err; },
    handleReadyForQuery() { if (error) settle.reject(error); else settle.resolve(rowCount); },
    handleEmptyQuery() {},
    handleRowDescription() {},
    handleDataRow() {}
  };
  return { submittable, done };
}

function copyPayload(batch) {
  const lines = new Array(batch.length);
  for (let i = 0; i < batch.length; i++) {
    const record = batch[i];
    lines[i] = `${new Date(record.timestamp).toISOString()}\t${copyEscape(record.topic)}\t\\N\t${record.payload.value}\t${record.seq}`;
  }
  return Buffer.from(`${lines.join('\n')}\n`);
}

async function main() {
  let server = null;
  let url = process.env.TELEMETRY_PG_BENCH_URL;
  if (!url) {
    server = await startEmbeddedPostgres();
    url = server.url();
  }
  const pool = new Pool({ connectionString: url, max: 1 });
  pool.on('error', () => undefined);
  try {
    const version = (await pool.query('SHOW server_version')).rows[0].server_version;
    const rawTable = new TimescaleWriter(pool, { table: 'bench_raw' });
    const writer = new TimescaleWriter(pool, { table: 'bench_writer' });
    const copyTable = new TimescaleWriter(pool, { table: 'bench_copy' });
    const stagedTable = new TimescaleWriter(pool, { table: 'bench_staged' });
    await Promise.all([rawTable.prepare(), writer.prepare(), copyTable.prepare(), stagedTable.prepare()]);
    await pool.query('TRUNCATE bench_raw, bench_writer, bench_copy, bench_staged');
    // One connection (max: 1), so the temporary table lives for the whole run.
    await pool.query('CREATE TEMP TABLE bench_stage (LIKE bench_staged INCLUDING DEFAULTS) ON COMMIT DELETE ROWS');
    const rawSql = rawUnnestSql('bench_raw');
    const copySql = 'COPY "public"."bench_copy" ("time", "source", "kind", "value", "seq") FROM STDIN';

    const records = makeRecords(ROWS);
    const batches = [];
    for (let i = 0; i < records.length; i += BATCH) batches.push(records.slice(i, i + BATCH));

    const sides = {
      raw: async (batch) => (await pool.query(rawSql, rawParameters(batch))).rowCount,
      writer: async (batch) => (await writer.write(batch, { receivedAt: T0 })).written,
      copy: async (batch) => {
        const client = await pool.connect();
        try {
          const { submittable, done } = copyFrom(copySql, copyPayload(batch));
          client.query(submittable);
          return await done;
        } finally {
          client.release();
        }
      },
      staged: async (batch) => {
        const client = await pool.connect();
        try {
          await client.query('BEGIN');
          const { submittable, done } = copyFrom('COPY bench_stage ("time", "source", "kind", "value", "seq") FROM STDIN', copyPayload(batch));
          client.query(submittable);
          await done;
          const result = await client.query('INSERT INTO "public"."bench_staged" SELECT * FROM bench_stage ON CONFLICT DO NOTHING');
          await client.query('COMMIT');
          return result.rowCount;
        } catch (err) {
          await client.query('ROLLBACK').catch(() => undefined);
          throw err;
        } finally {
          client.release();
        }
      }
    };
    const names = Object.keys(sides);

    // Warm up the JIT and the tables, then start from empty tables.
    for (let b = 0; b < Math.min(WARMUP_BATCHES, batches.length); b++) for (const name of names) await sides[name](batches[b]);
    await pool.query('TRUNCATE bench_raw, bench_writer, bench_copy, bench_staged');
    await pool.query('CHECKPOINT');

    const elapsedNs = { raw: 0n, writer: 0n, copy: 0n, staged: 0n };
    const stored = { raw: 0, writer: 0, copy: 0, staged: 0 };
    for (let b = 0; b < batches.length; b++) {
      // Rotate who goes first, so no side always follows the same neighbour.
      for (let k = 0; k < names.length; k++) {
        const name = names[(b + k) % names.length];
        const started = process.hrtime.bigint();
        stored[name] += await sides[name](batches[b]);
        elapsedNs[name] += process.hrtime.bigint() - started;
      }
    }
    for (const name of names) {
      if (stored[name] !== ROWS) throw new Error(`${name} stored ${stored[name]} rows, expected ${ROWS}`);
      const counted = Number((await pool.query(`SELECT count(*) AS n FROM bench_${name}`)).rows[0].n);
      if (counted !== ROWS) throw new Error(`bench_${name} holds ${counted} rows, expected ${ROWS}`);
    }
    const rate = (name) => ROWS / (Number(elapsedNs[name]) / 1e9);
    const line = (label, name) => `${label.padEnd(44)} ${Math.round(rate(name)).toLocaleString('en-US').padStart(9)} rows/s  (${(Number(elapsedNs[name]) / 1e9).toFixed(2)} s)`;
    console.log(`sink benchmark: ${ROWS.toLocaleString('en-US')} rows, batches of ${BATCH.toLocaleString('en-US')}, one connection, PostgreSQL ${version}, Node.js ${process.version}${server ? ' (embedded server, fsync=off)' : ''}`);
    console.log(line('(a) raw node-postgres, raw unnest SQL', 'raw'));
    console.log(line('(b) TimescaleWriter.write', 'writer'));
    console.log(line('(c) COPY FROM STDIN text (no ON CONFLICT)', 'copy'));
    console.log(line('(d) COPY to staging + INSERT ON CONFLICT', 'staged'));
    const ratio = rate('writer') / rate('raw');
    console.log(`ratio b/a: ${ratio.toFixed(2)} (target >= 0.70) ${ratio >= 0.7 ? 'OK' : 'BELOW TARGET'}`);
    console.log(`ratio c/a: ${(rate('copy') / rate('raw')).toFixed(2)}, d/a: ${(rate('staged') / rate('raw')).toFixed(2)}`);
    process.exitCode = ratio >= 0.7 ? 0 : 1;
  } finally {
    await pool.end();
    if (server) await server.destroy();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
