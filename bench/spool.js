#!/usr/bin/env node
'use strict';
// Benchmark of the store-and-forward disk tier (telemetry-buffer's "Overflow to disk").
//
//   npm run bench:spool              (builds first)
//   node bench/spool.js [messages]   (needs nodes/lib from `npm run build`)
//
// Each scenario uses the node's own codec (the JSON a Node-RED message becomes) and a real
// directory under the OS temp dir, best of 3 runs:
//   spill      push() of one-event messages shaped like the simulator's, flushed to the OS every
//              1000 messages (the node flushes once per event-loop turn), fsync every second (the
//              node's default fsync interval)
//   replay     shift() of everything spilled: read, checksum, JSON decode
//   spill x100 / replay x100   the same with 100 events per message (an array payload)
//   shutdown spool   writeSpool() of the messages a closing buffer holds, then the restore of that
//              file at the next start (src/core/buffer/spool.ts), one-event messages
// Targets: spill >= 100k events/s (the pipeline's one-event-per-message rate), replay >= 2x that.
// On a shared machine compare the ratios printed at the end, not the absolute figures; the
// "reference" line is JSON.stringify + JSON.parse of the same messages in the same run, a floor
// for any step of the pipeline that carries them, to show how loaded the machine is.
const fs = require('fs');
const os = require('os');
const path = require('path');

// BENCH_LIB=/path/to/lib/core/buffer measures another build (e.g. a copy of nodes/lib/core/buffer from before a change).
const lib = process.env.BENCH_LIB ? path.resolve(process.env.BENCH_LIB) : path.join(__dirname, '..', 'nodes', 'lib', 'core', 'buffer');
let DiskTier, messageCodec, spool;
try {
  ({ DiskTier } = require(path.join(lib, 'disk-tier.js')));
  // messageCodec moved from disk-spill.js to message-codec.js when the buffer's files were split by concept.
  ({ messageCodec } = fs.existsSync(path.join(lib, 'disk-spill.js')) ? require(path.join(lib, 'disk-spill.js')) : require(path.join(lib, 'message-codec.js')));
  spool = require(path.join(lib, 'spool.js'));
} catch (err) {
  console.error(`cannot load ${lib} (run \`npm run build\` first): ${err.message}`);
  process.exit(1);
}

const MESSAGES = Math.max(1000, Number(process.argv[2]) || 300_000);
const RUNS = 3;
// The pipeline's one-event-per-message rate; pass the figure bench/pipeline.js printed in the same
// run (PIPELINE_EVENTS_PER_S=...) to compare under the same load.
const TARGET_SPILL = Number(process.env.PIPELINE_EVENTS_PER_S) || 100_000;

let ids = 0;
const codec = messageCodec((msg) => ({ msg, done: () => undefined }), (held) => held.msg);
codec.decodeOnly = codec.decode;

function message(i, events) {
  const time = 1_700_000_000_000 + i;
  const one = (k) => ({ value: 20 + ((i + k) % 100) / 10, kind: 'sample', time, seq: i * events + k + 1, unit: 'degC' });
  return {
    _msgid: (++ids).toString(16),
    topic: `sim/line1/source${i % 16}`,
    kind: 'sample',
    payload: events === 1 ? one(0) : Array.from({ length: events }, (_, k) => one(k)),
    timestamp: time,
    seq: i * events + 1,
  };
}

function run(messages, events) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-spool-'));
  try {
    const tier = new DiskTier({ dir, maxBytes: 8 * 1024 ** 3, policy: 'drop-newest', codec });
    // Messages are built before the clock starts: the producer's cost is not the spool's.
    const pool = Array.from({ length: Math.min(messages, 10_000) }, (_, i) => ({ msg: message(i, events), done: () => undefined }));
    let t0 = process.hrtime.bigint();
    let lastSync = t0;
    for (let i = 0; i < messages; i++) {
      tier.push(pool[i % pool.length], events);
      if (i % 1000 === 999) {
        tier.flush();
        const now = process.hrtime.bigint();
        if (now - lastSync > 1_000_000_000n) {
          tier.sync();
          lastSync = now;
        }
      }
    }
    tier.sync();
    const spillNs = Number(process.hrtime.bigint() - t0);
    const bytes = tier.counters().diskBytes;
    t0 = process.hrtime.bigint();
    let n = 0;
    let check = 0;
    for (let g = tier.shift(); g !== undefined; g = tier.shift()) {
      n++;
      check += g.item.msg.seq;
    }
    const replayNs = Number(process.hrtime.bigint() - t0);
    if (n !== messages || tier.depth !== 0) throw new Error(`replayed ${n} of ${messages}`);
    tier.close();
    return { spill: (messages * events * 1e9) / spillNs, replay: (messages * events * 1e9) / replayNs, bytesPerEvent: bytes / (messages * events), check };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function best(messages, events) {
  run(Math.min(messages, 20_000), events); // warm-up
  let b;
  for (let r = 0; r < RUNS; r++) {
    const x = run(messages, events);
    if (b === undefined) b = x;
    else {
      b.spill = Math.max(b.spill, x.spill);
      b.replay = Math.max(b.replay, x.replay);
    }
  }
  return b;
}

/** The shutdown spool: write the messages at close, read them back at start (messages/s each). */
async function shutdownSpool(messages) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-shutdown-spool-'));
  try {
    const file = path.join(dir, 'buffer.jsonl');
    const all = Array.from({ length: messages }, (_, i) => message(i, 1));
    let t0 = process.hrtime.bigint();
    spool.writeSpool(file, { 'sim/line1/source0': messages }, all);
    const write = (messages * 1e9) / Number(process.hrtime.bigint() - t0);
    t0 = process.hrtime.bigint();
    let n = 0;
    if (typeof spool.restoreSpool === 'function') {
      await spool.restoreSpool(file, { onMessage: () => n++ });
    } else {
      n = spool.takeSpool(file).messages.length;
    }
    const restore = (messages * 1e9) / Number(process.hrtime.bigint() - t0);
    if (n !== messages) throw new Error(`restored ${n} of ${messages}`);
    return { write, restore };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const fmt = (n) => `${(n / 1000).toFixed(0)}k`;
async function main() {
console.log(`disk tier (store-and-forward), ${MESSAGES} messages per run, best of ${RUNS}`);
{
  const msgs = Array.from({ length: 10_000 }, (_, i) => message(i, 1));
  let bestRate = 0;
  for (let r = 0; r < RUNS; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < MESSAGES; i++) JSON.parse(JSON.stringify(msgs[i % msgs.length]));
    bestRate = Math.max(bestRate, (MESSAGES * 1e9) / Number(process.hrtime.bigint() - t0));
  }
  console.log(`  reference  JSON round trip ${fmt(bestRate).padStart(7)} messages/s (machine load indicator)`);
}
const one = best(MESSAGES, 1);
console.log(`  spill      1 event/msg   ${fmt(one.spill).padStart(7)} events/s   (${one.bytesPerEvent.toFixed(0)} bytes/event on disk)`);
console.log(`  replay     1 event/msg   ${fmt(one.replay).padStart(7)} events/s`);
const hundred = best(Math.max(100, Math.floor(MESSAGES / 50)), 100);
console.log(`  spill    100 events/msg  ${fmt(hundred.spill).padStart(7)} events/s   (${hundred.bytesPerEvent.toFixed(0)} bytes/event on disk)`);
console.log(`  replay   100 events/msg  ${fmt(hundred.replay).padStart(7)} events/s`);
console.log(`  ratios: spill / ${fmt(TARGET_SPILL)} target = ${(one.spill / TARGET_SPILL).toFixed(2)} (>= 1)   replay / spill target = ${(one.replay / TARGET_SPILL).toFixed(2)} (>= 2)   replay / spill = ${(one.replay / one.spill).toFixed(2)}`);
let sp = { write: 0, restore: 0 };
await shutdownSpool(20_000);
for (let r = 0; r < RUNS; r++) {
  const x = await shutdownSpool(MESSAGES);
  sp = { write: Math.max(sp.write, x.write), restore: Math.max(sp.restore, x.restore) };
}
console.log(`  shutdown spool, 1 event/msg: write ${fmt(sp.write).padStart(7)} messages/s   restore ${fmt(sp.restore).padStart(7)} messages/s`);
const ok = one.spill >= TARGET_SPILL && one.replay >= 2 * TARGET_SPILL;
console.log(ok ? 'targets met' : 'TARGETS NOT MET');
process.exitCode = ok ? 0 : 1;
}
main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
