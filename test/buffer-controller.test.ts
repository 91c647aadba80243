/**
 * The buffer's controller without Node-RED: plain ports stand in for the node, so what the node
 * file used to do inside its closure (release, completions, the spool at close and its restore,
 * the disk tier and the badge) is exercised on its own.
 */
import { english } from '../src/nodes/i18n';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { approximateSize } from '../src/core/buffer/approximate-size';
import { BufferController, type BufferPorts } from '../src/core/buffer/buffer-controller';
import type { BufferMessage } from '../src/core/buffer/held-item';
import { readOptions } from '../src/core/shared/option-table';
import { OPTIONS } from '../src/options/telemetry-buffer';
import { assertCountsAddUp, type Counts } from './support/counting';

interface Harness {
  buffer: BufferController;
  sent: BufferMessage[];
  logs: string[];
}

let ids = 0;

function harness(dir: string, config: Record<string, unknown>, groupLimit = 0, sourceField = 'source'): Harness {
  const sent: BufferMessage[] = [];
  const logs: string[] = [];
  const ports: BufferPorts = {
    send: (msg) => sent.push(msg),
    sendStats: () => undefined,
    log: { info: (m) => logs.push(m), warn: (m) => logs.push(m), error: (m) => logs.push(`error: ${m}`) },
    t: english('telemetry-buffer'),
    newId: () => `id-${++ids}`,
    now: Date.now,
    downstream: { count: 1, groupLimit: () => groupLimit, held: () => undefined, markReleased: () => undefined, rowFields: () => ({ seq: 'seq', source: sourceField }) },
  };
  const buffer = new BufferController(readOptions(OPTIONS, config), ports, { filesDir: dir, nodeId: 'buf1' });
  buffer.start();
  buffer.resume();
  return { buffer, sent, logs };
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('BufferController: the buffer without Node-RED', function () {
  let dir: string;
  beforeEach(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'buffer-controller-'));
  });
  afterEach(function () {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("numbers readings in the source the sink after it reads (its Source from), whatever topic they came under", async function () {
    for (const groupLimit of [0, 100]) {
      const a = harness(dir, { capacity: 100, window: 100, statsInterval: 0 }, groupLimit, 'device');
      for (let i = 0; i < 6; i++) a.buffer.input({ topic: `gw${i % 2}`, payload: { device: 'pump', value: i, time: 1000 } }, () => undefined);
      // An array whose readings name two devices: one range, free in both.
      a.buffer.input({ topic: 'gw0', payload: [{ device: 'pump', value: 6 }, { device: 'fan', value: 7 }], timestamp: 1000 }, () => undefined);
      await turn();
      const seqs = groupLimit === 0
        ? a.sent.flatMap((m) => (Array.isArray(m.payload) ? (m.payload as unknown[]).map((_, i) => (m.seq as number) + i) : [m.seq as number]))
        : a.sent.flatMap((m) => (m.payload as Array<{ seq: number }>).map((r) => r.seq));
      // Into batchers each reading is numbered in its own source; a message passed on as it came
      // takes msg.seq, msg.seq + 1 for its two readings, free in both sources.
      assert.deepEqual(seqs, groupLimit === 0 ? [1, 2, 3, 4, 5, 6, 7, 8] : [1, 2, 3, 4, 5, 6, 7, 1], `one run of numbers for the device (group limit ${groupLimit})`);
      a.buffer.close(true);
      fs.rmSync(dir, { recursive: true, force: true });
      fs.mkdirSync(dir, { recursive: true });
    }
  });

  it('releases within the window, counts completions, spools what it holds at close and restores it with its numbers', async function () {
    const a = harness(dir, { capacity: 100, window: 3, statsInterval: 0 });
    let completedUpstream = 0;
    for (let i = 0; i < 10; i++) a.buffer.input({ topic: 'line1/t', payload: i }, () => completedUpstream++);
    await turn();
    assert.deepEqual(a.sent.map((m) => m.payload), [0, 1, 2], 'the window lets three go');
    assert.deepEqual(a.sent.map((m) => m.seq), [1, 2, 3], 'numbered per source at ingest');
    a.buffer.completed(a.sent[0]._msgid as string, 'ok');
    await turn();
    assert.equal(a.sent.length, 4, 'a completion frees one place');
    assert.equal(completedUpstream, 1, 'a message is completed upstream when downstream completed it');
    const s = a.buffer.stats() as unknown as Counts & { delivered: number; inFlight: number; depth: number };
    assert.deepEqual([s.received, s.delivered, s.inFlight, s.depth], [10, 1, 3, 6]);
    assertCountsAddUp(s, { at: 'while running' });
    a.buffer.close(false);
    const closed = a.buffer.stats() as unknown as Counts & { spooled: number };
    assert.equal(closed.spooled, 9, 'in flight and queued go to the spool');
    assertCountsAddUp(closed, { at: 'after close' });
    assert.equal(completedUpstream, 10, 'every message completed once');
    assert.ok(a.logs.some((l) => /spooled 9 unconfirmed messages/.test(l)), a.logs.join('\n'));

    const b = harness(dir, { capacity: 100, window: 100, statsInterval: 0 });
    await turn();
    assert.deepEqual(b.sent.map((m) => m.payload).sort(), [1, 2, 3, 4, 5, 6, 7, 8, 9], 'the next instance sends what was spooled');
    b.buffer.input({ topic: 'line1/t', payload: 10 }, () => undefined);
    await turn();
    assert.equal(b.sent[b.sent.length - 1].seq, 11, 'numbering continues across the restart');
    const t = b.buffer.stats() as unknown as Counts & { restored: number };
    assert.equal(t.restored, 9);
    assert.equal(t.received, 11, 'totals count each event once across instances');
    assertCountsAddUp(t, { at: 'totals after the restart' });
    b.buffer.close(true);
  });

  it('into batchers takes a message of several readings in as its readings and sends record groups', async function () {
    const a = harness(dir, { capacity: 100, window: 100, statsInterval: 0 }, 500);
    let completed = 0;
    a.buffer.input({ topic: 'plc1', payload: { temp: 21.5, pressure: 1.2 } }, () => completed++);
    a.buffer.input({ topic: 'plc1', payload: 7 }, () => completed++);
    await turn();
    assert.equal(completed, 2, 'completed at ingest');
    assert.equal(a.sent.length, 1, 'one record group for what came in one turn');
    const group = a.sent[0] as unknown as { telemetryRecords: boolean; payload: { topic?: string; payload: unknown }[] };
    assert.equal(group.telemetryRecords, true);
    assert.equal(group.payload.length, 3, 'three readings');
    a.buffer.close(true);
  });

  it('a reading spooled while wired to batchers goes on as a message, under its own id, once rewired away from them', async function () {
    const a = harness(dir, { capacity: 100, window: 1, statsInterval: 0 }, 500);
    a.buffer.input({ topic: 'plc1', payload: { value: 1 } }, () => undefined);
    a.buffer.input({ topic: 'plc1', payload: { value: 2 } }, () => undefined);
    await turn();
    a.buffer.close(false);

    const b = harness(dir, { capacity: 100, window: 100, statsInterval: 0 }, 0);
    await turn();
    assert.deepEqual(b.sent.map((m) => (m.payload as { value: number }).value).sort(), [1, 2], 'both readings sent, as messages');
    assert.ok(b.sent.every((m) => typeof m._msgid === 'string' && m.telemetryRecords === undefined), JSON.stringify(b.sent));
    for (const m of b.sent) b.buffer.completed(m._msgid as string, 'ok');
    const s = b.buffer.stats() as unknown as Counts & { delivered: number; inFlight: number };
    assert.deepEqual([s.delivered, s.inFlight], [2, 0], 'each completion found its message');
    b.buffer.close(true);
  });

  it('with a memory limit, each reading of a message counts its share of the message, and a lone reading its own size', async function () {
    // window 1: the readings wait in the ring, where the memory limit counts them.
    const a = harness(dir, { capacity: 1000, window: 1, memoryLimit: 1, statsInterval: 0 }, 500);
    const readings = Array.from({ length: 100 }, (_, i) => ({ value: i, kind: 'sample', unit: 'degC', label: `reading number ${i} of a long message` }));
    const msg = { topic: 'plc1', payload: readings };
    const share = Math.ceil(approximateSize(msg) / 100) + 64;
    a.buffer.input(msg, () => undefined);
    const many = a.buffer.stats() as unknown as { ringBytes: number; depth: number };
    assert.equal(many.depth, 100);
    assert.equal(many.ringBytes, 100 * share, 'the message sized once and shared, not each reading on its own');
    a.buffer.input({ topic: 'plc1', payload: { value: 1, note: 'x'.repeat(500) } }, () => undefined);
    const one = a.buffer.stats() as unknown as { ringBytes: number };
    assert.ok(one.ringBytes - many.ringBytes > 500, `a lone reading counts its own size (${one.ringBytes - many.ringBytes} bytes)`);
    a.buffer.close(true);
  });

  it("after a redeploy the badge and the drop log count what earlier instances dropped, as the stats do", async function () {
    const a = harness(dir, { capacity: 3, window: 1, statsInterval: 0 });
    for (let i = 0; i < 10; i++) a.buffer.input({ topic: 'line1/t', payload: i }, () => undefined);
    assert.equal((a.buffer.stats() as unknown as { dropped: number }).dropped, 6);
    a.buffer.close(false);
    const b = harness(dir, { capacity: 3, window: 1, statsInterval: 0 });
    for (let i = 0; i < 5; i++) b.buffer.input({ topic: 'line1/t', payload: i }, () => undefined);
    const dropped = (b.buffer.stats() as unknown as { dropped: number }).dropped;
    assert.ok(dropped > 6, `stats: ${dropped}`);
    assert.match(b.buffer.badge().text, new RegExp(`dropped ${dropped}$`));
    assert.ok(b.logs.some((l) => new RegExp(`\\(total ${dropped}\\)`).test(l)), b.logs.join('\n'));
    b.buffer.close(true);
  });

  it('a deleted buffer leaves its spool; the node restored under its id replays it', async function () {
    const a = harness(dir, { capacity: 100, window: 1, statsInterval: 0 });
    for (let i = 0; i < 5; i++) a.buffer.input({ topic: 'line1/t', payload: i }, () => undefined);
    await turn();
    a.buffer.close(true);
    assert.ok(a.logs.some((l) => /spooled 5 unconfirmed messages to .*buf1\.jsonl \(this node was deleted: restore it/.test(l)), a.logs.join('\n'));
    const b = harness(dir, { capacity: 100, window: 100, statsInterval: 0 });
    await turn();
    assert.deepEqual(b.sent.map((m) => m.payload).sort(), [0, 1, 2, 3, 4]);
    b.buffer.close(true);
  });

  it('a payload whose getter throws is taken in, counted and completed once, into batchers and in front of other nodes', async function () {
    const unreadable = (): object =>
      Object.defineProperty({ value: 1 }, 'detail', {
        enumerable: true,
        get() {
          throw new Error('not readable');
        },
      });
    for (const groupLimit of [500, 0]) {
      const a = harness(dir, { capacity: 100, window: 100, statsInterval: 0 }, groupLimit);
      const completions: unknown[] = [];
      a.buffer.input({ topic: 'plc1', payload: unreadable() }, (err) => completions.push(err));
      a.buffer.input({ topic: 'plc1', payload: 2 }, (err) => completions.push(err));
      await turn();
      if (groupLimit === 0) for (const m of a.sent) a.buffer.completed(m._msgid as string, 'ok');
      assert.deepEqual(completions, [undefined, undefined], `group limit ${groupLimit}: each message completed once`);
      const s = a.buffer.stats() as unknown as Counts & { received: number; inFlight: number; delivered: number };
      assert.equal(s.received, 2, `group limit ${groupLimit}`);
      assertCountsAddUp(s, { at: `group limit ${groupLimit}` });
      a.buffer.close(true);
    }
  });

  it('a msg.timestamp of null is no time: the reading gets the time it was taken in, as one without msg.timestamp', async function () {
    const a = harness(dir, { capacity: 100, window: 100, statsInterval: 0 }, 500);
    const before = Date.now();
    a.buffer.input({ topic: 'plc1', payload: 1, timestamp: null }, () => undefined);
    a.buffer.input({ topic: 'plc1', payload: 2 }, () => undefined);
    await turn();
    const records = (a.sent[0] as unknown as { payload: { timestamp: unknown }[] }).payload;
    assert.equal(records.length, 2);
    for (const record of records) assert.ok(typeof record.timestamp === 'number' && record.timestamp >= before, JSON.stringify(record));
    a.buffer.close(true);

    const b = harness(dir, { capacity: 100, window: 100, statsInterval: 0 }, 0);
    b.buffer.input({ topic: 'plc1', payload: 3, timestamp: null }, () => undefined);
    await turn();
    assert.ok(typeof b.sent[0].timestamp === 'number' && b.sent[0].timestamp >= before, 'in front of other nodes too');
    b.buffer.close(true);
  });

  it('spills to the disk tier when the ring is full and shows its backlog on the badge', async function () {
    const a = harness(dir, { capacity: 2, window: 1, diskSpill: true, fsyncInterval: 0, statsInterval: 0 });
    for (let i = 0; i < 20; i++) a.buffer.input({ topic: 'line1/t', payload: i }, () => undefined);
    await turn();
    await turn();
    const s = a.buffer.stats() as unknown as Counts & { spilled: number; diskDepth: number; spillPending: number };
    assert.ok(s.spilled >= 16, `spilled ${s.spilled}`);
    assert.equal(s.spillPending, 0, 'handed to the OS within a turn');
    assertCountsAddUp(s, { at: 'with a disk backlog' });
    const badge = a.buffer.badge();
    assert.equal(badge.fill, 'yellow');
    assert.match(badge.text, /^(disk \d+ \d+B|drain ~.+|dropped 0)$/);
    a.buffer.close(false);
    assert.ok(fs.readdirSync(path.join(dir, 'buf1.disk')).some((f) => f.endsWith('.seg')), 'the disk tier keeps its segments for the next run');
  });

  it('with an fsync after every write, saves the replay cursor while only replay runs, so a crash does not replay again what was confirmed', async function () {
    this.timeout(10000);
    const a = harness(dir, { capacity: 10, window: 5, diskSpill: true, fsyncInterval: 0, replayRate: 100000, diskMaxMB: 16, ackTimeout: 600, statsInterval: 0 });
    // The database is away: the ring fills and the rest goes to disk.
    for (let i = 0; i < 200; i++) a.buffer.input({ topic: 'plc/t', payload: i }, () => undefined);
    await turn();
    assert.ok((a.buffer.stats() as unknown as { spilled: number }).spilled > 150);
    // It is back: everything sent is confirmed, the disk backlog replays and is confirmed too.
    for (let waited = 0; a.buffer.stats().delivered < 200 && waited < 5000; waited += 20) {
      for (const msg of a.sent.splice(0)) a.buffer.completed(msg._msgid as string, 'ok');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.equal(a.buffer.stats().delivered, 200);
    // No spill since: only the cursor's own save can record how far replay went.
    await new Promise((resolve) => setTimeout(resolve, 1300));
    // What a SIGKILL now leaves on the disk, started on by a new instance.
    const crashed = fs.mkdtempSync(path.join(os.tmpdir(), 'buffer-controller-crash-'));
    try {
      fs.cpSync(path.join(dir, 'buf1.disk'), path.join(crashed, 'buf1.disk'), { recursive: true });
      const b = harness(crashed, { capacity: 10, window: 5, diskSpill: true, fsyncInterval: 0, statsInterval: 0 });
      assert.equal((b.buffer.stats() as unknown as { diskRecovered: number }).diskRecovered, 0, 'nothing confirmed comes again');
      b.buffer.close(false);
    } finally {
      fs.rmSync(crashed, { recursive: true, force: true });
    }
    a.buffer.close(false);
  });

  it('after a crash, counts what was spilled since the last save of the totals as received, once, and nothing handed over below zero', async function () {
    this.timeout(10000);
    const options = { capacity: 10, window: 5, diskSpill: true, fsyncInterval: 0, statsInterval: 0 };
    const a = harness(dir, options);
    for (let i = 0; i < 100; i++) a.buffer.input({ topic: 'plc/t', payload: i }, () => undefined);
    await turn();
    await new Promise((resolve) => setTimeout(resolve, 1200)); // the totals are saved every second
    for (let i = 100; i < 300; i++) a.buffer.input({ topic: 'plc/t', payload: i }, () => undefined);
    await turn();
    // What a SIGKILL now leaves on the disk, started on by a new instance.
    const crashed = fs.mkdtempSync(path.join(os.tmpdir(), 'buffer-controller-crash-'));
    try {
      fs.cpSync(dir, crashed, { recursive: true });
      const b = harness(crashed, options);
      const s = b.buffer.stats() as unknown as Counts & { diskRecovered: number };
      assert.ok(s.diskRecovered >= 280, `recovered ${s.diskRecovered}`);
      assert.equal(s.received, 300, 'every reading taken in, the 200 since the last save included');
      assert.equal(s.drained, 300 - s.diskRecovered, 'what the crash took: what was in memory');
      assertCountsAddUp(s, { at: 'after the crash' });
      b.buffer.close(false);
    } finally {
      fs.rmSync(crashed, { recursive: true, force: true });
    }
    a.buffer.close(false);
  });

  it('a deleted buffer with a disk backlog says where the readings are and how many, and its disk tier replays them under its id', async function () {
    const a = harness(dir, { capacity: 2, window: 1, diskSpill: true, fsyncInterval: 0, statsInterval: 0 });
    for (let i = 0; i < 20; i++) a.buffer.input({ topic: 'line1/t', payload: i }, () => undefined);
    await turn();
    await turn();
    const onDisk = (a.buffer.stats() as unknown as { diskDepth: number }).diskDepth;
    assert.ok(onDisk > 10, `on disk: ${onDisk}`);
    a.buffer.close(true);
    const line = a.logs.find((l) => l.startsWith('kept '));
    assert.equal(line, `kept ${onDisk} readings on disk in ${path.join(dir, 'buf1.disk')} (this node was deleted: restore it under its id, with Undo or by importing it again, and deploy, and it replays them)`);
    const restored = harness(dir, { capacity: 2, window: 1, diskSpill: true, fsyncInterval: 0, statsInterval: 0 });
    assert.equal((restored.buffer.stats() as unknown as { diskRecovered: number }).diskRecovered, onDisk);
    restored.buffer.close(false);
  });
});
