#!/usr/bin/env node
'use strict';
// Micro-benchmark of the in-memory RingBuffer (the hot path of telemetry-buffer).
//
//   npm run bench:ring                 (builds first)
//   node bench/ring.js [iterations]    (needs nodes/lib from `npm run build`)
//   RING_BUFFER_JS=/tmp/x/ring-buffer.js node bench/ring.js   (measure a separately compiled file)
//
// Scenarios, each measured after a warm-up, best of 5 runs:
//   steady      capacity 65536 pre-filled halfway; loop push(obj, 1) + shift(). Push and pop count
//               as two operations; "pairs" is push+shift pairs per second.
//   evict       drop-oldest at full capacity with a drop listener; every push evicts the oldest item.
//   batch       capacity 65536 pre-filled halfway; loop 64 x push(obj, 1) + popBatch(64, reusedArray).
//   text-evict  the buffer's overload path: drop-oldest at full capacity with the node's text codec
//               (nodes/lib/core/buffer/message-codec.js); every push encodes a batcher record and discards the
//               oldest unread.
//   text-pop    the same ring, push + shift: encode and decode every record.
//   records     push + shift of batcher records (simulator-like payloads), half full.
//   bytes       the same with a memory limit: the ring estimates every record's size (approximateSize).
// Target: >= 20 million push+pop operations per second in `steady`.
const path = require('path');

const modulePath = process.env.RING_BUFFER_JS
  ? path.resolve(process.env.RING_BUFFER_JS)
  : path.join(__dirname, '..', 'nodes', 'lib', 'core', 'buffer', 'ring-buffer.js');
let RingBuffer;
try {
  ({ RingBuffer } = require(modulePath));
} catch (err) {
  console.error(`cannot load ${modulePath} (run \`npm run build\` first): ${err.message}`);
  process.exit(1);
}

// The codec the buffer uses for what a full ring takes in: MessagePack (message-codec.js), or in
// builds before it, JSON text (disk-spill.js), so a copy of an older build can be measured too.
const textCodec = (() => {
  const dir = path.dirname(modulePath);
  try {
    const { packMessage, unpackMessage } = require(path.join(dir, 'message-codec.js'));
    return { encode: packMessage, decode: (bytes) => unpackMessage(bytes, true), decodeRange: (block, start, end) => unpackMessage(block, true, start, end) };
  } catch {
    const spill = require(path.join(dir, 'disk-spill.js'));
    return { encode: spill.encodeMessage, decode: spill.decodeMessage };
  }
})();

const CAPACITY = 65536;
const ITERATIONS = Math.max(1000, Number(process.argv[2]) || 20_000_000);
const RUNS = 5;
const TARGET_OPS = 20_000_000;

// A pool of distinct message-like objects, so the ring stores real references without allocating in the loop.
const POOL_SIZE = 4096;
const pool = Array.from({ length: POOL_SIZE }, (_, i) => ({ topic: 'sensor/' + (i % 16), payload: i, seq: i }));

function prefill(ring, n) {
  for (let i = 0; i < n; i++) ring.push(pool[i & (POOL_SIZE - 1)], 1);
}

function steady(iterations) {
  const ring = new RingBuffer(CAPACITY, 'drop-oldest');
  prefill(ring, CAPACITY / 2);
  let check = 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) {
    ring.push(pool[i & (POOL_SIZE - 1)], 1);
    check += ring.shift().seq;
  }
  const ns = Number(process.hrtime.bigint() - t0);
  if (ring.length !== CAPACITY / 2 || ring.counters().released !== iterations) throw new Error('steady: ring state is wrong');
  return { ns, ops: 2 * iterations, pairs: iterations, check };
}

function evict(iterations) {
  let evicted = 0;
  const ring = new RingBuffer(CAPACITY, 'drop-oldest', () => {
    evicted++;
  });
  prefill(ring, CAPACITY);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) ring.push(pool[i & (POOL_SIZE - 1)], 1);
  const ns = Number(process.hrtime.bigint() - t0);
  if (evicted !== iterations || ring.counters().droppedOverflow !== iterations) throw new Error('evict: wrong drop count');
  // Each push also removes one item (the eviction), so it counts as push + pop like `steady`.
  return { ns, ops: 2 * iterations, pairs: iterations, check: evicted };
}

function batch(iterations) {
  const B = 64;
  const ring = new RingBuffer(CAPACITY, 'drop-oldest');
  prefill(ring, CAPACITY / 2);
  const out = [];
  let check = 0;
  const rounds = Math.floor(iterations / B);
  const t0 = process.hrtime.bigint();
  for (let r = 0; r < rounds; r++) {
    for (let j = 0; j < B; j++) ring.push(pool[(r * B + j) & (POOL_SIZE - 1)], 1);
    out.length = 0;
    ring.popBatch(B, out);
    check += out.length;
  }
  const ns = Number(process.hrtime.bigint() - t0);
  if (check !== rounds * B) throw new Error('batch: wrong pop count');
  return { ns, ops: 2 * rounds * B, pairs: rounds * B, check };
}

// Records as the buffer keeps them into batchers, with simulator-like payloads.
const recordsPool = Array.from({ length: POOL_SIZE }, (_, i) => ({
  topic: 'sim/line1/source' + (i % 16),
  payload: { value: 20 + (i % 100) / 10, kind: 'sample', time: 1_700_000_000_000 + i, seq: i + 1, unit: 'degC' },
  timestamp: 1_700_000_000_000 + i,
  seq: i + 1,
  kind: undefined,
}));

function textEvict(iterations) {
  let evicted = 0;
  const ring = new RingBuffer(CAPACITY, 'drop-oldest', () => evicted++, { codec: textCodec });
  for (let i = 0; i < CAPACITY; i++) ring.push(recordsPool[i & (POOL_SIZE - 1)], 1);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) ring.push(recordsPool[i & (POOL_SIZE - 1)], 1);
  const ns = Number(process.hrtime.bigint() - t0);
  if (ring.counters().droppedOverflow !== iterations) throw new Error('text-evict: wrong drop count');
  return { ns, ops: 2 * iterations, pairs: iterations, check: evicted };
}

function textPop(iterations) {
  const ring = new RingBuffer(CAPACITY, 'drop-oldest', undefined, { codec: textCodec });
  for (let i = 0; i < CAPACITY; i++) ring.push(recordsPool[i & (POOL_SIZE - 1)], 1);
  let check = 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) {
    // Full: the push evicts the oldest and is kept as text; the shift decodes one held as text.
    ring.push(recordsPool[i & (POOL_SIZE - 1)], 1);
    check += ring.shift().seq;
    ring.push(recordsPool[(i + 1) & (POOL_SIZE - 1)], 1);
  }
  const ns = Number(process.hrtime.bigint() - t0);
  return { ns, ops: 3 * iterations, pairs: iterations, check };
}

// With a memory limit the ring estimates each item's size (approximateSize) on every push.
// In its own module since the buffer's files were split by concept; in the ring's module before.
const { approximateSize } = (() => {
  try {
    return require(path.join(path.dirname(modulePath), 'approximate-size.js'));
  } catch {
    return require(modulePath);
  }
})();

function records(iterations, bound) {
  const ring = new RingBuffer(CAPACITY, 'drop-oldest', undefined, undefined, bound);
  for (let i = 0; i < CAPACITY / 2; i++) ring.push(recordsPool[i & (POOL_SIZE - 1)], 1);
  let check = 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) {
    ring.push(recordsPool[i & (POOL_SIZE - 1)], 1);
    check += ring.shift().seq;
  }
  const ns = Number(process.hrtime.bigint() - t0);
  return { ns, ops: 2 * iterations, pairs: iterations, check };
}

const scenarios = [
  { name: 'steady', what: 'push + shift, half full', fn: steady },
  { name: 'evict', what: 'drop-oldest full, push evicts', fn: evict },
  { name: 'batch', what: '64 x push + popBatch(64)', fn: batch },
  { name: 'records', what: 'push + shift of records, half full', fn: (n) => records(n), iterations: 5_000_000 },
  ...(approximateSize === undefined
    ? []
    : [{ name: 'bytes', what: 'the same with a memory limit', fn: (n) => records(n, { maxBytes: 1 << 30, sizeOf: approximateSize }), iterations: 5_000_000 }]),
  { name: 'text-evict', what: 'full, push encodes a record', fn: textEvict, iterations: 1_000_000 },
  { name: 'text-pop', what: 'full, push encodes, shift decodes', fn: textPop, iterations: 500_000 },
];

const results = [];
for (const s of scenarios) {
  const iterations = Math.min(ITERATIONS, s.iterations ?? ITERATIONS);
  s.fn(Math.min(iterations, 2_000_000)); // warm-up: let the JIT settle
  let best;
  const runs = [];
  for (let r = 0; r < RUNS; r++) {
    const res = s.fn(iterations);
    const opsPerSec = res.ops / (res.ns / 1e9);
    runs.push(opsPerSec);
    if (best === undefined || opsPerSec > best.opsPerSec) best = { ...res, opsPerSec, pairsPerSec: res.pairs / (res.ns / 1e9) };
  }
  results.push({
    scenario: s.name,
    description: s.what,
    iterations: best.pairs,
    bestMs: Math.round(best.ns / 1e4) / 100,
    opsPerSec: Math.round(best.opsPerSec),
    pairsPerSec: Math.round(best.pairsPerSec),
    nsPerOp: Math.round((best.ns / best.ops) * 100) / 100,
    medianOpsPerSec: Math.round(runs.sort((a, b) => a - b)[Math.floor(runs.length / 2)]),
  });
}

const fmt = (n) => (n / 1e6).toFixed(1) + 'M';
console.log(`RingBuffer benchmark (node ${process.version}, capacity ${CAPACITY}, ${ITERATIONS} iterations, best of ${RUNS})`);
console.log('scenario   description                        ops/s (push+pop)   pairs/s   ns/op   median ops/s');
for (const r of results) {
  console.log(
    `${r.scenario.padEnd(10)} ${r.description.padEnd(34)} ${fmt(r.opsPerSec).padStart(16)} ${fmt(r.pairsPerSec).padStart(9)} ${r.nsPerOp.toFixed(2).padStart(7)} ${fmt(r.medianOpsPerSec).padStart(14)}`
  );
}
const steadyOps = results[0].opsPerSec;
const pass = steadyOps >= TARGET_OPS;
console.log(`target: >= ${fmt(TARGET_OPS)} push+pop ops/s in steady state: ${pass ? 'met' : 'NOT met'} (${fmt(steadyOps)})`);
console.log(JSON.stringify({ bench: 'ring', node: process.version, capacity: CAPACITY, iterations: ITERATIONS, runs: RUNS, targetOpsPerSec: TARGET_OPS, targetMet: pass, results }));
