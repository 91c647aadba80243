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
  module.exports.columns(RED, counters);
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

/**
 * What c0's and c1's last node share: rows in columns, sent as the sink's own statement (binary
 * unnest INSERT) on a pool opened at deploy, so the first batch does not pay for the connections.
 * `state` is what /bench/state reports: committed rows, and errors, which end the item at once.
 */
function columnWriter(node, def, counters) {
  const { Pool } = require('pg');
  const { InsertStatement } = require('../../nodes/lib/core/sink/insert-statement.js');
  const connections = Number(def.poolSize) || 4;
  const pool = new Pool({ host: def.host, port: Number(def.port), database: def.database, user: def.user, password: def.password, max: connections });
  const state = { kind: 'columns', count: 0, messages: 0, errors: 0, lastError: '' };
  const failed = (err) => {
    state.errors++;
    state.lastError = err.message;
    node.error(err.message);
  };
  pool.on('error', failed);
  Promise.all(Array.from({ length: connections }, () => pool.query('SELECT 1'))).catch(failed);
  const statement = new InsertStatement(`public.${def.table}`, { time: 'time', source: 'source', kind: 'kind', value: 'value', seq: 'seq' }, COLUMNS);
  counters.set(node.id, state);
  node.on('close', (done) => {
    counters.delete(node.id);
    pool.end().then(() => done(), () => done());
  });
  return {
    connections,
    state,
    /** Inserts the rows; resolves once they are committed, and counts them. */
    write(rows) {
      return pool.query(statement.plain, statement.parameters(rows)).then((result) => {
        state.count += result.rowCount;
      }, (err) => {
        failed(err);
        throw err;
      });
    },
  };
}

const COLUMNS = ['time', 'source', 'kind', 'value', 'seq'];
const noRows = () => ({ time: [], source: [], kind: [], value: [], seq: [], extra: [] });

// The least a Node-RED pipeline into PostgreSQL does per event at one event per message (item c0):
// one node that completes each message at once, keeps its row in columns, and sends every `batch`
// rows (the rest after 200 ms) on one of the pool's connections. No ring, no acknowledgement, no
// retry, no mapping options, no bound on what waits: what c costs beyond it is the package's.
module.exports.direct = function (RED, counters) {
  function BenchDirect(def) {
    RED.nodes.createNode(this, def);
    const node = this;
    const batch = Number(def.batch) || 1000;
    const writer = columnWriter(node, def, counters);
    let rows = noRows();
    let timer;
    const waiting = [];
    let inFlight = 0;
    const send = (full) => {
      inFlight++;
      writer.write(full).catch(() => {}).then(() => {
        inFlight--;
        if (waiting.length > 0) send(waiting.shift());
      });
    };
    const cut = () => {
      clearTimeout(timer);
      timer = undefined;
      if (rows.time.length === 0) return;
      const full = rows;
      rows = noRows();
      if (inFlight < writer.connections) send(full);
      else waiting.push(full);
    };
    node.on('input', (msg, _send, done) => {
      const p = msg.payload;
      writer.state.messages++;
      rows.time.push(p.time);
      rows.source.push(msg.topic);
      rows.kind.push(p.kind);
      rows.value.push(p.value);
      rows.seq.push(p.seq);
      done();
      if (rows.time.length >= batch) cut();
      else if (timer === undefined) timer = setTimeout(cut, 200);
    });
    node.on('close', () => clearTimeout(timer));
  }
  RED.nodes.registerType('bench-direct', BenchDirect);
};

// A prototype for measuring only (item c1): c's three nodes and the bookkeeping of its guarantees,
// with each reading kept in columns from the moment it is taken in instead of as a record object.
// bench-columns-in checks, numbers and times a reading, completes the message, appends the row to a
// block of 100 and holds the block until the end acknowledges it (the ring's part, without a
// window: blocks wait in the batcher's queue instead); bench-columns-batch gathers blocks into
// batches of `batch` rows, at most `open` unacknowledged (the batcher's part); bench-columns-sink
// sends a batch as the sink's statement and acknowledges its blocks on commit. No mapping options,
// no retry, no disk: what that design could reach, not the design.
module.exports.columns = function (RED, counters) {
  function BenchColumnsIn(def) {
    RED.nodes.createNode(this, def);
    const node = this;
    const held = new Set();
    const seqs = new Map();
    let block = noRows();
    let scheduled = false;
    const ack = (b) => held.delete(b);
    const flush = () => {
      scheduled = false;
      if (block.time.length === 0) return;
      const full = block;
      block = noRows();
      held.add(full);
      node.send({ payload: full, ack });
    };
    node.on('input', (msg, _send, done) => {
      const p = msg.payload;
      const topic = msg.topic;
      // What the sink checks of each reading, here where it is taken in (a rejected one would travel on as a record).
      if (typeof p !== 'object' || p === null || !Number.isFinite(p.value) || typeof topic !== 'string' || topic.length > 256 || typeof p.kind !== 'string') {
        done(new Error('not a reading this prototype takes'));
        return;
      }
      const seq = (seqs.get(topic) ?? 0) + 1;
      seqs.set(topic, seq);
      block.time.push(typeof p.time === 'number' ? p.time : Date.now());
      block.source.push(topic);
      block.kind.push(p.kind);
      block.value.push(p.value);
      block.seq.push(seq);
      done();
      if (block.time.length >= 100) flush();
      else if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    });
  }
  RED.nodes.registerType('bench-columns-in', BenchColumnsIn);

  function BenchColumnsBatch(def) {
    RED.nodes.createNode(this, def);
    const node = this;
    const batch = Number(def.batch) || 1000;
    const open = Number(def.open) || 4;
    let blocks = [];
    let dones = [];
    let rows = 0;
    let inFlight = 0;
    const ready = [];
    let timer;
    const release = () => {
      while (inFlight < open && ready.length > 0) {
        const b = ready.shift();
        inFlight++;
        node.send({ payload: b.blocks, ack: () => { inFlight--; for (const d of b.dones) d(); release(); } });
      }
    };
    const cut = () => {
      clearTimeout(timer);
      timer = undefined;
      if (rows === 0) return;
      ready.push({ blocks, dones });
      blocks = [];
      dones = [];
      rows = 0;
      release();
    };
    node.on('input', (msg, _send, done) => {
      blocks.push(msg.payload);
      dones.push(() => { msg.ack(msg.payload); done(); });
      rows += msg.payload.time.length;
      if (rows >= batch) cut();
      else if (timer === undefined) timer = setTimeout(cut, 200);
    });
    node.on('close', () => clearTimeout(timer));
  }
  RED.nodes.registerType('bench-columns-batch', BenchColumnsBatch);

  function BenchColumnsSink(def) {
    RED.nodes.createNode(this, def);
    const node = this;
    const writer = columnWriter(node, def, counters);
    node.on('input', (msg, _send, done) => {
      const rows = noRows();
      for (const b of msg.payload) for (const c of COLUMNS) for (const v of b[c]) rows[c].push(v);
      writer.write(rows).then(() => {
        msg.ack();
        done();
      }, (err) => done(err));
    });
  }
  RED.nodes.registerType('bench-columns-sink', BenchColumnsSink);
};
