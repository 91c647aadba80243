import assert from 'assert';
import fc from 'fast-check';
import { ByteLog } from '../src/core/buffer/byte-log';
import { approximateSize } from '../src/core/buffer/approximate-size';
import type { DropPolicy, DropReason } from '../src/core/buffer/event-store';
import { RingBuffer } from '../src/core/buffer/ring-buffer';
import { assertCountsAddUp } from './support/counting';

// The ring against a reference model: store-suite.test.ts, with every other store.
describe('RingBuffer', function () {
  describe('memory limit (a bound in bytes besides the capacity in events)', function () {
    const sized = (maxBytes: number) => ({ maxBytes, sizeOf: (item: { size: number }) => item.size });

    it('drop-oldest: the oldest go until the new one fits in bytes, counted as overflow like the capacity', function () {
      const dropped: number[] = [];
      const ring = new RingBuffer<{ id: number; size: number }>(100, 'drop-oldest', (item) => dropped.push(item.id), undefined, sized(1000));
      for (let id = 1; id <= 4; id++) ring.push({ id, size: 300 }, 1);
      assert.deepStrictEqual(dropped, [1], 'the fourth 300-byte item pushed the first out');
      assert.strictEqual(ring.counters().bytes, 900);
      ring.push({ id: 5, size: 700 }, 1);
      assert.deepStrictEqual(dropped, [1, 2, 3]);
      assert.deepStrictEqual(ring.counters(), { received: 5, released: 0, droppedOverflow: 3, droppedOversize: 0, depth: 2, highWater: 3, drained: 0, bytes: 1000 });
      assert.deepStrictEqual(ring.drain().map((x) => x.id), [4, 5]);
      assert.strictEqual(ring.counters().bytes, 0);
    });

    it('drop-newest refuses what does not fit in bytes; one item larger than the limit is oversize', function () {
      const dropped: [number, string][] = [];
      const ring = new RingBuffer<{ id: number; size: number }>(100, 'drop-newest', (item, _w, reason) => dropped.push([item.id, reason]), undefined, sized(1000));
      assert.strictEqual(ring.push({ id: 1, size: 600 }, 1), true);
      assert.strictEqual(ring.push({ id: 2, size: 600 }, 1), false);
      assert.strictEqual(ring.push({ id: 3, size: 400 }, 1), true);
      assert.strictEqual(ring.push({ id: 4, size: 1001 }, 1), false);
      assert.deepStrictEqual(dropped, [[2, 'overflow'], [4, 'oversize']]);
      const c = ring.counters();
      assert.strictEqual(c.droppedOverflow + c.droppedOversize, 2);
      assert.strictEqual(c.bytes, 1000);
      assert.strictEqual(ring.shift()?.id, 1);
      assert.strictEqual(ring.counters().bytes, 400);
    });

    it('what a full ring keeps encoded counts its exact bytes, and the limit holds with them', function () {
      const encoded: number[] = [];
      const codec = { encode: (item: { id: number; size: number }) => Buffer.alloc(item.size, 1), decode: (b: Buffer) => ({ id: -1, size: b.length }) };
      const ring = new RingBuffer<{ id: number; size: number }>(100, 'drop-oldest', undefined, { codec, onEncoded: (item) => encoded.push(item.id) }, { maxBytes: 1000, sizeOf: () => 100 });
      for (let id = 1; id <= 10; id++) ring.push({ id, size: 100 }, 1);
      assert.strictEqual(ring.counters().bytes, 1000);
      // Estimated at 100, encoded at 450: the bytes held decide, and older items go.
      ring.push({ id: 11, size: 450 }, 1);
      assert.deepStrictEqual(encoded, [11]);
      assert.ok((ring.counters().bytes as number) <= 1000, `bytes ${ring.counters().bytes}`);
      assert.strictEqual(ring.counters().bytes, 100 * (ring.length - 1) + 450);
      assertCountsAddUp(ring.counters());
    });

    it('approximateSize: about the encoded size, bounded work for long arrays, deep nesting and cycles', function () {
      const record = { topic: 'sim/line1/source1', payload: { value: 21.5, kind: 'sample', time: 1_700_000_000_000, seq: 4, unit: 'degC' }, timestamp: 1_700_000_000_000, seq: 4 };
      const json = JSON.stringify(record).length;
      const estimate = approximateSize(record);
      assert.ok(estimate > json * 0.6 && estimate < json * 1.6, `estimate ${estimate} for ${json} bytes of JSON`);
      assert.strictEqual(approximateSize({ payload: Buffer.alloc(10_000) }), 16 + 'payload'.length + 2 + 10_000);
      assert.ok(Math.abs(approximateSize('x'.repeat(10_000)) - 10_000) < 10);
      const long = Array.from({ length: 100_000 }, (_, i) => ({ v: i }));
      const big = approximateSize(long);
      assert.ok(big > 100_000 * 10 && big < 100_000 * 40, `a long array by sampling: ${big}`);
      const circular: Record<string, unknown> = { a: 1, b: 2, c: 3 };
      circular.self = circular;
      circular.again = circular;
      assert.ok(Number.isFinite(approximateSize(circular)));
      const msg = { topic: 't', payload: 1, req: { socket: { huge: 'x'.repeat(1_000_000) } }, res: {} };
      assert.ok(approximateSize(msg) < 100, 'HTTP in req/res are not counted');
    });
  });

    describe('constructor validation', function () {
    for (const bad of [0, -1, 1.5, NaN, '10', 60_000_000] as unknown[]) {
      it(`rejects capacity ${typeof bad === 'string' ? JSON.stringify(bad) : String(bad)} with a RangeError`, function () {
        assert.throws(
          () => new RingBuffer<number>(bad as number),
          (err: unknown) => {
            assert.ok(err instanceof RangeError);
            assert.match(err.message, /ring capacity must be a whole number of events from 1 to 50000000/);
            assert.ok(err.message.endsWith(`got ${String(bad)}`), err.message);
            return true;
          }
        );
      });
    }

    it('accepts capacity 1', function () {
      assert.strictEqual(new RingBuffer<number>(1).capacity, 1);
    });

    it('rejects an unknown policy with a RangeError naming the valid ones', function () {
      assert.throws(
        () => new RingBuffer<number>(10, 'drop-random' as DropPolicy),
        (err: unknown) => {
          assert.ok(err instanceof RangeError);
          assert.strictEqual(err.message, 'drop policy must be one of drop-oldest, drop-newest, got drop-random');
          return true;
        }
      );
    });

    it('defaults to drop-oldest', function () {
      assert.strictEqual(new RingBuffer<number>(3).policy, 'drop-oldest');
    });
  });

  describe('examples', function () {
    it('drop-oldest, capacity 5, 8 pushes: keeps 4..8 and reports 1..3 dropped', function () {
      const dropped: [number, number, DropReason][] = [];
      const ring = new RingBuffer<number>(5, 'drop-oldest', (item, weight, reason) => dropped.push([item, weight, reason]));
      for (let i = 1; i <= 8; i++) assert.strictEqual(ring.push(i, 1), true);
      assert.deepStrictEqual(dropped, [
        [1, 1, 'overflow'],
        [2, 1, 'overflow'],
        [3, 1, 'overflow'],
      ]);
      assert.deepStrictEqual(ring.drain(), [4, 5, 6, 7, 8]);
      assert.deepStrictEqual(ring.counters(), { received: 8, released: 0, droppedOverflow: 3, droppedOversize: 0, depth: 0, highWater: 5, drained: 5 });
    });

    it('compact, capacity 3, 10 pushes: drops what it holds as text without decoding it, and counts it', function () {
      const dropped: number[] = [];
      const encoded: number[] = [];
      let decoded = 0;
      const codec = { encode: (item: number) => String(item), decode: (data: Buffer) => (decoded++, Number(data.toString('utf8'))) };
      const ring = new RingBuffer<number>(3, 'drop-oldest', (item) => dropped.push(item), { codec, onEncoded: (item) => encoded.push(item) });
      for (let i = 1; i <= 10; i++) assert.strictEqual(ring.push(i, 1), true);
      // 4..10 each pushed one out and became text; 1..3 left as objects, 4..7 as text.
      assert.deepStrictEqual(encoded, [4, 5, 6, 7, 8, 9, 10]);
      assert.deepStrictEqual(dropped, [1, 2, 3]);
      assert.strictEqual(decoded, 0);
      assert.deepStrictEqual(ring.compactCounters(), { items: 3, bytes: 4 });
      assert.deepStrictEqual(ring.drain(), [8, 9, 10]);
      assert.strictEqual(decoded, 3);
      assert.deepStrictEqual(ring.counters(), { received: 10, released: 0, droppedOverflow: 7, droppedOversize: 0, depth: 0, highWater: 3, drained: 3 });
      assert.deepStrictEqual(ring.compactCounters(), { items: 0, bytes: 0 });
    });

    it('compact: while it holds text, what it takes in becomes text too, even with room; objects again once the text is gone', function () {
      const encoded: number[] = [];
      const codec = { encode: (item: number) => String(item), decode: (data: Buffer) => Number(data.toString('utf8')) };
      const ring = new RingBuffer<number>(3, 'drop-oldest', undefined, { codec, onEncoded: (item) => encoded.push(item) });
      for (let i = 1; i <= 4; i++) ring.push(i, 1); // 4 pushed 1 out: [2, 3, "4"]
      assert.deepStrictEqual(encoded, [4]);
      assert.strictEqual(ring.shift(), 2); // room for one, while "4" waits as text
      assert.strictEqual(ring.keepsAsObject(1), false);
      ring.push(5, 1);
      // Taken in behind a backlog of text, 5 would most likely be dropped old: it is kept as text.
      assert.deepStrictEqual(encoded, [4, 5]);
      assert.deepStrictEqual(ring.compactCounters(), { items: 2, bytes: 2 });
      assert.deepStrictEqual(ring.popBatch(3), [3, 4, 5]);
      assert.strictEqual(ring.keepsAsObject(1), true);
      ring.push(6, 1);
      assert.deepStrictEqual(encoded, [4, 5]);
      assert.deepStrictEqual(ring.compactCounters(), { items: 0, bytes: 0 });
      assert.deepStrictEqual(ring.drain(), [6]);
      assert.deepStrictEqual(ring.counters(), { received: 6, released: 4, droppedOverflow: 1, droppedOversize: 0, depth: 0, highWater: 3, drained: 1 });
    });

    it('compact: sizes its block once for a whole ring of text, not by doubling', function () {
      const capacity = 30000;
      const codec = { encode: (item: number) => Buffer.alloc(100, item % 256), decode: (data: Buffer) => data[0] };
      const ring = new RingBuffer<number>(capacity, 'drop-oldest', undefined, { codec });
      const blocks = new Set<Buffer>();
      const log = (): { allocated: number; buffer: Buffer } => (ring as unknown as { log: { allocated: number; buffer: Buffer } }).log;
      for (let i = 0; i < 3 * capacity; i++) {
        ring.push(i, 1);
        if (i >= capacity) blocks.add(log().buffer);
      }
      assert.deepStrictEqual(ring.compactCounters(), { items: capacity, bytes: 100 * capacity });
      // Doubling from 1 MiB took 1, 2 and 4 MiB blocks for these 3,000,000 bytes.
      assert.strictEqual(blocks.size, 2, 'the first block and the one for the whole ring');
      assert.ok(log().allocated <= 1.2 * 100 * capacity, `a block of ${log().allocated} bytes for ${100 * capacity}`);
      assert.deepStrictEqual(ring.popBatch(3), [(2 * capacity) % 256, (2 * capacity + 1) % 256, (2 * capacity + 2) % 256]);
    });

    it('drop-oldest without a drop listener: pushes the oldest out and counts it (it used to loop forever)', function () {
      const ring = new RingBuffer<number>(3, 'drop-oldest');
      for (let i = 1; i <= 5; i++) assert.strictEqual(ring.push(i, 1), true);
      assert.deepStrictEqual(ring.drain(), [3, 4, 5]);
      assert.deepStrictEqual(ring.counters(), { received: 5, released: 0, droppedOverflow: 2, droppedOversize: 0, depth: 0, highWater: 3, drained: 3 });
    });

    it('drop-newest, capacity 5, 8 pushes: keeps 1..5 and reports 6..8 dropped', function () {
      const dropped: [number, number, DropReason][] = [];
      const ring = new RingBuffer<number>(5, 'drop-newest', (item, weight, reason) => dropped.push([item, weight, reason]));
      const results: boolean[] = [];
      for (let i = 1; i <= 8; i++) results.push(ring.push(i, 1));
      assert.deepStrictEqual(results, [true, true, true, true, true, false, false, false]);
      assert.deepStrictEqual(dropped, [
        [6, 1, 'overflow'],
        [7, 1, 'overflow'],
        [8, 1, 'overflow'],
      ]);
      assert.deepStrictEqual(ring.popBatch(10), [1, 2, 3, 4, 5]);
      assert.deepStrictEqual(ring.counters(), { received: 8, released: 5, droppedOverflow: 3, droppedOversize: 0, depth: 0, highWater: 5, drained: 0 });
    });

    it('drop-oldest evicts as many old items as needed for a heavy new one', function () {
      const dropped: [string, number, DropReason][] = [];
      const ring = new RingBuffer<string>(10, 'drop-oldest', (item, weight, reason) => dropped.push([item, weight, reason]));
      ring.push('a', 3);
      ring.push('b', 3);
      ring.push('c', 3);
      assert.strictEqual(ring.push('d', 6), true);
      assert.deepStrictEqual(dropped, [
        ['a', 3, 'overflow'],
        ['b', 3, 'overflow'],
      ]);
      assert.strictEqual(ring.depth, 9);
      assert.strictEqual(ring.length, 2);
      assert.deepStrictEqual(ring.drain(), ['c', 'd']);
    });

    it('an item heavier than the capacity is dropped as oversize and leaves the ring untouched', function () {
      const dropped: [string, number, DropReason][] = [];
      const ring = new RingBuffer<string>(4, 'drop-oldest', (item, weight, reason) => dropped.push([item, weight, reason]));
      ring.push('keep', 2);
      assert.strictEqual(ring.push('huge', 5), false);
      assert.deepStrictEqual(dropped, [['huge', 5, 'oversize']]);
      assert.strictEqual(ring.push('fits', 2), true);
      assert.deepStrictEqual(ring.counters(), { received: 9, released: 0, droppedOverflow: 0, droppedOversize: 5, depth: 4, highWater: 4, drained: 0 });
      assert.deepStrictEqual(ring.drain(), ['keep', 'fits']);
    });

    it('weights below 1 count as one event', function () {
      const ring = new RingBuffer<string>(3);
      ring.push('zero', 0);
      ring.push('negative', -5);
      ring.push('default');
      assert.strictEqual(ring.depth, 3);
      assert.strictEqual(ring.length, 3);
      assert.strictEqual(ring.counters().received, 3);
    });

    it('shift on an empty ring returns undefined and counts nothing', function () {
      const ring = new RingBuffer<string>(2);
      assert.strictEqual(ring.shift(), undefined);
      assert.strictEqual(ring.peekWeight(), 0);
      assert.deepStrictEqual(ring.popBatch(3), []);
      assert.deepStrictEqual(ring.drain(), []);
      assert.deepStrictEqual(ring.counters(), { received: 0, released: 0, droppedOverflow: 0, droppedOversize: 0, depth: 0, highWater: 0, drained: 0 });
    });

    it('popBatch appends to the given array', function () {
      const ring = new RingBuffer<number>(4);
      for (let i = 1; i <= 4; i++) ring.push(i, 1);
      const out = [0];
      assert.strictEqual(ring.popBatch(2, out), out);
      assert.deepStrictEqual(out, [0, 1, 2]);
      assert.strictEqual(ring.length, 2);
    });
  });
});

describe('ByteLog', function () {
  it('returns every text as it was, first in first out, through wrap-around and growth (property-based)', function () {
    const textArb = fc.oneof(fc.string({ maxLength: 40 }), fc.string({ unit: 'grapheme', maxLength: 20 }), fc.constantFrom('', 'Grüße 🌡', 'z'.repeat(200)));
    const opArb = fc.oneof(
      { arbitrary: textArb.map((text) => ({ append: text, reserve: undefined })), weight: 3 },
      { arbitrary: fc.constant({ append: undefined, reserve: undefined }), weight: 2 },
      { arbitrary: fc.integer({ min: 0, max: 300 }).map((bytes) => ({ append: undefined, reserve: bytes })), weight: 1 }
    );
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 64 }), fc.array(opArb, { maxLength: 200 }), (initial, ops) => {
        const log = new ByteLog(initial);
        const queue: { text: string; start: number; length: number }[] = [];
        for (const op of ops) {
          if (op.reserve !== undefined) {
            const before = log.allocated;
            log.reserve(op.reserve);
            assert.strictEqual(log.allocated, Math.max(before, op.reserve), 'reserve enlarges to exactly what is asked, never shrinks');
          } else if (op.append !== undefined) {
            const start = log.append(op.append);
            assert.strictEqual(log.lastLength, Buffer.byteLength(op.append), 'length in UTF-8 bytes');
            queue.push({ text: op.append, start, length: log.lastLength });
          } else if (queue.length > 0) {
            const oldest = queue.shift() as { text: string; start: number; length: number };
            assert.strictEqual(log.readText(oldest.start, oldest.length), oldest.text);
            log.release(oldest.start, oldest.length);
          }
          assert.strictEqual(log.bytes, queue.reduce((sum, q) => sum + q.length, 0));
          assert.ok(log.allocated >= log.bytes);
          for (const q of queue) assert.strictEqual(log.readText(q.start, q.length), q.text, 'every held text still reads back');
        }
      }),
      { numRuns: 300 }
    );
  });

  it('refuses to release anything but the oldest text', function () {
    const log = new ByteLog(16);
    const a = log.append('first');
    const b = log.append('second');
    assert.throws(() => log.release(b, 6), /out of order/);
    log.release(a, 5);
    log.release(b, 6);
    assert.strictEqual(log.bytes, 0);
  });
});
