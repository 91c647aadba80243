'use strict';
// Why bench:sink gives far less than the anchors' figures: the same unnest INSERT of 5,000-row
// batches into five tables that differ only in their index, side by side on one connection, then
// EXPLAIN (ANALYZE, BUFFERS) of one batch into the indexed table. On this shared machine it showed
// the server, not the client, is the cost: with the unique (source, time, seq) index and ON
// CONFLICT one 5,000-row batch took 275-440 ms of server time (8 buffer hits and 3 WAL records per
// row, all in shared buffers, no I/O) against 34 ms without an index, while decoding the five
// array parameters (EXPLAIN ANALYZE SELECT count(*) FROM unnest(...) of the same arrays) took
// about 9 ms.   node bench/sink-index.js
const { Pool } = require('pg');
const { startEmbeddedPostgres } = require('../scripts/embedded-pg.js');
const T0 = Date.UTC(2025, 0, 1);
(async () => {
  const server = await startEmbeddedPostgres();
  const pool = new Pool({ connectionString: server.url(), max: 1 });
  const B = 5000;
  const params = (off) => { const times = [], srcs = [], vals = [], seqs = [];
    for (let k = 0; k < B; k++) { const i = off + k; times.push(new Date(T0 + i * 10).toISOString()); srcs.push(`sensor-${i % 50}`); vals.push(i / 7); seqs.push(i); }
    return [`{${times.join(',')}}`, `{${srcs.map((s) => `"${s}"`).join(',')}}`, `{${srcs.map(() => 'NULL').join(',')}}`, `{${vals.join(',')}}`, `{${seqs.join(',')}}`]; };
  const variants = {
    noindex: { idx: null, oc: '' },
    unique_noOC: { idx: 'CREATE UNIQUE INDEX ON %t (source, time, seq)', oc: '' },
    unique_OC: { idx: 'CREATE UNIQUE INDEX ON %t (source, time, seq)', oc: ' ON CONFLICT DO NOTHING' },
    nonunique: { idx: 'CREATE INDEX ON %t (source, time, seq)', oc: '' },
    unique_OC_timefirst: { idx: 'CREATE UNIQUE INDEX ON %t (time, source, seq)', oc: ' ON CONFLICT DO NOTHING' },
  };
  try {
    for (const [name, v] of Object.entries(variants)) {
      const t = `v_${name}`;
      await pool.query(`CREATE TABLE ${t} (time timestamptz NOT NULL, source text NOT NULL, kind text, value float8, seq bigint NOT NULL DEFAULT 0, extra jsonb)`);
      if (v.idx) await pool.query(v.idx.replace('%t', t));
    }
    const ms = {};
    for (let b = 0; b < 30; b++) {
      const p = params(b * B);
      for (const [name, v] of Object.entries(variants)) {
        const sql = `INSERT INTO v_${name} (time, source, kind, value, seq) SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::float8[], $5::int8[])${v.oc}`;
        const s = process.hrtime.bigint();
        await pool.query(sql, p);
        if (b >= 5) ms[name] = (ms[name] || 0) + Number(process.hrtime.bigint() - s) / 1e6;
      }
    }
    for (const [n, m] of Object.entries(ms)) console.log(n.padEnd(22), Math.round(25 * B / (m / 1000)), 'rows/s');
    const p = params(1e7);
    const r = await pool.query(`EXPLAIN (ANALYZE, BUFFERS) INSERT INTO v_unique_OC (time, source, kind, value, seq) SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::float8[], $5::int8[]) ON CONFLICT DO NOTHING`, p);
    console.log(r.rows.map((x) => x['QUERY PLAN']).join('\n'));
    console.log((await pool.query("select datcollate from pg_database where datname=current_database()")).rows);
  } finally { await pool.end(); await server.destroy(); }
})().catch((e) => { console.error(e); process.exit(1); });
