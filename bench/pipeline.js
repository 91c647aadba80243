'use strict';
// The whole pipeline against its ceilings and the alternative, in ONE run, on real Node-RED 4
// child processes (each scenario its own process, so memory figures are its own) and one real
// PostgreSQL (embedded, fsync off). The machine is shared and noisy: trust the ratios, which are
// measured minutes apart in the same run, more than any absolute figure.
//
//   a  routing ceiling: telemetry-simulator -> bench-pass -> bench-counter (2 deliveries per event,
//      as c had before the buffer sent record groups to the batcher; now c has 1 + 1 per 100 events)
//   a1 telemetry-simulator -> bench-counter: 1 delivery per event, what any pipeline pays at least
//   b  node-postgres ceiling: the same rows, same batch size, the unnest INSERT a user writes by
//      hand (bench/raw-unnest.js: text arrays, as node-postgres sends JavaScript arrays), same
//      number of concurrent statements as the sink, straight from this process
//   c  telemetry-simulator -> telemetry-buffer -> telemetry-batcher -> timescale-sink, 1 event/msg
//   c0 telemetry-simulator -> bench-direct: one node that completes each message at once and sends
//      its rows in columns as the sink's INSERT (no ring, acknowledgement, retry or options): the
//      least any pipeline into PostgreSQL does per event at one event per message, measured beside
//      c instead of added up
//   c1 a prototype, not a design (bench/nodes): c's three nodes and the bookkeeping of its guarantees
//      (numbering, holding until the commit, open batches), with each reading kept in columns from
//      the moment it is taken in instead of as a record object
//   d  c with 100 events per message
//   e  what an integrator builds today: simulator -> core batch (count) -> core join -> function
//      (one multi-row INSERT per batch) -> a node doing what node-red-contrib-postgresql does
//   f  10x overload for 60 s: producer at half of a, into a database slowed to a tenth of that;
//      heap and RSS each second, exact drop counts; f2: with --max-old-space-size; f3: in a memory cgroup
//      of 512 MiB (BENCH_GATEWAY_MB), as on a 512 MB gateway, with no flags (needs root; else skipped)
//   g  latency event time -> commit (a clock_timestamp() column default), p50/p99 at half of c's rate
//   h  1, 2 and 4 Node-RED processes, each its own pipeline, into one table: aggregate rate, duplicates
//   t  on a real TimescaleDB hypertable (the auto table): raw COPY (tc) and raw unnest with the key
//      (tu, item b's statement) from this process, and the pipeline at 100 events/msg (td, as d),
//      1,000,000 events each (BENCH_T_EVENTS), in rounds; runs when TELEMETRY_TIMESCALE_TEST_URL and TELEMETRY_TIMESCALE_DATA are set, which
//      `eval "$(../shared/timescaledb/start-server.sh)"` does (as root), else says it is skipped
//
//   npm run bench                     N=300,000 events per throughput item (about 4 minutes)
//   BENCH_EVENTS=100000 BENCH_OVERLOAD_S=20 npm run bench     quicker, for trying things out
//   BENCH_ONLY=a,c npm run bench      a subset (ratios need both sides)
//   BENCH_ROUNDS=1 npm run bench      one run of each throughput item instead of the median of 5
// Results: printed, and written to bench/results/pipeline.json.
// BENCH_PROFILE_DIR=/tmp/prof writes a --cpu-prof profile of every Node-RED child there.
// BENCH_NODE_ARGS="--trace-gc" passes extra node options to every Node-RED child.
// BENCH_OUTPUT_DIR=/tmp/out writes each Node-RED child's console output (with --trace-gc's lines) there.
// BENCH_OLD_GEN_DIR=/tmp/old writes, for a, a1, c, d, f and f2, a sampling heap profile of what reached V8's
// old generation (a, a1, c, d: the whole run; f, f2: from 10 s into the overload, BENCH_OLD_GEN_FROM_S=1: from
// 1 s, the ring's fill included) to its end (see /bench/old-gen in bench/nodes; summary: node bench/old-gen-summary.js FILE).
require('ts-node').register({ transpileOnly: true, project: require('path').join(__dirname, '..', 'test', 'tsconfig.json') });
const fs = require('fs');
const os = require('os');
const path = require('path');
const { execSync } = require('child_process');
const { Pool } = require('pg');
const { startEmbeddedPostgres } = require('../scripts/embedded-pg.js');
const { startNodeRed, makeUserDir } = require('../test/support/node-red-process.ts');
const { TelemetryGenerator } = require('../nodes/lib/core/simulator/simulator.js');
const { TimescaleWriter } = require('../nodes/lib/core/sink/timescale-writer.js');
const { from: copyFrom } = require('pg-copy-streams');
const { rawUnnestSql } = require('./raw-unnest.js');
const { pipeline } = require('stream/promises');
const { Readable } = require('stream');

// 300,000: at 100,000 the start-up and the last partial batch's maxAge were 10 % of item c's time.
const N = Number(process.env.BENCH_EVENTS || 300000);
// Item t's runs: at 300,000 events a run into the hypertable lasts about a second, and the fill and
// drain of the pipeline's window weighed 15-20 % of td's time (td/tu 0.81 there, 0.99-1.04 at 1,000,000).
const T_EVENTS = Number(process.env.BENCH_T_EVENTS || Math.max(N, 1000000));
const BATCH = Number(process.env.BENCH_BATCH || 1000);
const POOL = Number(process.env.BENCH_POOL || 4);
const MAX_AGE_MS = 200;
// The buffer's window must fit what the batcher holds, (open + waiting) batches of BATCH events:
// with the defaults (window 10,000; 4 + 4 batches of 1,000) a burst has the batcher refuse the
// excess, which the buffer counts as failed, so the bench keeps the window inside.
const WINDOW = Number(process.env.BENCH_WINDOW || 2 * POOL * BATCH);
const OVERLOAD_S = Number(process.env.BENCH_OVERLOAD_S || 60);
const ROUNDS = Number(process.env.BENCH_ROUNDS || 5);
const OVERLOAD_CAPACITY = Number(process.env.BENCH_OVERLOAD_CAPACITY || 100000);
// f3: f with Node-RED in a memory cgroup of this many MiB, the RAM of the gateway the issue names.
const GATEWAY_MB = Number(process.env.BENCH_GATEWAY_MB || 512);
const LATENCY_S = Number(process.env.BENCH_LATENCY_S || 15);
const ONLY = process.env.BENCH_ONLY ? new Set(process.env.BENCH_ONLY.split(',')) : null;
const want = (item) => !ONLY || ONLY.has(item);
const PROFILE = process.env.BENCH_PROFILE_DIR; // node --cpu-prof for every Node-RED child
const OUTPUT_DIR = process.env.BENCH_OUTPUT_DIR; // every Node-RED child's console output
const OLD_GEN_DIR = process.env.BENCH_OLD_GEN_DIR; // what reached the old generation in f and f2

const delay = (ms) => new Promise((r) => setTimeout(r, ms));
const fmt = (n) => (n === null || n === undefined ? '-' : Math.round(n).toLocaleString('en-US'));
const MiB = (bytes) => bytes / 1048576;

function log(line) {
  process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${line}\n`);
}

function rssOf(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** A Node-RED child with this package and the bench nodes installed. */
async function nodeRed(flows, extraNodeArgs = []) {
  const userDir = makeUserDir('telemetry-bench-');
  const modules = path.join(userDir, 'node_modules');
  fs.symlinkSync(path.join(__dirname, 'nodes'), path.join(modules, 'telemetry-bench-nodes'), 'dir');
  const env = {};
  const nodeArgs = [...extraNodeArgs, ...(process.env.BENCH_NODE_ARGS ?? '').split(/\s+/).filter(Boolean)];
  if (PROFILE) {
    fs.mkdirSync(PROFILE, { recursive: true });
    nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${PROFILE}`);
  }
  // Deployed through the admin API rather than flows.json, so the credentials go in as an editor's would.
  const red = await startNodeRed({ userDir, flows: [], env, nodeArgs });
  const res = await red.request('POST', '/flows', flows, { 'Node-RED-Deployment-Type': 'full' });
  if (res.status !== 204) throw new Error(`deploy failed (${res.status}): ${res.body}`);
  return {
    red,
    async get(p) {
      const res = await red.request('GET', p);
      if (res.status !== 200) throw new Error(`GET ${p}: ${res.status} ${res.body}`);
      return JSON.parse(res.body);
    },
    async inject(id) {
      const res = await red.request('POST', `/inject/${id}`);
      if (res.status !== 200) throw new Error(`inject ${id}: ${res.status} ${res.body}`);
    },
    async stats() {
      const body = await this.get('/telemetry/stats');
      const out = {};
      for (const n of body.nodes) out[n.id] = n.stats;
      return out;
    },
    async stop() {
      await red.stop('SIGINT');
      if (OUTPUT_DIR) {
        fs.mkdirSync(OUTPUT_DIR, { recursive: true });
        fs.writeFileSync(path.join(OUTPUT_DIR, `${path.basename(userDir)}.log`), red.output());
      }
      fs.rmSync(userDir, { recursive: true, force: true });
    },
  };
}

// ---- CPU accounting ----------------------------------------------------------------------------------
// Node-RED and PostgreSQL share this machine's cores, so a rate alone does not say which side
// limits it. Each throughput item also reports the CPU seconds each side used (from /proc, in
// USER_HZ ticks, which Linux fixes at 100 per second).
function cpuSecondsOf(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime
  } catch {
    return 0; // gone
  }
}

/** PostgreSQL's postmaster and its children (one backend per connection). */
function postgresPids(server) {
  const root = server.pid();
  const pids = [root];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === root) pids.push(Number(entry));
    } catch {
      /* exited meanwhile */
    }
  }
  return pids;
}

/** CPU seconds used so far by the client (a Node-RED child's pid, or this process for null) and by PostgreSQL. */
function cpuNow(server, clientPid) {
  const self = process.cpuUsage();
  const client = clientPid === null ? (self.user + self.system) / 1e6 : cpuSecondsOf(clientPid);
  const postgres = new Map();
  for (const pid of postgresPids(server)) postgres.set(pid, cpuSecondsOf(pid));
  return { client, postgres };
}

/**
 * Waits until PostgreSQL is idle before an item starts: the writes of the item before leave dirty
 * buffers for the checkpointer and tables for autovacuum, whose CPU would land in the next item's
 * time on a 2-core machine (item c's rounds once spread from 96,000 to 134,000 events/s).
 */
async function waitForIdlePostgres(server, pool) {
  await pool.query('CHECKPOINT');
  const until = Date.now() + 30000;
  while (Date.now() < until) {
    const before = cpuNow(server, null);
    await delay(250);
    const after = cpuNow(server, null);
    let used = 0;
    for (const [pid, seconds] of after.postgres) used += seconds - (before.postgres.get(pid) ?? 0);
    if (used <= 0.01) return;
  }
  log('PostgreSQL still busy after 30 s; the next item starts anyway');
}

function cpuSince(before, after, events, seconds) {
  const client = after.client - before.client;
  // Per process: the backends of the previous item exit while this one runs, and their total must
  // not be subtracted from this item's (item e once showed PostgreSQL at -3 ms per 1,000 events).
  let postgres = 0;
  for (const [pid, used] of after.postgres) postgres += used - (before.postgres.get(pid) ?? 0);
  return {
    clientSeconds: client,
    postgresSeconds: postgres,
    clientMsPer1k: (client * 1e6) / events,
    postgresMsPer1k: (postgres * 1e6) / events,
    // Cores busy on average while the item ran: 2.0 on this machine means CPU-bound.
    coresBusy: (client + postgres) / seconds,
  };
}

let lastSeen = null;
// Polling the admin API costs the child CPU (express, JSON): not too often.
const POLL_MS = 100;
async function waitFor(what, poll, timeoutMs, everyMs = POLL_MS) {
  const start = Date.now();
  for (;;) {
    const value = await poll();
    if (value) return value;
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last seen ${JSON.stringify(lastSeen)}`);
    await delay(everyMs);
  }
}

// ---- flows ---------------------------------------------------------------------------------------
const inject = (id, z, wire, control) => ({ id, type: 'inject', z, props: [{ p: 'control', v: control, vt: 'str' }], repeat: '', once: false, wires: [[wire]] });

function connection(id, db) {
  return {
    id, type: 'timescale-connection', host: db.host, port: String(db.port), database: db.database, tls: 'off', poolSize: String(POOL),
    connectTimeout: '5000', statementTimeout: '60000', credentials: { user: db.user, password: db.password },
  };
}

/** The source of every item: the same simulator (sources, mix, seed), waiting for an injected `start`. */
function simulatorNode(z, { rate = 10000000, count, perMessage = 1, prefix, to }) {
  return {
    id: 'sim', type: 'telemetry-simulator', z, sources: 50, rate, count, eventsPerMessage: perMessage, mixSample: 80, mixDetection: 10, mixCounter: 10,
    topicPrefix: prefix, seed: 7, autoStart: false, wires: [[to]],
  };
}

/** simulator -> buffer -> batcher -> sink, started by injecting `start` into the simulator. */
function pipelineFlow(db, o) {
  const z = 'benchtab';
  return [
    { id: z, type: 'tab', label: 'bench' },
    inject('injStart', z, 'sim', 'start'),
    inject('injStop', z, 'sim', 'stop'),
    simulatorNode(z, { rate: o.rate, count: o.count, perMessage: o.perMessage, prefix: o.prefix ?? 'c', to: 'buf' }),
    { id: 'buf', type: 'telemetry-buffer', z, capacity: o.capacity, dropPolicy: 'drop-oldest', window: o.window ?? WINDOW, ackTimeout: 120, stampSequence: true, statsInterval: 0, wires: [['bat'], []] },
    { id: 'bat', type: 'telemetry-batcher', z, maxSize: BATCH, maxAge: MAX_AGE_MS, maxOpenBatches: POOL, ackTimeout: 300, wires: [['sink'], []] },
    {
      id: 'sink', type: 'timescale-sink', z, connection: 'conn', schema: 'public', table: o.table, mode: 'auto', extra: false, maxAttempts: 10, initialDelay: 100,
      maxDelay: 1000, maxConcurrent: 0, statsInterval: 0, drainTimeout: 5, wires: [[], []],
    },
    connection('conn', db),
  ];
}

function routingFlow(count, direct = false) {
  const z = 'benchtab';
  // The same source as c (telemetry-simulator, same rate, count and messages), so a and c differ
  // only in what sits between the source and the end: a pass-through and a counter here.
  return [
    { id: z, type: 'tab', label: 'bench' },
    inject('injStart', z, 'sim', 'start'),
    simulatorNode(z, { count, prefix: 'a', to: direct ? 'counter0' : 'pass' }),
    ...(direct ? [] : [{ id: 'pass', type: 'bench-pass', z, wires: [['counter0']] }]),
    { id: 'counter0', type: 'bench-counter', z, wires: [] },
  ];
}

/** A tab where injecting `start` starts a simulator of N events (prefix: its topics'), wired to `to`, before `nodes`. */
function simulatorInto(prefix, to, nodes) {
  const z = 'benchtab';
  return [{ id: z, type: 'tab', label: 'bench' }, inject('injStart', z, 'sim', 'start'), simulatorNode(z, { count: N, prefix, to }), ...nodes.map((node) => ({ z, ...node }))];
}

/** The last node of c0 and c1, which writes the rows and counts them (bench/nodes). */
function writerNode(type, db, table, wires = []) {
  return { id: 'writer', type, host: db.host, port: db.port, database: db.database, user: db.user, password: db.password, poolSize: POOL, batch: BATCH, table, wires };
}

/** simulator -> bench-direct (item c0): the least a pipeline into PostgreSQL does per event at one event per message. */
const directFlow = (db, table) => simulatorInto('c0', 'writer', [writerNode('bench-direct', db, table)]);

/** simulator -> bench-columns-in -> bench-columns-batch -> bench-columns-sink (item c1, a prototype). */
const columnsFlow = (db, table) =>
  simulatorInto('c1', 'colin', [
    { id: 'colin', type: 'bench-columns-in', wires: [['colbat']] },
    { id: 'colbat', type: 'bench-columns-batch', batch: BATCH, open: POOL, wires: [['writer']] },
    writerNode('bench-columns-sink', db, table),
  ]);

// The function an integrator writes for node-red-contrib-postgresql: one multi-row INSERT per
// joined batch, with $n parameters in msg.params (5 per row: 5,000 for 1,000 rows).
const INTEGRATOR_FUNCTION = `
const params = [];
const rows = [];
for (const m of msg.payload) {
  const n = params.length;
  rows.push('($' + (n + 1) + ',$' + (n + 2) + ',$' + (n + 3) + ',$' + (n + 4) + ',$' + (n + 5) + ')');
  params.push(new Date(m.payload.time), m.topic, m.payload.kind, m.payload.value, m.payload.seq);
}
msg.benchRows = rows.length;
msg.query = 'INSERT INTO public.TABLE (time, source, kind, value, seq) VALUES ' + rows.join(',');
msg.params = params;
return msg;`;

function integratorFlow(db, table, count) {
  const z = 'benchtab';
  return [
    { id: z, type: 'tab', label: 'bench' },
    inject('injStart', z, 'sim', 'start'),
    simulatorNode(z, { count, prefix: 'e', to: 'batch0' }),
    { id: 'batch0', type: 'batch', z, mode: 'count', count: BATCH, overlap: 0, interval: 10, allowEmptySequence: false, topics: [], wires: [['join0']] },
    { id: 'join0', type: 'join', z, mode: 'custom', build: 'array', property: '', propertyType: 'full', key: 'topic', joiner: '\\n', joinerType: 'str', accumulate: false, timeout: '', count: String(BATCH), reduceRight: false, useparts: true, wires: [['fn']] },
    { id: 'fn', type: 'function', z, func: INTEGRATOR_FUNCTION.replace('TABLE', table), outputs: 1, timeout: 0, noerr: 0, initialize: '', finalize: '', libs: [], wires: [['pg']] },
    { id: 'pg', type: 'bench-postgresql', z, host: db.host, port: db.port, database: db.database, user: db.user, password: db.password, poolSize: POOL, wires: [['counter0']] },
    { id: 'counter0', type: 'bench-counter', z, wires: [] },
  ];
}

// ---- database --------------------------------------------------------------------------------------
/** The table the sink's auto mode creates (same DDL), optionally with a commit-time column. */
async function createTable(pool, table, committedAt = false) {
  await pool.query(`DROP TABLE IF EXISTS public.${table}`);
  await pool.query(`CREATE TABLE public.${table} ("time" timestamptz NOT NULL, "source" text NOT NULL, "kind" text, "value" double precision, "seq" bigint NOT NULL DEFAULT 0, "extra" jsonb
    ${committedAt ? ', committed_at timestamptz NOT NULL DEFAULT clock_timestamp()' : ''})`);
  await pool.query(`CREATE UNIQUE INDEX ${table}_time_source_seq_key ON public.${table} ("time", "source", "seq")`);
}

async function tableCheck(pool, table) {
  const r = await pool.query(`SELECT count(*)::int AS rows, (SELECT count(*)::int FROM (SELECT DISTINCT source, time, seq FROM public.${table}) k) AS keys,
    (SELECT count(*)::int FROM (SELECT DISTINCT source, seq FROM public.${table}) k) AS source_seq FROM public.${table}`);
  return r.rows[0];
}

/** Stops the child's profile of what reached the old generation and writes it as OLD_GEN_DIR/<name>.heapprofile. */
async function saveOldGen(nr, name) {
  const res = await nr.red.request('DELETE', '/bench/old-gen');
  fs.mkdirSync(OLD_GEN_DIR, { recursive: true });
  fs.writeFileSync(path.join(OLD_GEN_DIR, `${name}.heapprofile`), res.body);
}

// ---- items ---------------------------------------------------------------------------------------------
async function itemA(server, direct = false) {
  const nr = await nodeRed(routingFlow(N, direct));
  try {
    await delay(500);
    const t0 = Date.now();
    const cpu0 = cpuNow(server, nr.red.pid);
    if (OLD_GEN_DIR) await nr.red.request('POST', '/bench/old-gen');
    await nr.inject('injStart');
    const state = await waitFor('the counter', async () => {
      const s = await nr.get('/bench/state');
      return s.counters.counter0.count >= N ? s : null;
    }, 300000, POLL_MS);
    const seconds = (state.counters.counter0.lastAt - t0) / 1000;
    const cpu = cpuSince(cpu0, cpuNow(server, nr.red.pid), N, (Date.now() - t0) / 1000);
    if (OLD_GEN_DIR) await saveOldGen(nr, direct ? 'a1' : 'a');
    return { events: N, seconds, eventsPerSecond: N / seconds, deliveriesPerEvent: direct ? 1 : 2, cpu };
  } finally {
    await nr.stop();
  }
}

/**
 * c0 and c1: a flow whose last node counts the rows it committed (bench/nodes), measured as c is:
 * from the start after its connections are open, to the last commit, the table checked after.
 */
async function itemColumns(db, pool, server, table, flow) {
  await createTable(pool, table);
  const nr = await nodeRed(flow(db, table));
  try {
    await delay(500);
    const t0 = Date.now();
    const cpu0 = cpuNow(server, nr.red.pid);
    await nr.inject('injStart');
    await waitFor(`${table}'s rows`, async () => {
      const writer = (await nr.get('/bench/state')).counters.writer;
      if (writer.errors > 0) throw new Error(`${table}: ${writer.lastError}`);
      return writer.count >= N ? writer : null;
    }, 300000, 250);
    const cpu1 = cpuNow(server, nr.red.pid);
    const lastCommit = await pool.query(`SELECT extract(epoch FROM max(pg_xact_commit_timestamp(xmin))) * 1000 AS ms FROM public.${table}`);
    const seconds = (Number(lastCommit.rows[0].ms) - t0) / 1000;
    const check = await tableCheck(pool, table);
    if (check.rows !== N || check.keys !== N) throw new Error(`${table}: ${JSON.stringify(check)} for ${N} events`);
    return { events: N, seconds, eventsPerSecond: N / seconds, cpu: cpuSince(cpu0, cpu1, N, seconds) };
  } finally {
    await nr.stop();
  }
}

/** The statement parameters for messages[from, to), built the obvious way and handed to node-postgres, which encodes them itself. */
function unnestParams(messages, from, to) {
  const times = [], sources = [], kinds = [], values = [], seqs = [];
  for (let i = from; i < to; i++) {
    const m = messages[i];
    times.push(m.payload.time); sources.push(m.topic); kinds.push(m.payload.kind); values.push(m.payload.value); seqs.push(m.payload.seq);
  }
  return [times, sources, kinds, values, seqs];
}

/** The rows of c, generated the same way, written by node-postgres with the writer's statement. */
async function itemB(db, server) {
  const pool = new Pool({ host: db.host, port: db.port, database: db.database, user: db.user, password: db.password, max: POOL });
  try {
    await createTable(pool, 'bench_b');
    const generator = new TelemetryGenerator({ sources: 50, eventsPerMessage: 1, topicPrefix: 'b', seed: 7, mix: { sample: 80, detection: 10, counter: 10 } });
    const T = Date.now();
    const messages = generator.generate(N, T, []);
    const sql = rawUnnestSql('bench_b');
    const t0 = process.hrtime.bigint();
    const cpu0 = cpuNow(server, null);
    let next = 0;
    let written = 0;
    const worker = async () => {
      while (next < N) {
        const from = next;
        next = Math.min(N, next + BATCH);
        const result = await pool.query(sql, unnestParams(messages, from, next));
        written += result.rowCount; // not `written += await ...`: that reads written before the await
      }
    };
    await Promise.all(Array.from({ length: POOL }, worker));
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const cpu = cpuSince(cpu0, cpuNow(server, null), N, seconds);
    if (written !== N) throw new Error(`b wrote ${written} of ${N}`);
    return { events: N, seconds, eventsPerSecond: N / seconds, cpu };
  } finally {
    await pool.end();
  }
}

async function runPipeline(db, pool, server, { table, perMessage, prefix, auto = false, events = N }) {
  // auto: the sink creates its own table (on TimescaleDB a hypertable), and the end is when the
  // stats say so, polled often (that server does not track commit timestamps).
  if (!auto) await createTable(pool, table);
  const count = Math.ceil(events / perMessage);
  const nr = await nodeRed(pipelineFlow(db, { table, rate: 10000000, count, perMessage, capacity: events + 1000, prefix }));
  try {
    await waitFor('the sink to prepare', async () => (await nr.stats()).sink !== undefined, 30000, 100);
    const t0 = Date.now();
    if (OLD_GEN_DIR) await nr.red.request('POST', '/bench/old-gen');
    const cpu0 = cpuNow(server, nr.red.pid);
    await nr.inject('injStart');
    // Polled less often than the other items: each poll costs the child CPU. Without commit
    // timestamps (auto) the end is interpolated between the last two polls at the rate between them.
    let before = { at: t0, rows: 0 };
    let end = 0;
    const s = await waitFor('all rows written', async () => {
      const st = (lastSeen = await nr.stats());
      const now = { at: Date.now(), rows: st.sink.written + st.sink.duplicates + st.sink.rejected };
      if (now.rows < events) {
        before = now;
        return null;
      }
      end = before.at + ((events - before.rows) / Math.max(1, now.rows - before.rows)) * (now.at - before.at);
      return st;
    }, Number(process.env.BENCH_TIMEOUT_MS || 300000), 250);
    const cpu1 = cpuNow(server, nr.red.pid);
    if (OLD_GEN_DIR) await saveOldGen(nr, table);
    const lastCommit = auto ? null : await pool.query(`SELECT extract(epoch FROM max(pg_xact_commit_timestamp(xmin))) * 1000 AS ms FROM public.${table}`);
    const seconds = ((auto ? end : Number(lastCommit.rows[0].ms)) - t0) / 1000;
    const cpu = cpuSince(cpu0, cpu1, events, seconds);
    const check = await tableCheck(pool, table);
    if (check.rows !== events || check.keys !== events) throw new Error(`${table}: ${JSON.stringify(check)} for ${events} events`);
    return { events, seconds, eventsPerSecond: events / seconds, dropped: s.buf.dropped, rows: check.rows, cpu, batcher: s.bat, buffer: s.buf };
  } finally {
    await nr.stop();
  }
}

async function itemE(db, pool, server) {
  await createTable(pool, 'bench_e');
  const nr = await nodeRed(integratorFlow(db, 'bench_e', N));
  try {
    await delay(500);
    const t0 = Date.now();
    const cpu0 = cpuNow(server, nr.red.pid);
    await nr.inject('injStart');
    await waitFor('the integrator flow', async () => (lastSeen = (await nr.get('/bench/state')).counters).counter0.count >= N, Number(process.env.BENCH_TIMEOUT_MS || 300000)).catch((err) => {
      throw new Error(`${err.message}\n${nr.red.output().slice(-3000)}`);
    });
    const seconds = (Date.now() - t0) / 1000;
    const cpu = cpuSince(cpu0, cpuNow(server, nr.red.pid), N, seconds);
    const check = await tableCheck(pool, 'bench_e');
    if (check.rows !== N) throw new Error(`bench_e holds ${check.rows} rows of ${N}`);
    return { events: N, seconds, eventsPerSecond: N / seconds, rows: check.rows, cpu };
  } finally {
    await nr.stop();
  }
}

/**
 * What a ring of `capacity` messages needs: a Node-RED child whose buffer holds exactly that many
 * simulator messages, wired as in f (buffer -> batcher -> a node that never confirms, so the window's
 * share stays held too), heap after a full collection minus the same process idle. Wired to a
 * batcher, the buffer keeps each one-event message as its record (topic, payload, time, seq, kind);
 * wired to anything else it keeps the message and its upstream done() closure, about 2.5 times as much.
 */
async function ringNeedBytes(capacity) {
  const z = 'benchtab';
  const nr = await nodeRed([
    { id: z, type: 'tab', label: 'bench' },
    inject('injStart', z, 'sim', 'start'),
    simulatorNode(z, { rate: 1000000, count: capacity, prefix: 'f', to: 'buf' }),
    { id: 'buf', type: 'telemetry-buffer', z, capacity, dropPolicy: 'drop-oldest', window: WINDOW, ackTimeout: 600, stampSequence: true, statsInterval: 0, wires: [['bat'], []] },
    { id: 'bat', type: 'telemetry-batcher', z, maxSize: BATCH, maxAge: MAX_AGE_MS, maxOpenBatches: POOL, ackTimeout: 600, wires: [['held'], []] },
    { id: 'held', type: 'bench-counter', z, hold: true, wires: [] },
  ], ['--expose-gc']);
  try {
    await delay(2500); // the buffer releases nothing in the first 2 s after a deploy
    const idle = await nr.get('/bench/state?gc=1');
    await nr.inject('injStart');
    await waitFor('the ring to fill', async () => {
      const st = await nr.stats();
      return st.buf.received >= capacity && st.buf.depth + st.buf.inFlight === capacity;
    }, 60000, 200);
    const full = await nr.get('/bench/state?gc=1');
    if (!idle.collected || !full.collected) throw new Error('the bench child runs without --expose-gc');
    return full.memory.heapUsed - idle.memory.heapUsed;
  } finally {
    await nr.stop();
  }
}

/**
 * A memory cgroup of `mb` MiB for a Node-RED child, as on a gateway with that much RAM: Node.js
 * sizes V8's heap from the memory it is constrained to (process.constrainedMemory()), so this shows
 * what a 512 MB gateway does with no flags, whatever memory the bench's host has. Needs root and a
 * writable cgroup hierarchy (v1 or v2); otherwise `{ reason }`.
 */
function memoryCgroup(mb) {
  try {
    const lines = fs.readFileSync('/proc/self/cgroup', 'utf8').split('\n');
    const v2 = fs.existsSync('/sys/fs/cgroup/cgroup.controllers');
    const own = v2 ? lines.find((l) => l.startsWith('0::')) : lines.find((l) => /^\d+:[^:]*\bmemory\b[^:]*:/.test(l));
    if (!own) return { reason: 'no memory cgroup in /proc/self/cgroup' };
    const base = path.join(v2 ? '/sys/fs/cgroup' : '/sys/fs/cgroup/memory', own.slice(own.indexOf(':', own.indexOf(':') + 1) + 1));
    const dir = path.join(base, `telemetry-bench-${mb}mb`);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, v2 ? 'memory.max' : 'memory.limit_in_bytes'), String(mb * 1048576));
    const move = (to) => fs.writeFileSync(path.join(to, 'cgroup.procs'), String(process.pid));
    // A child starts in its parent's cgroup: this process steps in while it spawns one, then back.
    return { mb, enter: () => move(dir), leave: () => move(base), remove: () => fs.rmdirSync(dir) };
  } catch (err) {
    return { reason: err.message };
  }
}

/**
 * 10x overload. The database path is made slower on purpose (a statement-level trigger sleeps, one
 * connection) so that "ten times faster than the database can take" stays within what Node-RED can
 * route (a): otherwise the producer outruns Node-RED itself, and the messages pile up in Node-RED's
 * own send queue before they ever reach the buffer, which no node can bound.
 */
async function itemF(db, pool, routingRate, ringNeed, { seconds = OVERLOAD_S, nodeArgs = [], table = 'bench_f', cgroup = null } = {}) {
  await createTable(pool, table);
  const producerRate = Math.round(routingRate / 2);
  const dbRate = producerRate / 10;
  const sleepS = BATCH / dbRate;
  await pool.query(`CREATE OR REPLACE FUNCTION bench_f_slow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(${sleepS.toFixed(3)}); RETURN NULL; END $$`);
  await pool.query(`CREATE TRIGGER bench_f_slow AFTER INSERT ON public.${table} FOR EACH STATEMENT EXECUTE FUNCTION bench_f_slow()`);
  const rate = producerRate;
  const flow = pipelineFlow(db, { table, rate, count: 0, perMessage: 1, capacity: OVERLOAD_CAPACITY, prefix: 'f' });
  // One statement of BATCH rows at a time, so the sleep sets the database's rate exactly.
  Object.assign(flow.find((n) => n.id === 'sink'), { maxConcurrent: 1, maxRows: BATCH });
  cgroup?.enter();
  let nr;
  try {
    nr = await nodeRed(flow, [...nodeArgs, '--expose-gc']);
  } finally {
    cgroup?.leave();
  }
  try {
    await waitFor('the sink to prepare', async () => (await nr.stats()).sink !== undefined, 30000, 100);
    const base = await nr.get('/bench/state');
    const heapLimit = base.memory.heapLimit;
    const baseCollected = await nr.get('/bench/state?gc=1');
    const samples = [];
    const t0 = Date.now();
    const cpu0 = cpuSecondsOf(nr.red.pid);
    await nr.inject('injStart');
    for (let s = 1; s <= seconds; s++) {
      await delay(t0 + s * 1000 - Date.now());
      const [state, st] = await Promise.all([nr.get('/bench/state'), nr.stats()]);
      samples.push({ t: s, rss: rssOf(nr.red.pid), heapUsed: state.memory.heapUsed, heapTotal: state.memory.heapTotal, external: state.memory.external, arrayBuffers: state.memory.arrayBuffers, depth: st.buf.depth, dropped: st.buf.dropped, written: st.sink.written, produced: st.sim.sentEvents });
      if (OLD_GEN_DIR && s === Math.min(Number(process.env.BENCH_OLD_GEN_FROM_S || 10), seconds - 1)) await nr.red.request('POST', '/bench/old-gen');
    }
    if (OLD_GEN_DIR) await saveOldGen(nr, table);
    // Node-RED's CPU per event it took in while overloaded (routing, encoding, dropping, writing).
    const overloadUsPerEvent = ((cpuSecondsOf(nr.red.pid) - cpu0) * 1e6) / samples[samples.length - 1].produced;
    // Still overloaded: what the process really holds now, after a full collection.
    const endCollected = await nr.get('/bench/state?gc=1');
    await nr.inject('injStop');
    // The database at full speed again, so the drain of the full ring takes seconds, not a minute.
    await pool.query(`DROP TRIGGER bench_f_slow ON public.${table}`);
    const final = await waitFor('the drain', async () => {
      const st = await nr.stats();
      return st.buf.depth === 0 && st.buf.inFlight === 0 && st.sink.inFlight === 0 && st.sink.queued === 0 ? st : null;
    }, 120000, 200);
    const check = await tableCheck(pool, table);
    const produced = final.sim.sentEvents;
    // Every event the simulator produced reached the buffer, and the buffer's counters add up:
    // received = dropped + delivered (+ failed + unacknowledged + drained, all 0 here), and what it
    // delivered is what the sink wrote and what the table holds.
    const b = final.buf;
    const accounted = produced === b.received && b.received === b.depth + b.inFlight + b.delivered + b.failed + b.unacknowledged + b.dropped + b.drained
      && b.failed === 0 && b.unacknowledged === 0 && b.delivered === final.sink.written + final.sink.duplicates + final.sink.rejected ? produced : -1;
    const after10 = samples.filter((x) => x.t >= 10);
    const rss10 = samples.find((x) => x.t === 10) ?? samples[samples.length - 1];
    return {
      seconds, nodeArgs, gatewayMb: cgroup?.mb ?? null, heapLimit, targetRate: rate, overloadUsPerEvent, databaseRate: Math.round(dbRate), produced, bufferReceived: final.buf.received, buffer: final.buf, skippedByPacer: final.sim.skippedEvents, written: final.sink.written, dropped: final.buf.dropped,
      rowsInTable: check.rows, accountedFor: accounted === produced && check.rows === final.sink.written,
      capacity: OVERLOAD_CAPACITY, ringNeedBytes: ringNeed,
      rssBaseline: base.memory.rss, heapBaseline: base.memory.heapUsed,
      rssAt10s: rss10.rss, rssMax: Math.max(...samples.map((x) => x.rss)), rssEnd: samples[samples.length - 1].rss,
      rssGrowthAfter10s: Math.max(...after10.map((x) => x.rss)) - rss10.rss,
      heapMax: Math.max(...samples.map((x) => x.heapUsed)),
      // Heap held by the overloaded pipeline beyond the idle process, both after a full collection.
      heapRetained: endCollected.collected ? endCollected.memory.heapUsed - baseCollected.memory.heapUsed : null,
      samples,
    };
  } finally {
    await nr.stop();
  }
}

/** One overload run in a line, logged as soon as it ends (the table is printed only at the end of the whole run). */
function overloadSummary(f) {
  return `produced ${fmt(f.produced)} at ${fmt(f.targetRate)}/s (skipped by the pacer ${fmt(f.skippedByPacer)}), accounted ${f.accountedFor}; RSS ${MiB(f.rssBaseline).toFixed(0)} -> ${MiB(f.rssAt10s).toFixed(0)} (10 s) -> max ${MiB(f.rssMax).toFixed(0)} MiB, beyond the ring ${MiB(f.rssMax - f.rssBaseline - f.ringNeedBytes).toFixed(1)} MiB; heap max ${MiB(f.heapMax).toFixed(0)} MiB, held after a full GC +${MiB(f.heapRetained).toFixed(0)} MiB`;
}

async function itemG(db, pool, rate) {
  await createTable(pool, 'bench_g', true);
  const count = Math.round(rate * LATENCY_S);
  const nr = await nodeRed(pipelineFlow(db, { table: 'bench_g', rate, count, perMessage: 1, capacity: count + 1000, prefix: 'g' }));
  try {
    await waitFor('the sink to prepare', async () => (await nr.stats()).sink !== undefined, 30000, 100);
    await nr.inject('injStart');
    await waitFor('all rows written', async () => {
      const st = await nr.stats();
      return st.sink.written + st.sink.duplicates + st.sink.rejected >= count;
    }, LATENCY_S * 1000 + 120000, 200);
    // The first 3 s are warm-up (JIT, pool connections, the table's prepare): measured, 1.2-1.6 s p99
    // in seconds 0-1, and kept in perSecond; the percentiles are of the steady state after them.
    const r = await pool.query(`WITH l AS (SELECT extract(epoch FROM committed_at - time) * 1000 AS ms FROM public.bench_g WHERE time > (SELECT min(time) FROM public.bench_g) + interval '3 seconds')
      SELECT count(*)::int AS n, percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS p50, percentile_cont(0.99) WITHIN GROUP (ORDER BY ms) AS p99, max(ms) AS max FROM l`);
    const row = r.rows[0];
    const perSecond = await pool.query(`SELECT floor(extract(epoch FROM time - (SELECT min(time) FROM public.bench_g)))::int AS s, count(*)::int AS n,
      round(percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM committed_at - time) * 1000)) AS p50,
      round(percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM committed_at - time) * 1000)) AS p99 FROM public.bench_g GROUP BY 1 ORDER BY 1`);
    return { perSecond: perSecond.rows.map((x) => [x.s, x.n, Number(x.p50), Number(x.p99)]), rate, seconds: LATENCY_S, events: count, measured: row.n, p50ms: Number(row.p50), p99ms: Number(row.p99), maxMs: Number(row.max), maxAgeMs: MAX_AGE_MS };
  } finally {
    await nr.stop();
  }
}

async function itemH(db, pool, processes) {
  const table = `bench_h${processes}`;
  await createTable(pool, table);
  const per = Math.ceil(N / processes);
  const reds = await Promise.all(Array.from({ length: processes }, (_, i) => nodeRed(pipelineFlow(db, { table, rate: 10000000, count: per, perMessage: 1, capacity: per + 1000, prefix: `h${i}` }))));
  try {
    for (const nr of reds) await waitFor('the sink to prepare', async () => (await nr.stats()).sink !== undefined, 30000, 100);
    const t0 = Date.now();
    await Promise.all(reds.map((nr) => nr.inject('injStart')));
    await Promise.all(reds.map((nr) => waitFor('all rows written', async () => {
      const st = await nr.stats();
      return st.sink.written + st.sink.duplicates + st.sink.rejected >= per;
    }, 300000, 50)));
    const seconds = (Date.now() - t0) / 1000;
    const check = await tableCheck(pool, table);
    return { processes, events: per * processes, seconds, eventsPerSecond: (per * processes) / seconds, rows: check.rows, duplicates: check.rows - check.keys, complete: check.rows === per * processes };
  } finally {
    await Promise.all(reds.map((nr) => nr.stop()));
  }
}

// ---- main ------------------------------------------------------------------------------------------------
// ---- t: a real TimescaleDB -------------------------------------------------------------------------------
/** The TimescaleDB server start-server.sh started: connection settings and its postmaster's pid for the CPU columns. */
function timescaleServer() {
  const url = process.env.TELEMETRY_TIMESCALE_TEST_URL;
  const data = process.env.TELEMETRY_TIMESCALE_DATA;
  if (!url || !data) return null;
  const u = new URL(url);
  const db = { host: u.hostname, port: Number(u.port || 5432), database: u.pathname.slice(1) || 'postgres', user: decodeURIComponent(u.username), password: decodeURIComponent(u.password) };
  const pid = () => Number(fs.readFileSync(path.join(data, 'db', 'postmaster.pid'), 'utf8').split('\n')[0]);
  return { db, server: { pid } };
}

/** The auto table as the sink makes it (a hypertable with the (time, source, seq) key), made by the writer's own setup. */
async function autoTable(pool, table) {
  await pool.query(`DROP TABLE IF EXISTS public.${table}`);
  const result = await new TimescaleWriter(pool, { table }).prepare();
  if (!result.hypertable) throw new Error(`${table} is not a hypertable: ${JSON.stringify(result)}`);
}

/** Raw COPY and raw unnest into the hypertable from this process, and the pipeline at 100 events/msg into it. */
async function itemT(ts) {
  const { db, server } = ts;
  const pool = new Pool({ ...db, max: POOL });
  const out = {};
  try {
    out.version = (await pool.query("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")).rows[0]?.extversion;
    const generator = new TelemetryGenerator({ sources: 50, eventsPerMessage: 1, topicPrefix: 't', seed: 7, mix: { sample: 80, detection: 10, counter: 10 } });
    const messages = generator.generate(T_EVENTS, Date.now(), []);
    const timed = async (table, work) => {
      await autoTable(pool, table);
      const t0 = process.hrtime.bigint();
      const cpu0 = cpuNow(server, null);
      await work();
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      const cpu = cpuSince(cpu0, cpuNow(server, null), T_EVENTS, seconds);
      const check = await tableCheck(pool, table);
      if (check.rows !== T_EVENTS || check.keys !== T_EVENTS) throw new Error(`${table}: ${JSON.stringify(check)} for ${T_EVENTS} events`);
      return { events: T_EVENTS, seconds, eventsPerSecond: T_EVENTS / seconds, cpu };
    };
    // tc: COPY in BATCH-row statements on POOL connections, text format built here: the fastest
    // way in PostgreSQL offers, with no conflict handling (a retried batch would fail on the key).
    const escape = (text) => text.replace(/[\\\t\n\r]/g, (c) => ({ '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' })[c]);
    const copyRows = (from, to) => {
      let text = '';
      for (let i = from; i < to; i++) {
        const m = messages[i];
        text += `${new Date(m.payload.time).toISOString()}\t${escape(m.topic)}\t${m.payload.kind === undefined ? '\\N' : escape(String(m.payload.kind))}\t${m.payload.value ?? '\\N'}\t${m.payload.seq}\n`;
      }
      return text;
    };
    // In rounds, as the other throughput items, each ratio the median of its rounds' ratios.
    const runs = [];
    for (let r = 1; r <= ROUNDS; r++) {
      const round = {};
      await waitForIdlePostgres(server, pool);
      log(`t: round ${r} of ${ROUNDS}`);
      log('tc: raw COPY into the hypertable');
      round.tc = await timed('bench_tc', async () => {
        let next = 0;
        const worker = async () => {
          const client = await pool.connect();
          try {
            while (next < T_EVENTS) {
              const from = next;
              next = Math.min(T_EVENTS, next + BATCH);
              await pipeline(Readable.from([copyRows(from, next)]), client.query(copyFrom('COPY public.bench_tc (time, source, kind, value, seq) FROM STDIN')));
            }
          } finally {
            client.release();
          }
        };
        await Promise.all(Array.from({ length: POOL }, worker));
      });
      log(`tc: ${fmt(round.tc.eventsPerSecond)}/s`);
      // tu: item b's statement into the hypertable.
      const sql = rawUnnestSql('bench_tu');
      log('tu: raw unnest into the hypertable');
      round.tu = await timed('bench_tu', async () => {
        let next = 0;
        const worker = async () => {
          while (next < T_EVENTS) {
            const from = next;
            next = Math.min(T_EVENTS, next + BATCH);
            await pool.query(sql, unnestParams(messages, from, next));
          }
        };
        await Promise.all(Array.from({ length: POOL }, worker));
      });
      log(`tu: ${fmt(round.tu.eventsPerSecond)}/s`);
      // td: as d, the sink creating its own auto table on the TimescaleDB server.
      log('td: pipeline, 100 events/msg, into the hypertable');
      await pool.query('DROP TABLE IF EXISTS public.bench_td');
      round.td = await runPipeline(db, pool, server, { table: 'bench_td', perMessage: 100, prefix: 'td', auto: true, events: T_EVENTS });
      log(`td: ${fmt(round.td.eventsPerSecond)}/s`);
      runs.push(round);
    }
    for (const item of ['tc', 'tu', 'td']) {
      const sorted = runs.map((x) => x[item]).sort((x, y) => x.eventsPerSecond - y.eventsPerSecond);
      out[item] = { ...sorted[Math.floor((sorted.length - 1) / 2)], rounds: runs.map((x) => Math.round(x[item].eventsPerSecond)) };
    }
    const each = runs.map((x) => x.td.eventsPerSecond / x.tu.eventsPerSecond);
    out.tdu = { median: [...each].sort((p, q) => p - q)[Math.floor((each.length - 1) / 2)], rounds: each };
    out.hypertable = (await pool.query("SELECT count(*)::int AS n FROM timescaledb_information.hypertables WHERE hypertable_name = 'bench_td'")).rows[0].n === 1;
    return out;
  } finally {
    await pool.end();
  }
}

function machine() {
  const sh = (cmd) => {
    try {
      return execSync(cmd, { encoding: 'utf8' }).trim();
    } catch {
      return null;
    }
  };
  return { nproc: os.cpus().length, cpu: os.cpus()[0]?.model, memTotalGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version, nodeRed: require('node-red/package.json').version, loadavg: os.loadavg().map((x) => x.toFixed(2)).join(' '), free: sh('free -h') };
}

function table(results) {
  const r = results.items;
  const lines = [];
  const cpuCells = (x) => (x && x.cpu ? ` | ${x.cpu.clientMsPer1k.toFixed(0)} | ${x.cpu.postgresMsPer1k.toFixed(0)} | ${x.cpu.coresBusy.toFixed(2)}` : ' | | |');
  const rounds = (x) => (x && x.rounds && x.rounds.length > 1 ? `median of ${x.rounds.map(fmt).join(' / ')}; ` : '');
  const row = (item, what, rate, note = '', x = null) => lines.push(`| ${item} | ${what} | ${rate}${cpuCells(x)} | ${rounds(x)}${note} |`);
  lines.push('| item | what | events/s | client CPU ms / 1k events | PostgreSQL CPU ms / 1k events | cores busy | notes |', '|---|---|---:|---:|---:|---:|---|');
  if (r.a) row('a', 'Node-RED routing ceiling (source -> pass -> counter)', fmt(r.a.eventsPerSecond), `${fmt(r.a.events)} events, ${r.a.seconds.toFixed(2)} s`, r.a);
  if (r.a1) row('a1', 'one delivery per event (source -> counter), the floor of any pipeline', fmt(r.a1.eventsPerSecond), `${r.a1.seconds.toFixed(2)} s`, r.a1);
  if (r.b) row('b', `node-postgres ceiling (raw unnest INSERT, ${BATCH}/stmt, ${POOL} conns)`, fmt(r.b.eventsPerSecond), `${r.b.seconds.toFixed(2)} s`, r.b);
  if (r.c) row('c', 'pipeline, 1 event/msg', fmt(r.c.eventsPerSecond), `${r.c.seconds.toFixed(2)} s, ${r.c.rows} rows, ${r.c.dropped} dropped, ${fmt(r.c.batcher.receivedMessages)} messages into the batcher`, r.c);
  if (r.c0) row('c0', 'one node: columns and the sink INSERT, no guarantees (the least a pipeline does at 1 event/msg)', fmt(r.c0.eventsPerSecond), `${r.c0.seconds.toFixed(2)} s`, r.c0);
  if (r.c1) row('c1', 'prototype: c with readings in columns from the buffer on', fmt(r.c1.eventsPerSecond), `${r.c1.seconds.toFixed(2)} s`, r.c1);
  if (r.d) row('d', 'pipeline, 100 events/msg', fmt(r.d.eventsPerSecond), `${r.d.seconds.toFixed(2)} s, ${r.d.rows} rows`, r.d);
  if (r.e) row('e', 'core batch -> join -> function -> postgresql (1 query/msg)', fmt(r.e.eventsPerSecond), `${r.e.seconds.toFixed(2)} s, ${r.e.rows} rows`, r.e);
  if (r.f) row('f', `10x overload: ${fmt(r.f.targetRate)}/s into a database taking ${fmt(r.f.databaseRate)}/s, ${r.f.seconds} s`, fmt(r.f.samples[r.f.samples.length - 1].written / r.f.seconds), `produced ${fmt(r.f.produced)} (Node-RED ${r.f.overloadUsPerEvent.toFixed(1)} us of CPU per event), written ${fmt(r.f.written)} (with the drain), dropped ${fmt(r.f.dropped)}, accounted ${r.f.accountedFor}; RSS ${MiB(r.f.rssBaseline).toFixed(0)} -> ${MiB(r.f.rssAt10s).toFixed(0)} (10 s) -> max ${MiB(r.f.rssMax).toFixed(0)} MiB, +${MiB(r.f.rssGrowthAfter10s).toFixed(1)} MiB after 10 s; heap max ${MiB(r.f.heapMax).toFixed(0)} MiB, held after a full GC +${MiB(r.f.heapRetained).toFixed(0)} MiB; ring needs ~${MiB(r.f.ringNeedBytes).toFixed(0)} MiB`);
  if (r.f2) row('f2', `f with node --max-old-space-size=${r.f2.nodeArgs[0].split('=')[1]}, ${r.f2.seconds} s`, fmt(r.f2.samples[r.f2.samples.length - 1].written / r.f2.seconds), `dropped ${fmt(r.f2.dropped)}, accounted ${r.f2.accountedFor}; RSS ${MiB(r.f2.rssBaseline).toFixed(0)} -> ${MiB(r.f2.rssAt10s).toFixed(0)} (10 s) -> max ${MiB(r.f2.rssMax).toFixed(0)} MiB, +${MiB(r.f2.rssGrowthAfter10s).toFixed(1)} MiB after 10 s; heap max ${MiB(r.f2.heapMax).toFixed(0)} MiB, held after a full GC +${MiB(r.f2.heapRetained).toFixed(0)} MiB`);
  if (r.f3) row('f3', `f with Node-RED in a ${r.f3.gatewayMb} MiB memory cgroup (a gateway's RAM; V8 heap limit ${MiB(r.f3.heapLimit).toFixed(0)} MiB, here ${MiB(r.f.heapLimit).toFixed(0)}), no flags, ${r.f3.seconds} s`, fmt(r.f3.samples[r.f3.samples.length - 1].written / r.f3.seconds), `produced ${fmt(r.f3.produced)}, dropped ${fmt(r.f3.dropped)}, accounted ${r.f3.accountedFor}; RSS ${MiB(r.f3.rssBaseline).toFixed(0)} -> ${MiB(r.f3.rssAt10s).toFixed(0)} (10 s) -> max ${MiB(r.f3.rssMax).toFixed(0)} MiB, +${MiB(r.f3.rssGrowthAfter10s).toFixed(1)} MiB after 10 s; heap max ${MiB(r.f3.heapMax).toFixed(0)} MiB, held after a full GC +${MiB(r.f3.heapRetained).toFixed(0)} MiB`);
  if (r.g) row('g', `latency at ${fmt(r.g.rate)}/s (half of c)`, fmt(r.g.rate), `p50 ${r.g.p50ms.toFixed(0)} ms, p99 ${r.g.p99ms.toFixed(0)} ms, max ${r.g.maxMs.toFixed(0)} ms (maxAge ${MAX_AGE_MS} ms)`);
  if (r.t) {
    row('tc', `TimescaleDB ${r.t.version} hypertable: raw COPY, ${BATCH} rows/stmt, ${POOL} conns, no key handling`, fmt(r.t.tc.eventsPerSecond), `${r.t.tc.seconds.toFixed(2)} s`, r.t.tc);
    row('tu', 'TimescaleDB hypertable: raw unnest INSERT with the key (b\'s statement)', fmt(r.t.tu.eventsPerSecond), `${r.t.tu.seconds.toFixed(2)} s`, r.t.tu);
    row('td', 'TimescaleDB hypertable: pipeline, 100 events/msg (d)', fmt(r.t.td.eventsPerSecond), `${r.t.td.seconds.toFixed(2)} s, ${r.t.td.rows} rows, hypertable ${r.t.hypertable}`, r.t.td);
  }
  for (const h of r.h ?? []) row(`h${h.processes}`, `${h.processes} Node-RED process(es), one table`, fmt(h.eventsPerSecond), `${fmt(h.rows)} rows, ${h.duplicates} duplicates, complete ${h.complete}`);
  const t = results.targets;
  const ratio = (name, v, min, each) => (v === null ? `${name}: -` : `${name}: ${v.toFixed(2)}${each && each.rounds.length > 1 ? ` (median of the rounds' ${each.rounds.map((x) => x.toFixed(2)).join(' / ')})` : ''} (target >= ${min}) ${v >= min ? 'OK' : 'MISSED'}`);
  const each = results.ratios ?? {};
  lines.push('', ratio('c/a', t.ca, 0.6, each.ca), ratio('d/b', t.db, 0.95, each.db), ratio('c/e', t.ce, 3, each.ce), ratio('td/tu', t.tdu, 0.9, r.t?.tdu), ...(r.t ? [`td/tc: ${t.tdc.toFixed(2)} (raw COPY, for reference)`] : []));
  if (t.ceiling) {
    const c = t.ceiling;
    lines.push(`floor: one Node-RED delivery ${c.deliveryUsPerEvent.toFixed(1)} (a1) + rows to parameters and sent ${c.sendUsPerEvent.toFixed(1)} (b's client) + PostgreSQL ${c.postgresUsPerEvent.toFixed(1)} (c) = ${c.usPerEvent.toFixed(1)} us of CPU per event at least; on ${c.cores} cores, all busy, no pipeline passes ${fmt(c.eventsPerSecond)}/s: c/e <= ${c.ceBound.toFixed(2)}${c.caBound ? `, c/a <= ${c.caBound.toFixed(2)}` : ''}`);
  }
  const round = (x) => `${x.median.toFixed(2)} (rounds ${x.rounds.map((v) => v.toFixed(2)).join(' / ')})`;
  if (each.cc0 && each.c0e) {
    // c0 measures, in the same rounds, what the floor above adds up from parts measured apart.
    lines.push(`c0, the least a pipeline does at one event per message: c0/e ${round(each.c0e)}, so c/e >= 3 needs c at ${(3 / each.c0e.median).toFixed(2)} of c0; c/c0 ${round(each.cc0)}; Node-RED ${r.c0.cpu.clientMsPer1k.toFixed(1)} us of CPU per event in c0, ${r.c.cpu.clientMsPer1k.toFixed(1)} in c`);
  }
  if (each.c1e && each.c1c0 && each.c1c) lines.push(`c1, the prototype in columns: c1/e ${round(each.c1e)}, c1/c0 ${round(each.c1c0)}, c1/c ${round(each.c1c)}; Node-RED ${r.c1.cpu.clientMsPer1k.toFixed(1)} us of CPU per event`);
  if (r.a && r.c) {
    const cUs = r.c.cpu.clientMsPer1k + r.c.cpu.postgresMsPer1k;
    const cMax = (results.machine.nproc * 1e6) / cUs;
    lines.push(`c's CPU: Node-RED ${r.c.cpu.clientMsPer1k.toFixed(1)} us per event (a: ${r.a.cpu.clientMsPer1k.toFixed(1)}) + PostgreSQL ${r.c.cpu.postgresMsPer1k.toFixed(1)}, on the same ${results.machine.nproc} cores: even with all of them busy (c kept ${r.c.cpu.coresBusy.toFixed(2)} busy) c could reach ${fmt(cMax)}/s, c/a ${(cMax / r.a.eventsPerSecond).toFixed(2)}`);
  }
  if (r.f2) lines.push(`f2: RSS beyond ring need ${MiB(r.f2.rssMax - r.f2.rssBaseline - r.f2.ringNeedBytes).toFixed(1)} MiB, growth after 10 s ${MiB(r.f2.rssGrowthAfter10s).toFixed(1)} MiB`);
  if (r.f) lines.push(`f: RSS beyond ring need ${MiB(t.rssBeyondRing).toFixed(1)} MiB on this host, V8 heap limit ${MiB(r.f.heapLimit).toFixed(0)} MiB (target <= 64) ${t.rssBeyondRing <= 64 * 1048576 ? 'OK' : 'MISSED'}; growth after 10 s ${MiB(r.f.rssGrowthAfter10s).toFixed(1)} MiB`);
  if (r.f3) lines.push(`f3: RSS beyond ring need ${MiB(t.gatewayRssBeyondRing).toFixed(1)} MiB on a ${r.f3.gatewayMb} MiB gateway, V8 heap limit ${MiB(r.f3.heapLimit).toFixed(0)} MiB, no flags (target <= 64) ${t.gatewayRssBeyondRing <= 64 * 1048576 ? 'OK' : 'MISSED'}; growth after 10 s ${MiB(r.f3.rssGrowthAfter10s).toFixed(1)} MiB`);
  if (r.g) lines.push(`g: p99 ${r.g.p99ms.toFixed(0)} ms (target <= ${MAX_AGE_MS + 100}) ${r.g.p99ms <= MAX_AGE_MS + 100 ? 'OK' : 'MISSED'}`);
  return lines.join('\n');
}

async function main() {
  const started = Date.now();
  const results = { started: new Date().toISOString(), config: { events: N, batch: BATCH, pool: POOL, maxAgeMs: MAX_AGE_MS, overloadSeconds: OVERLOAD_S, overloadCapacity: OVERLOAD_CAPACITY }, machine: machine(), items: {} };
  log(`starting PostgreSQL; ${fmt(N)} events per item, batches of ${BATCH}, ${POOL} connections`);
  // Commit timestamps give items c and d their exact end (the last commit) instead of the moment a poll saw it.
  const server = await startEmbeddedPostgres({ settings: { track_commit_timestamp: 'on' } });
  const db = { host: server.host, port: server.port, database: 'postgres', user: server.user, password: server.password };
  const pool = new Pool({ ...db, max: 2 });
  // An idle connection the server ends when it stops must not end the run before its results are written.
  pool.on('error', (err) => log(`bench pool: ${err.message}`));
  results.machine.postgres = (await pool.query('SHOW server_version')).rows[0].server_version;
  const items = results.items;
  try {
    // The throughput items run in rounds (a, a1, b, c, d, e, then again): the host's speed drifts by
    // tens of percent over minutes, so each ratio compares medians of runs made minutes apart at most.
    const throughput = [
      ['a', 'routing ceiling', () => itemA(server)],
      ['a1', 'source -> counter', () => itemA(server, true)],
      ['b', 'node-postgres ceiling', () => itemB(db, server)],
      ['c', 'pipeline, 1 event/msg', () => runPipeline(db, pool, server, { table: 'bench_c', perMessage: 1, prefix: 'c' })],
      ['c0', 'one node: columns and the sink INSERT, nothing else', () => itemColumns(db, pool, server, 'bench_c0', directFlow)],
      ['c1', 'prototype: c in columns', () => itemColumns(db, pool, server, 'bench_c1', columnsFlow)],
      ['d', 'pipeline, 100 events/msg', () => runPipeline(db, pool, server, { table: 'bench_d', perMessage: 100, prefix: 'd' })],
      ['e', 'integrator flow', () => itemE(db, pool, server)],
    ].filter(([item]) => want(item));
    const runs = {};
    for (let round = 1; round <= ROUNDS; round++) {
      for (const [item, what, run] of throughput) {
        log(`${item}: ${what} (round ${round} of ${ROUNDS})`);
        await waitForIdlePostgres(server, pool);
        const result = await run();
        (runs[item] ??= []).push(result);
        log(`${item}: ${fmt(result.eventsPerSecond)}/s`);
      }
    }
    for (const [item, list] of Object.entries(runs)) {
      const sorted = [...list].sort((x, y) => x.eventsPerSecond - y.eventsPerSecond);
      items[item] = { ...sorted[Math.floor((sorted.length - 1) / 2)], rounds: list.map((x) => Math.round(x.eventsPerSecond)) };
    }
    // Each ratio is the median of its rounds' ratios: the two items of a round run seconds apart,
    // while the host's speed drifts by tens of percent over minutes, so a ratio of medians taken
    // from different rounds says less.
    const paired = (x, y) => {
      if (!runs[x] || !runs[y]) return null;
      const each = runs[x].map((rx, i) => rx.eventsPerSecond / runs[y][i].eventsPerSecond);
      return { median: [...each].sort((p, q) => p - q)[Math.floor((each.length - 1) / 2)], rounds: each };
    };
    results.ratios = { ca: paired('c', 'a'), db: paired('d', 'b'), ce: paired('c', 'e'), cc0: paired('c', 'c0'), c0e: paired('c0', 'e'), c1e: paired('c1', 'e'), c1c0: paired('c1', 'c0'), c1c: paired('c1', 'c') };
    const cRate = items.c ? items.c.eventsPerSecond : Number(process.env.BENCH_C_RATE || 20000);
    if (want('f')) { const aRate = items.a ? items.a.eventsPerSecond : Number(process.env.BENCH_A_RATE || 30000); log(`f: 10x overload at ${fmt(aRate / 2)}/s for ${OVERLOAD_S} s`); const ringNeed = await ringNeedBytes(OVERLOAD_CAPACITY); log(`f: a ring of ${fmt(OVERLOAD_CAPACITY)} messages needs ${MiB(ringNeed).toFixed(1)} MiB`); items.f = await itemF(db, pool, aRate, ringNeed); log(`f: dropped ${fmt(items.f.dropped)}; ${overloadSummary(items.f)}`);
      // The same with V8's old space capped: shows how much of f's RSS is garbage V8 lets pile up
      // before a full collection (the dropped messages die old), rather than memory the pipeline holds.
      const cap = Number(process.env.BENCH_HEAP_CAP_MB || 192);
      log(`f2: the same for ${Math.round(OVERLOAD_S / 2)} s with --max-old-space-size=${cap}`);
      items.f2 = await itemF(db, pool, aRate, ringNeed, { seconds: Math.round(OVERLOAD_S / 2), nodeArgs: [`--max-old-space-size=${cap}`], table: 'bench_f2' });
      log(`f2: dropped ${fmt(items.f2.dropped)}; ${overloadSummary(items.f2)}`);
      const cgroup = memoryCgroup(GATEWAY_MB);
      if (cgroup.reason) log(`f3: skipped: no memory cgroup of ${GATEWAY_MB} MiB for Node-RED (${cgroup.reason}); it needs root`);
      else {
        log(`f3: f again, Node-RED in a memory cgroup of ${GATEWAY_MB} MiB (a gateway's RAM), no flags`);
        try {
          items.f3 = await itemF(db, pool, aRate, ringNeed, { table: 'bench_f3', cgroup });
        } finally {
          cgroup.remove();
        }
        log(`f3: dropped ${fmt(items.f3.dropped)}; ${overloadSummary(items.f3)}`);
      }
    }
    if (want('g')) { log(`g: latency at ${fmt(cRate / 2)}/s`); items.g = await itemG(db, pool, Math.round(cRate / 2)); log(`g: p99 ${items.g.p99ms.toFixed(0)} ms`); }
    if (want('t')) {
      const ts = timescaleServer();
      if (ts) items.t = await itemT(ts);
      else log('t: skipped: TELEMETRY_TIMESCALE_TEST_URL and TELEMETRY_TIMESCALE_DATA are not set (as root: eval "$(../shared/timescaledb/start-server.sh)")');
    }
    if (want('h')) {
      items.h = [];
      for (const k of [1, 2, 4]) { log(`h: ${k} process(es)`); items.h.push(await itemH(db, pool, k)); }
    }
  } finally {
    await pool.end();
    await server.destroy();
  }
  const r = items;
  results.targets = {
    ca: results.ratios?.ca?.median ?? null,
    db: results.ratios?.db?.median ?? null,
    ce: results.ratios?.ce?.median ?? null,
    tdu: r.t ? r.t.tdu.median : null,
    tdc: r.t ? r.t.td.eventsPerSecond / r.t.tc.eventsPerSecond : null,
    rssBeyondRing: r.f ? r.f.rssMax - r.f.rssBaseline - r.f.ringNeedBytes : null,
    gatewayRssBeyondRing: r.f3 ? r.f3.rssMax - r.f3.rssBaseline - r.f3.ringNeedBytes : null,
    ceiling: null,
  };
  if (r.a1 && r.b && r.c && r.e) {
    // Whatever a pipeline does, each event costs at least, on the same cores: one Node-RED delivery
    // from the source and its done() (a1), turning the row into statement parameters and sending
    // them (b's client, node-postgres with no Node-RED at all) and PostgreSQL's work for the row (c).
    const usPerEvent = r.c.cpu.postgresMsPer1k + r.a1.cpu.clientMsPer1k + r.b.cpu.clientMsPer1k;
    const eventsPerSecond = (results.machine.nproc * 1e6) / usPerEvent;
    results.targets.ceiling = { cores: results.machine.nproc, postgresUsPerEvent: r.c.cpu.postgresMsPer1k, deliveryUsPerEvent: r.a1.cpu.clientMsPer1k, sendUsPerEvent: r.b.cpu.clientMsPer1k, usPerEvent, eventsPerSecond, ceBound: eventsPerSecond / r.e.eventsPerSecond, caBound: r.a ? eventsPerSecond / r.a.eventsPerSecond : null };
  }
  results.machine.loadavgAfter = os.loadavg().map((x) => x.toFixed(2)).join(' ');
  results.seconds = (Date.now() - started) / 1000;
  const text = table(results);
  console.log(`pipeline benchmark, ${results.started}, ${results.machine.nproc} CPUs (${results.machine.cpu}), Node.js ${results.machine.node}, Node-RED ${results.machine.nodeRed}, PostgreSQL ${results.machine.postgres} (embedded, fsync off), load ${results.machine.loadavg} -> ${results.machine.loadavgAfter}, ${results.seconds.toFixed(0)} s`);
  console.log(text);
  const out = path.join(__dirname, 'results', 'pipeline.json');
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, `${JSON.stringify({ ...results, table: text }, null, 2)}\n`);
  console.log(`written to ${path.relative(process.cwd(), out)}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
