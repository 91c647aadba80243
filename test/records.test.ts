import assert from 'assert';
import * as vm from 'vm';
import { isDate, isPlainObject } from '../src/core/readings/values';
import { approximateSize } from '../src/core/buffer/approximate-size';
import { hasSequence, recordOf, recordsIn, shortLivedRecordOf, stampMissing, stampRecords, TelemetryMessageLike, TelemetryRecord } from '../src/core/readings/records';

describe('records', function () {
  const messages: TelemetryMessageLike[] = [
    { topic: 'line1/temp', payload: { value: 21.5, unit: 'C' }, timestamp: 1764115200000, seq: 7, kind: 'sample' },
    { topic: 42, payload: 3, timestamp: '2026-11-26T00:00:00Z', seq: Number.NaN },
    { payload: 'text only' },
    { topic: 'a', payload: null, seq: '5', kind: { nested: true } },
  ];

  it('recordOf takes topic (strings only), payload, timestamp, seq (finite numbers only) and kind', function () {
    assert.deepStrictEqual(recordOf(messages[0]), { topic: 'line1/temp', payload: { value: 21.5, unit: 'C' }, timestamp: 1764115200000, seq: 7, kind: 'sample' });
    assert.deepStrictEqual(recordOf(messages[1]), { topic: undefined, payload: 3, timestamp: '2026-11-26T00:00:00Z', seq: undefined, kind: undefined });
    assert.notStrictEqual(recordOf(messages[0]).payload, messages[0].payload, 'a plain object payload is copied');
  });

  it('recordOf copies the top level of a plain object payload only; shortLivedRecordOf shares it', function () {
    const nested = { at: 'line 1' };
    const plain = { value: 1, where: nested };
    const record = recordOf({ topic: 't', payload: plain });
    // The producer's object is not held: V8 must not learn at its allocation site that it lives long.
    assert.notStrictEqual(record.payload, plain);
    assert.deepStrictEqual(record.payload, plain);
    assert.strictEqual((record.payload as typeof plain).where, nested, 'only the top level');
    assert.strictEqual(shortLivedRecordOf({ topic: 't', payload: plain }).payload, plain);
    for (const payload of [Buffer.from('ab'), new Date(0), [1, 2], Object.assign(Object.create(null) as object, { value: 1 }), 3, 'text', null]) {
      assert.strictEqual(recordOf({ payload }).payload, payload, `${Object.prototype.toString.call(payload)} is kept as it is`);
    }
    const throwing = Object.defineProperty({ value: 1 }, 'broken', { enumerable: true, get: () => { throw new Error('getter'); } });
    assert.strictEqual(recordOf({ payload: throwing }).payload, throwing, 'a payload that cannot be copied is shared, recordOf does not throw');
    const proxy = new Proxy({ value: 1 }, { getPrototypeOf: () => { throw new Error('trap'); } });
    assert.strictEqual(recordOf({ payload: proxy }).payload, proxy);
  });

  it('shortLivedRecordOf (its own allocation site) gives exactly what recordOf gives', function () {
    assert.notStrictEqual(shortLivedRecordOf, recordOf, 'a function of its own, so its record literal is an allocation site of its own');
    for (const msg of messages) {
      const a = recordOf(msg);
      const b = shortLivedRecordOf(msg);
      assert.deepStrictEqual(b, a);
      assert.deepStrictEqual(Object.keys(b), Object.keys(a), 'same fields in the same order, so the same JSON text');
      assert.strictEqual(JSON.stringify(b), JSON.stringify(a));
    }
  });

  /** A stamper that remembers each reservation. */
  function stamper(): { reserve(source: string, count: number): number; calls: [string, number][] } {
    const next = new Map<string, number>();
    const calls: [string, number][] = [];
    return {
      calls,
      reserve(source, count) {
        calls.push([source, count]);
        const first = next.get(source) ?? 1;
        next.set(source, first + count);
        return first;
      },
    };
  }

  it('stampRecords numbers each record in its own topic; consecutive records of one topic take one range', function () {
    const records: TelemetryRecord[] = ['plc1/hr10', 'plc1/hr11', 'a', 'a', 'a', 'plc1/hr10'].map((topic) => ({ topic, payload: 1 }));
    const s = stamper();
    assert.equal(stampRecords(records, s, true), 6);
    assert.deepStrictEqual(records.map((r) => [r.topic, r.seq]), [['plc1/hr10', 1], ['plc1/hr11', 1], ['a', 1], ['a', 2], ['a', 3], ['plc1/hr10', 2]]);
    assert.deepStrictEqual(s.calls, [['plc1/hr10', 1], ['plc1/hr11', 1], ['a', 3], ['plc1/hr10', 1]]);
  });

  it('stampRecords: every one (buffer numbering on), or only those without a number of their own (stampMissing)', function () {
    const make = (): TelemetryRecord[] => [{ topic: 'a', payload: 1, seq: 50 }, { topic: 'a', payload: { value: 2, seq: 60 } }, { topic: 'a', payload: 3 }, { topic: undefined, payload: 4 }];
    const all = make();
    stampRecords(all, stamper(), true);
    assert.deepStrictEqual(all.map((r) => r.seq), [1, 2, 3, 1]);
    const missing = make();
    assert.equal(stampMissing(missing, stamper()), 2);
    assert.deepStrictEqual(missing.map((r) => r.seq), [50, undefined, 1, 1]);
  });

  it('a payload whose getter throws: no number of its own, and an approximate size, without an exception', function () {
    const payload = Object.defineProperty({ value: 1 }, 'seq', {
      enumerable: true,
      get() {
        throw new Error('not readable');
      },
    });
    assert.equal(hasSequence({ topic: 'a', payload }), false);
    assert.equal(approximateSize({ topic: 'a', payload }), 1024);
  });

  it("a function node's objects (its own VM context) are plain objects and Dates like the runtime's; recordOf copies them into the runtime's", function () {
    const made = vm.runInNewContext('({ payload: { value: 1, time: new Date(0) }, list: [1], map: new Map(), instance: new (class Reading {})() })') as Record<string, unknown>;
    assert.equal(isPlainObject(made.payload), true);
    assert.equal(isDate((made.payload as { time: unknown }).time), true);
    assert.deepStrictEqual([isPlainObject(made.list), isPlainObject(made.map), isPlainObject(made.instance), isPlainObject(Object.create(null))], [false, false, false, true]);
    const record = recordOf({ topic: 'a', payload: made.payload });
    assert.equal(Object.getPrototypeOf(record.payload), Object.prototype, 'copied into the runtime');
    const time = (record.payload as { time: unknown }).time;
    assert.ok(time instanceof Date && time.getTime() === 0, 'its Date too, which MessagePack then keeps as a Date');
  });

  it('recordsIn: a batch of objects as it is, elements that are not objects as the payload of one', function () {
    const objects = [{ payload: 1 }, { payload: 2 }];
    assert.strictEqual(recordsIn(objects), objects);
    assert.deepStrictEqual(recordsIn([null, 7, objects[0]]), [{ payload: null }, { payload: 7 }, objects[0]]);
  });
});
