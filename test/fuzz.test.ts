import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Client } from 'pg';
import { mapRecord, resolveMappingOptions } from '../src/core/sink/row-mapping';
import { readingCount, shapeMessage } from '../src/core/readings/shapes';
import { createTestDatabase } from './support/postgres';
import { CompletionCounter, helper, runtimeHooks, testNodes, withHooks } from './support/node-red';
import { assertCountsAddUp } from './support/counting';
import { waitUntil } from './support/wait';

const bufferNode = withHooks(require('../nodes/telemetry-buffer.js'));
const batcherNode = withHooks(require('../nodes/telemetry-batcher.js'));
const simulatorNode = withHooks(require('../nodes/telemetry-simulator.js'));
const connectionNode = require('../nodes/timescale-connection.js');
const sinkNode = require('../nodes/timescale-sink.js');

/** Deeply nested object: {a: {a: {... depth ...}}}. */
function nested(depth: number): unknown {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = { a: v };
  return v;
}

const TEN_MB = 'x'.repeat(10 * 1024 * 1024);
const SQL_META = `'; DROP TABLE x; -- "\\ $1 $$ %s \u0000 ; /* */`;

/** The hostile values the issue names, mixed into fast-check's own `anything`. */
const hostile = fc.oneof(
  fc.constantFrom<unknown>(
    NaN, Infinity, -Infinity, -0, Number.MAX_VALUE, Number.MIN_VALUE, 2 ** 53, -(2 ** 63),
    '', TEN_MB, SQL_META, '\u0000', '__proto__', 'constructor',
    new Date(NaN), new Date(-8.64e15), new Date(8.64e15), new Date('0001-01-01T00:00:00Z'), new Date('9999-12-31T23:59:59Z'),
    '1969-12-31T23:59:59Z', '+275760-09-13T00:00:00Z', '2026-02-30T00:00:00Z', 'not a date',
    nested(20), nested(5000), Buffer.from('bytes'), [], [[]], { __proto__: { polluted: true } },
    JSON.parse('{"__proto__": {"polluted": true}, "constructor": {"prototype": {"polluted": true}}, "value": 1}'),
    Symbol('s'), () => 1, 10n ** 30n, null, undefined, true, false,
  ),
  fc.anything({ withBigInt: true, withDate: true, withTypedArray: true, withSparseArray: true, withNullPrototype: true, maxDepth: 4 }),
);

/** Payload-like objects with hostile field values under the names the mapping reads. */
const hostileObject = fc.record(
  {
    value: hostile, time: hostile, ts: hostile, source: hostile, kind: hostile, seq: hostile,
    extra: hostile, ['__proto__']: hostile, constructor: hostile, [SQL_META]: hostile,
  },
  { requiredKeys: [] },
);
const hostilePayload = fc.oneof(hostile, hostileObject);
const hostileMessage = fc.record({ topic: fc.oneof(hostile, fc.string()), payload: hostilePayload, timestamp: hostile, seq: hostile, kind: hostile }, { requiredKeys: ['payload'] });

describe('bad input: fuzzing every node and the row mapping', function () {
  this.timeout(180_000);

  describe('row mapping (src/core/sink/row-mapping.ts)', function () {
    const options = resolveMappingOptions({ extra: true });

    it('never throws: every record maps to a valid row or to a reason, and a row is always storable', function () {
      fc.assert(
        fc.property(hostileMessage, fc.integer({ min: Date.UTC(2001, 0, 1), max: Date.UTC(2090, 0, 1) }), (record, receivedAt) => {
          const result = mapRecord(record as never, receivedAt, options);
          if (!result.ok) {
            assert.equal(typeof result.reason, 'string');
            assert.ok(result.reason.length > 0 && result.reason.length < 2000, 'a short, clear reason');
            return;
          }
          const row = result.row;
          assert.ok(typeof row.time === 'number' && Number.isFinite(row.time));
          assert.ok(row.time >= options.minTimeMs && row.time < options.maxTimeMs, 'time within the accepted range');
          assert.ok(typeof row.source === 'string' && row.source.length > 0 && row.source.length <= 256 && !row.source.includes('\u0000'));
          assert.ok(row.value === null || Number.isFinite(row.value), 'value finite or null');
          assert.ok(Number.isSafeInteger(row.seq));
          assert.ok(row.kind === null || (typeof row.kind === 'string' && !row.kind.includes('\u0000')));
          if (row.extra !== null) {
            const json = JSON.stringify(row.extra);
            assert.ok(json.length <= options.maxExtraLength);
            assert.ok(!json.includes('\\u0000'), 'jsonb cannot hold NUL');
            assert.ok(!Object.prototype.hasOwnProperty.call(row.extra, '__proto__') && !Object.prototype.hasOwnProperty.call(row.extra, 'constructor'));
          }
          assert.equal(({} as Record<string, unknown>).polluted, undefined, 'no prototype pollution');
        }),
        { numRuns: 2000 },
      );
    });

    it('rejects the named bad values with a reason that says what is wrong', function () {
      const at = Date.UTC(2026, 0, 1);
      const cases: [unknown, RegExp][] = [
        [{ topic: 's', payload: NaN }, /NaN, expected a finite number/],
        [{ topic: 's', payload: Infinity }, /Infinity/],
        [{ topic: 's', payload: { value: 'x' } }, /payload.value is a string/],
        [{ topic: 's', payload: 1, timestamp: new Date(NaN) }, /invalid Date/],
        [{ topic: 's', payload: 1, timestamp: -8.64e15 }, /outside/],
        [{ topic: 's', payload: 1, timestamp: 8.64e15 }, /outside/],
        [{ topic: 's', payload: 1, timestamp: 'not a date' }, /not an ISO 8601 time/],
        [{ topic: '', payload: 1 }, /no source/],
        [{ topic: TEN_MB, payload: 1 }, /10485760 characters, more than 256/],
        [{ topic: 's', payload: { value: 1, deep: nested(5000) } }, /nested deeper than 16/],
        [{ topic: 's', payload: { value: 1, big: TEN_MB } }, /more than 16384/],
        [{ topic: 's', payload: '' }, /payload is a string/],
        [{ topic: 's\u0000', payload: 1 }, /NUL/],
      ];
      for (const [i, [record, reason]] of cases.entries()) {
        const r = mapRecord(record as never, at, options);
        assert.equal(r.ok, false, `case ${i}`);
        assert.match((r as { reason: string }).reason, reason);
      }
      // SQL meta-characters are data, not SQL: a row, stored as given (the insert binds parameters).
      const r = mapRecord({ topic: SQL_META.replace('\u0000', ''), payload: { value: 1, [SQL_META.replace('\u0000', '')]: 'x' } }, at, options);
      assert.equal(r.ok, true);
    });
  });

  describe('telemetry-buffer, telemetry-batcher and telemetry-simulator inputs in a real Node-RED runtime', function () {
    afterEach(async function () {
      await helper.unload();
    });

    it('every hostile message gets exactly one done(), nothing throws, and the counters add up', async function () {
      const flow = [
        { id: 'buf', type: 'telemetry-buffer', capacity: 1000, window: 100, statsInterval: 0, wires: [['bat'], []] },
        { id: 'bat', type: 'telemetry-batcher', maxSize: 7, maxAge: 5, maxOpenBatches: 4, wires: [['hold'], []] },
        { id: 'hold', type: 'test-hold', mode: 'fast' },
        { id: 'sim', type: 'telemetry-simulator', rate: 1, autoStart: false, wires: [[]] },
      ];
      await helper.load([bufferNode, batcherNode, simulatorNode, testNodes], flow);
      const counter = new CompletionCounter();
      const errors: { node: string; error: string }[] = [];
      const hookName = `onComplete.fuzzErrors${Math.random().toString(36).slice(2)}`;
      runtimeHooks.add(hookName, (evt: { node: { id: string }; error?: unknown }) => {
        if (evt.error !== undefined && evt.error !== null) errors.push({ node: evt.node.id, error: String((evt.error as Error).message ?? evt.error) });
      });
      try {
        const buf = helper.getNode('buf');
        const sim = helper.getNode('sim');
        const bat = helper.getNode('bat');
        let sentToBuffer = 0;
        let eventsToBuffer = 0;
        let notReadings = 0;
        let sentToSim = 0;
        let badControls = 0;
        await fc.assert(
          fc.asyncProperty(fc.array(hostileMessage, { minLength: 1, maxLength: 20 }), hostile, async (messages, control) => {
            for (const m of messages) {
              const msg = { ...(m as Record<string, unknown>) };
              if (msg.control === 'stats') delete msg.control;
              // Into a batcher the buffer takes a message in as its readings; one that is not a reading is ignored.
              const shaped = shapeMessage(msg);
              eventsToBuffer += readingCount(shaped);
              if (shaped.outcome === 'not-a-reading') notReadings++;
              sentToBuffer++;
              buf.receive(msg);
            }
            // A control message of any shape to the simulator: one done(), an error unless it is a known command.
            const known = ['start', 'stop', 'reset', 'stats'].includes(control as string);
            if (!known) badControls++;
            sentToSim++;
            sim.receive({ control: known ? 'reset' : control, payload: control });
            // Also straight into the batcher, bypassing the buffer.
            bat.receive({ payload: messages[0].payload, topic: 'direct' });
          }),
          { numRuns: 150 },
        );
        await waitUntil('every buffered message to complete', () => counter.total('buf') === sentToBuffer, 60_000);
        await waitUntil('every simulator control to complete', () => counter.total('sim') === sentToSim, 10_000);
        assert.deepEqual(counter.repeats('buf'), [], 'no message completed twice by the buffer');
        assert.deepEqual(counter.repeats('bat'), [], 'no message completed twice by the batcher');
        assert.deepEqual(counter.repeats('sim'), []);
        const s = buf.telemetryStats();
        assert.equal(s.received, eventsToBuffer);
        assert.equal(s.ignored, notReadings);
        assertCountsAddUp(s);
        const simErrors = errors.filter((e) => e.node === 'sim');
        assert.equal(simErrors.length, badControls, 'every unknown control is a done(err)');
        for (const e of simErrors) assert.match(e.error, /^msg.control must be one of start, stop, reset, stats, got /);
        // The buffer and batcher carry any payload; the only error is the batcher refusing what it
        // has no room for (fed directly, bypassing the buffer), each counted.
        const others = errors.filter((e) => e.node !== 'sim');
        assert.deepEqual(others.filter((e) => !(e.node === 'bat' && /^telemetry-batcher is full/.test(e.error))), []);
        assert.equal(others.length, bat.telemetryStats().refusedMessages, 'every refusal counted');
      } finally {
        counter.stop();
        runtimeHooks.remove(hookName);
      }
    });
  });

  describe('timescale-sink with a real PostgreSQL', function () {
    let url: URL;
    let db: Client;
    let n = 0;

    before(async function () {
      url = new URL(await createTestDatabase('fuzz_sink'));
      db = new Client({ connectionString: url.toString() });
      await db.connect();
    });

    after(async function () {
      await db?.end();
    });

    afterEach(async function () {
      await helper.unload();
    });

    function flow(table: string): object[] {
      return [
        { id: 'conn', type: 'timescale-connection', host: url.hostname, port: url.port, database: decodeURIComponent(url.pathname.slice(1)), tls: 'off', poolSize: '2' },
        { id: 'sink', type: 'timescale-sink', connection: 'conn', schema: 'public', table, mode: 'auto', extra: true, statsInterval: '0', maxAttempts: 2, wires: [['dead'], []] },
        { id: 'dead', type: 'helper' },
      ];
    }
    const credentials = () => ({ conn: { user: decodeURIComponent(url.username), password: decodeURIComponent(url.password) } });

    it('a batch with hostile rows writes every good row and dead-letters each bad one with its reason', async function () {
      const table = `fuzz_${++n}`;
      await helper.load([connectionNode, sinkNode], flow(table), credentials());
      const sink = helper.getNode('sink');
      const dead: { payload: { reason: string; record: { seq: number } }[] }[] = [];
      helper.getNode('dead').on('input', (m: never) => dead.push(m));
      const completions: { id: string; error?: unknown }[] = [];
      const hookName = `onComplete.fuzzSink${Math.random().toString(36).slice(2)}`;
      runtimeHooks.add(hookName, (evt: { node: { id: string }; msg: { _msgid: string }; error?: unknown }) => {
        if (evt.node.id === 'sink') completions.push({ id: evt.msg._msgid, error: evt.error });
      });
      const options = resolveMappingOptions({ extra: true });
      const at = Date.now();
      let expectedGood = 0;
      let expectedBad = 0;
      let batches = 0;
      try {
        await fc.assert(
          fc.asyncProperty(fc.array(fc.tuple(fc.boolean(), hostileMessage), { minLength: 1, maxLength: 30 }), async (mix) => {
            const batchNo = ++batches;
            // Good rows with unique seq interleaved with hostile ones; the hostile ones' own seq is
            // replaced so the check below can tell them apart.
            const records = mix.map(([good, m], i) => {
              const seq = batchNo * 1000 + i;
              if (good) return { topic: `good/${SQL_META.replace('\u0000', '')}`, payload: { value: i, note: SQL_META.replace('\u0000', '') }, timestamp: at, seq };
              return { ...(m as Record<string, unknown>), seq };
            });
            for (const r of records) if (mapRecord(r as never, at, options).ok) expectedGood++; else expectedBad++;
            const id = `fuzz-batch-${batchNo}`;
            sink.receive({ _msgid: id, payload: records, batch: { id, count: records.length, reason: 'size' } });
            await waitUntil(`done() for ${id}`, () => completions.some((c) => c.id === id), 30_000);
          }),
          { numRuns: 40 },
        );
        assert.equal(completions.length, batches, 'one done() per batch');
        assert.ok(completions.every((c) => c.error === undefined), 'a batch with bad rows still completes: its good rows are written');
        const s = sink.telemetryStats();
        assert.equal(s.rejected, expectedBad, 'every bad row counted');
        assert.equal(s.written + s.duplicates, expectedGood, 'every good row written');
        const rejectedEntries = dead.flatMap((d) => d.payload);
        assert.equal(rejectedEntries.length, expectedBad);
        for (const e of rejectedEntries) assert.ok(typeof e.reason === 'string' && e.reason.length > 0);
        const { rows } = await db.query(`SELECT count(*)::int AS n FROM public."${table}"`);
        assert.equal(rows[0].n, s.written);
        const tables = await db.query(`SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'public'`);
        assert.ok(tables.rows[0].n >= 1, 'no table dropped by a topic full of SQL');
      } finally {
        runtimeHooks.remove(hookName);
      }
    });

    it('a plain message that cannot be stored completes with done(err) saying why, and is counted', async function () {
      const table = `fuzz_${++n}`;
      await helper.load([connectionNode, sinkNode], flow(table), credentials());
      const sink = helper.getNode('sink');
      const completions: { id: string; error?: unknown }[] = [];
      const hookName = `onComplete.fuzzPlain${Math.random().toString(36).slice(2)}`;
      runtimeHooks.add(hookName, (evt: { node: { id: string }; msg: { _msgid: string }; error?: unknown }) => {
        if (evt.node.id === 'sink') completions.push({ id: evt.msg._msgid, error: evt.error });
      });
      try {
        const bad = [
          { topic: 's', payload: NaN },
          { topic: 's', payload: { value: 'abc' } },
          { topic: 's', payload: 1, timestamp: '+275760-09-13T00:00:00Z' },
          { topic: '', payload: 1 },
          { topic: 's', payload: TEN_MB },
        ];
        bad.forEach((m, i) => sink.receive({ _msgid: `bad-${i}`, ...m }));
        sink.receive({ _msgid: 'good', topic: SQL_META.replace('\u0000', ''), payload: 1 });
        await waitUntil('every done()', () => completions.length === bad.length + 1, 30_000);
        for (let i = 0; i < bad.length; i++) {
          const c = completions.find((x) => x.id === `bad-${i}`);
          assert.ok(c?.error instanceof Error, `bad-${i} completes with an error`);
          assert.match((c.error as Error).message, /^not written: rejected: /);
        }
        assert.equal(completions.find((x) => x.id === 'good')?.error, undefined);
        const s = sink.telemetryStats();
        assert.equal(s.rejected, bad.length);
        assert.equal(s.written, 1);
        const { rows } = await db.query(`SELECT source FROM public."${table}"`);
        assert.deepEqual(rows, [{ source: SQL_META.replace('\u0000', '') }]);
      } finally {
        runtimeHooks.remove(hookName);
      }
    });
  });
});
