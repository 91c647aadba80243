/**
 * timescale-sink's controller without Node-RED: its options read through the option table (the
 * examples' flows unchanged), and every message it takes finished exactly once, against a real
 * PostgreSQL.
 */
import { english } from '../src/nodes/i18n';
import { REFUSAL_SHOWN_MS } from '../src/core/sink/sink-status';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Pool } from 'pg';
import { readOptions } from '../src/core/shared/option-table';
import { SinkController, writerOptionsOf, type Finish, type SinkEvents } from '../src/core/sink/sink-controller';
import { TimescaleWriter } from '../src/core/sink/timescale-writer';
import { OPTIONS } from '../src/options/timescale-sink';
import { createTestDatabase } from './support/postgres';

const examples = path.join(__dirname, '..', 'examples');

describe('the sink controller', function () {
  it("reads every timescale-sink of the examples' flows through its option table, and builds a writer from it", function () {
    let sinks = 0;
    for (const file of fs.readdirSync(examples).filter((name) => name.endsWith('.json'))) {
      const flow = JSON.parse(fs.readFileSync(path.join(examples, file), 'utf8')) as Array<Record<string, unknown>>;
      for (const def of flow.filter((n) => n.type === 'timescale-sink')) {
        const o = readOptions(OPTIONS, def);
        assert.ok(new TimescaleWriter({ query: async () => ({ rowCount: 0, rows: [] }) }, writerOptionsOf(o)), file);
        sinks++;
      }
    }
    assert.ok(sinks >= 3, `${sinks} sinks in the examples`);
  });

  it('maps columns only in existing mode: empty is no such column, the extra column only with Extra fields on', function () {
    const existing = (def: Record<string, unknown>) => writerOptionsOf(readOptions(OPTIONS, { mode: 'existing', ...def })).columns;
    assert.deepEqual(existing({ kindColumn: '', seqColumn: 'n', extraColumn: 'rest' }), { time: 'time', source: 'source', kind: null, value: 'value', seq: 'n', extra: null });
    assert.deepEqual(existing({ extra: true, extraColumn: 'rest' }), { time: 'time', source: 'source', kind: 'kind', value: 'value', seq: 'seq', extra: 'rest' });
    assert.throws(() => existing({ timeColumn: '' }), /^RangeError: Time column is needed$/);
    assert.throws(() => existing({ sourceColumn: 'x'.repeat(64) }), /Source column: "x{64}" is 64 bytes long: PostgreSQL keeps only the first 63 bytes/);
    assert.equal(existing({ sourceColumn: 'device-id' })?.source, 'device-id', 'a hyphen is safe inside quotes');
    const auto = writerOptionsOf(readOptions(OPTIONS, { timeColumn: 'x'.repeat(64), maxRows: '250' }));
    assert.equal(auto.columns, undefined, 'auto mode makes its own columns');
    assert.throws(() => readOptions(OPTIONS, { maxRows: '0' }), /^RangeError: Max rows must be a whole number from 1 to 10000000, got "0"$/);
    assert.throws(() => readOptions(OPTIONS, { chunkInterval: '500 ms' }), /Chunk interval: "500 ms" is shorter than 1 second/);
  });

  describe('against PostgreSQL', function () {
    let pool: Pool;
    let dir: string;
    before(async function () {
      pool = new Pool({ connectionString: await createTestDatabase('sink_controller'), max: 2 });
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sink-controller-'));
    });
    after(async function () {
      await pool?.end();
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it('finishes every message it takes exactly once: written, not a reading, refused as a whole, and handed back on close', async function () {
      const finished: Array<[string, Finish]> = [];
      const events: SinkEvents<string> = { finish: (port, how) => finished.push([port, how]), stats: () => undefined, log: () => undefined, changed: () => undefined, t: english('timescale-sink') };
      const db = { label: 'test', host: '', poolSize: 2, redact: (text: string) => text };
      const controller = new SinkController<string>(pool, readOptions(OPTIONS, { statsInterval: '0' }), db, { fileBase: path.join(dir, 'sink'), closeLimitMs: 5000 }, events);
      controller.receive({ topic: 'press7/temp', payload: 21.5 }, 'reading');
      controller.receive({ topic: 'subscriptionId', payload: 7 }, 'not a reading');
      controller.receive({ topic: 'press7/temp', payload: 'hot' }, 'bad value');
      const deadline = Date.now() + 10_000;
      while (finished.length < 3 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
      const by = new Map(finished);
      assert.equal(finished.length, 3, JSON.stringify(finished));
      assert.deepEqual(by.get('reading'), {});
      assert.deepEqual(by.get('not a reading'), {});
      const bad = by.get('bad value') as Finish;
      assert.match(bad.error ?? '', /^not written: rejected: /);
      assert.equal(bad.deadLetter?.payload.length, 1);
      assert.deepEqual({ reason: bad.deadLetter?.deadLetter.reason, count: bad.deadLetter?.deadLetter.count }, { reason: 'rejected', count: 1 });
      const stats = controller.stats();
      assert.deepEqual([stats.receivedMessages, stats.written, stats.rejected, stats.ignored], [2, 1, 1, 1]);
      await controller.close(true);
      controller.receive({ topic: 'press7/temp', payload: 22 }, 'after close');
      assert.deepEqual(finished.at(-1), ['after close', { completion: 'returned' }]);
      assert.equal(finished.length, 4);
      const rows = await pool.query('SELECT source, value FROM public.telemetry');
      assert.deepEqual(rows.rows, [{ source: 'press7/temp', value: 21.5 }]);
    });

    it('takes a batch made elsewhere without throwing: elements that are not objects become readings, frozen records are copied, a record that takes no number fails its message once; a batch sent again keeps its time of receipt', async function () {
      const finished: Array<[string, Finish]> = [];
      const events: SinkEvents<string> = { finish: (port, how) => finished.push([port, how]), stats: () => undefined, log: () => undefined, changed: () => undefined, t: english('timescale-sink') };
      const db = { label: 'test', host: '', poolSize: 2, redact: (text: string) => text };
      const controller = new SinkController<string>(pool, readOptions(OPTIONS, { statsInterval: '0', table: 'telemetry_batches' }), db, { fileBase: path.join(dir, 'sink-batches'), closeLimitMs: 5000 }, events);
      const until = async (count: number): Promise<void> => {
        const deadline = Date.now() + 10_000;
        while (finished.length < count && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
      };
      // msg.batch set by a user's function: null and a bare number among the records.
      controller.receive({ batch: { id: 'b1' }, payload: [null, 7, { topic: 'press7/temp', payload: 21.5 }] }, 'odd elements');
      controller.receive({ batch: { id: 'b2' }, payload: [Object.freeze({ topic: 'press7/frozen', payload: { value: 1 } })] }, 'frozen');
      const unnumbered = Object.defineProperty({ topic: 'press7/temp', payload: { value: 1 } }, 'seq', {
        get() {
          throw new Error('no number here');
        },
      });
      controller.receive({ batch: { id: 'b4' }, payload: [unnumbered] }, 'unnumbered');
      // No time of its own: the sink's time of receipt, kept in the record for when it comes again.
      const timeless = [{ topic: 'press7/flow', payload: 3.5 }];
      controller.receive({ batch: { id: 'b3' }, payload: timeless }, 'timeless');
      await until(4);
      const by = new Map(finished);
      assert.equal(finished.length, 4, JSON.stringify(finished));
      const odd = by.get('odd elements') as Finish;
      assert.equal(odd.error, undefined, 'one row written');
      assert.deepEqual(odd.deadLetter?.payload.map((letter) => [letter.record.payload, letter.reason]), [[null, 'payload is empty'], [7, 'no source: set msg.topic or payload.source']]);
      assert.deepEqual(by.get('frozen'), {}, 'a frozen record is copied, and written');
      assert.deepEqual(by.get('unnumbered'), { completion: 'failed', error: 'not written: a reading could not be given its number and time (no number here)' });
      assert.deepEqual(by.get('timeless'), {});
      const stamped = (timeless[0] as { timestamp?: unknown }).timestamp;
      assert.equal(typeof stamped, 'number');
      await new Promise((resolve) => setTimeout(resolve, 5));
      controller.receive({ batch: { id: 'b3' }, payload: timeless }, 'timeless again');
      await until(5);
      assert.deepEqual(finished[4], ['timeless again', {}]);
      const stats = controller.stats();
      assert.deepEqual([stats.receivedMessages, stats.written, stats.duplicates, stats.rejected, stats.ignored], [4, 3, 1, 2, 1]);
      assert.match(stats.ignoredReason, /could not be given its number and time/);
      await controller.close(true);
      const rows = await pool.query('SELECT source, value, extract(epoch FROM time) * 1000 AS ms FROM public.telemetry_batches ORDER BY source');
      assert.deepEqual(rows.rows.map((r) => [r.source, r.value]), [['press7/flow', 3.5], ['press7/frozen', 1], ['press7/temp', 21.5]]);
      assert.equal(Number(rows.rows[0].ms), stamped, 'one row, at the time of its first receipt');
    });

    it('its stats carry the rows per second its badge shows', async function () {
      const finished: Array<[string, Finish]> = [];
      const events: SinkEvents<string> = { finish: (port, how) => finished.push([port, how]), stats: () => undefined, log: () => undefined, changed: () => undefined, t: english('timescale-sink') };
      const db = { label: 'test', host: '', poolSize: 2, redact: (text: string) => text };
      const controller = new SinkController<string>(pool, readOptions(OPTIONS, { statsInterval: '0', table: 'telemetry_rate' }), db, { fileBase: path.join(dir, 'sink-rate'), closeLimitMs: 5000 }, events);
      const before = Date.now();
      assert.equal(controller.stats().rowsPerSecond, 0, 'nothing written yet');
      const started = Date.now();
      controller.receive({ topic: 'press7', payload: Array.from({ length: 500 }, (_, i) => i) }, 'array');
      const deadline = Date.now() + 10_000;
      while (finished.length < 1 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
      assert.deepEqual(finished, [['array', {}]]);
      const end = Date.now();
      const stats = controller.stats();
      const after = Date.now();
      assert.equal(stats.written, 500);
      // 500 rows between the two readings of the meter, whose times lie within these bounds.
      assert.ok(stats.rowsPerSecond >= (500 * 1000) / (after - before) - 0.1, `${stats.rowsPerSecond} rows/s, at least 500 in ${after - before} ms`);
      assert.ok(stats.rowsPerSecond <= (500 * 1000) / Math.max(1, end - started) + 0.1, `${stats.rowsPerSecond} rows/s, at most 500 in ${end - started} ms`);
      const badge = controller.badge(Date.now());
      assert.equal(badge.fill, 'green');
      const [, figure, k] = /^([\d.]+)(k?) rows\/s$/.exec(badge.text) ?? [];
      const shown = Number(figure) * (k ? 1000 : 1);
      // The badge reads the same meter a moment later: the same rows over a little more time
      // (shown short, "7.8k" or "12k": up to 5 % either way).
      assert.ok(shown > 0 && shown <= stats.rowsPerSecond * 1.05 + 1, `badge "${badge.text}", stats ${stats.rowsPerSecond} rows/s`);
      await controller.close(true);
    });

    it('its badge is red while it refuses messages for a full queue, and normal again once it stopped refusing', async function () {
      const finished: Array<[string, Finish]> = [];
      const events: SinkEvents<string> = { finish: (port, how) => finished.push([port, how]), stats: () => undefined, log: () => undefined, changed: () => undefined, t: english('timescale-sink') };
      const db = { label: 'test', host: '', poolSize: 2, redact: (text: string) => text };
      const controller = new SinkController<string>(pool, readOptions(OPTIONS, { statsInterval: '0', maxConcurrent: '1', maxQueued: '1', table: 'telemetry_queue' }), db, { fileBase: path.join(dir, 'sink-queue'), closeLimitMs: 5000 }, events);
      const until = async (count: number): Promise<void> => {
        const deadline = Date.now() + 10_000;
        while (finished.length < count && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
        assert.equal(finished.length, count, JSON.stringify(finished));
      };
      controller.receive({ topic: 'press7/temp', payload: 0 }, 'first');
      await until(1);
      assert.equal(controller.badge(Date.now()).fill, 'green', 'up');
      // One write runs, one message waits, the third finds the queue full.
      for (const port of ['running', 'queued', 'refused']) controller.receive({ topic: 'press7/temp', payload: 1 }, port);
      assert.deepEqual(finished.at(-1), ['refused', { completion: 'failed', error: 'not written: queue full (1 events waiting)' }]);
      const refusedAt = Date.now();
      assert.deepEqual(controller.badge(refusedAt), { fill: 'red', shape: 'dot', text: 'full, refused 1' });
      await until(4);
      assert.equal(controller.badge(refusedAt + REFUSAL_SHOWN_MS).fill, 'green', 'nothing refused for a while: the normal colour');
      await controller.close(true);
    });
  });
});
