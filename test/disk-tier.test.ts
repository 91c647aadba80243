import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { DiskCodec, RECORD_HEADER, crc32 } from '../src/core/buffer/disk-record';
import { DiskTier } from '../src/core/buffer/disk-tier';
import { RingBuffer } from '../src/core/buffer/ring-buffer';
import { TieredStore } from '../src/core/buffer/tiered-store';
import sinon from 'sinon';
import { assertCountsAddUp } from './support/counting';

interface Item {
  src: string;
  n: number;
}
const codec: DiskCodec<Item> = {
  encode: (i) => Buffer.from(JSON.stringify(i)),
  decode: (b) => JSON.parse(b.toString('utf8')) as Item,
};

function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'disk-tier-'));
}

function open(dir: string, maxBytes = 1 << 20, segmentBytes = 4096, policy: 'drop-oldest' | 'drop-newest' = 'drop-newest'): DiskTier<Item> {
  return new DiskTier<Item>({ dir, maxBytes, segmentBytes, policy, codec });
}

function takeAll(d: DiskTier<Item>): Item[] {
  const out: Item[] = [];
  for (let g = d.shift(); g !== undefined; g = d.shift()) out.push(g.item);
  return out;
}

describe('disk tier (store-and-forward log)', function () {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  });
  const dir = (): string => {
    const d = tmpDir();
    dirs.push(d);
    return d;
  };

  it('has the standard CRC-32', function () {
    assert.equal(crc32(Buffer.from('123456789')), 0xcbf43926);
  });

  it('hands items back in order across segment rotations, with exact counters', function () {
    const d = open(dir());
    for (let n = 0; n < 1000; n++) assert.ok(d.push({ src: `s${n % 3}`, n }, 2));
    assert.ok(d.counters().segments > 5, `several segments (${d.counters().segments})`);
    assert.equal(d.depth, 2000);
    const got = takeAll(d);
    assert.deepEqual(got.map((i) => i.n), Array.from({ length: 1000 }, (_, n) => n));
    const c = d.counters();
    assert.equal(c.spilled, 2000);
    assert.equal(c.replayed, 2000);
    assert.equal(c.diskDepth, 0);
    assert.equal(c.diskBacklogBytes, 0);
    assert.equal(c.segments, 1, 'read segments are deleted, the active one stays');
    d.close();
  });

  it('continues after a restart from the saved cursor, and after a crash from the last sync', function () {
    const at = dir();
    let d = open(at);
    for (let n = 0; n < 300; n++) d.push({ src: 'a', n }, 1);
    assert.deepEqual(takeAll(d).slice(0, 1).map((i) => i.n), [0]);
    for (let n = 300; n < 400; n++) d.push({ src: 'a', n }, 1);
    for (let i = 0; i < 50; i++) d.shift();
    d.close({ sequences: { a: 401 } });
    d = open(at);
    assert.equal(d.recoveredState?.clean, true);
    assert.deepEqual(d.recoveredState?.sequences, { a: 401 });
    assert.equal(d.counters().diskRecovered, 50);
    assert.deepEqual(takeAll(d).map((i) => i.n), Array.from({ length: 50 }, (_, k) => 350 + k));
    // A crash: records flushed to the OS survive; the cursor is as of the last sync, so some items come again.
    for (let n = 400; n < 500; n++) d.push({ src: 'a', n }, 1);
    d.sync();
    for (let i = 0; i < 30; i++) d.shift();
    d.flush(); // no sync, no close: like SIGKILL
    d = open(at);
    assert.equal(d.recoveredState?.clean, false);
    assert.deepEqual(takeAll(d).map((i) => i.n), Array.from({ length: 100 }, (_, k) => 400 + k), 'replayed again from the last saved cursor (the unique key absorbs it)');
  });

  it('detects a torn tail by length and checksum, cuts it off, counts it and appends cleanly after it', function () {
    const at = dir();
    let d = open(at, 1 << 20, 1 << 16);
    for (let n = 0; n < 20; n++) d.push({ src: 'a', n }, 1);
    d.sync();
    const seg = path.join(at, fs.readdirSync(at).find((f) => f.endsWith('.seg')) as string);
    const size = fs.statSync(seg).size;
    // A record half written: header and part of the payload.
    const payload = Buffer.from(JSON.stringify({ src: 'a', n: 20 }));
    const header = Buffer.alloc(RECORD_HEADER);
    header.writeUInt32LE(payload.length, 0);
    header.writeUInt32LE(1, 8);
    fs.appendFileSync(seg, Buffer.concat([header, payload.subarray(0, 5)]));
    d = open(at, 1 << 20, 1 << 16);
    let c = d.counters();
    assert.equal(c.tornTailRecords, 1);
    assert.equal(c.tornTailBytes, RECORD_HEADER + 5);
    assert.equal(c.diskRecovered, 20);
    assert.equal(fs.statSync(seg).size, size, 'the torn bytes are cut off');
    d.push({ src: 'a', n: 21 }, 1);
    assert.deepEqual(takeAll(d).map((i) => i.n), [...Array.from({ length: 20 }, (_, k) => k), 21]);
    d.close();

    // A record complete in length but with a flipped byte: the checksum catches it.
    const at2 = dir();
    d = open(at2, 1 << 20, 1 << 16);
    for (let n = 0; n < 10; n++) d.push({ src: 'b', n }, 3);
    d.sync();
    const seg2 = path.join(at2, fs.readdirSync(at2).find((f) => f.endsWith('.seg')) as string);
    const bytes = fs.readFileSync(seg2);
    const recordSize = RECORD_HEADER + Buffer.from(JSON.stringify({ src: 'b', n: 0 })).length;
    bytes[recordSize * 7 + RECORD_HEADER + 2] ^= 0xff; // inside the 8th record
    fs.writeFileSync(seg2, bytes);
    d = open(at2, 1 << 20, 1 << 16);
    c = d.counters();
    assert.equal(c.tornTailRecords, 1);
    assert.equal(c.tornTailBytes, recordSize * 3);
    assert.equal(c.diskDepth, 21);
    assert.deepEqual(takeAll(d).map((i) => i.n), [0, 1, 2, 3, 4, 5, 6]);
  });

  it('drop-newest at the byte cap refuses new records and counts exactly', function () {
    const d = open(dir(), 64 * 1024, 8192, 'drop-newest');
    let stored = 0;
    let refused = 0;
    for (let n = 0; n < 5000; n++) if (d.push({ src: 'a', n }, 2)) stored += 2;
    else refused += 2;
    const c = d.counters();
    assert.ok(refused > 0);
    assert.ok(c.diskBytes <= 64 * 1024);
    assert.equal(c.diskDroppedOverflow, refused);
    assert.equal(c.diskDepth, stored);
    const got = takeAll(d);
    assert.deepEqual(got.map((i) => i.n), Array.from({ length: stored / 2 }, (_, n) => n), 'the oldest are kept');
  });

  it('drop-oldest at the byte cap removes the oldest segment and counts its events exactly', function () {
    const d = open(dir(), 64 * 1024, 8192, 'drop-oldest');
    for (let n = 0; n < 5000; n++) assert.ok(d.push({ src: 'a', n }, 2));
    const c = d.counters();
    assert.ok(c.diskBytes <= 64 * 1024);
    assert.equal(c.diskDroppedOverflow + c.diskDepth, 10_000);
    const got = takeAll(d);
    assert.equal(got.length * 2, c.diskDepth);
    assert.equal(got[got.length - 1].n, 4999, 'the newest are kept');
    assert.deepEqual(got.map((i) => i.n), Array.from({ length: got.length }, (_, k) => 5000 - got.length + k), 'contiguous');
  });

  it('behind the EventStore contract: overflow goes to disk, replay is rate-limited and interleaved with live items', function () {
    let now = 0;
    const dropped: number[] = [];
    const spilled: number[] = [];
    const ring = new RingBuffer<Item>(10, 'drop-newest', (i) => dropped.push(i.n));
    const store = new TieredStore<Item>(ring, open(dir()), { replayRate: 100, now: () => now, onSpill: (i) => spilled.push(i.n) });
    for (let n = 0; n < 50; n++) store.push({ src: 'a', n }, 1);
    assert.equal(ring.depth, 10);
    assert.equal(store.depth, 50);
    assert.deepEqual(spilled, Array.from({ length: 40 }, (_, k) => 10 + k));
    // No time has passed: only the ring hands out.
    const first: number[] = [];
    for (let i = store.shift(); i !== undefined; i = store.shift()) first.push(i.n);
    assert.deepEqual(first, Array.from({ length: 10 }, (_, k) => k));
    // 100 ms at 100 events/s: 10 events of replay; live items interleave one for one.
    now += 100;
    for (let n = 100; n < 110; n++) store.push({ src: 'b', n }, 1);
    const mixed: number[] = [];
    for (let i = store.shift(); i !== undefined; i = store.shift()) mixed.push(i.n);
    assert.deepEqual(mixed.slice(0, 6), [10, 100, 11, 101, 12, 102]);
    assert.equal(mixed.filter((n) => n < 100).length, 10, 'replay stays within the rate');
    assert.equal(mixed.filter((n) => n >= 100).length, 10, 'live items are not starved');
    now += 10_000;
    const rest: number[] = [];
    for (let k = 0; k < 100 && store.depth > 0; k++) {
      now += 100;
      for (let i = store.shift(); i !== undefined; i = store.shift()) rest.push(i.n);
    }
    assert.deepEqual(rest, Array.from({ length: 30 }, (_, k) => 20 + k));
    const c = store.counters();
    assert.equal(c.received, 60);
    assert.equal(c.released, 60);
    assertCountsAddUp(c);
    assert.deepEqual(dropped, []);
  });
});

describe('disk tier: badge and options', function () {
  it('keeps every badge text under 20 characters, whatever the backlog', function () {
    const settings = require('../src/core/buffer/disk-tier-settings') as typeof import('../src/core/buffer/disk-tier-settings');
    const { english } = require('../src/nodes/i18n') as typeof import('../src/nodes/i18n');
    const diskBadgeText = (phase: number, events: number, bytes: number, eta: number, dropped: number): string => settings.diskBadgeText(phase, events, bytes, eta, dropped, english('telemetry-buffer'));
    const cases: [number, number, number, number][] = [
      [0, 0, 0, 0],
      [999, 1023, 59, 999],
      [123_456_789, 999 * 1024 * 1024, 3599, 123_456_789],
      [9_999_999_999, 1.5e12, 86400 * 400, 9_999_999_999],
      [5, 5, Infinity, 5],
    ];
    for (const [events, bytes, eta, dropped] of cases) {
      for (let phase = 0; phase < 3; phase++) {
        const text = diskBadgeText(phase, events, bytes, eta, dropped);
        assert.ok(text.length < 20, `"${text}" is ${text.length} characters`);
      }
    }
    assert.equal(diskBadgeText(0, 1_234_567, 340 * 1024 * 1024, 0, 0), 'disk 1.2M 340MB');
    assert.equal(diskBadgeText(1, 1, 1, 720, 0), 'drain ~12m');
    assert.equal(diskBadgeText(2, 1, 1, 1, 42), 'dropped 42');
    const { compactCount } = require('../src/nodes/status') as typeof import('../src/nodes/status');
    assert.equal(compactCount(2_500_000_000), '2.5G', 'every badge counts the same way as the disk badge');
    assert.equal(diskBadgeText(2, 1, 1, 1, 2_500_000_000), 'dropped 2.5G');
  });

  it('is off by default and reads its options with clear errors', function () {
    const { diskTierSettings } = require('../src/core/buffer/disk-tier-settings') as typeof import('../src/core/buffer/disk-tier-settings');
    const { sequencesAfter } = require('../src/core/buffer/segment-files') as typeof import('../src/core/buffer/segment-files');
    const { readOptions } = require('../src/core/shared/option-table') as typeof import('../src/core/shared/option-table');
    const { OPTIONS } = require('../src/options/telemetry-buffer') as typeof import('../src/options/telemetry-buffer');
    const d = diskTierSettings(readOptions(OPTIONS, {}));
    assert.deepEqual(d, { enabled: false, maxBytes: 1024 * 1024 * 1024, fsyncIntervalMs: 1000, replayRate: 20_000, spillAfterMs: 0 });
    assert.throws(() => readOptions(OPTIONS, { diskSpill: true, diskMaxMB: 'lots' }), /Disk size must be a number/);
    assert.throws(() => readOptions(OPTIONS, { diskSpill: true, replayRate: '0' }), /Replay rate/);
    // After a clean close the numbers continue exactly; after a crash they skip ahead.
    assert.deepEqual(sequencesAfter({ segment: 1, offset: 0, clean: true, sequences: { a: 10 } }), { a: 10 });
    assert.deepEqual(sequencesAfter({ segment: 1, offset: 0, clean: false, sequences: { a: 10 }, sequenceStep: { a: 5 } }), { a: 1030 });
  });

  it('sends everything to disk while spilling is forced (downstream unconfirming too long)', function () {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'disk-tier-'));
    try {
      const ring = new RingBuffer<Item>(100, 'drop-oldest');
      const store = new TieredStore<Item>(ring, new DiskTier<Item>({ dir: d, maxBytes: 1 << 20, policy: 'drop-oldest', codec }), { replayRate: 1000, now: () => 0 });
      store.push({ src: 'a', n: 0 }, 1);
      store.forceSpill = true;
      store.push({ src: 'a', n: 1 }, 1);
      assert.equal(ring.depth, 1);
      assert.equal(store.disk.depth, 1);
      assert.equal(store.counters().received, 2);
    } finally {
      fs.rmSync(d, { recursive: true, force: true });
    }
  });
});

describe('disk tier: a record that checks out but does not decode', function () {
  it('is counted as lost and skipped, never fatal', function () {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'disk-tier-'));
    try {
      const strict: DiskCodec<Item> = {
        encode: (i) => (i.n === 1 ? 'not json' : JSON.stringify(i)),
        decode: (b) => JSON.parse(b.toString('utf8')) as Item,
      };
      const tier = new DiskTier<Item>({ dir: d, maxBytes: 1 << 20, policy: 'drop-oldest', codec: strict });
      for (let n = 0; n < 3; n++) tier.push({ src: 'a', n }, 2);
      const got: number[] = [];
      for (let g = tier.shift(); g !== undefined; g = tier.shift()) got.push(g.item.n);
      assert.deepEqual(got, [0, 2]);
      const c = tier.counters();
      assert.equal(c.diskLost, 2);
      assert.equal(c.replayed, 4);
      assert.equal(c.spilled, c.replayed + c.diskLost + c.diskDepth);
    } finally {
      fs.rmSync(d, { recursive: true, force: true });
    }
  });
});

describe('disk tier: every event counted when the disk or the codec fails', function () {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  });
  const dir = (): string => {
    const d = tmpDir();
    dirs.push(d);
    return d;
  };

  it('a message the codec cannot encode (nested too deep, a throwing getter) is dropped as a disk error and counted', function () {
    const { messageCodec } = require('../src/core/buffer/message-codec') as typeof import('../src/core/buffer/message-codec');
    type Held = { msg: Record<string, unknown> };
    const drops: [unknown, number, string][] = [];
    const ring = new RingBuffer<Held>(2, 'drop-newest');
    const disk = new DiskTier<Held>({ dir: dir(), maxBytes: 1 << 20, policy: 'drop-newest', codec: messageCodec((msg) => ({ msg }), (held) => held.msg) });
    const store = new TieredStore<Held>(ring, disk, { replayRate: 1000, now: () => 0, onDrop: (item, weight, reason) => drops.push([item.msg.topic, weight, reason]) });
    let deep: unknown = 1;
    for (let i = 0; i < 200_000; i++) deep = { a: deep };
    const getter = { topic: 'getter', payload: 1 };
    Object.defineProperty(getter, 'boom', { enumerable: true, get: () => { throw new Error('getter throws'); } });
    store.push({ msg: { topic: 'ring1', payload: 1 } }, 1);
    store.push({ msg: { topic: 'ring2', payload: 2 } }, 1);
    assert.equal(store.push({ msg: { topic: 'deep', payload: deep } }, 1), false);
    assert.equal(store.push({ msg: getter }, 2), false);
    assert.equal(store.push({ msg: { topic: 'disk', payload: 5 } }, 1), true);
    const c = store.counters();
    assert.equal(c.received, 6);
    assert.equal(c.depth, 3);
    assert.equal(c.droppedDiskError, 3);
    assert.equal(c.droppedOverflow, 0);
    assertCountsAddUp(c);
    assert.deepEqual(drops, [['deep', 1, 'disk-error'], ['getter', 2, 'disk-error']]);
    assert.equal(disk.counters().diskEncodeErrors, 2);
  });

  it('the segment directory removed and replaced by a file: every event counted, the failure and the recovery reported once each', function () {
    const at = dir();
    const states: string[] = [];
    const ring = new RingBuffer<Item>(1, 'drop-newest');
    const disk = new DiskTier<Item>({ dir: at, maxBytes: 1 << 20, segmentBytes: 4096, policy: 'drop-newest', codec, onStateChange: (err) => states.push(err === undefined ? 'working' : `failing: ${(err as NodeJS.ErrnoException).code ?? err.message}`) });
    let clock = 0;
    const store = new TieredStore<Item>(ring, disk, { replayRate: 1e6, now: () => (clock += 10) });
    let n = 0;
    for (; n < 200; n++) store.push({ src: 'a', n }, 1);
    disk.flush();
    assert.ok(disk.counters().segments > 1, 'several segments written');
    assertCountsAddUp(store.counters());
    // The directory goes away and a file takes its place: nothing can be opened or recreated there.
    fs.rmSync(at, { recursive: true, force: true });
    fs.writeFileSync(at, 'not a directory');
    const errorsBefore = disk.counters().diskErrors;
    for (; n < 400; n++) store.push({ src: 'a', n }, 1);
    disk.flush();
    disk.sync();
    let c = store.counters();
    assertCountsAddUp(c);
    assert.ok((c.droppedDiskError ?? 0) > 0, `events refused while the disk fails are counted (${c.droppedDiskError})`);
    assert.ok(disk.counters().diskErrors > errorsBefore, 'diskErrors counts the failed operations');
    assert.deepEqual(states.map((s) => s.split(':')[0]), ['failing'], 'one report however many events failed');
    // The file goes, the directory can be made again: the tier works again and says so once.
    fs.rmSync(at, { force: true });
    for (; n < 600; n++) store.push({ src: 'a', n }, 1);
    disk.sync();
    assert.deepEqual(states.map((s) => s.split(':')[0]), ['failing', 'working']);
    // Replay everything: what was in the removed directory is lost, counted when replay reaches it.
    const got: number[] = [];
    for (let i = store.shift(); i !== undefined; i = store.shift()) got.push(i.n);
    c = store.counters();
    assertCountsAddUp(c);
    assert.equal(c.depth, 0);
    assert.equal(c.released, got.length);
    assert.equal(c.received, 600);
    assert.ok(got.includes(599), 'what was written after the recovery is replayed');
    assert.equal(got.length, 600 - (c.droppedDiskError ?? 0) - c.droppedOverflow);
  });

  it('a write the disk cuts short (part written, then no space left): the file is cut back, so no record counted lost comes back at the next start', function () {
    const at = dir();
    const realFs = require('fs') as typeof import('fs');
    const disk = open(at, 1 << 20, 1 << 16);
    for (let n = 0; n < 100; n++) disk.push({ src: 'a', n }, 1);
    const write = realFs.writeSync;
    let calls = 0;
    // A disk filling up cannot be made here on demand: the first call writes half, the next fails as a full disk does.
    const stub = sinon.stub(realFs, 'writeSync').callsFake(((fd: number, buffer: Buffer, offset: number, length: number) => {
      if (++calls === 1) return write(fd, buffer, offset, Math.floor(length / 2));
      throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    }) as typeof realFs.writeSync);
    try {
      disk.flush();
    } finally {
      stub.restore();
    }
    assert.equal(calls, 2, 'the fault was reached');
    assert.equal(disk.counters().diskLost, 100);
    assert.equal(disk.counters().diskDepth, 0);
    // A crash now (no close): the next run must not replay what this one counted as lost.
    const next = open(at, 1 << 20, 1 << 16);
    assert.equal(next.counters().diskRecovered, 0);
    assert.deepEqual(takeAll(next), []);
    next.close();
  });

  it('a corrupt record in the segment being written: what comes after goes to a new segment and survives a restart', function () {
    const at = dir();
    const disk = open(at, 1 << 20, 1 << 16);
    for (let n = 0; n < 10; n++) disk.push({ src: 'old', n }, 1);
    disk.flush();
    // One byte of the sixth record's body flipped on the disk.
    const file = path.join(at, '00000001.seg');
    const sizes = Array.from({ length: 10 }, (_, n) => RECORD_HEADER + codec.encode({ src: 'old', n }).length);
    const sixth = sizes.slice(0, 5).reduce((a, b) => a + b, 0);
    const fd = fs.openSync(file, 'r+');
    fs.writeSync(fd, Buffer.from([0xff]), 0, 1, sixth + RECORD_HEADER + 2);
    fs.closeSync(fd);
    assert.deepEqual(takeAll(disk).map((i) => i.n), [0, 1, 2, 3, 4]);
    assert.equal(disk.counters().diskLost, 5, 'the corrupt record and the rest of its segment');
    for (let n = 0; n < 50; n++) disk.push({ src: 'new', n }, 1);
    disk.close();
    assert.equal(disk.counters().diskDepth, 50);
    const next = open(at, 1 << 20, 1 << 16);
    assert.equal(next.counters().diskRecovered, 50);
    assert.deepEqual(takeAll(next).map((i) => `${i.src}${i.n}`), Array.from({ length: 50 }, (_, n) => `new${n}`));
    assert.equal(next.counters().diskLost, 0, 'nothing counted twice');
    next.close();
  });

  it('makes a new segment durable with its directory, as a power cut needs, and the replay state with its own fsync', function () {
    if (process.platform === 'win32') this.skip();
    const at = dir();
    const realFs = require('fs') as typeof import('fs');
    const opened = new Map<number, string>();
    const openFile = realFs.openSync;
    sinon.stub(realFs, 'openSync').callsFake(((file: fs.PathLike, flags: fs.OpenMode = 'r', mode?: fs.Mode) => {
      const fd = openFile(file, flags, mode);
      opened.set(fd, String(file));
      return fd;
    }) as typeof realFs.openSync);
    const synced: Array<string | undefined> = [];
    const fsyncFile = realFs.fsyncSync;
    sinon.stub(realFs, 'fsyncSync').callsFake((fd: number) => {
      synced.push(opened.get(fd));
      fsyncFile(fd);
    });
    try {
      const disk = open(at);
      disk.push({ src: 'a', n: 1 }, 1);
      disk.sync();
      assert.deepEqual(synced, [at, path.join(at, '00000001.seg'), path.join(at, 'state.json.tmp')], 'the new segment name, its records, the state');
      disk.close();
    } finally {
      sinon.restore();
    }
  });
});
