import assert from 'assert';
import fc from 'fast-check';
import { isPlainReading, readingCount, readShapeOptions, recordsOf, resolveShapeOptions, shapeMessage, type ShapeOptions, type ShapeResult } from '../src/core/readings/shapes';
import { appendRecords, recordOf, type TelemetryRecord } from '../src/core/readings/records';
import { mapRecord, resolveMappingOptions } from '../src/core/sink/row-mapping';
import { TelemetryGenerator } from '../src/core/simulator/simulator';
import * as real from './fixtures/input-messages';

type Msg = Record<string, any>;

const RECEIVED_AT = Date.UTC(2026, 5, 1, 12, 0, 0);
const RECEIVED = new Date(RECEIVED_AT).toISOString();
const mapping = resolveMappingOptions({ extra: true });

function shape(msg: Msg, options?: ShapeOptions): ShapeResult {
  return shapeMessage(msg, options === undefined ? undefined : resolveShapeOptions(options));
}

function readingsOf(result: ShapeResult): { shape: string; readings: TelemetryRecord[]; refused: string[] } {
  if (result.outcome !== 'readings') assert.fail(`expected readings, got "not a reading": ${result.reason}`);
  return { shape: result.shape, readings: result.readings, refused: result.refused.map((r) => r.reason) };
}

/** [source, time, value, kind] of each row the readings map to. */
function table(result: ShapeResult): [string, string, number | null, string | null][] {
  return readingsOf(result).readings.map((record) => {
    const mapped = mapRecord(record, RECEIVED_AT, mapping);
    if (!mapped.ok) assert.fail(`${record.topic}: ${mapped.reason}`);
    return [mapped.row.source, new Date(mapped.row.time).toISOString(), mapped.row.value, mapped.row.kind];
  });
}

function notAReading(result: ShapeResult): string {
  if (result.outcome !== 'not-a-reading') assert.fail(`expected "not a reading", got ${readingCount(result)} readings`);
  return result.reason;
}

/** What the pipeline made of a message before shapes existed. */
function before(msg: Msg): TelemetryRecord[] {
  const out: TelemetryRecord[] = [];
  appendRecords(msg, out);
  return out;
}

describe('input shapes', function () {
  describe('auto keeps what the pipeline always did', function () {
    it("the simulator's messages, one event or an array of events, give exactly the records they gave", function () {
      for (const eventsPerMessage of [1, 5]) {
        const generator = new TelemetryGenerator({ sources: 10, eventsPerMessage, seed: 7 });
        const messages = generator.generate(300, RECEIVED_AT) as unknown as Msg[];
        messages.forEach((msg, i) => {
          msg.seq = i * eventsPerMessage;
          msg.timestamp = RECEIVED_AT + i;
          const { shape: read, readings, refused } = readingsOf(shape(msg));
          assert.equal(read, eventsPerMessage === 1 ? 'single' : 'events');
          assert.deepStrictEqual(refused, []);
          assert.deepStrictEqual(readings, before(msg));
        });
      }
    });

    it('a detection {value: 1, kind, label, confidence} and a sample {value, kind, time, seq, unit} stay one reading each', function () {
      const detection = { topic: 'sim/line1/cam1', kind: 'detection', payload: { value: 1, kind: 'detection', time: RECEIVED_AT, seq: 4, label: 'helmet', confidence: 0.93 } };
      const sample = { topic: 'sim/line1/temp1', kind: 'sample', payload: { value: 21.37, kind: 'sample', time: RECEIVED_AT, seq: 9, unit: 'C' } };
      for (const msg of [detection, sample]) assert.deepStrictEqual(readingsOf(shape(msg)), { shape: 'single', readings: before(msg), refused: [] });
    });

    it('any object with a value field is one reading, whatever else it carries', function () {
      fc.assert(
        fc.property(
          fc.oneof(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.boolean(), fc.constant(null)),
          fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }), fc.oneof(fc.double(), fc.boolean(), fc.string(), fc.constant(null))),
          fc.option(fc.integer({ min: 0, max: 1e6 }), { nil: undefined }),
          (value, rest, seq) => {
            const msg: Msg = { topic: 'line/x', payload: { ...rest, value }, seq };
            const result = shape(msg);
            assert.deepStrictEqual(readingsOf(result), { shape: 'single', readings: before(msg), refused: [] });
          },
        ),
      );
    });

    it('numbers, booleans and strings are one reading each (a string is still refused by the sink, as before)', function () {
      for (const payload of [21.5, 0, true, false, 'on', Number.NaN]) {
        const msg = { topic: 'line1/x', payload };
        assert.deepStrictEqual(readingsOf(shape(msg)), { shape: 'single', readings: before(msg), refused: [] });
      }
    });

    it('an object with a kind, a source or a seq and no value stays one reading (a row with value NULL)', function () {
      for (const payload of [{ kind: 'door-open', label: 'north' }, { source: 'line1/door', open: 1 }, { seq: 5, count: 3 }]) {
        const msg = { topic: 'line1/door', payload };
        assert.deepStrictEqual(readingsOf(shape(msg)), { shape: 'single', readings: before(msg), refused: [] });
      }
    });

    it('a record group (what the buffer sends to batchers) is its records, untouched', function () {
      const records = [{ topic: 'a', payload: 1, seq: 3, timestamp: RECEIVED_AT }, { topic: 'b', payload: { value: 2 }, seq: 4 }];
      assert.deepStrictEqual(readingsOf(shape({ payload: records, telemetryRecords: true })), { shape: 'records', readings: records, refused: [] });
    });

    it('shape single reads everything as before, an array as events, but still knows what is not a reading', function () {
      const named = { topic: 't', payload: { temperature: 21.3, humidity: 40 } };
      assert.deepStrictEqual(readingsOf(shape(named, { shape: 'single' })).readings, before(named));
      assert.deepStrictEqual(readingsOf(shape(real.modbusReadHolding, { shape: 'single' })).readings, before(real.modbusReadHolding));
      assert.match(notAReading(shape(real.opcuaSubscriptionId, { shape: 'single' })), /subscription id/);
    });
  });

  describe('named values: one reading per field', function () {
    it('node-red-contrib-s7 "all variables" (topic empty): the source is the variable name', function () {
      // red/s7.js S7In sendMsg(data, '') in mode "all": {payload: {<name>: value, ...}, topic: ''}.
      const result = shape({ topic: '', payload: { temp: 21.3, running: true, count: 1042 } });
      assert.deepStrictEqual(table(result), [
        ['temp', RECEIVED, 21.3, null],
        ['running', RECEIVED, 1, null],
        ['count', RECEIVED, 1042, null],
      ]);
      assert.equal(readingsOf(result).shape, 'named-values');
    });

    it('node-red-contrib-s7 "single variable" and "all variables, one per message": one value, the name as topic', function () {
      assert.deepStrictEqual(table(shape({ topic: 'temp', payload: 21.3 })), [['temp', RECEIVED, 21.3, null]]);
    });

    it('MQTT JSON {"temperature": 21.3, "humidity": 40}: <topic>/<name>, the time from ts, time or timestamp', function () {
      assert.deepStrictEqual(table(shape({ topic: 'site/room1', payload: { temperature: 21.3, humidity: 40 } })), [
        ['site/room1/temperature', RECEIVED, 21.3, null],
        ['site/room1/humidity', RECEIVED, 40, null],
      ]);
      for (const timeKey of ['ts', 'time', 'timestamp']) {
        const result = shape({ topic: 'site/room1', payload: { temperature: 21.3, [timeKey]: Date.UTC(2026, 2, 3, 4, 5, 6), humidity: 40 } });
        assert.deepStrictEqual(table(result).map(([source, time]) => [source, time]), [
          ['site/room1/temperature', '2026-03-03T04:05:06.000Z'],
          ['site/room1/humidity', '2026-03-03T04:05:06.000Z'],
        ], timeKey);
      }
      assert.deepStrictEqual(table(shape({ topic: 'r', payload: { t: 1, time: '2026-03-03T04:05:06Z' }, timestamp: RECEIVED_AT }))[0][1], '2026-03-03T04:05:06.000Z', 'a payload time wins over msg.timestamp');
      assert.deepStrictEqual(table(shape({ topic: 'r', payload: { t: 1 }, timestamp: Date.UTC(2026, 2, 3) }))[0][1], '2026-03-03T00:00:00.000Z', 'else msg.timestamp');
    });

    it('an object with a field that is not a number or a boolean is one reading in auto (as before), each field in named-values', function () {
      const msg = { topic: 'line1', payload: { temp: 21.3, unit: 'C', motor: { rpm: 1400 }, temps: [1, 2] } };
      assert.deepStrictEqual(readingsOf(shape(msg)), { shape: 'single', readings: before(msg), refused: [] });
      const named = readingsOf(shape(msg, { shape: 'named-values' }));
      assert.deepStrictEqual(named.readings.map((r) => [r.topic, r.payload]), [['line1/temp', 21.3]]);
      assert.deepStrictEqual(named.refused, [
        'line1/unit: payload.unit is a string ("C"), expected a number or a boolean',
        'line1/motor: payload.motor is an object, expected a number or a boolean',
        'line1/temps: payload.temps is an array, expected a number or a boolean',
      ]);
    });

    it('shape named-values reads a value field as a name like any other; a payload that is not an object is refused', function () {
      assert.deepStrictEqual(readingsOf(shape({ topic: 'x', payload: { value: 3, b: 4 } }, { shape: 'named-values' })).readings.map((r) => r.topic), ['x/value', 'x/b']);
      assert.deepStrictEqual(readingsOf(shape({ topic: 'x', payload: 5 }, { shape: 'named-values' })).refused, ['x: payload is 5, expected an object of named values (shape: named-values)']);
      assert.deepStrictEqual(readingsOf(shape({ topic: 'x', payload: { ts: RECEIVED_AT } }, { shape: 'named-values' })).refused, ['x: payload has only time fields, no named values']);
    });

    it('reading i of a message stamped seq s gets s + i (as array payloads always did); the separator is an option', function () {
      const { readings } = readingsOf(shape({ topic: 'line1', seq: 40, payload: { a: 1, b: 2, c: 3 } }, { separator: '.' }));
      assert.deepStrictEqual(readings.map((r) => [r.topic, r.seq]), [['line1.a', 40], ['line1.b', 41], ['line1.c', 42]]);
      assert.deepStrictEqual(readingsOf(shape({ topic: 'line1', payload: { a: 1 } })).readings[0].seq, undefined, 'no seq without msg.seq');
    });

    it('the reading keys follow the sink mapping options: with valueProperty "v", {value, unit} is not special', function () {
      assert.equal(readingsOf(shape({ topic: 't', payload: { v: 2, other: 3 } }, { valueProperty: 'v' })).shape, 'single');
      assert.equal(readingsOf(shape({ topic: 't', payload: { value: 2, other: 3 } }, { valueProperty: 'v' })).shape, 'named-values');
    });

    it('a field named __proto__ (JSON.parse makes one) is a name like any other, never the prototype', function () {
      const { readings } = readingsOf(shape({ topic: 't', payload: JSON.parse('{"__proto__": 5, "a": 1}') }));
      assert.deepStrictEqual(readings.map((r) => [r.topic, r.payload]), [['t/__proto__', 5], ['t/a', 1]]);
    });
  });

  describe('Modbus registers (node-red-contrib-modbus 5.23.3)', function () {
    it('modbus-read: one reading per register, <topic>/hr<address>, the address from msg.input.payload', function () {
      const result = shape(real.modbusReadHolding);
      assert.deepStrictEqual(table(result), [
        ['plc1/hr10', RECEIVED, 100, null],
        ['plc1/hr11', RECEIVED, 101, null],
        ['plc1/hr12', RECEIVED, 102, null],
        ['plc1/hr13', RECEIVED, 103, null],
      ]);
      assert.equal(readingsOf(result).shape, 'registers');
      assert.equal(readingCount(result), 4);
      const rowsBefore = before(real.modbusReadHolding).map((r) => mapRecord(r, RECEIVED_AT, mapping));
      assert.deepStrictEqual(rowsBefore.map((r) => r.ok && r.row.source), ['plc1', 'plc1', 'plc1', 'plc1'], 'without shapes: four values of one source "plc1"');
    });

    it('output 2 (response object as payload, values in msg.values) reads the same', function () {
      assert.deepStrictEqual(table(shape(real.modbusReadHoldingOutput2)), table(shape(real.modbusReadHolding)));
    });

    it('coils: only the quantity read, booleans as 1 and 0, source <topic>/coil<address>', function () {
      assert.deepStrictEqual(table(shape(real.modbusReadCoils)).map(([s, , v]) => [s, v]), [['plc1/coil0', 1], ['plc1/coil1', 0], ['plc1/coil2', 1]]);
    });

    it('modbus-flex-getter: msg.modbusRequest; input registers and discrete inputs have their own prefixes', function () {
      assert.deepStrictEqual(table(shape(real.modbusFlexGetter)).map(([s, , v]) => [s, v]), [['plc1/hr12', 102], ['plc1/hr13', 103]]);
      const ir = { ...real.modbusFlexGetter, modbusRequest: { ...real.modbusFlexGetter.modbusRequest, fc: 4 } };
      const di = { ...real.modbusFlexGetter, payload: [true], modbusRequest: { ...real.modbusFlexGetter.modbusRequest, fc: 2, quantity: 1 } };
      assert.deepStrictEqual(readingsOf(shape(ir)).readings.map((r) => r.topic), ['plc1/ir12', 'plc1/ir13']);
      assert.deepStrictEqual(readingsOf(shape(di)).readings.map((r) => r.topic), ['plc1/di12']);
    });

    it('time: msg.timestamp (the buffer sets it at ingest), else the time of receipt; seq s + i', function () {
      const { readings } = readingsOf(shape({ ...real.modbusReadHolding, timestamp: Date.UTC(2026, 1, 1), seq: 7 }));
      assert.deepStrictEqual(readings.map((r) => [r.timestamp, r.seq]), [0, 1, 2, 3].map((i) => [Date.UTC(2026, 1, 1), 7 + i]));
    });

    it('a failed read sent by "empty message on fail" is not a reading', function () {
      assert.equal(notAReading(shape(real.modbusReadFailed)), 'the input node reported a failed read: Data length error, expected 9 got 5');
      assert.equal(readingCount(shape(real.modbusReadFailed)), 0);
    });

    it('an array without its Modbus request is events in auto, refused in shape registers', function () {
      const msg = { topic: 'plc1', payload: [1, 2, 3] };
      assert.deepStrictEqual(readingsOf(shape(msg)), { shape: 'events', readings: before(msg), refused: [] });
      const refused = readingsOf(shape(msg, { shape: 'registers' }));
      assert.deepStrictEqual([refused.readings, refused.refused.length], [[], 1]);
      assert.match(refused.refused[0], /^plc1: expected a Modbus read/);
    });

    it('a register that is not a number is refused with its source', function () {
      const msg = { ...real.modbusReadHolding, payload: [100, 'x', 102, 103] };
      assert.deepStrictEqual(readingsOf(shape(msg)).refused, ['plc1/hr11: the register value is a string ("x"), expected a number or a boolean']);
    });
  });

  describe('OPC UA values (node-red-contrib-opcua 0.2.354)', function () {
    it('subscribe / read: the value at its source timestamp, source = msg.topic (the node id)', function () {
      assert.deepStrictEqual(table(shape(real.opcuaSubscribeGood)), [['ns=1;s=MyVariable2', '2026-11-28T19:52:26.224Z', 21.5, null]]);
      assert.deepStrictEqual(table(shape(real.opcuaReadCounter)), [['ns=1;s=Counter', '2026-11-28T19:52:23.437Z', 1, null]]);
    });

    it('the source timestamp wins over msg.timestamp (which the buffer sets at ingest), then the server timestamp', function () {
      assert.deepStrictEqual(table(shape({ ...real.opcuaSubscribeGood, timestamp: RECEIVED_AT }))[0][1], '2026-11-28T19:52:26.224Z');
      const noSource = { ...real.opcuaReadCounter, sourceTimestamp: null, serverTimestamp: new Date('2026-11-28T20:00:00.000Z') };
      assert.deepStrictEqual(table(shape(noSource))[0][1], '2026-11-28T20:00:00.000Z');
    });

    it('Uncertain and Bad are refused by default, with the status in the reason; never stored as good', function () {
      for (const [msg, text] of [
        [real.opcuaSubscribeUncertain, 'UncertainLastUsableValue (0x40900000) is uncertain'],
        [real.opcuaSubscribeBad, 'BadSensorFailure (0x808C0000) is bad'],
      ] as const) {
        const { readings, refused } = readingsOf(shape(msg));
        assert.deepStrictEqual(readings, []);
        assert.deepStrictEqual(refused, [`ns=1;s=MyVariable2: OPC UA status ${text}; quality good-only stores only Good values`]);
      }
    });

    it('quality keep-uncertain keeps Uncertain (kind "uncertain"), refuses Bad; keep-all keeps both', function () {
      assert.deepStrictEqual(table(shape(real.opcuaSubscribeUncertain, { quality: 'keep-uncertain' })), [['ns=1;s=MyVariable2', '2026-01-02T03:04:05.000Z', 22.5, 'uncertain']]);
      assert.deepStrictEqual(readingsOf(shape(real.opcuaSubscribeBad, { quality: 'keep-uncertain' })).refused, ['ns=1;s=MyVariable2: OPC UA status BadSensorFailure (0x808C0000) is bad; quality keep-uncertain stores only Good and Uncertain values']);
      assert.deepStrictEqual(table(shape(real.opcuaSubscribeBad, { quality: 'keep-all' })), [['ns=1;s=MyVariable2', '2026-01-02T03:04:06.000Z', 23.5, 'bad']]);
      const { readings } = readingsOf(shape(real.opcuaSubscribeBad, { quality: 'keep-all' }));
      assert.deepStrictEqual(readings[0].payload, { value: 23.5, statusCode: 0x808c0000, statusName: 'BadSensorFailure' }, 'status code and name go to extra');
    });

    it('a kept Bad value without a value is a row with value NULL and kind "bad"', function () {
      const msg = { ...real.opcuaSubscribeBad, payload: null };
      assert.deepStrictEqual(table(shape(msg, { quality: 'keep-all' })), [['ns=1;s=MyVariable2', '2026-01-02T03:04:06.000Z', null, 'bad']]);
      assert.deepStrictEqual(readingsOf(shape({ ...real.opcuaSubscribeGood, payload: null })).refused, ['ns=1;s=MyVariable2: the OPC UA value is empty (status Good (0x00000000))']);
    });

    it('after JSON (spool, disk tier: statusCode {value}, times as ISO text) the rows are the same', function () {
      for (const msg of [real.opcuaSubscribeGood, real.opcuaSubscribeUncertain, real.opcuaSubscribeBad, real.opcuaReadCounter, real.opcuaReadMultipleAll, real.opcuaGroupChange]) {
        for (const quality of ['good-only', 'keep-all'] as const) {
          const live = readingsOf(shape(msg, { quality }));
          const json = readingsOf(shape(JSON.parse(JSON.stringify(msg)), { quality }));
          assert.deepStrictEqual(json.refused.length, live.refused.length);
          const rows = (records: TelemetryRecord[]) => records.map((r) => mapRecord(r, RECEIVED_AT, resolveMappingOptions()));
          assert.deepStrictEqual(rows(json.readings), rows(live.readings), 'same rows without extra (the status name is not in the JSON)');
        }
      }
    });

    it('readmultiple "ALL" and output 3: one reading per DataValue, the node ids from the items', function () {
      for (const msg of [real.opcuaReadMultipleAll, real.opcuaReadMultipleOutput3]) {
        const result = shape(msg, { quality: 'keep-all' });
        assert.deepStrictEqual(table(result), [
          ['ns=1;s=MyVariable2', '2026-01-02T03:04:06.000Z', 23.5, 'bad'],
          ['ns=1;s=Counter', '2026-11-28T19:52:58.992Z', 1, null],
        ]);
        assert.equal(readingCount(shape(msg)), 2, 'the refused Bad one counts too');
      }
    });

    it('a group subscription change: the DataValue payload, source = msg.topic', function () {
      assert.deepStrictEqual(table(shape(real.opcuaGroupChange)), [['ns=1;s=Counter', '2026-11-28T20:12:08.446Z', 1, null]]);
    });

    it('values that are not numbers or booleans (String, DateTime, arrays, structures) are refused with a reason', function () {
      for (const [payload, text] of [
        ['running', 'a string ("running")'],
        [new Date(RECEIVED_AT), 'a Date'],
        [[1, 2], 'an array'],
        [{ x: 1 }, 'an object'],
      ] as const) {
        assert.deepStrictEqual(readingsOf(shape({ ...real.opcuaSubscribeGood, payload })).refused, [`ns=1;s=MyVariable2: the OPC UA value is ${text}, expected a number or a boolean`]);
      }
    });

    it('in auto a msg.statusCode needs a timestamp beside it (an HTTP response has a statusCode too); shape opcua needs only the status', function () {
      const http = { topic: 'api', payload: 5, statusCode: 200 };
      assert.deepStrictEqual(readingsOf(shape(http)), { shape: 'single', readings: before(http), refused: [] });
      const explicit = readingsOf(shape({ topic: 'ns=1;i=5', payload: 5, statusCode: 0 }, { shape: 'opcua' }));
      assert.deepStrictEqual(explicit.readings.map((r) => [r.topic, r.payload]), [['ns=1;i=5', 5]]);
      assert.match(readingsOf(shape({ topic: 'x', payload: 5 }, { shape: 'opcua' })).refused[0], /^x: expected an OPC UA value/);
    });

    it('a status code is read from the live object, its JSON {value}, a copy {_value, _name} or a number', function () {
      for (const statusCode of [real.opcuaSubscribeUncertain.statusCode, { value: 0x40900000 }, { _value: 0x40900000, _name: 'UncertainLastUsableValue' }, 0x40900000]) {
        const { readings } = readingsOf(shape({ ...real.opcuaSubscribeGood, statusCode }, { quality: 'keep-all' }));
        assert.equal(readings[0].kind, 'uncertain');
        assert.equal((readings[0].payload as Msg).statusCode, 0x40900000);
      }
    });
  });

  describe('messages that are not readings', function () {
    it('the OPC UA subscription id (3234512922 was stored as a reading before)', function () {
      assert.equal(notAReading(shape(real.opcuaSubscriptionId)), "OPC UA subscription id 3234512922 (the client's own message when a subscription starts)");
      const stored = mapRecord(before(real.opcuaSubscriptionId)[0], RECEIVED_AT, mapping);
      assert.deepStrictEqual(stored.ok && [stored.row.source, stored.row.value], ['subscriptionId', 3234512922], 'what the sink made of it without shapes');
    });

    it('status messages: the OPC UA client output 2, a Node-RED status node', function () {
      assert.equal(notAReading(shape(real.opcuaStatus)), 'status message (session active)');
      assert.equal(notAReading(shape(real.opcuaStatusError)), "the input node reported a failed read: can't work without OPC UA client");
      assert.equal(notAReading(shape({ status: { fill: 'red', shape: 'ring', text: 'disconnected', source: { id: 'n1', type: 'mqtt in' } } })), 'status message (disconnected)');
    });

    it('empty polls: an empty array, an empty object', function () {
      assert.equal(notAReading(shape({ topic: 'plc1', payload: [] })), 'empty poll: payload is an empty array');
      assert.equal(notAReading(shape({ topic: '', payload: {} })), 'empty poll: payload is an empty object');
    });

    it('OPC UA browse results', function () {
      assert.equal(notAReading(shape(real.opcuaBrowse)), 'OPC UA browse result (4 references)');
    });

    it('are recognised whatever the shape option says', function () {
      for (const option of ['single', 'named-values', 'registers', 'opcua'] as const) {
        for (const msg of [real.opcuaSubscriptionId, real.opcuaStatus, real.modbusReadFailed, real.opcuaBrowse, { topic: 'x', payload: [] }]) {
          assert.equal(shape(msg, { shape: option }).outcome, 'not-a-reading', `${option}: ${JSON.stringify(msg.topic)}`);
        }
      }
    });

    it('a message without a payload and without a status is still one reading the sink refuses, as before', function () {
      const msg = { topic: 'x' };
      assert.deepStrictEqual(readingsOf(shape(msg)), { shape: 'single', readings: before(msg), refused: [] });
    });
  });

  describe('options and robustness', function () {
    it('refuses unknown shapes, qualities and property names at deploy', function () {
      assert.throws(() => resolveShapeOptions({ shape: 'csv' as never }), /shape must be one of auto, single, named-values, registers, opcua/);
      assert.throws(() => resolveShapeOptions({ quality: 'all' as never }), /quality must be one of good-only, keep-uncertain, keep-all/);
      assert.throws(() => resolveShapeOptions({ valueProperty: '__proto__' }), /valueProperty/);
      assert.throws(() => resolveShapeOptions({ timeProperty: [''] }), /timeProperty/);
    });

    it('never throws: a payload whose getter throws is one refused reading with the reason', function () {
      const payload = Object.defineProperty({}, 'a', { enumerable: true, get: () => { throw new Error('boom'); } });
      const { refused } = readingsOf(shape({ topic: 't', payload }));
      assert.deepStrictEqual(refused, ['t: message could not be read: boom']);
      const msg = Object.defineProperty({ topic: 'u' }, 'payload', { enumerable: true, get: () => { throw new Error('bang'); } });
      assert.deepStrictEqual(readingsOf(shape(msg)).refused, ['u: message could not be read: bang'], 'a payload getter that throws');
    });

    it('the nodes read shape and quality as the editor saves them, and refuse what they do not know at deploy', function () {
      assert.deepStrictEqual([readShapeOptions({}).shape, readShapeOptions({}).quality], ['auto', 'good-only']);
      assert.deepStrictEqual([readShapeOptions({ shape: '', quality: '' }).shape, readShapeOptions({ shape: 'registers', quality: 'keep-all' }).quality], ['auto', 'keep-all']);
      assert.throws(() => readShapeOptions({ shape: 'csv' }), /Input shape must be one of auto, single, named-values, registers, opcua, got "csv"/);
      assert.throws(() => readShapeOptions({ quality: 'all' }), /OPC UA quality must be one of good-only, keep-uncertain, keep-all/);
      assert.ok(readShapeOptions({}, { valueProperty: 'v' }).readingKeys.has('v'), "a sink's property names");
    });

    it('never throws and always answers, for any JSON message', function () {
      fc.assert(
        fc.property(fc.record({ topic: fc.oneof(fc.string(), fc.constant(undefined)), payload: fc.jsonValue(), seq: fc.option(fc.integer(), { nil: undefined }) }), (msg) => {
          for (const option of ['auto', 'single', 'named-values', 'registers', 'opcua'] as const) {
            const result = shape(msg as Msg, { shape: option });
            assert.ok(result.outcome === 'not-a-reading' ? result.reason.length > 0 : readingCount(result) >= 1);
          }
        }),
      );
    });
  });
  describe('what the nodes use', function () {
    const inputs: Msg[] = [
      real.modbusReadHolding, real.modbusReadHoldingOutput2, real.modbusReadCoils, real.modbusReadFailed, real.modbusFlexGetter,
      real.opcuaSubscriptionId, real.opcuaStatus, real.opcuaStatusError, real.opcuaSubscribeGood, real.opcuaSubscribeUncertain, real.opcuaSubscribeBad,
      real.opcuaReadCounter, real.opcuaGroupChange, real.opcuaReadMultipleAll, real.opcuaReadMultipleOutput3, real.opcuaBrowse,
      { topic: 'zigbee/kitchen', payload: { temperature: 21.5, humidity: 40 } }, { topic: 's7', payload: { temp: 21.3, running: true, ts: 1 } },
      { topic: 'x', payload: {} }, { topic: 'x', payload: [] }, { topic: 'x', payload: [1, 2] },
    ];

    /** isPlainReading is a shortcut: wherever it says yes, shapeMessage reads exactly recordOf(msg). */
    function agrees(msg: Msg, options?: ShapeOptions): void {
      const resolved = resolveShapeOptions(options);
      if (!isPlainReading(msg, resolved)) return;
      assert.deepStrictEqual(shapeMessage(msg, resolved), { outcome: 'readings', shape: 'single', readings: [recordOf(msg)], refused: [] }, JSON.stringify(msg));
    }

    it("isPlainReading: yes for the simulator's and MQTT's one-reading messages, no for every input node's message", function () {
      const generator = new TelemetryGenerator({ sources: 10, eventsPerMessage: 1, seed: 3 });
      for (const msg of generator.generate(200, RECEIVED_AT) as unknown as Msg[]) {
        assert.equal(isPlainReading(msg), true);
        agrees(msg);
      }
      for (const msg of [{ topic: 't', payload: 21.5 }, { topic: 't', payload: true }, { topic: 't', payload: { value: 1, ts: 5 } }, { topic: 't', payload: 'text' }, { topic: 't' }]) assert.equal(isPlainReading(msg), true, JSON.stringify(msg));
      for (const msg of inputs) {
        assert.equal(isPlainReading(msg), false, JSON.stringify(msg.topic));
        for (const option of ['auto', 'single', 'named-values', 'registers', 'opcua'] as const) agrees(msg, { shape: option });
      }
      // An explicit shape other than single always takes the full reading.
      assert.equal(isPlainReading({ topic: 't', payload: 1 }, resolveShapeOptions({ shape: 'opcua' })), false);
      assert.equal(isPlainReading({ topic: 't', payload: 1 }, resolveShapeOptions({ shape: 'single' })), true);
    });

    it('isPlainReading agrees with shapeMessage for any JSON message, in every shape', function () {
      fc.assert(
        fc.property(
          fc.record({ topic: fc.oneof(fc.string(), fc.constant('subscriptionId'), fc.constant(undefined)), payload: fc.oneof(fc.jsonValue(), fc.dictionary(fc.constantFrom('value', 'a', 'time', 'statusCode'), fc.jsonValue())), statusCode: fc.option(fc.constant({ value: 0 }), { nil: undefined }), sourceTimestamp: fc.option(fc.constant(1), { nil: undefined }), error: fc.option(fc.string(), { nil: undefined }) }, { requiredKeys: ['payload'] }),
          (msg) => {
            for (const option of ['auto', 'single', 'named-values', 'registers', 'opcua'] as const) agrees(msg as Msg, { shape: option });
          },
        ),
        { numRuns: 500 },
      );
    });

    it('recordsOf: the readings to store, then the refused ones carrying their reason, which the sink rejects with', function () {
      const result = shape(real.opcuaReadMultipleAll);
      const records = recordsOf(result);
      assert.deepStrictEqual(records.map((r) => [r.topic, r.payload, r.refused]), [
        ['ns=1;s=Counter', 1, undefined],
        ['ns=1;s=MyVariable2', 23.5, 'ns=1;s=MyVariable2: OPC UA status BadSensorFailure (0x808C0000) is bad; quality good-only stores only Good values'],
      ]);
      assert.deepStrictEqual(mapRecord(records[1], RECEIVED_AT, mapping), { ok: false, reason: records[1].refused });
      assert.equal(mapRecord(records[0], RECEIVED_AT, mapping).ok, true);
      assert.deepStrictEqual(recordsOf(shape(real.opcuaSubscriptionId)), []);
      const plain = shape({ topic: 't', payload: 1 });
      assert.strictEqual(recordsOf(plain), (plain as { readings: TelemetryRecord[] }).readings, 'nothing copied when nothing is refused');
    });
  });
});
