'use strict';
// Nodes for bench/pipeline.js only (never shipped): the routing ceiling (a) is
// telemetry-simulator -> bench-pass -> bench-counter, the same two deliveries per event as
// telemetry-simulator -> telemetry-buffer -> telemetry-batcher.

const counters = new Map();

module.exports = function (RED) {
  // ?gc=1 collects everything unreachable first (when node runs with --expose-gc), so heapUsed is
  // what is really held rather than what V8 has not collected yet.
  RED.httpAdmin.get('/bench/state', (req, res) => {
    const out = {};
    for (const [id, c] of counters) out[id] = c;
    const collected = req.query.gc === '1' && typeof global.gc === 'function';
    if (collected) global.gc();
    res.json({ memory: { ...process.memoryUsage(), heapLimit: require('v8').getHeapStatistics().heap_size_limit }, collected, counters: out });
  });

  // POST /bench/old-gen starts V8's sampling heap profiler keeping only what a full (mark-compact)
  // collection frees or what is still alive, i.e. what reached the old generation, by promotion or
  // by pretenuring; DELETE stops it and returns the profile (open it in Chrome DevTools, or
  // summarise it with bench/old-gen-summary.js). Young garbage, which scavenges free, is left out:
  // it is cheap and does not make the heap grow. Not quite all of it: what is still in the young
  // generation when a full collection runs counts too, so the more full collections, the more of
  // the hottest allocations show (compare runs with about as many; --trace-gc counts them).
  const inspector = require('inspector');
  let session;
  RED.httpAdmin.post('/bench/old-gen', (req, res) => {
    session = new inspector.Session();
    session.connect();
    session.post('HeapProfiler.startSampling', { samplingInterval: 16384, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: false }, (err) => {
      res.status(err ? 500 : 200).json(err ? { error: err.message } : {});
    });
  });
  RED.httpAdmin.delete('/bench/old-gen', (req, res) => {
    if (!session) return res.status(409).json({ error: 'not sampling' });
    session.post('HeapProfiler.stopSampling', (err, result) => {
      session.disconnect();
      session = undefined;
      res.status(err ? 500 : 200).json(err ? { error: err.message } : result.profile);
    });
  });

  function BenchPass(def) {
    RED.nodes.createNode(this, def);
    this.on('input', (msg, send, done) => {
      send(msg);
      done();
    });
  }
  RED.nodes.registerType('bench-pass', BenchPass);

  // Counts events: msg.benchRows when set (a batch), else one per message. With hold set it never
  // calls done(), so whatever sent the message keeps holding it (the bench measures what that costs).
  function BenchCounter(def) {
    RED.nodes.createNode(this, def);
    const node = this;
    const state = { kind: 'counter', count: 0, messages: 0, firstAt: 0, lastAt: 0 };
    counters.set(node.id, state);
    node.on('input', (msg, _send, done) => {
      const now = Date.now();
      if (state.firstAt === 0) state.firstAt = now;
      state.lastAt = now;
      state.messages++;
      state.count += typeof msg.benchRows === 'number' ? msg.benchRows : 1;
      if (!def.hold) done();
    });
    node.on('close', () => counters.delete(node.id));
  }
  RED.nodes.registerType('bench-counter', BenchCounter);
  module.exports.postgresql(RED);
  module.exports.direct(RED, counters);
};

// What node-red-contrib-postgresql's node does (that package is not in the registry this machine
// reaches; node-red-contrib-re-postgres, which is, bundles pg 6 and never completes a query on
// Node.js 20): one pg Pool per node, one pool.query(msg.query, msg.params) per message, the
// message sent on after the query, no batching, no retry.
module.exports.postgresql = function (RED) {
  const { Pool } = require('pg');
  function BenchPostgresql(def) {
    RED.nodes.createNode(this, def);
    const node = this;
    const pool = new Pool({ host: def.host, port: Number(def.port), database: def.database, user: def.user, password: def.password, max: Number(def.poolSize) || 4 });
    pool.on('error', (err) => node.error(err.message));
    node.on('input', (msg, send, done) => {
      pool.query(msg.query, msg.params).then((result) => {
        msg.payload = result.rows;
        send(msg);
        done();
      }, (err) => done(err));
    });
    node.on('close', (done) => {
      pool.end().then(() => done(), () => done());
    });
  }
  RED.nodes.registerType('bench-postgresql', BenchPostgresql);
};

// The least a Node-RED pipeline into PostgreSQL can do per event (item c0): one node that completes
// each message at once, keeps its row in columns, and sends every BATCH rows as the sink's own
// binary unnest INSERT on one of `poolSize` connections. No ring, no acknowledgement, no retry,
// no mapping options: what the package adds to this is what c costs beyond it.
module.exports.direct = function (RED, counters) {
  const { Pool } = require('pg');
  const { InsertStatement } = require('../../nodes/lib/core/sink/insert-statement.js');
  const COLUMNS = ['time', 'source', 'kind', 'value', 'seq'];
  function BenchDirect(def) {
    RED.nodes.createNode(this, def);
    const node = this;
    const batch = Number(def.batch) || 1000;
    const connections = Number(def.poolSize) || 4;
    const pool = new Pool({ host: def.host, port: Number(def.port), database: def.database, user: def.user, password: def.password, max: connections });
    pool.on('error', (err) => node.error(err.message));
    const statement = new InsertStatement(`public.${def.table}`, { time: 'time', source: 'source', kind: 'kind', value: 'value', seq: 'seq' }, COLUMNS);
    const state = { kind: 'direct', count: 0, messages: 0, firstAt: 0, lastAt: 0 };
    counters.set(node.id, state);
    const empty = () => ({ time: [], source: [], kind: [], value: [], seq: [], extra: [] });
    let rows = empty();
    const waiting = [];
    let inFlight = 0;
    const send = (full) => {
      inFlight++;
      pool.query(statement.plain, statement.parameters(full)).then((result) => {
        state.count += result.rowCount;
        state.lastAt = Date.now();
      }, (err) => node.error(err.message)).then(() => {
        inFlight--;
        if (waiting.length > 0) send(waiting.shift());
      });
    };
    node.on('input', (msg, _send, done) => {
      const p = msg.payload;
      if (state.firstAt === 0) state.firstAt = Date.now();
      state.messages++;
      rows.time.push(p.time);
      rows.source.push(msg.topic);
      rows.kind.push(p.kind);
      rows.value.push(p.value);
      rows.seq.push(p.seq);
      done();
      if (rows.time.length >= batch) {
        const full = rows;
        rows = empty();
        if (inFlight < connections) send(full);
        else waiting.push(full);
      }
    });
    node.on('close', (done) => {
      counters.delete(node.id);
      pool.end().then(() => done(), () => done());
    });
  }
  RED.nodes.registerType('bench-direct', BenchDirect);
};
