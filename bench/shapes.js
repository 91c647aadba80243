#!/usr/bin/env node
'use strict';
// What reading a message as its readings costs the buffer at ingest, per message, in ns.
//
//   npm run bench:shapes           (builds first)
//
// "plain": the simulator's one-event messages, the hot path of `npm run bench` item c. Before
// shapes the buffer did eventCount + hasSequence + reserve + recordOf per message; now it asks
// isPlainReading first (allocation-free) and does the rest as before. shapeMessage on the same
// message is what it would cost without that fast path. The other rows are the messages of the input
// nodes (copies of what the real packages send, test/fixtures): what the buffer pays per message
// (per reading in brackets) to turn them into records.
const path = require('path');

const lib = path.join(__dirname, '..', 'nodes', 'lib', 'core');
let shapes, records, SequenceStamper, TelemetryGenerator;
try {
  shapes = require(path.join(lib, 'readings', 'shapes.js'));
  records = require(path.join(lib, 'readings', 'records.js'));
  ({ SequenceStamper } = require(path.join(lib, 'readings', 'sequence.js')));
  ({ TelemetryGenerator } = require(path.join(lib, 'simulator', 'simulator.js')));
} catch (err) {
  console.error(`cannot load ${lib} (run \`npm run build\` first): ${err.message}`);
  process.exit(1);
}

const ROUNDS = Number(process.env.BENCH_ROUNDS || 7);
const N = 200_000;
const options = shapes.resolveShapeOptions();
const stamper = new SequenceStamper();
let sink = 0;

const simulated = new TelemetryGenerator({ sources: 50, eventsPerMessage: 1, seed: 1 }).generate(N, Date.UTC(2026, 5, 1));

/** ns per message of `fn` over `messages`, median of ROUNDS (each round after a warm-up pass). */
function measure(messages, fn) {
  for (const msg of messages) fn(msg);
  const samples = [];
  for (let r = 0; r < ROUNDS; r++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < messages.length; i++) fn(messages[i]);
    samples.push(Number(process.hrtime.bigint() - start) / messages.length);
  }
  samples.sort((a, b) => a - b);
  return samples[Math.floor(samples.length / 2)];
}

const oldIngest = (msg) => {
  const weight = records.eventCount(msg);
  if (!records.hasSequence(msg)) sink += 1;
  msg.seq = stamper.reserve(msg.topic, weight);
  sink += records.recordOf(msg).seq;
};
const newIngest = (msg) => {
  if (shapes.isPlainReading(msg, options)) {
    if (!records.hasSequence(msg)) sink += 1;
    msg.seq = stamper.reserve(msg.topic, 1);
    sink += records.recordOf(msg).seq;
    return;
  }
  const all = shapes.recordsOf(shapes.shapeMessage(msg, options));
  records.stampRecords(all, stamper, true);
  sink += all.length;
};
const shapeOnly = (msg) => {
  sink += shapes.readingCount(shapes.shapeMessage(msg, options));
};

// Input-node messages, as the real packages send them (test/fixtures/input-messages.ts, inlined).
const t = Date.UTC(2026, 5, 1);
const modbus = (i) => ({ topic: 'plc1', payload: Array.from({ length: 10 }, (_, k) => (i + k) % 1000), responseBuffer: { data: [], buffer: Buffer.alloc(20) }, input: { topic: 'plc1', from: 'holding', payload: { unitid: '1', fc: 3, address: '0', quantity: '10', messageId: 'x' } } });
const opcua = (i) => ({ topic: 'ns=1;s=MyVariable2', datatype: 'Double', payload: 20 + (i % 7), statusCode: { value: 0 }, sourceTimestamp: new Date(t + i), serverTimestamp: new Date(t + i), sourcePicoseconds: 0, serverPicoseconds: 0 });
const named = (i) => ({ topic: 'zigbee/kitchen', payload: { temperature: 21 + (i % 5), humidity: 40, battery: 97, linkquality: 120 } });
const make = (f) => Array.from({ length: N / 10 }, (_, i) => f(i));

// Each case in a process of its own, so one case's type feedback does not slow another's.
const CASES = {
  'plain-before': ['plain (simulator, 1 event)', 'before shapes: eventCount + stamp + recordOf', () => measure(simulated, oldIngest), 1],
  'plain-now': ['plain (simulator, 1 event)', 'now: isPlainReading + stamp + recordOf', () => measure(simulated, newIngest), 1],
  'plain-shape': ['plain (simulator, 1 event)', 'shapeMessage alone (without the fast path)', () => measure(simulated, shapeOnly), 1],
  modbus: ['Modbus read, 10 registers', 'shapeMessage + recordsOf + stampRecords', () => measure(make(modbus), newIngest), 10],
  opcua: ['OPC UA subscribe, 1 value', 'shapeMessage + recordsOf + stampRecords', () => measure(make(opcua), newIngest), 1],
  named: ['named values, 4 fields', 'shapeMessage + recordsOf + stampRecords', () => measure(make(named), newIngest), 4],
};

if (process.argv[2] !== undefined) {
  process.stdout.write(String(CASES[process.argv[2]][2]()));
  if (sink === 0) process.exitCode = 1;
} else {
  const { execFileSync } = require('child_process');
  const REPEATS = Number(process.env.BENCH_REPEATS || 3);
  const results = {};
  // Interleaved: the host's speed drifts, each case's figure is the median of its processes.
  for (let r = 0; r < REPEATS; r++) {
    for (const name of Object.keys(CASES)) (results[name] ??= []).push(Number(execFileSync(process.execPath, [process.argv[1], name], { encoding: 'utf8' })));
  }
  const median = (list) => list.slice().sort((a, b) => a - b)[Math.floor(list.length / 2)];
  console.log(`shapes at ingest, ns per message (median of ${REPEATS} processes x ${ROUNDS} rounds), Node.js ${process.version}`);
  console.log('| message | path | ns/message | ns/reading | processes |');
  console.log('|---|---|---:|---:|---|');
  for (const [name, [message, what, , readings]] of Object.entries(CASES)) {
    const ns = median(results[name]);
    console.log(`| ${message} | ${what} | ${ns.toFixed(0)} | ${(ns / readings).toFixed(0)} | ${results[name].map((x) => x.toFixed(0)).join(' / ')} |`);
  }
  console.log(`isPlainReading adds ${(median(results['plain-now']) - median(results['plain-before'])).toFixed(0)} ns per plain message`);
}
