import assert from 'assert';
import fc from 'fast-check';
import { mapRecord, mapRow, readsByName, resolveMappingOptions, RowColumns, type MappingResult, type TelemetryRow } from '../src/core/sink/row-mapping';
import { sourceOf, type TelemetryRecord } from '../src/core/readings/records';

const RECEIVED_AT = Date.UTC(2025, 5, 1, 12, 0, 0);
const defaults = resolveMappingOptions();
const withExtra = resolveMappingOptions({ extra: true });

function row(record: TelemetryRecord, options = defaults): TelemetryRow {
  const result = mapRecord(record, RECEIVED_AT, options);
  if (!result.ok) assert.fail(`expected a row, got rejection: ${result.reason}`);
  return result.row;
}

function reason(record: TelemetryRecord, options = defaults): string {
  const result = mapRecord(record, RECEIVED_AT, options);
  if (result.ok) assert.fail(`expected a rejection, got ${JSON.stringify(result.row)}`);
  return result.reason;
}

describe('row mapping', function () {
  describe('value', function () {
    it('takes a number payload as the value and the topic as the source', function () {
      assert.deepStrictEqual(row({ topic: 'line1/temp', payload: 21.5 }), { time: RECEIVED_AT, source: 'line1/temp', kind: null, value: 21.5, seq: 0, extra: null });
    });

    it('stores booleans as 1 and 0, as a payload or as payload.value', function () {
      assert.strictEqual(row({ topic: 'door', payload: true }).value, 1);
      assert.strictEqual(row({ topic: 'door', payload: false }).value, 0);
      assert.strictEqual(row({ topic: 'door', payload: { value: true } }).value, 1);
    });

    it('rejects NaN and infinities', function () {
      assert.match(reason({ topic: 't', payload: NaN }), /finite/);
      assert.match(reason({ topic: 't', payload: Infinity }), /finite/);
      assert.match(reason({ topic: 't', payload: { value: -Infinity } }), /finite/);
    });

    it('rejects a value of the wrong type', function () {
      assert.match(reason({ topic: 't', payload: { value: '21.5' } }), /payload\.value is a string/);
      assert.match(reason({ topic: 't', payload: '21.5' }), /payload is a string/);
      assert.match(reason({ topic: 't', payload: [1, 2] }), /array/);
      assert.match(reason({ topic: 't', payload: Buffer.from('x') }), /Buffer/);
      assert.equal(reason({ topic: 't', payload: new Date(0) }), 'payload is a Date, expected a number, a boolean or a plain object');
      assert.equal(reason({ topic: 't', payload: new Map([['value', 1]]) }), 'payload is a Map, expected a number, a boolean or a plain object');
      assert.match(reason({ topic: 't', payload: null }), /empty/);
    });

    it('allows a missing value only when the object carries something else', function () {
      assert.strictEqual(row({ topic: 't', payload: { kind: 'heartbeat' } }).value, null);
      assert.strictEqual(row({ topic: 't', payload: { status: 'ok' } }, withExtra).value, null);
      assert.match(reason({ topic: 't', payload: {} }), /no value/);
      assert.match(reason({ topic: 't', payload: { source: 'a', time: RECEIVED_AT, value: null } }), /no value/);
    });

    it('rejects a reading with nothing to store: no value, no kind, and Extra off (its other fields would be thrown away)', function () {
      const why = reason({ topic: 't', payload: { foo: 1 } });
      assert.match(why, /payload has no value and nothing else to store/);
      assert.match(why, /Extra/, 'the reason names the option that would keep the other fields');
      assert.match(reason({ topic: 't', payload: { foo: 1, bar: 'x', source: 's', seq: 3 } }), /nothing else to store/);
      // With Extra on the same reading is stored, its fields in extra.
      assert.deepStrictEqual(row({ topic: 't', payload: { foo: 1 } }, withExtra), { time: RECEIVED_AT, source: 't', kind: null, value: null, seq: 0, extra: { foo: 1 } });
      // A kind alone is something to store, with or without Extra.
      assert.strictEqual(row({ topic: 't', payload: { kind: 'heartbeat', foo: 1 } }).kind, 'heartbeat');
    });
  });

  describe('source', function () {
    it('prefers payload.source over the topic', function () {
      assert.strictEqual(row({ topic: 'topic', payload: { source: 'plc-7', value: 1 } }).source, 'plc-7');
    });

    it('rejects a missing, empty, non-string, oversized or NUL-carrying source', function () {
      assert.match(reason({ payload: 1 }), /no source/);
      assert.match(reason({ topic: '', payload: 1 }), /no source/);
      assert.match(reason({ topic: 't', payload: { source: 42, value: 1 } }), /payload\.source is 42, expected a string/);
      assert.match(reason({ topic: 'x'.repeat(257), payload: 1 }), /257 characters/);
      assert.match(reason({ topic: 'a\u0000b', payload: 1 }), /NUL/);
    });
  });

  describe('time', function () {
    const when = Date.UTC(2024, 0, 2, 3, 4, 5, 678);

    it('reads payload.time, payload.ts and msg.timestamp in that order, else the time of receipt', function () {
      assert.strictEqual(row({ topic: 't', timestamp: when + 2, payload: { time: when, ts: when + 1, value: 1 } }).time, when);
      assert.strictEqual(row({ topic: 't', timestamp: when + 2, payload: { ts: when + 1, value: 1 } }).time, when + 1);
      assert.strictEqual(row({ topic: 't', timestamp: when + 2, payload: 1 }).time, when + 2);
      assert.strictEqual(row({ topic: 't', payload: 1 }).time, RECEIVED_AT);
    });

    it('accepts a Date, epoch ms and ISO 8601 strings, reading an offset-less string as UTC', function () {
      assert.strictEqual(row({ topic: 't', timestamp: new Date(when), payload: 1 }).time, when);
      assert.strictEqual(row({ topic: 't', timestamp: '2024-01-02T03:04:05.678Z', payload: 1 }).time, when);
      assert.strictEqual(row({ topic: 't', timestamp: '2024-01-02T04:04:05.678+01:00', payload: 1 }).time, when);
      assert.strictEqual(row({ topic: 't', timestamp: '2024-01-02T03:04:05.678', payload: 1 }).time, when);
      assert.strictEqual(row({ topic: 't', timestamp: '2024-01-02', payload: 1 }).time, Date.UTC(2024, 0, 2));
    });

    it('rejects unparseable and absurd times with a hint for epoch seconds', function () {
      assert.match(reason({ topic: 't', timestamp: 'yesterday', payload: 1 }), /not an ISO 8601 time/);
      assert.match(reason({ topic: 't', timestamp: '2024-13-45T00:00:00Z', payload: 1 }), /not a valid time/);
      assert.match(reason({ topic: 't', timestamp: new Date(NaN), payload: 1 }), /invalid Date/);
      assert.match(reason({ topic: 't', timestamp: 1717243200, payload: 1 }), /epoch seconds instead of milliseconds/);
      assert.match(reason({ topic: 't', timestamp: Date.UTC(2200, 0, 1), payload: 1 }), /outside/);
      assert.match(reason({ topic: 't', timestamp: { at: 1 }, payload: 1 }), /expected a Date/);
    });
  });

  describe('seq and kind', function () {
    it('takes record.seq, else payload.seq, else 0, and rejects non-integers', function () {
      assert.strictEqual(row({ topic: 't', seq: 7, payload: { seq: 9, value: 1 } }).seq, 7);
      assert.strictEqual(row({ topic: 't', payload: { seq: 9, value: 1 } }).seq, 9);
      assert.strictEqual(row({ topic: 't', payload: 1 }).seq, 0);
      assert.match(reason({ topic: 't', payload: { seq: 1.5, value: 1 } }), /integer/);
      assert.match(reason({ topic: 't', payload: { seq: '3', value: 1 } }), /integer/);
    });

    it('takes payload.kind, else msg.kind, and rejects a non-string kind', function () {
      assert.strictEqual(row({ topic: 't', kind: 'msg-kind', payload: { kind: 'vibration', value: 1 } }).kind, 'vibration');
      assert.strictEqual(row({ topic: 't', kind: 'msg-kind', payload: 1 }).kind, 'msg-kind');
      assert.match(reason({ topic: 't', payload: { kind: 3, value: 1 } }), /kind is 3, expected a string/);
    });
  });

  describe('extra', function () {
    it('is left out unless enabled', function () {
      assert.strictEqual(row({ topic: 't', payload: { value: 1, unit: 'C' } }).extra, null);
    });

    it('copies the remaining fields, never __proto__, constructor or prototype keys', function () {
      const payload = JSON.parse('{"value":1,"source":"s","unit":"C","nested":{"__proto__":{"polluted":true},"ok":1},"constructor":{"x":1},"prototype":2}');
      const extra = row({ topic: 't', payload }, withExtra).extra;
      assert.deepStrictEqual(extra, { unit: 'C', nested: { ok: 1 } });
      assert.strictEqual(({} as Record<string, unknown>).polluted, undefined);
    });

    it('turns Dates into ISO strings and non-finite numbers into null', function () {
      const at = new Date(Date.UTC(2024, 0, 1));
      assert.deepStrictEqual(row({ topic: 't', payload: { value: 1, at, ratio: NaN } }, withExtra).extra, { at: at.toISOString(), ratio: null });
    });

    it('rejects oversized, too deeply nested or NUL-carrying extra fields', function () {
      assert.match(reason({ topic: 't', payload: { value: 1, blob: 'x'.repeat(20000) } }, withExtra), /more than 16384/);
      let deep: Record<string, unknown> = { leaf: 1 };
      for (let i = 0; i < 20; i++) deep = { deeper: deep };
      assert.match(reason({ topic: 't', payload: { value: 1, deep } }, withExtra), /nested deeper/);
      assert.match(reason({ topic: 't', payload: { value: 1, note: 'a\u0000' } }, withExtra), /NUL/);
    });
  });

  it('reads the configured property names', function () {
    const options = resolveMappingOptions({ timeProperty: 'at', sourceProperty: 'device', valueProperty: 'reading', kindProperty: 'type', extra: true });
    const at = Date.UTC(2024, 4, 5);
    assert.deepStrictEqual(row({ topic: 'ignored', payload: { at, device: 'd1', reading: 3, type: 'rpm', time: 'not used as time' } }, options), {
      time: at,
      source: 'd1',
      kind: 'rpm',
      value: 3,
      seq: 0,
      extra: { time: 'not used as time' }
    });
  });

  it('refuses dangerous or empty property names in the options', function () {
    assert.throws(() => resolveMappingOptions({ valueProperty: '__proto__' }), /valueProperty/);
    assert.throws(() => resolveMappingOptions({ sourceProperty: '' }), /sourceProperty/);
    assert.throws(() => resolveMappingOptions({ maxTimeMs: Date.UTC(10001, 0, 1) }), /0001\.\.9999/);
    assert.throws(() => resolveMappingOptions({ minTimeMs: 5, maxTimeMs: 5 }), /minTimeMs < maxTimeMs/);
  });

  it('maps any JSON-like input to a row or a reason, and never throws', function () {
    const jsonish = fc.jsonValue();
    const time = fc.oneof(fc.constant(undefined), fc.integer(), fc.double(), fc.string(), fc.date({ noInvalidDate: false }), jsonish);
    const record = fc.record(
      {
        topic: fc.oneof(fc.constant(undefined), fc.string()),
        payload: fc.oneof(jsonish, fc.dictionary(fc.constantFrom('value', 'source', 'time', 'ts', 'kind', 'seq', '__proto__', 'constructor', 'x'), fc.oneof(jsonish, fc.double(), fc.date({ noInvalidDate: false })))),
        timestamp: time,
        seq: fc.oneof(fc.constant(undefined), fc.integer(), fc.double()),
        kind: fc.oneof(fc.constant(undefined), fc.string(), jsonish)
      },
      { requiredKeys: ['payload'] }
    );
    fc.assert(
      fc.property(record, fc.boolean(), (input, extra) => {
        const result: MappingResult = mapRecord(input as TelemetryRecord, RECEIVED_AT, extra ? withExtra : defaults);
        if (result.ok) {
          const mapped = result.row;
          assert.ok(mapped.source.length > 0 && !Number.isNaN(mapped.time));
          assert.ok(mapped.value === null || Number.isFinite(mapped.value));
          assert.ok(Number.isSafeInteger(mapped.seq));
          if (mapped.extra) assert.ok(JSON.stringify(mapped.extra).length <= 16384);
        } else {
          assert.ok(typeof result.reason === 'string' && result.reason.length > 0);
        }
      }),
      { numRuns: 3000 }
    );
  });

  it('reads the default names directly exactly as its pass over the keys reads them', function () {
    const value = fc.oneof(fc.constant(undefined), fc.constant(null), fc.jsonValue(), fc.double(), fc.integer({ min: 946684800000, max: 4102444799999 }), fc.date({ noInvalidDate: false }));
    const record = fc.record(
      {
        topic: fc.oneof(fc.constant(undefined), fc.constantFrom('line1/temp', '')),
        payload: fc.oneof(fc.double(), fc.dictionary(fc.constantFrom('value', 'source', 'time', 'ts', 'kind', 'seq', 'unit'), value)),
        timestamp: fc.oneof(fc.constant(undefined), fc.integer({ min: 946684800000, max: 4102444799999 })),
        seq: fc.oneof(fc.constant(undefined), fc.integer()),
        kind: fc.oneof(fc.constant(undefined), fc.string()),
      },
      { requiredKeys: ['payload'] }
    );
    const mapped = (input: unknown, byName: boolean, options: typeof defaults) => {
      const rows = new RowColumns();
      const rejected = mapRow(input as TelemetryRecord, RECEIVED_AT, options, rows, byName);
      return { rejected, rows: { ...rows } };
    };
    // Payloads as flows make them, and odd ones: no prototype, a getter that throws on a field
    // the row does not read, a getter for a field it does.
    const odd = fc.constantFrom('plain', 'null-prototype', 'throwing unit', 'value getter');
    const shaped = (payload: unknown, how: string): unknown => {
      if (typeof payload !== 'object' || payload === null || how === 'plain') return payload;
      if (how === 'null-prototype') return Object.assign(Object.create(null), payload);
      const copy = { ...(payload as object) };
      if (how === 'throwing unit') Object.defineProperty(copy, 'unit', { enumerable: true, get: () => { throw new Error('boom'); } });
      else Object.defineProperty(copy, 'value', { enumerable: true, get: () => 21.5 });
      return copy;
    };
    fc.assert(
      fc.property(record, fc.boolean(), odd, (input, extra, how) => {
        const options = extra ? withExtra : defaults;
        const odd = { ...input, payload: shaped(input.payload, how) };
        assert.deepStrictEqual(mapped(odd, true, options), mapped(odd, false, options));
      }),
      { numRuns: 3000 }
    );
  });

  it('reads by name only with the default names and only while Object.prototype has none of them', function () {
    assert.strictEqual(readsByName(defaults), true);
    assert.strictEqual(readsByName(resolveMappingOptions({ valueProperty: 'v' })), false);
    assert.strictEqual(readsByName(resolveMappingOptions({ timeProperty: 'ts' })), false);
    Object.defineProperty(Object.prototype, 'value', { value: 5, configurable: true, writable: true });
    try {
      assert.strictEqual(readsByName(defaults), false);
      assert.match(reason({ topic: 'line1/temp', payload: { unit: 'C' } }), /payload has no value/, 'an inherited value is not the reading\'s');
    } finally {
      delete (Object.prototype as Record<string, unknown>).value;
    }
    assert.strictEqual(readsByName(defaults), true);
  });
});

describe('the source a reading is numbered in (records.ts sourceOf) is the source of its row', function () {
  it('for every payload the sink stores, with the default and with another Source from', function () {
    const vm = require('node:vm') as typeof import('node:vm');
    const foreign = (fields: object): object => vm.runInNewContext(`(${JSON.stringify(fields)})`);
    const payloads: unknown[] = [
      1.5,
      true,
      { value: 1 },
      { value: 1, source: 'pump' },
      { value: 1, source: '' },
      { value: 1, source: 42 },
      { value: 1, device: 'fan' },
      { value: 1, source: 'pump', device: 'fan' },
      Object.assign(Object.create(null), { value: 1, source: 'nil-proto', device: 'nil-fan' }),
      foreign({ value: 1, source: 'realm', device: 'realm-fan' }),
      Object.defineProperty({ value: 1 }, 'source', { value: 'hidden', enumerable: false }),
    ];
    for (const sourceProperty of ['source', 'device']) {
      const options = resolveMappingOptions({ sourceProperty });
      let stored = 0;
      for (const payload of payloads) {
        for (const topic of ['gw1', undefined]) {
          const record = { topic, payload } as TelemetryRecord;
          const result = mapRecord(record, RECEIVED_AT, options);
          if (!result.ok) continue;
          stored++;
          assert.equal(sourceOf(record, sourceProperty), result.row.source, `${sourceProperty}: ${JSON.stringify(payload)} under ${String(topic)}`);
        }
      }
      assert.ok(stored >= 12, `stored ${stored}`);
    }
  });
});
