import assert from 'assert';
import { recordOf, shortLivedRecordOf, TelemetryMessageLike } from '../src/core/records';

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
    assert.strictEqual(recordOf(messages[0]).payload, messages[0].payload, 'the payload is shared, not copied');
  });

  it('shortLivedRecordOf (its own allocation site) gives exactly what recordOf gives', function () {
    for (const msg of messages) {
      const a = recordOf(msg);
      const b = shortLivedRecordOf(msg);
      assert.deepStrictEqual(b, a);
      assert.deepStrictEqual(Object.keys(b), Object.keys(a), 'same fields in the same order, so the same JSON text');
      assert.strictEqual(JSON.stringify(b), JSON.stringify(a));
    }
  });
});
