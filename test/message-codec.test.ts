import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as vm from 'vm';
import { DiskTier } from '../src/core/buffer/disk-tier';
import { messageCodec, packMessage, parseMessageLine, toMessageLine, unpackMessage } from '../src/core/buffer/message-codec';
import { RingBuffer } from '../src/core/buffer/ring-buffer';
import { takeSpool, writeSpool } from '../src/core/buffer/spool';

/** Messages as Node-RED delivers them: what must come back deepStrictEqual from every path. */
function samples(): Record<string, unknown>[] {
  return [
    { topic: 'camera/1', payload: Buffer.from([0, 1, 2, 253, 254, 255]) },
    { topic: 'plc/clock', payload: { value: 1, time: new Date(Date.UTC(2025, 0, 2, 3, 4, 5, 678)) }, timestamp: new Date(Date.UTC(2025, 0, 2)) },
    { topic: 'nested', payload: { a: { b: { c: [1, 'two', { d: [true, false, null] }] } }, frame: Buffer.from('hello') } },
    { topic: 'array', payload: [{ value: 1, seq: 1 }, { value: 2.5, seq: 2, when: new Date(0) }, { raw: Buffer.alloc(3, 7) }], seq: 10 },
    { topic: 'Grüße/温度', payload: { note: 'Grüße 温度 🌡 "quoted" \\ back\nline', value: -0.5 }, kind: 'sample' },
    { topic: 'record', payload: { value: 21.5, kind: 'sample', time: 1_700_000_000_000, seq: 4, unit: 'degC' }, timestamp: 1_700_000_000_000, seq: 4 },
  ];
}

describe('messages keep their types through every store (Buffer, Date, nesting, unicode)', function () {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  });
  const dir = (): string => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'message-codec-'));
    dirs.push(d);
    return d;
  };

  it('the codec itself: MessagePack and the JSON lines of the spool', function () {
    for (const msg of samples()) {
      assert.deepStrictEqual(unpackMessage(Buffer.from(packMessage(msg))), msg);
      assert.deepStrictEqual(parseMessageLine(toMessageLine(msg)), msg);
    }
  });

  it("a function node's Date (its own VM context) comes back from the spool's lines as a Date", function () {
    const msg = vm.runInNewContext('({ topic: "a", payload: { value: 1, time: new Date(1000) } })') as Record<string, unknown>;
    const back = parseMessageLine(toMessageLine(msg)) as { payload: { time: unknown } };
    assert.ok(back.payload.time instanceof Date && back.payload.time.getTime() === 1000, String(back.payload.time));
  });

  it('an invalid Date stays an invalid Date, a string that looks like a date stays a string', function () {
    for (const back of [parseMessageLine(toMessageLine({ d: new Date(NaN), s: '2025-01-02T03:04:05.678Z' })), unpackMessage(Buffer.from(packMessage({ d: new Date(NaN), s: '2025-01-02T03:04:05.678Z' })))]) {
      assert.ok(back.d instanceof Date && Number.isNaN(back.d.getTime()));
      assert.equal(back.s, '2025-01-02T03:04:05.678Z');
    }
  });

    it('the ring kept as bytes off the heap (what a full ring takes in)', function () {
    type Held = { msg: Record<string, unknown> };
    const encoded: Held[] = [];
    const ring = new RingBuffer<Held>(1, 'drop-oldest', undefined, {
      codec: { encode: (held) => packMessage(held.msg), decode: (bytes) => ({ msg: unpackMessage(bytes, true) }), decodeRange: (block, start, end) => ({ msg: unpackMessage(block, true, start, end) }) },
      onEncoded: (held) => encoded.push(held),
    });
    ring.push({ msg: { topic: 'first', payload: 0 } }, 1);
    for (const msg of samples()) {
      ring.push({ msg }, 1); // pushes the one before out: kept as bytes
      assert.equal(ring.compactCounters().items, 1);
      const back = ring.shift() as Held;
      assert.notEqual(back.msg, msg, 'a copy decoded from bytes');
      assert.deepStrictEqual(back.msg, msg);
      ring.push({ msg: { topic: 'filler', payload: 0 } }, 1);
    }
    assert.equal(encoded.length, samples().length, 'each sample was taken in by a full ring');
  });

  it('the disk tier', function () {
    type Held = { msg: Record<string, unknown> };
    const tier = new DiskTier<Held>({ dir: dir(), maxBytes: 1 << 20, policy: 'drop-newest', codec: messageCodec((msg) => ({ msg }), (held) => held.msg) });
    for (const msg of samples()) assert.ok(tier.push({ msg }, 1));
    const back: Record<string, unknown>[] = [];
    for (let g = tier.shift(); g !== undefined; g = tier.shift()) back.push(g.item.msg);
    assert.deepStrictEqual(back, samples());
  });

  it('the shutdown spool', function () {
    const file = path.join(dir(), 'b.jsonl');
    writeSpool(file, { a: 1 }, samples());
    assert.deepStrictEqual(takeSpool<Record<string, unknown>>(file).messages, samples());
  });

  it('strips __proto__, constructor and prototype keys when reading bytes or lines from a file', function () {
    const hostile = '{"topic":"t","payload":{"__proto__":{"polluted":1},"constructor":{"prototype":{"polluted":2}},"v":[{"prototype":3,"w":1}]}}';
    assert.deepStrictEqual(parseMessageLine(hostile), { topic: 't', payload: { v: [{ w: 1 }] } });
    // The same keys written as MessagePack by something else.
    const packed = Buffer.from(packMessage(JSON.parse(hostile) as Record<string, unknown>));
    assert.deepStrictEqual(unpackMessage(packed), { topic: 't', payload: { v: [{ w: 1 }] } });
    // A record an earlier version wrote as JSON is still read, and screened the same way.
    assert.deepStrictEqual(unpackMessage(Buffer.from(hostile)), { topic: 't', payload: { v: [{ w: 1 }] } });
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  it('arrays of events (written as records, one shape per message) interleaved with single events, from one buffer by range', function () {
    const many = { topic: 'line', payload: Array.from({ length: 100 }, (_, k) => ({ value: k + 0.5, kind: 'sample', time: 1_700_000_000_000 + k, seq: k + 64, unit: 'degC' })), seq: 64 };
    const mixed = { topic: 'mixed', payload: [{ a: 1, at: new Date(5) }, { b: Buffer.from([64, 127]) }, { a: 2, at: new Date(6) }, 70, 'x'] };
    const one = { topic: 'one', payload: { value: 127, seq: 100 } };
    const parts = [many, one, mixed, one, many].map((m) => Buffer.from(packMessage(m)));
    const all = Buffer.concat(parts);
    let at = 0;
    for (const [i, m] of [many, one, mixed, one, many].entries()) {
      assert.deepStrictEqual(unpackMessage(all, false, at, at + parts[i].length), m, `message ${i}`);
      at += parts[i].length;
    }
    assert.ok(parts[0].length < JSON.stringify(many).length / 2, `100 events in ${parts[0].length} bytes, JSON ${JSON.stringify(many).length}`);
    const hostile = JSON.parse('{"payload":[{"__proto__":{"x":1},"constructor":2,"ok":1},{"__proto__":{"x":1},"constructor":2,"ok":2}]}') as Record<string, unknown>;
    assert.deepStrictEqual(unpackMessage(Buffer.from(packMessage(hostile))), { payload: [{ ok: 1 }, { ok: 2 }] });
  });

    it('leaves out the message id and HTTP in req/res, survives circular references and functions', function () {
    const msg: Record<string, unknown> = { _msgid: 'x1', topic: 't', payload: [1, 2], seq: 5 };
    const back = unpackMessage(Buffer.from(packMessage(msg)));
    assert.equal(back._msgid, undefined);
    assert.deepStrictEqual({ ...back, _msgid: undefined }, { ...msg, _msgid: undefined });
    assert.equal(msg._msgid, 'x1', 'the message keeps its id');
    const circular: Record<string, unknown> = { _msgid: 'x2', topic: 't', payload: 1, fn: () => 1, req: { socket: {} } };
    circular.self = circular;
    assert.deepStrictEqual(unpackMessage(Buffer.from(packMessage(circular))), { topic: 't', payload: 1 });
    assert.deepStrictEqual(parseMessageLine(toMessageLine(circular)), { topic: 't', payload: 1 });
    // The packer is fine after a message it had to take the careful way.
    assert.deepStrictEqual(unpackMessage(Buffer.from(packMessage({ topic: 'after', payload: 2 }))), { topic: 'after', payload: 2 });
  });
});
