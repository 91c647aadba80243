/**
 * The shapes of the input nodes' messages through the nodes, in a real Node-RED runtime into a real
 * PostgreSQL: copies of what node-red-contrib-modbus and node-red-contrib-opcua send
 * (test/fixtures/input-messages.ts), named values and plain readings, with no function node in
 * between. Rows = readings - refused - dropped, each with its source, time and value; refused
 * readings reach the dead-letter output with their reason; messages that are not readings are
 * ignored and counted; sequence numbers and drops work per reading.
 */
import assert from 'node:assert/strict';
import { Client } from 'pg';
import { createTestDatabase } from './support/postgres';
import { clearSpools, held, helper, producerNodes, producerQueue, received, testNodes, withHooks } from './support/node-red';
import { assertCountsAddUp } from './support/counting';
import * as real from './fixtures/input-messages';
import { waitUntil } from './support/wait';
import { chainFlow, waitForDrain, type Stage } from './support/pipeline';

const bufferNode = withHooks(require('../nodes/telemetry-buffer.js'));
const batcherNode = withHooks(require('../nodes/telemetry-batcher.js'));
const connectionNode = require('../nodes/timescale-connection.js');
const sinkNode = withHooks(require('../nodes/timescale-sink.js'));

type Msg = Record<string, any>;
const T_NAMED = Date.UTC(2026, 5, 1, 12, 0, 0);

/** What the input nodes of one gateway send, in order, with what each counts for. */
function inputMessages(): { messages: Msg[]; readings: number; refused: number; ignored: number } {
  const messages: Msg[] = [
    real.opcuaSubscriptionId, // not a reading
    real.modbusReadHolding, // plc1/hr10..hr13
    real.opcuaSubscribeGood, // ns=1;s=MyVariable2 at its source timestamp
    real.opcuaSubscribeUncertain, // refused (good-only)
    real.modbusReadFailed, // not a reading ("empty message on fail")
    real.opcuaSubscribeBad, // refused
    real.modbusReadCoils, // plc1/coil0..coil2 (of 8 booleans sent)
    real.opcuaReadMultipleAll, // MyVariable2 bad (refused), Counter good
    real.opcuaStatus, // not a reading
    { topic: 'zigbee/kitchen', payload: { temperature: 21.5, humidity: 40, time: T_NAMED } }, // two named values
    { topic: 'line1/oven', payload: { value: 180.5 } }, // one plain reading
  ];
  // The same object twice must not be one message twice: Node-RED would deliver one object.
  return { messages: messages.map((m) => ({ ...m })), readings: 4 + 1 + 1 + 1 + 3 + 2 + 2 + 1, refused: 3, ignored: 3 };
}

interface Row {
  source: string;
  time: number;
  value: number | null;
  kind: string | null;
  seq: number;
}

describe('input shapes through the pipeline: no function node in between', function () {
  this.timeout(60_000);
  let url: URL;
  let db: Client;
  let tableNo = 0;

  before(async function () {
    url = new URL(await createTestDatabase('shapes_pipeline'));
    db = new Client({ connectionString: url.toString() });
    await db.connect();
  });

  after(async function () {
    await db?.end();
  });

  beforeEach(function () {
    clearSpools();
  });

  afterEach(async function () {
    await helper.unload();
  });

  function flow(stages: Stage[], table: string, options: Partial<Record<Stage, Record<string, unknown>>> = {}): object[] {
    return chainFlow(stages, { databaseUrl: url, table, ...options });
  }

  async function run(stages: Stage[], messages: Msg[], expectedEvents: number, options: Partial<Record<Stage, Record<string, unknown>>> = {}) {
    const table = `shapes_${++tableNo}`;
    await helper.load([bufferNode, batcherNode, connectionNode, sinkNode, producerNodes], flow(stages, table, options), { conn: { user: decodeURIComponent(url.username), password: decodeURIComponent(url.password) } });
    const dead: Msg[] = [];
    helper.getNode('dead').on('input', (msg: Msg) => dead.push(msg));
    producerQueue.prod = messages;
    const sentAt = Date.now();
    helper.getNode('prod').receive({ payload: 'go' });
    const node = (id: string) => (stages.includes(id === 'buf' ? 'buffer' : id === 'bat' ? 'batcher' : 'sink') ? helper.getNode(id) : undefined);
    await waitForDrain((id) => helper.getNode(id).telemetryStats(), 30_000, { buffer: stages.includes('buffer') ? 'buf' : undefined, sink: 'sink' }, expectedEvents);
    const { rows } = await db.query(`SELECT source, time, value, kind, seq::int AS seq FROM public."${table}" ORDER BY source, seq`);
    return {
      table,
      sentAt,
      rows: rows.map((r) => ({ ...r, time: (r.time as Date).getTime() })) as Row[],
      sink: helper.getNode('sink').telemetryStats(),
      batcher: node('bat')?.telemetryStats(),
      buffer: node('buf')?.telemetryStats(),
      dead,
    };
  }

  /** The rows every wiring must store: [source, time, value] (time -1: the ingest clock, checked separately). */
  const EXPECTED: [string, number, number][] = [
    ['line1/oven', -1, 180.5],
    ['ns=1;s=Counter', Date.parse('2026-11-28T19:52:58.992Z'), 1],
    ['ns=1;s=MyVariable2', Date.parse('2026-11-28T19:52:26.224Z'), 21.5],
    ['plc1/coil0', -1, 1],
    ['plc1/coil1', -1, 0],
    ['plc1/coil2', -1, 1],
    ['plc1/hr10', -1, 100],
    ['plc1/hr11', -1, 101],
    ['plc1/hr12', -1, 102],
    ['plc1/hr13', -1, 103],
    ['zigbee/kitchen/humidity', T_NAMED, 40],
    ['zigbee/kitchen/temperature', T_NAMED, 21.5],
  ];

  function assertRows(rows: Row[], sentAt: number): void {
    const got = rows.map((r) => [r.source, r.time, r.value] as [string, number, number]).sort((a, b) => (a[0] < b[0] ? -1 : 1));
    assert.deepEqual(got.map(([s, t, v]) => [s, EXPECTED.find(([e]) => e === s)?.[1] === -1 ? -1 : t, v]), EXPECTED);
    // Readings without a time of their own: the time they were taken in.
    for (const [source, time] of got) if (EXPECTED.find(([e]) => e === source)?.[1] === -1) assert.ok(time >= sentAt - 5 && time <= Date.now(), `${source}: ${new Date(time).toISOString()}`);
  }

  const REFUSED = [
    'ns=1;s=MyVariable2: OPC UA status UncertainLastUsableValue (0x40900000) is uncertain; quality good-only stores only Good values',
    'ns=1;s=MyVariable2: OPC UA status BadSensorFailure (0x808C0000) is bad; quality good-only stores only Good values',
    'ns=1;s=MyVariable2: OPC UA status BadSensorFailure (0x808C0000) is bad; quality good-only stores only Good values',
  ];

  it('buffer -> batcher -> sink: one row per reading at its source time, refused readings dead-lettered with their reason, the rest ignored and counted', async function () {
    const input = inputMessages();
    const r = await run(['buffer', 'batcher', 'sink'], input.messages, input.readings);
    assertRows(r.rows, r.sentAt);
    const b = r.buffer as Record<string, any>;
    assert.deepEqual([b.received, b.delivered, b.dropped, b.ignored], [input.readings, input.readings, 0, input.ignored], 'the buffer counts readings, and the messages that are none apart');
    assert.equal(b.ignoredReason, 'status message (session active)');
    assertCountsAddUp(b);
    assert.deepEqual([r.batcher?.receivedEvents, r.batcher?.ignored], [input.readings, 0], 'the batcher gets readings only');
    assert.deepEqual([r.sink.receivedEvents, r.sink.written, r.sink.rejected, r.sink.ignored], [input.readings, input.readings - input.refused, input.refused, 0]);
    assert.deepEqual(r.dead.flatMap((m) => m.payload.map((l: Msg) => l.reason)), REFUSED);
    // Numbered per reading in its own source, refused ones included: 1, 2, 3, 4 for MyVariable2, of which only 1 is a row.
    assert.deepEqual(r.rows.map((row) => [row.source, row.seq]), [
      ['line1/oven', 1], ['ns=1;s=Counter', 1], ['ns=1;s=MyVariable2', 1], ['plc1/coil0', 1], ['plc1/coil1', 1], ['plc1/coil2', 1],
      ['plc1/hr10', 1], ['plc1/hr11', 1], ['plc1/hr12', 1], ['plc1/hr13', 1], ['zigbee/kitchen/humidity', 1], ['zigbee/kitchen/temperature', 1],
    ]);
  });

  for (const stages of [['sink'], ['batcher', 'sink'], ['buffer', 'sink']] as Stage[][]) {
    it(`${stages.join(' -> ')}: the same rows`, async function () {
      const input = inputMessages();
      const r = await run(stages, input.messages, input.readings);
      assertRows(r.rows, r.sentAt);
      assert.deepEqual([r.sink.written, r.sink.rejected, r.sink.duplicates], [input.readings - input.refused, input.refused, 0]);
      assert.deepEqual(r.dead.flatMap((m) => m.payload.map((l: Msg) => l.reason)), REFUSED);
      // The first of our nodes that reads the messages ignores what is not a reading; a buffer in
      // front of a sink passes every message on as it came (one reading for one that is none).
      const first = helper.getNode(stages[0] === 'buffer' ? 'sink' : stages[0] === 'batcher' ? 'bat' : 'sink').telemetryStats();
      assert.equal(first.ignored, input.ignored);
      if (r.buffer !== undefined) assert.equal(r.buffer.received, input.readings + input.ignored);
      const keys = await db.query(`SELECT count(*)::int AS n, count(DISTINCT (source, time, seq))::int AS k FROM public."${r.table}"`);
      assert.equal(keys.rows[0].k, keys.rows[0].n, 'no two readings are one row');
    });
  }

  it('OPC UA quality keep-all: Uncertain and Bad values stored with kind uncertain / bad and their status', async function () {
    const r = await run(['buffer', 'batcher', 'sink'], [real.opcuaSubscribeGood, real.opcuaSubscribeUncertain, real.opcuaSubscribeBad].map((m) => ({ ...m })), 3, { buffer: { quality: 'keep-all' } });
    assert.deepEqual(r.rows.map((row) => [row.source, new Date(row.time).toISOString(), row.value, row.kind, row.seq]), [
      ['ns=1;s=MyVariable2', '2026-11-28T19:52:26.224Z', 21.5, null, 1],
      ['ns=1;s=MyVariable2', '2026-01-02T03:04:05.000Z', 22.5, 'uncertain', 2],
      ['ns=1;s=MyVariable2', '2026-01-02T03:04:06.000Z', 23.5, 'bad', 3],
    ]);
    const { rows } = await db.query(`SELECT extra FROM public."${r.table}" WHERE kind = 'bad'`);
    assert.deepEqual(rows[0].extra, { statusCode: 0x808c0000, statusName: 'BadSensorFailure' });
  });

  for (const dropPolicy of ['drop-oldest', 'drop-newest']) {
    it(`${dropPolicy} acts per reading: a burst of Modbus polls into a small ring, rows = readings - dropped, every drop a gap in its own register`, async function () {
      // 30 polls of 4 registers at once into a ring of 10 readings: no poll is dropped whole for being
      // larger than what fits, and the registers of a poll can be kept in part.
      const polls = Array.from({ length: 30 }, (_, i) => ({ ...real.modbusReadHolding, payload: [i, i, i, i], timestamp: T_NAMED + i * 1000 }));
      const r = await run(['buffer', 'batcher', 'sink'], polls, 120, { buffer: { capacity: 10, window: 5, dropPolicy } });
      const b = r.buffer as Record<string, number>;
      assert.equal(b.received, 120);
      assert.ok(b.dropped > 0, 'the burst overflowed the ring');
      assert.equal(b.droppedOversize, 0, 'a poll is never too large for the ring');
      assert.equal(r.rows.length, 120 - b.dropped);
      assertCountsAddUp(b);
      const gaps = await db.query(`SELECT coalesce(sum(m - n), 0)::int AS gaps, count(*)::int AS sources FROM (SELECT max(seq) AS m, count(DISTINCT seq) AS n FROM public."${r.table}" GROUP BY source) s`);
      if (dropPolicy === 'drop-newest') {
        // The oldest are kept: each register's gap is after its last row, where a query cannot see it.
        assert.deepEqual(r.rows.filter((row) => row.source === 'plc1/hr10').map((row) => row.seq), r.rows.filter((row) => row.source === 'plc1/hr10').map((_, i) => i + 1));
      } else {
        assert.equal(gaps.rows[0].gaps, b.dropped, 'every dropped reading is a gap in its own source');
      }
      assert.equal(gaps.rows[0].sources, 4);
    });
  }

  it('in front of another node, a message goes on as it came, counting for its readings; one that is not a reading counts 1', async function () {
    await helper.load([bufferNode, testNodes], [
      { id: 'buf', type: 'telemetry-buffer', statsInterval: 0, wires: [['down'], []] },
      { id: 'down', type: 'test-hold', mode: 'fast' },
    ]);
    const buf = helper.getNode('buf');
    buf.receive({ ...real.modbusReadHolding });
    buf.receive({ ...real.opcuaSubscriptionId });
    buf.receive({ ...real.modbusReadHolding });
    await waitUntil('three messages', () => received.down.length === 3);
    assert.deepEqual(received.down.map((m) => [m.topic, m.payload, m.seq]), [
      ['plc1', [100, 101, 102, 103], 1],
      ['subscriptionId', 3234512922, 1],
      ['plc1', [100, 101, 102, 103], 5],
    ]);
    assert.equal((received.down[0] as Msg).input.payload.address, '10', 'the rest of the message as it came');
    const s = buf.telemetryStats();
    assert.deepEqual([s.received, s.delivered, s.ignored], [9, 9, 0]);
  });

  it('a record taken in is never read as a message again: a refused reading keeps its reason through the spool, under an explicit shape', async function () {
    const flowOf = (mode: string) => [
      { id: 'buf', type: 'telemetry-buffer', statsInterval: 0, shape: 'opcua', wires: [['bat'], []] },
      { id: 'bat', type: 'telemetry-batcher', maxSize: 100, maxAge: 10, wires: [['down'], []] },
      { id: 'down', type: 'test-hold', mode },
    ];
    await helper.load([bufferNode, batcherNode, testNodes], flowOf('hold'));
    helper.getNode('buf').receive({ ...real.opcuaSubscribeGood });
    helper.getNode('buf').receive({ ...real.opcuaSubscribeBad });
    await waitUntil('the batch', () => received.down.length === 1);
    await helper.unload(); // the batcher hands the batch back, the buffer spools its two records
    await helper.load([bufferNode, batcherNode, testNodes], flowOf('fast'));
    await waitUntil('the batch again, from the spool', () => received.down.length === 1);
    const records = received.down[0].payload as Msg[];
    assert.deepEqual(records.map((rec) => [rec.topic, rec.payload, rec.seq, rec.refused]), [
      ['ns=1;s=MyVariable2', 21.5, 1, undefined],
      ['ns=1;s=MyVariable2', 23.5, 2, 'ns=1;s=MyVariable2: OPC UA status BadSensorFailure (0x808C0000) is bad; quality good-only stores only Good values'],
    ]);
    assert.equal(records[0].timestamp, Date.parse('2026-11-28T19:52:26.224Z'));
    const s = helper.getNode('buf').telemetryStats();
    assert.deepEqual([s.received, s.restored, s.delivered], [2, 2, 2]);
  });

  it('OPC UA changes that share one _msgid: a completion counts the message it is for, and a close spools the one not delivered', async function () {
    // node-red-contrib-opcua sends every change of a monitored item under the id of the message that
    // asked for it. The node after the buffer completes the second change first.
    const flowOf = (mode: string) => [
      { id: 'buf', type: 'telemetry-buffer', statsInterval: 0, wires: [['down'], []] },
      { id: 'down', type: 'test-hold', mode },
    ];
    await helper.load([bufferNode, testNodes], flowOf('hold'));
    const buf = helper.getNode('buf');
    buf.receive({ ...real.opcuaSubscribeGood, payload: 1 });
    buf.receive({ ...real.opcuaSubscribeGood, payload: 2 });
    await waitUntil('both changes downstream', () => received.down.length === 2);
    const [first, second] = received.down;
    const hold = held.down;
    hold.splice(hold.findIndex((h) => h.msg === (second as unknown)), 1)[0].done();
    await waitUntil('the second change confirmed', () => buf.telemetryStats().delivered === 1);
    assert.equal(first.payload, 1);
    await helper.unload(); // the first change was never confirmed: it is what the spool must hold
    await helper.load([bufferNode, testNodes], flowOf('fast'));
    await waitUntil('the spooled change', () => received.down.length === 1);
    assert.deepEqual(received.down.map((m) => m.payload), [1], 'the change not delivered comes back, not the one that was');
    assert.notEqual(first._msgid, second._msgid, 'each released message had an id of its own');
  });
});
