/**
 * Every wiring an integrator builds, through a real Node-RED runtime into a real PostgreSQL, with
 * readings that share a source and a timestamp, arrays of readings, readings without any time, the
 * producer's own sequence numbers, Dates and nested objects: rows in the table = readings sent -
 * counted drops, and no two distinct readings ever become one row.
 */
import assert from 'node:assert/strict';
import { Client } from 'pg';
import { createTestDatabase } from './support/postgres';
import { helper, producerNodes, producerQueue, withHooks } from './support/node-red';
import { chainFlow, waitForDrain, type Stage as ChainStage } from './support/pipeline';

const bufferNode = withHooks(require('../nodes/telemetry-buffer.js'));
const batcherNode = withHooks(require('../nodes/telemetry-batcher.js'));
const connectionNode = require('../nodes/timescale-connection.js');
const sinkNode = withHooks(require('../nodes/timescale-sink.js'));
const functionNode = require('@node-red/nodes/core/function/10-function.js');

const T0 = Date.UTC(2026, 5, 1, 12, 0, 0);

interface Readings {
  messages: Record<string, unknown>[];
  /** Readings per source. */
  bySource: Record<string, number>;
  total: number;
}

/** What MQTT, Modbus and OPC UA inputs send, in the shapes that used to collide. */
function readings(): Readings {
  const messages: Record<string, unknown>[] = [];
  const bySource: Record<string, number> = {};
  const add = (msg: Record<string, unknown>, source: string, n = 1): void => {
    messages.push(msg);
    bySource[source] = (bySource[source] ?? 0) + n;
  };
  // 200 readings of one source with the same whole-second timestamp (a PLC polled faster than its clock).
  for (let i = 0; i < 200; i++) add({ topic: 'w/same-second', payload: 20 + (i % 7), timestamp: T0 }, 'w/same-second');
  // 150 readings with no time at all: the time of receipt, many within one millisecond.
  for (let i = 0; i < 150; i++) add({ topic: 'w/no-time', payload: { value: i } }, 'w/no-time');
  // 40 messages of 5 readings each, one timestamp per message.
  for (let i = 0; i < 40; i++) add({ topic: 'w/array', payload: [1, 2, 3, 4, 5].map((v) => ({ value: v * i })), timestamp: T0 + 1000 }, 'w/array', 5);
  // The producer's own sequence numbers, in the payload.
  for (let i = 0; i < 30; i++) add({ topic: 'w/own-seq', payload: { value: i, seq: 1000 + i, time: T0 + 2000 } }, 'w/own-seq');
  // Dates and nested objects.
  for (let i = 0; i < 25; i++) add({ topic: 'w/date', payload: { value: i, time: new Date(T0 + 3000), info: { line: { cell: i % 3 } } } }, 'w/date');
  // One device's readings forwarded by two gateways under their own topics, the device named in the
  // payload, at one time: numbered per topic they would take the same numbers and merge.
  for (let i = 0; i < 20; i++) for (const gateway of ['gw1', 'gw2']) add({ topic: `plant/${gateway}`, payload: { source: 'w/pump', value: i, time: T0 + 4000 } }, 'w/pump');
  // The same with arrays: each message's readings name their devices, two of them in one message.
  for (let i = 0; i < 10; i++) {
    for (const gateway of ['gw1', 'gw2']) {
      add({ topic: `plant/${gateway}`, payload: [{ source: 'w/valve', value: i }, { source: 'w/valve', value: i + 0.5 }, { source: 'w/fan', value: i }], timestamp: T0 + 5000 }, 'w/valve', 2);
      bySource['w/fan'] = (bySource['w/fan'] ?? 0) + 1;
    }
  }
  const total = Object.values(bySource).reduce((a, b) => a + b, 0);
  return { messages, bySource, total };
}

type Stage = 'buffer' | 'buffer, numbering off' | 'batcher' | 'sink';

interface Wiring {
  name: string;
  stages: Stage[];
  buffer?: Record<string, unknown>;
  /** Messages the producer sends per event-loop turn (0: all at once). */
  perTurn: number;
}

const WIRINGS: Wiring[] = [
  { name: 'sink alone', stages: ['sink'], perTurn: 50 },
  { name: 'batcher -> sink', stages: ['batcher', 'sink'], perTurn: 50 },
  { name: 'buffer -> sink', stages: ['buffer', 'sink'], perTurn: 50 },
  { name: 'buffer -> batcher -> sink', stages: ['buffer', 'batcher', 'sink'], perTurn: 50 },
  { name: 'buffer (sequence numbers off) -> batcher -> sink', stages: ['buffer, numbering off', 'batcher', 'sink'], perTurn: 50 },
];

describe('every wiring, every shape: a distinct reading is never merged', function () {
  this.timeout(120_000);
  let url: URL;
  let db: Client;
  let tableNo = 0;

  before(async function () {
    url = new URL(await createTestDatabase('wirings'));
    db = new Client({ connectionString: url.toString() });
    await db.connect();
  });

  after(async function () {
    await db?.end();
  });

  afterEach(async function () {
    await helper.unload();
  });

  function flow(wiring: Wiring, table: string): object[] {
    const stages = wiring.stages.map((stage) => (stage.startsWith('buffer') ? 'buffer' : stage) as ChainStage);
    return chainFlow(stages, { databaseUrl: url, table, perTurn: wiring.perTurn, buffer: { stampSequence: wiring.stages.includes('buffer'), ...wiring.buffer }, batcher: { maxAge: 50, statsInterval: 0 } });
  }

  async function run(wiring: Wiring, set: Readings): Promise<{ table: string; sink: Record<string, number>; buffer?: Record<string, number>; dead: unknown[] }> {
    const table = `wiring_${++tableNo}`;
    await helper.load([bufferNode, batcherNode, connectionNode, sinkNode, producerNodes], flow(wiring, table), { conn: { user: decodeURIComponent(url.username), password: decodeURIComponent(url.password) } });
    const dead: unknown[] = [];
    helper.getNode('dead').on('input', (msg: unknown) => dead.push(msg));
    producerQueue.prod = set.messages.map((m) => ({ ...m }));
    helper.getNode('prod').receive({ payload: 'go' });
    const sink = helper.getNode('sink');
    const buffer = wiring.stages.some((s) => s.startsWith('buffer')) ? helper.getNode('buf') : undefined;
    await waitForDrain((id) => helper.getNode(id).telemetryStats(), 60_000, { buffer: buffer === undefined ? undefined : 'buf', sink: 'sink' }, set.total);
    return { table, sink: sink.telemetryStats(), buffer: buffer?.telemetryStats(), dead };
  }

  async function rowsBySource(table: string): Promise<Record<string, number>> {
    const { rows } = await db.query(`SELECT source, count(*)::int AS n FROM public."${table}" GROUP BY source`);
    return Object.fromEntries(rows.map((r) => [r.source, r.n]));
  }

  for (const wiring of WIRINGS) {
    it(`${wiring.name}: every reading is a row of its own`, async function () {
      const set = readings();
      const { table, sink, buffer, dead } = await run(wiring, set);
      assert.deepEqual(dead, [], 'nothing dead-lettered');
      assert.equal(buffer?.dropped ?? 0, 0);
      assert.equal(sink.duplicates, 0, '"duplicates" counts only re-sends, and nothing was re-sent');
      assert.equal(sink.written, set.total);
      assert.deepEqual(await rowsBySource(table), set.bySource);
      const { rows } = await db.query(`SELECT count(*)::int AS n, count(DISTINCT (source, time, seq))::int AS keys FROM public."${table}"`);
      assert.deepEqual(rows[0], { n: set.total, keys: set.total });
      // The producer's own numbers stay, unless a buffer was told to number every message itself.
      const own = await db.query(`SELECT array_agg(seq::int ORDER BY seq) AS seqs FROM public."${table}" WHERE source = 'w/own-seq'`);
      if (!wiring.stages.includes('buffer')) assert.deepEqual(own.rows[0].seqs, Array.from({ length: 30 }, (_, i) => 1000 + i));
      // Dates and nested objects arrive as they were sent.
      const dated = await db.query(`SELECT min(time) AS t, (array_agg(extra ORDER BY value))[2] AS extra FROM public."${table}" WHERE source = 'w/date'`);
      assert.equal((dated.rows[0].t as Date).getTime(), T0 + 3000);
      assert.deepEqual(dated.rows[0].extra, { info: { line: { cell: 1 } } });
    });
  }

  for (const stages of [['batcher', 'sink'], ['buffer, numbering off', 'sink'], ['buffer, numbering off', 'batcher', 'sink']] as Stage[][]) {
    it(`${stages.join(' -> ')} with the sink's Seq from set to another field: the producer's numbers in that field are the rows' seq`, async function () {
      // 30 readings numbered by the producer in payload.n, all at one time, and 10 with no number.
      const set: Readings = { messages: [], bySource: { 'w/own-n': 30, 'w/no-n': 10 }, total: 40 };
      for (let i = 0; i < 30; i++) set.messages.push({ topic: 'w/own-n', payload: { value: i, n: 1000 + i, time: T0 + 2000 } });
      for (let i = 0; i < 10; i++) set.messages.push({ topic: 'w/no-n', payload: { value: i, time: T0 + 2000 } });
      const table = `wiring_${++tableNo}`;
      const flowStages = stages.map((stage) => (stage.startsWith('buffer') ? 'buffer' : stage) as ChainStage);
      const nodes = chainFlow(flowStages, { databaseUrl: url, table, perTurn: 50, buffer: { stampSequence: false }, batcher: { maxAge: 50, statsInterval: 0 }, sink: { seqProperty: 'n' } });
      await helper.load([bufferNode, batcherNode, connectionNode, sinkNode, producerNodes], nodes, { conn: { user: decodeURIComponent(url.username), password: decodeURIComponent(url.password) } });
      producerQueue.prod = set.messages.map((m) => ({ ...m }));
      helper.getNode('prod').receive({ payload: 'go' });
      await waitForDrain((id) => helper.getNode(id).telemetryStats(), 60_000, { buffer: stages[0].startsWith('buffer') ? 'buf' : undefined, sink: 'sink' }, set.total);
      const own = await db.query(`SELECT array_agg(seq::int ORDER BY seq) AS seqs FROM public."${table}" WHERE source = 'w/own-n'`);
      assert.deepEqual(own.rows[0].seqs, Array.from({ length: 30 }, (_, i) => 1000 + i));
      const none = await db.query(`SELECT count(DISTINCT seq)::int AS n FROM public."${table}" WHERE source = 'w/no-n'`);
      assert.equal(none.rows[0].n, 10, 'readings without a number are numbered, each its own row');
    });
  }

  for (const stages of [['batcher', 'sink'], ['buffer', 'sink'], ['buffer', 'batcher', 'sink']] as ChainStage[][]) {
    it(`${stages.join(' -> ')} with the sink's Source from set to another field: readings are numbered in that source, whatever their topic`, async function () {
      // One device's readings at one time under two topics, named in payload.device.
      const messages = Array.from({ length: 40 }, (_, i) => ({ topic: `plant/gw${i % 2}`, payload: { device: 'w/compressor', value: i, time: T0 + 6000 } }));
      const table = `wiring_${++tableNo}`;
      const nodes = chainFlow(stages, { databaseUrl: url, table, perTurn: 50, batcher: { maxAge: 50, statsInterval: 0 }, sink: { sourceProperty: 'device' } });
      await helper.load([bufferNode, batcherNode, connectionNode, sinkNode, producerNodes], nodes, { conn: { user: decodeURIComponent(url.username), password: decodeURIComponent(url.password) } });
      producerQueue.prod = messages;
      helper.getNode('prod').receive({ payload: 'go' });
      await waitForDrain((id) => helper.getNode(id).telemetryStats(), 60_000, { buffer: stages[0] === 'buffer' ? 'buf' : undefined, sink: 'sink' }, 40);
      const { rows } = await db.query(`SELECT count(*)::int AS n, count(DISTINCT seq)::int AS seqs, min(seq)::int AS first, max(seq)::int AS last FROM public."${table}" WHERE source = 'w/compressor'`);
      assert.deepEqual(rows[0], { n: 40, seqs: 40, first: 1, last: 40 }, 'one run of numbers in the source the rows have');
      assert.equal(helper.getNode('sink').telemetryStats().duplicates, 0);
    });
  }

  for (const stages of [['sink'], ['batcher', 'sink'], ['buffer', 'sink'], ['buffer', 'batcher', 'sink']] as ChainStage[][]) {
    it(`a function node in front of ${stages.join(' -> ')}: the objects and Dates it makes (in its own VM context) are stored like any`, async function () {
      const table = `wiring_${++tableNo}`;
      const nodes = chainFlow(stages, { databaseUrl: url, table, perTurn: 50, batcher: { maxAge: 50, statsInterval: 0 } }) as Array<{ id: string; wires?: string[][] }>;
      const producer = nodes.find((n) => n.id === 'prod') as { wires: string[][] };
      const first = producer.wires[0][0];
      producer.wires = [['fn']];
      // What an integrator writes: a reading object, with a Date and a nested object, made in the function.
      const func = `msg.payload = { value: msg.payload.i * 1.5, unit: 'degC', time: new Date(${T0} + msg.payload.i * 1000), info: { line: [msg.payload.i] } }; return msg;`;
      nodes.push({ id: 'fn', type: 'function', func, outputs: 1, wires: [[first]] } as never);
      await helper.load([bufferNode, batcherNode, connectionNode, sinkNode, functionNode, producerNodes], nodes, { conn: { user: decodeURIComponent(url.username), password: decodeURIComponent(url.password) } });
      const dead: unknown[] = [];
      helper.getNode('dead').on('input', (msg: unknown) => dead.push(msg));
      producerQueue.prod = Array.from({ length: 20 }, (_, i) => ({ topic: 'w/function', payload: { i } }));
      helper.getNode('prod').receive({ payload: 'go' });
      await waitForDrain((id) => helper.getNode(id).telemetryStats(), 60_000, { buffer: stages[0] === 'buffer' ? 'buf' : undefined, sink: 'sink' }, 20);
      assert.deepEqual(dead, [], 'nothing dead-lettered');
      const { rows } = await db.query(`SELECT value, extract(epoch FROM time) * 1000 AS ms, extra FROM public."${table}" ORDER BY time`);
      assert.deepEqual(
        rows.map((r) => [r.value, Number(r.ms), r.extra]),
        Array.from({ length: 20 }, (_, i) => [i * 1.5, T0 + i * 1000, { unit: 'degC', info: { line: [i] } }]),
      );
    });
  }

  it('buffer -> batcher -> sink with a burst larger than the ring: rows = readings - dropped, and the drops are the gaps', async function () {
    // Sources spread evenly over the burst, so that the newest of each survives the drops (a source
    // dropped whole has no row left to show its gap).
    const set = readings();
    const bySource = new Map<unknown, Record<string, unknown>[]>();
    const deviceOf = (m: Record<string, unknown>): unknown => {
      const first = (Array.isArray(m.payload) ? m.payload[0] : m.payload) as { source?: unknown } | undefined;
      return typeof first === 'object' && first?.source !== undefined ? first.source : m.topic;
    };
    for (const m of set.messages) bySource.set(deviceOf(m), [...(bySource.get(deviceOf(m)) ?? []), m]);
    set.messages = [...bySource.values()].flatMap((list) => list.map((m, i) => ({ m, at: (i + 1) / list.length }))).sort((a, b) => a.at - b.at).map(({ m }) => m);
    const wiring: Wiring = { name: 'burst', stages: ['buffer', 'batcher', 'sink'], buffer: { capacity: 200, window: 100 }, perTurn: 0 };
    const { table, sink, buffer } = await run(wiring, set);
    const dropped = (buffer as Record<string, number>).dropped;
    assert.ok(dropped > 0, 'the burst overflowed the ring');
    const { rows } = await db.query(`SELECT count(*)::int AS n, count(DISTINCT (source, time, seq))::int AS keys FROM public."${table}"`);
    assert.equal(rows[0].n, set.total - dropped);
    assert.equal(rows[0].keys, rows[0].n);
    assert.equal(sink.duplicates, 0);
    const gaps = await db.query(`SELECT coalesce(sum(m - n), 0)::int AS gaps FROM (SELECT max(seq) AS m, count(DISTINCT seq) AS n FROM public."${table}" GROUP BY source) s`);
    assert.equal(gaps.rows[0].gaps, dropped, 'every dropped reading is a gap a query finds');
  });
});
