import assert from 'node:assert/strict';
import { assertCountsAddUp } from './support/counting';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { badgesOf, clearSpools, CompletionCounter, helper, received, release, settle, spoolDir, testNodes, withHooks } from './support/node-red';
import { waitUntil } from './support/wait';

const bufferNode = withHooks(require('../nodes/telemetry-buffer.js'));
const batcherNode = withHooks(require('../nodes/telemetry-batcher.js'));

interface Stats {
  received: number;
  depth: number;
  inFlight: number;
  delivered: number;
  failed: number;
  unacknowledged: number;
  dropped: number;
  droppedOverflow: number;
  droppedOversize: number;
  droppedDiskError?: number;
  drained: number;
  highWater: number;
}

function bufferFlow(options: Record<string, unknown>, holdMode = 'hold'): object[] {
  return [
    { id: 'buf', type: 'telemetry-buffer', statsInterval: 0, ...options, wires: [['down'], []] },
    { id: 'down', type: 'test-hold', mode: holdMode, wires: [] },
  ];
}

function stats(id: string): any {
  return helper.getNode(id).telemetryStats();
}

function seqs(nodeId: string): number[] {
  return received[nodeId].map((m) => m.seq as number);
}

/** Completes everything the slow node holds until nothing more arrives. */
async function drainSlowly(holdId: string, expected: number): Promise<void> {
  while (received[holdId].length < expected || helper.getNode('buf').telemetryStats().inFlight > 0) {
    release(holdId, 1);
    await settle(1);
  }
}

describe('telemetry-buffer in a real Node-RED runtime', function () {
  let completions: CompletionCounter;

  beforeEach(function () {
    clearSpools();
    completions = new CompletionCounter();
  });

  afterEach(async function () {
    completions.stop();
    await helper.unload();
  });

  it('loads with its defaults and shows an empty badge', async function () {
    await helper.load(bufferNode, [{ id: 'buf', type: 'telemetry-buffer', wires: [[], []] }]);
    const s = stats('buf');
    assert.equal(s.capacity, 100_000);
    assert.equal(s.window, 10_000);
    assert.equal(s.received, 0);
  });

  it('refuses an invalid capacity with a clear error on each message', async function () {
    await helper.load(bufferNode, [{ id: 'buf', type: 'telemetry-buffer', capacity: 'lots', wires: [[], []] }]);
    const buf = helper.getNode('buf');
    const err = await new Promise<Error>((resolve) => {
      helper.getNode('buf').on('call:error', (call: { args: unknown[] }) => {
        if (call.args[1] !== undefined) resolve(call.args[0] as Error);
      });
      buf.receive({ payload: 1 });
    });
    assert.match(String(err), /Capacity must be a whole number/);
  });

  for (const policy of ['drop-oldest', 'drop-newest'] as const) {
    it(`with a slow downstream, fills and drops exactly by ${policy}, checked by sequence numbers`, async function () {
      await helper.load([bufferNode, testNodes], bufferFlow({ capacity: 10, window: 2, dropPolicy: policy }));
      const buf = helper.getNode('buf');
      for (let i = 0; i < 30; i++) buf.receive({ topic: 'line1/temp', payload: i });
      await waitUntil('the first window', () => received.down.length === 2);
      let s: Stats = stats('buf');
      assert.deepEqual(seqs('down'), [1, 2]);
      assert.equal(s.inFlight, 2);
      assert.equal(s.depth, 10);
      assert.equal(s.dropped, 18);
      assert.equal(s.droppedOverflow, 18);
      assertCountsAddUp(s);

      await drainSlowly('down', 12);
      s = stats('buf');
      const kept = policy === 'drop-oldest' ? [21, 22, 23, 24, 25, 26, 27, 28, 29, 30] : [3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
      assert.deepEqual(seqs('down'), [1, 2, ...kept]);
      assert.deepEqual(received.down.slice(2).map((m) => m.payload), kept.map((seq) => seq - 1));
      assert.equal(s.delivered, 12);
      assert.equal(s.dropped, 18);
      assert.equal(s.depth, 0);
      assert.equal(s.highWater, 10);
      assertCountsAddUp(s);
      // Every message the buffer received was completed exactly once: the 12 delivered and the 18 dropped.
      await waitUntil('30 completions', () => completions.total('buf') === 30);
      assert.deepEqual(completions.repeats('buf'), []);
    });
  }

  it('with a fast downstream, drops nothing and keeps order', async function () {
    await helper.load([bufferNode, testNodes], bufferFlow({ capacity: 1000, window: 200 }, 'fast'));
    const buf = helper.getNode('buf');
    const total = 10_000;
    for (let sent = 0; sent < total; sent += 100) {
      for (let i = 0; i < 100; i++) buf.receive({ topic: 'press/cycles', payload: sent + i });
      await new Promise((r) => setImmediate(r));
    }
    await waitUntil('every message downstream', () => received.down.length === total);
    await waitUntil('every completion', () => completions.total('buf') === total);
    const s: Stats = stats('buf');
    assert.equal(s.dropped, 0);
    assert.equal(s.delivered, total);
    assert.ok(s.highWater <= 1000);
    assert.deepEqual(seqs('down'), Array.from({ length: total }, (_, i) => i + 1));
    assert.deepEqual(completions.repeats('buf'), []);
    assert.deepEqual(completions.repeats('down'), []);
  });

  it('numbers sequences per source and reserves a range for an array of events', async function () {
    await helper.load([bufferNode, testNodes], bufferFlow({}, 'fast'));
    const buf = helper.getNode('buf');
    buf.receive({ topic: 'a', payload: 1 });
    buf.receive({ topic: 'b', payload: 1 });
    buf.receive({ topic: 'a', payload: [1, 2, 3] });
    buf.receive({ topic: 'a', payload: 4 });
    await waitUntil('four messages', () => received.down.length === 4);
    assert.deepEqual(received.down.map((m) => [m.topic, m.seq]), [['a', 1], ['b', 1], ['a', 2], ['a', 5]]);
    assert.equal(stats('buf').received, 6);
    for (const m of received.down) assert.equal(typeof m.timestamp, 'number');
  });

  it('counts an array of N events as N against the capacity', async function () {
    await helper.load([bufferNode, testNodes], bufferFlow({ capacity: 10, window: 1 }));
    const buf = helper.getNode('buf');
    buf.receive({ topic: 'x', payload: [1] }); // released at once
    buf.receive({ topic: 'x', payload: [1, 2, 3, 4, 5, 6] });
    buf.receive({ topic: 'x', payload: [1, 2, 3, 4, 5] }); // 6 + 5 > 10: the oldest (6 events) goes
    await settle();
    const s: Stats = stats('buf');
    assert.equal(s.depth, 5);
    assert.equal(s.dropped, 6);
    assert.equal(s.received, 12);
    assertCountsAddUp(s);
  });

  it('takes credit back after the ack timeout when downstream never completes', async function () {
    await helper.load([bufferNode, testNodes], bufferFlow({ capacity: 100, window: 3, ackTimeout: 0.05 }));
    const buf = helper.getNode('buf');
    for (let i = 0; i < 6; i++) buf.receive({ topic: 't', payload: i });
    await waitUntil('all six released after timeouts', () => received.down.length === 6);
    await waitUntil('six unacknowledged', () => stats('buf').unacknowledged === 6, 5000);
    const s: Stats = stats('buf');
    assert.equal(s.delivered, 0);
    assertCountsAddUp(s);
    assert.equal(completions.total('buf'), 6);
    // Said on the badge and in the log, not hidden behind "dropped 0".
    const badges = (): Array<{ fill: string; text: string }> => badgesOf('buf');
    await waitUntil('the badge', () => badges().some((b) => b.text === 'unconfirmed 6' && b.fill === 'yellow'));
    const warned = (helper as any)._NodePrototype.warn.getCalls().filter((call: any) => call.thisValue.id === 'buf').map((call: any) => String(call.args[0]));
    assert.ok(warned.some((w: string) => /^events counted unacknowledged: the nodes after did not confirm them within the ack timeout \(0\.05 s\).*; [1-6] so far/.test(w)), JSON.stringify(warned));
  });

  it('sends the counters on request and on its interval', async function () {
    await helper.load([bufferNode, testNodes], [
      { id: 'buf', type: 'telemetry-buffer', statsInterval: 0.05, wires: [['down'], ['statsOut']] },
      { id: 'down', type: 'test-hold', mode: 'fast', wires: [] },
      { id: 'statsOut', type: 'test-hold', mode: 'fast', wires: [] },
    ]);
    const buf = helper.getNode('buf');
    buf.receive({ topic: 't', payload: 1 });
    await waitUntil('two periodic stats messages', () => received.statsOut.length >= 2);
    const before = received.statsOut.length;
    buf.receive({ control: 'stats' });
    await waitUntil('stats on request', () => received.statsOut.length > before);
    const last = received.statsOut[received.statsOut.length - 1].payload as Stats;
    assert.equal(last.received, 1);
    assert.equal(last.delivered, 1);
    assert.equal(received.down.length, 1, 'a control message is not buffered');
  });
});

describe('telemetry-batcher in a real Node-RED runtime', function () {
  let completions: CompletionCounter;

  beforeEach(function () {
    clearSpools();
    completions = new CompletionCounter();
  });

  afterEach(async function () {
    completions.stop();
    await helper.unload();
  });

  function pipeline(batcher: Record<string, unknown>, buffer: Record<string, unknown> = {}): object[] {
    return [
      { id: 'buf', type: 'telemetry-buffer', statsInterval: 0, ...buffer, wires: [['bat'], []] },
      { id: 'bat', type: 'telemetry-batcher', ...batcher, wires: [['sink'], []] },
      { id: 'sink', type: 'test-hold', wires: [] },
    ];
  }

  it('flushes at maxSize events and completes its inputs only when the batch completes', async function () {
    await helper.load([bufferNode, batcherNode, testNodes], pipeline({ maxSize: 5, maxAge: 60_000, maxOpenBatches: 1 }));
    const buf = helper.getNode('buf');
    for (let i = 0; i < 12; i++) buf.receive({ topic: 'm1', payload: i, kind: 'sample' });
    await waitUntil('the first batch', () => received.sink.length === 1);
    await settle();
    const batch = received.sink[0];
    assert.deepEqual((batch.batch as { count: number; reason: string }).count, 5);
    assert.equal((batch.batch as { reason: string }).reason, 'size');
    assert.deepEqual((batch.payload as { seq: number }[]).map((r) => r.seq), [1, 2, 3, 4, 5]);
    const record = (batch.payload as Record<string, unknown>[])[0];
    assert.equal(record.topic, 'm1');
    assert.equal(record.payload, 0);
    assert.equal(record.kind, 'sample');
    assert.equal(typeof record.timestamp, 'number');
    // Nothing was confirmed yet: the buffer still counts all 12 as held or in flight.
    assert.equal(stats('buf').delivered, 0);
    assert.equal(completions.total('bat'), 0);

    release('sink', 1);
    await waitUntil('the first five confirmed', () => stats('buf').delivered === 5);
    assert.equal(completions.total('bat'), 5);
    await waitUntil('the second batch', () => received.sink.length === 2);
    release('sink', 1);
    await waitUntil('ten confirmed', () => stats('buf').delivered === 10);
    assert.equal(helper.getNode('bat').telemetryStats().heldEvents, 2);
  });

  it("when its own ack timeout gives a batch up, the buffer in front counts the events unacknowledged, never delivered", async function () {
    await helper.load([bufferNode, batcherNode, testNodes], pipeline({ maxSize: 5, maxAge: 10, ackTimeout: 0.1 }, { ackTimeout: 60 }));
    const buf = helper.getNode('buf');
    for (let i = 0; i < 5; i++) buf.receive({ topic: 'm1', payload: i });
    await waitUntil('five unacknowledged', () => stats('buf').unacknowledged === 5, 5000);
    const s: Stats = stats('buf');
    assert.equal(s.delivered, 0);
    assertCountsAddUp(s);
    assert.equal(helper.getNode('bat').telemetryStats().batchesUnacknowledged, 1);
  });

  it("an ack timeout spares what the batcher still holds: a buffer timeout far shorter than the wait counts nothing unacknowledged", async function () {
    // The buffer gives up after 50 ms, the batcher after 60 s: the batch waits in the slow node for
    // 600 ms, and the batcher answers for it all along.
    await helper.load([bufferNode, batcherNode, testNodes], pipeline({ maxSize: 5, maxAge: 10, ackTimeout: 60 }, { ackTimeout: 0.05 }));
    const buf = helper.getNode('buf');
    for (let i = 0; i < 5; i++) buf.receive({ topic: 'm1', payload: i });
    await waitUntil('the batch', () => received.sink.length === 1);
    await settle(600);
    assert.equal(stats('buf').unacknowledged, 0);
    assert.equal(stats('buf').inFlight, 5);
    release('sink');
    await waitUntil('delivered once confirmed', () => stats('buf').delivered === 5);
    assertCountsAddUp(stats('buf'));
  });

  it('flushes by age when the batch does not fill', async function () {
    await helper.load([bufferNode, batcherNode, testNodes], pipeline({ maxSize: 1000, maxAge: 30 }));
    const buf = helper.getNode('buf');
    for (let i = 0; i < 3; i++) buf.receive({ topic: 'slow', payload: i });
    await waitUntil('an age flush', () => received.sink.length === 1);
    assert.equal((received.sink[0].batch as { reason: string; count: number }).reason, 'age');
    assert.equal((received.sink[0].batch as { count: number }).count, 3);
  });

  it('flushes on request', async function () {
    await helper.load([batcherNode, testNodes], [
      { id: 'bat', type: 'telemetry-batcher', maxSize: 1000, maxAge: 60_000, wires: [['sink'], []] },
      { id: 'sink', type: 'test-hold', wires: [] },
    ]);
    const bat = helper.getNode('bat');
    bat.receive({ topic: 'a', payload: 1 });
    bat.receive({ topic: 'a', payload: [2, 3] });
    bat.receive({ control: 'flush' });
    await waitUntil('a flush', () => received.sink.length === 1);
    assert.equal((received.sink[0].batch as { reason: string }).reason, 'flush');
    assert.deepEqual((received.sink[0].payload as { payload: number }[]).map((r) => r.payload), [1, 2, 3]);
  });

  it('keeps at most maxOpenBatches open and, alone, refuses input beyond maxHeld with an error', async function () {
    await helper.load([batcherNode, testNodes], [
      { id: 'bat', type: 'telemetry-batcher', maxSize: 2, maxAge: 60_000, maxOpenBatches: 2, maxHeld: 10, wires: [['sink'], []] },
      { id: 'sink', type: 'test-hold', wires: [] },
    ]);
    const bat = helper.getNode('bat');
    const errors: string[] = [];
    bat.on('call:error', (call: { args: unknown[] }) => errors.push(String(call.args[0])));
    for (let i = 0; i < 12; i++) bat.receive({ topic: 'a', payload: i, _msgid: `m${i}` });
    await settle();
    assert.equal(received.sink.length, 2);
    const s = bat.telemetryStats();
    assert.equal(s.openBatches, 2);
    assert.equal(s.waitingBatches, 3);
    assert.equal(s.heldEvents, 10);
    assert.equal(s.refusedMessages, 2);
    assert.equal(completions.total('bat'), 2, 'the two refused messages were completed');
    assert.equal(errors.length, 2);
    assert.match(errors[0], /telemetry-batcher is full \(10 events held\)/);
    release('sink');
    await waitUntil('waiting batches sent', () => received.sink.length === 4);
    assert.equal(bat.telemetryStats().openBatches, 2);
  });

  it('behind a buffer whose window exceeds maxHeld, hands messages back instead of losing them', async function () {
    await helper.load([bufferNode, batcherNode, testNodes], pipeline({ maxSize: 2, maxAge: 60_000, maxOpenBatches: 1, maxHeld: 6 }, { window: 50 }));
    const buf = helper.getNode('buf');
    for (let i = 0; i < 30; i++) buf.receive({ topic: 'w', payload: i });
    await waitUntil('a first batch', () => received.sink.length === 1);
    await settle();
    assert.ok(helper.getNode('bat').telemetryStats().refusedMessages > 0, 'the batcher handed some back');
    assert.equal(stats('buf').failed, 0, 'handed back is not failed');
    while (stats('buf').delivered < 30) {
      release('sink');
      await settle(5);
    }
    const s = stats('buf');
    assert.equal(s.delivered, 30);
    assert.equal(s.failed, 0);
    assert.equal(s.dropped, 0);
    const seqsWritten = received.sink.flatMap((m) => (m.payload as { seq: number }[]).map((r) => r.seq));
    assert.deepEqual([...seqsWritten].sort((a, b) => a - b), Array.from({ length: 30 }, (_, i) => i + 1), 'every event reached the sink exactly once');
    await waitUntil('thirty completions by the buffer', () => completions.total('buf') === 30);
    assert.deepEqual(completions.repeats('buf'), []);
  });

  it('into a batcher alone, sends what arrives together as record groups: same records, one done() per original message', async function () {
    await helper.load([bufferNode, batcherNode, testNodes], pipeline({ maxSize: 50, maxAge: 50, maxOpenBatches: 1 }));
    const buf = helper.getNode('buf');
    // 100 messages in one event-loop turn, two sources interleaved.
    for (let i = 0; i < 100; i++) buf.receive({ topic: i % 2 === 0 ? 'even' : 'odd', payload: i, timestamp: 1_700_000_000_000 + i });
    await waitUntil('the first batch', () => received.sink.length === 1);
    const bat = helper.getNode('bat').telemetryStats();
    assert.equal(bat.receivedEvents, 100);
    // In groups of at most 50 / 10 = 5 events.
    assert.equal(bat.receivedMessages, 100 / 5);
    while (stats('buf').delivered < 100) {
      release('sink');
      await settle(5);
    }
    const records = received.sink.flatMap((m) => m.payload as { topic: string; payload: number; seq: number; timestamp: number }[]);
    assert.equal(records.length, 100);
    assert.ok(received.sink.slice(0, -1).every((m) => (m.payload as unknown[]).length >= 45), 'no batch but the last closed below 90 % of maxSize');
    // Exactly the records the batcher builds from the messages themselves: topic, payload, seq, timestamp.
    assert.deepEqual(records, Array.from({ length: 100 }, (_, i) => ({ topic: i % 2 === 0 ? 'even' : 'odd', payload: i, timestamp: 1_700_000_000_000 + i, seq: Math.floor(i / 2) + 1, kind: undefined })));
    await waitUntil('one completion per original message', () => completions.total('buf') === 100);
    assert.deepEqual(completions.repeats('buf'), []);
    const s = stats('buf');
    assert.equal(s.delivered, 100);
    assert.equal(s.inFlight, 0);
  });

  it('with anything beside the batcher on its output, sends the messages as they came', async function () {
    await helper.load([bufferNode, batcherNode, testNodes], [
      { id: 'buf', type: 'telemetry-buffer', statsInterval: 0, wires: [['bat', 'side'], []] },
      { id: 'bat', type: 'telemetry-batcher', maxSize: 50, maxAge: 60_000, wires: [['sink'], []] },
      { id: 'side', type: 'test-hold', mode: 'fast', wires: [] },
      { id: 'sink', type: 'test-hold', mode: 'fast', wires: [] },
    ]);
    const buf = helper.getNode('buf');
    for (let i = 0; i < 100; i++) buf.receive({ topic: 'line', payload: i });
    await waitUntil('all delivered', () => stats('buf').delivered === 100);
    assert.equal(received.side.length, 100);
    assert.ok(received.side.every((m, i) => m.payload === i && m.telemetryRecords === undefined), 'the side node sees the original messages');
    assert.equal(helper.getNode('bat').telemetryStats().receivedMessages, 100);
  });

  it('beside a node of another package, each completion counts once: the batcher tells its own, the hook the other', async function () {
    // The buffer waits for both completions of each message. Told twice (by the batcher and by the
    // hook), the batcher's would release the messages the side node still holds.
    await helper.load([bufferNode, batcherNode, testNodes], [
      { id: 'buf', type: 'telemetry-buffer', statsInterval: 0, wires: [['bat', 'side'], []] },
      { id: 'bat', type: 'telemetry-batcher', maxSize: 5, maxAge: 10, wires: [['sink'], []] },
      { id: 'side', type: 'test-hold', wires: [] },
      { id: 'sink', type: 'test-hold', mode: 'fast', wires: [] },
    ]);
    const buf = helper.getNode('buf');
    for (let i = 0; i < 10; i++) buf.receive({ topic: 'line', payload: i });
    await waitUntil('the batcher completed all ten', () => completions.total('bat') === 10);
    await settle(50);
    assert.equal(stats('buf').delivered, 0, 'the side node holds all ten');
    release('side', 4);
    await waitUntil('four delivered', () => stats('buf').delivered === 4);
    await settle(50);
    assert.equal(stats('buf').delivered, 4);
    release('side');
    await waitUntil('all delivered', () => stats('buf').delivered === 10);
    assertCountsAddUp(stats('buf'));
    assert.deepEqual(completions.repeats('buf'), []);
  });

  it('into a batcher alone, keeps a one-event message as its record and completes it on arrival', async function () {
    // maxSize 50: groups of up to 5 events (a batcher of fewer than 20 takes messages one by one).
    await helper.load([bufferNode, batcherNode, testNodes], pipeline({ maxSize: 50, maxAge: 50, maxOpenBatches: 1 }));
    const buf = helper.getNode('buf');
    // What an input node adds beside the event (MQTT's qos and retain, a large object) is not kept.
    for (let i = 0; i < 12; i++) buf.receive({ topic: 'm1', payload: { value: i }, timestamp: 1_700_000_000_000 + i, kind: 'sample', qos: 1, retain: false, raw: 'x'.repeat(1000) });
    await waitUntil('the first batch', () => received.sink.length === 1);
    // Completed upstream on arrival, although nothing is committed and the buffer still holds all 12.
    assert.equal(completions.total('buf'), 12);
    let s: Stats = stats('buf');
    assert.equal(s.delivered, 0);
    assert.equal(s.depth + s.inFlight, 12);
    const expected = Array.from({ length: 12 }, (_, i) => ({ topic: 'm1', payload: { value: i }, timestamp: 1_700_000_000_000 + i, seq: i + 1, kind: 'sample' }));
    const records = (): Record<string, unknown>[] => received.sink.flatMap((m) => m.payload as Record<string, unknown>[]).map((r) => ({ topic: r.topic, payload: r.payload, timestamp: r.timestamp, seq: r.seq, kind: r.kind }));
    assert.deepEqual(Object.keys((received.sink[0].payload as object[])[1]).sort(), ['kind', 'payload', 'seq', 'timestamp', 'topic']);
    while (stats('buf').delivered < 12) {
      release('sink');
      await settle(5);
    }
    assert.deepEqual(records(), expected);
    s = stats('buf');
    assert.equal(s.delivered, 12);
    assertCountsAddUp(s);
    assert.equal(completions.total('buf'), 12);
    assert.deepEqual(completions.repeats('buf'), []);
  });

  it('wired to anything but batchers, completes a message upstream only when downstream has', async function () {
    await helper.load([bufferNode, testNodes], bufferFlow({ window: 10 }));
    const buf = helper.getNode('buf');
    for (let i = 0; i < 3; i++) buf.receive({ topic: 'm1', payload: i });
    await waitUntil('three delivered', () => received.down.length === 3);
    await settle(20);
    assert.equal(completions.total('buf'), 0);
    release('down', 2);
    await waitUntil('two completions after downstream completed two', () => completions.total('buf') === 2);
    await settle(20);
    assert.equal(completions.total('buf'), 2);
  });

  it('a closing batcher hands record groups back whole: the buffer spools every original message once', async function () {
    await helper.load([bufferNode, batcherNode, testNodes], pipeline({ maxSize: 50, maxAge: 60_000, maxOpenBatches: 1 }));
    const buf = helper.getNode('buf');
    for (let i = 0; i < 100; i++) buf.receive({ topic: 'g', payload: i });
    await waitUntil('a batch', () => received.sink.length === 1);
    release('sink', 1);
    await waitUntil('the first batch confirmed', () => stats('buf').delivered >= 45);
    const delivered = stats('buf').delivered;
    await helper.unload();
    assert.equal(completions.total('buf'), 100);
    assert.deepEqual(completions.repeats('buf'), []);
    await helper.load([bufferNode, testNodes], bufferFlow({ capacity: 1000, window: 1000 }, 'fast'));
    await waitUntil('the spooled rest', () => received.down.length === 100 - delivered);
    assert.deepEqual(seqs('down'), Array.from({ length: 100 - delivered }, (_, i) => delivered + i + 1));
    assert.ok(received.down.every((m) => m.telemetryRecords === undefined), 'spooled as the original messages');
  });

  it('hands back unconfirmed messages on close; every message gets exactly one done()', async function () {
    await helper.load([bufferNode, batcherNode, testNodes], pipeline({ maxSize: 4, maxAge: 60_000, maxOpenBatches: 1 }));
    const buf = helper.getNode('buf');
    for (let i = 0; i < 10; i++) buf.receive({ topic: 'z', payload: i });
    await waitUntil('a batch', () => received.sink.length === 1);
    release('sink', 1);
    await waitUntil('four confirmed', () => stats('buf').delivered === 4);
    await helper.unload();
    // The batcher held 4 open and 2 unsent when it closed: it hands those 6 back, once each.
    assert.equal(completions.total('bat'), 10);
    assert.deepEqual(completions.repeats('bat'), []);
    assert.equal(completions.total('buf'), 10);
    assert.deepEqual(completions.repeats('buf'), []);
  });
});

describe('shutdown and redeploy lose nothing', function () {
  afterEach(async function () {
    await helper.unload();
  });

  it('spools the ring and unconfirmed messages on close and restores them on start, numbering on', async function () {
    clearSpools();
    await helper.load([bufferNode, testNodes], bufferFlow({ capacity: 100, window: 2 }));
    const buf = helper.getNode('buf');
    for (let i = 0; i < 10; i++) buf.receive({ topic: 'oven', payload: i });
    await waitUntil('two in flight', () => received.down.length === 2);
    await helper.unload();

    await helper.load([bufferNode, testNodes], bufferFlow({ capacity: 100, window: 100 }, 'fast'));
    await waitUntil('the ten spooled messages', () => received.down.length === 10);
    assert.deepEqual(seqs('down'), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    assert.deepEqual(received.down.map((m) => m.payload), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    helper.getNode('buf').receive({ topic: 'oven', payload: 10 });
    await waitUntil('a new message', () => received.down.length === 11);
    assert.equal(received.down[10].seq, 11, 'sequence numbers continue across the restart');
    const s = stats('buf');
    assert.equal(s.restored, 10);
    assert.equal(s.received, 11, 'the counters are totals: the 10 taken back are not counted twice');
    assert.equal(s.delivered, 11);
    assert.equal(s.drained, 0, 'nothing handed over is left out');
    assertCountsAddUp(s);

    // A third instance: the totals go on from where the second left off.
    await helper.unload();
    await helper.load([bufferNode, testNodes], bufferFlow({ capacity: 100, window: 100 }, 'fast'));
    for (let i = 11; i < 15; i++) helper.getNode('buf').receive({ topic: 'oven', payload: i });
    await waitUntil('four more', () => received.down.length === 4);
    const t = stats('buf');
    assert.deepEqual([t.received, t.delivered, t.restored, t.drained], [15, 15, 10, 0]);
    assert.deepEqual(seqs('down'), [12, 13, 14, 15]);
    assertCountsAddUp(t);
  });

  it('redelivers what the batcher hands back when only the batcher is redeployed', async function () {
    clearSpools();
    const flow = [
      { id: 'buf', type: 'telemetry-buffer', statsInterval: 0, wires: [['bat'], []] },
      { id: 'bat', type: 'telemetry-batcher', maxSize: 4, maxAge: 60_000, maxOpenBatches: 1, wires: [['sink'], []] },
      { id: 'sink', type: 'test-hold', wires: [] },
    ];
    await helper.load([bufferNode, batcherNode, testNodes], flow);
    const buf = helper.getNode('buf');
    for (let i = 0; i < 6; i++) buf.receive({ topic: 'press', payload: i });
    await waitUntil('one batch out', () => received.sink.length === 1);
    // A modified-nodes deploy restarts only the batcher (its options changed) and the sink.
    const changed = flow.map((n) => (n.id === 'bat' ? { ...n, maxSize: 6 } : n));
    await helper.setFlows(changed, 'nodes');
    // The sink itself was not restarted: it still holds the old batch and now gets the new one.
    await waitUntil('one batch of all six from the new batcher', () => received.sink.length === 2);
    assert.equal((received.sink[1].batch as { count: number }).count, 6);
    assert.deepEqual((received.sink[1].payload as { seq: number }[]).map((r) => r.seq), [1, 2, 3, 4, 5, 6]);
    const s = helper.getNode('buf').telemetryStats();
    assert.equal(s.delivered, 0);
    assert.equal(s.inFlight, 6);
    assert.equal(s.received, 6);
  });

  it('holds everything while the node after it is disabled, says so on the badge, and sends it all once it is enabled again', async function () {
    clearSpools();
    const flow = [
      { id: 'buf', type: 'telemetry-buffer', statsInterval: 0, capacity: 100, window: 10, ackTimeout: 0.2, wires: [['bat'], []] },
      { id: 'bat', type: 'telemetry-batcher', maxSize: 5, maxAge: 20, maxOpenBatches: 2, ackTimeout: 0.2, wires: [['down'], []] },
      { id: 'down', type: 'test-hold', mode: 'fast', d: true, wires: [] },
    ];
    await helper.load([bufferNode, batcherNode, testNodes], flow);
    const buf = helper.getNode('buf');
    for (let i = 0; i < 30; i++) buf.receive({ topic: 'oven', payload: i });
    // Well past both ack timeouts: nothing was sent into the void and counted unacknowledged.
    await settle(700);
    const held = stats('buf');
    assert.equal(held.unacknowledged, 0);
    assert.equal(held.depth + held.inFlight, 30, 'all of it held');
    assert.equal(helper.getNode('bat').telemetryStats().batchesUnacknowledged ?? 0, 0);
    const badges = (node: string): string[] => badgesOf(node).map((badge) => badge.text);
    await waitUntil("the batcher's badge says why", () => badges('bat').some((t: string) => t.startsWith('next node off')));
    // Enabled again: a modified-nodes deploy starts only that node.
    await helper.setFlows(flow.map((n) => (n.id === 'down' ? { ...n, d: false } : n)), 'nodes');
    await waitUntil('all 30 delivered', () => stats('buf').delivered === 30);
    assert.deepEqual(received.down.flatMap((m) => (m.payload as { payload: number }[]).map((r) => r.payload)), Array.from({ length: 30 }, (_, i) => i));
    const s = stats('buf');
    assert.deepEqual([s.unacknowledged, s.failed, s.dropped], [0, 0, 0]);
  });

  it('in front of a disabled node, holds what it takes in and names the reason on its badge', async function () {
    clearSpools();
    const flow = [
      { id: 'buf', type: 'telemetry-buffer', statsInterval: 0, capacity: 100, window: 10, ackTimeout: 0.2, wires: [['down'], []] },
      { id: 'down', type: 'test-hold', mode: 'fast', d: true, wires: [] },
    ];
    await helper.load([bufferNode, testNodes], flow);
    for (let i = 0; i < 5; i++) helper.getNode('buf').receive({ topic: 'oven', payload: i });
    await settle(2500); // past the ack timeout, and past the fallback that starts a buffer no flows:started reached
    assert.deepEqual([stats('buf').depth, stats('buf').inFlight, stats('buf').unacknowledged], [5, 0, 0]);
    const badges = badgesOf('buf');
    assert.deepEqual(badges[badges.length - 1], { fill: 'yellow', shape: 'dot', text: 'next node off 5%' });
    await helper.setFlows(flow.map((n) => (n.id === 'down' ? { ...n, d: false } : n)), 'nodes');
    await waitUntil('all 5 delivered', () => stats('buf').delivered === 5);
    assert.deepEqual(seqs('down'), [1, 2, 3, 4, 5]);
  });

  it('wired to two nodes of which one is disabled, holds too: what went to the disabled one would never be confirmed', async function () {
    clearSpools();
    const flow = [
      { id: 'buf', type: 'telemetry-buffer', statsInterval: 0, capacity: 100, window: 10, ackTimeout: 0.2, wires: [['down', 'off'], []] },
      { id: 'down', type: 'test-hold', mode: 'fast', wires: [] },
      { id: 'off', type: 'test-hold', mode: 'fast', d: true, wires: [] },
    ];
    await helper.load([bufferNode, testNodes], flow);
    for (let i = 0; i < 5; i++) helper.getNode('buf').receive({ topic: 'oven', payload: i });
    await settle(600);
    assert.deepEqual([stats('buf').depth, stats('buf').unacknowledged, received.down?.length ?? 0], [5, 0, 0]);
    await helper.setFlows(flow.map((n) => (n.id === 'off' ? { ...n, d: false } : n)), 'nodes');
    await waitUntil('all 5 delivered', () => stats('buf').delivered === 5);
    assert.deepEqual([received.down.length, received.off.length], [5, 5]);
  });

  it('sends again what a node replaced by a deploy never completed', async function () {
    clearSpools();
    const flow = bufferFlow({ capacity: 100, window: 10 });
    await helper.load([bufferNode, testNodes], flow);
    const buf = helper.getNode('buf');
    for (let i = 0; i < 5; i++) buf.receive({ topic: 'oven', payload: i });
    await waitUntil('five held downstream', () => received.down.length === 5);
    // The node downstream is replaced (its options changed) and, like many nodes, its close
    // completes nothing it held: without a completion those five would wait out the ack timeout.
    await helper.setFlows(flow.map((n) => ((n as { id: string }).id === 'down' ? { ...n, name: 'changed' } : n)), 'nodes');
    await waitUntil('the same five at the new node', () => received.down.length === 5);
    assert.deepEqual(seqs('down'), [1, 2, 3, 4, 5]);
    assert.deepEqual(received.down.map((m) => m.payload), [0, 1, 2, 3, 4]);
    assert.equal(stats('buf').inFlight, 5);
    release('down');
    await waitUntil('all five delivered', () => stats('buf').delivered === 5);
    const s = stats('buf');
    assert.equal(s.received, 5);
    assert.equal(s.unacknowledged, 0);
    assert.equal(s.failed, 0);
    assert.equal(s.inFlight, 0);
  });

  it('without a buffer in front, the batcher keeps what a sink being replaced hands back and sends it to the new one', async function () {
    const flow = [
      { id: 'bat', type: 'telemetry-batcher', maxSize: 4, maxAge: 60_000, maxOpenBatches: 2, wires: [['sink'], []] },
      { id: 'sink', type: 'test-hold', mode: 'return', wires: [] },
    ];
    await helper.load([batcherNode, testNodes], flow);
    const bat = helper.getNode('bat');
    for (let i = 0; i < 8; i++) bat.receive({ topic: 'press', payload: i, seq: i + 1 });
    await waitUntil('two batches out', () => received.sink.length === 2);
    await helper.setFlows(flow.map((n) => (n.id === 'sink' ? { ...n, name: 'changed' } : n)), 'nodes');
    await waitUntil('both batches again, at the new sink', () => received.sink.length === 2);
    const batches = received.sink.map((m) => (m.payload as { seq: number }[]).map((r) => r.seq));
    assert.deepEqual(batches, [[1, 2, 3, 4], [5, 6, 7, 8]]);
    release('sink');
    await waitUntil('both batches completed', () => bat.telemetryStats().batchesCompleted === 2);
    const b = bat.telemetryStats();
    assert.equal(b.batchesResent, 2);
    assert.equal(b.batchesSent, 4, 'two batches, each sent twice');
    assert.equal(b.flushedBySize, 2, 'each batch counted as flushed once');
    assert.equal(b.batchesReturned, 0, 'nothing handed back upstream, where nobody keeps it');
  });

  it('the batcher sends again the batches a node replaced by a deploy never completed', async function () {
    clearSpools();
    const flow = [
      { id: 'buf', type: 'telemetry-buffer', statsInterval: 0, wires: [['bat'], []] },
      { id: 'bat', type: 'telemetry-batcher', maxSize: 4, maxAge: 60_000, maxOpenBatches: 2, wires: [['sink'], []] },
      { id: 'sink', type: 'test-hold', wires: [] },
    ];
    await helper.load([bufferNode, batcherNode, testNodes], flow);
    const buf = helper.getNode('buf');
    for (let i = 0; i < 12; i++) buf.receive({ topic: 'press', payload: i });
    await waitUntil('two batches out, one waiting', () => received.sink.length === 2);
    const batches = (): number[][] => received.sink.map((m) => (m.payload as { seq: number }[]).map((r) => r.seq));
    assert.deepEqual(batches(), [[1, 2, 3, 4], [5, 6, 7, 8]]);
    await helper.setFlows(flow.map((n) => (n.id === 'sink' ? { ...n, name: 'changed' } : n)), 'nodes');
    await waitUntil('the two open batches again, at the new node', () => received.sink.length === 2);
    assert.deepEqual(batches(), [[1, 2, 3, 4], [5, 6, 7, 8]]);
    assert.equal(helper.getNode('bat').telemetryStats().batchesResent, 2);
    release('sink');
    await waitUntil('the waiting batch', () => received.sink.length === 3);
    assert.deepEqual(batches()[2], [9, 10, 11, 12]);
    release('sink');
    await waitUntil('all twelve delivered', () => stats('buf').delivered === 12);
    const s = stats('buf');
    assert.equal(s.unacknowledged, 0);
    assert.equal(s.inFlight, 0);
    const b = helper.getNode('bat').telemetryStats();
    assert.equal(b.batchesCompleted, 3);
    assert.equal(b.flushedBySize, 3);
    assert.equal(b.batchesUnacknowledged, 0);
  });
});


describe('telemetry-buffer: the disk tier failing', function () {
  const fs = require('fs') as typeof import('fs');
  const os = require('os') as typeof import('os');
  const path = require('path') as typeof import('path');
  let dir = '';

  beforeEach(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telemetry-buffer-disk-'));
  });

  afterEach(async function () {
    await helper.unload();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('counts every event while its directory is unusable, and logs the failure and the recovery once each', async function () {
    await helper.load([bufferNode, testNodes], bufferFlow({ capacity: 2, window: 50, diskSpill: true, diskMaxMB: 0.0625, fsyncInterval: 0, spoolDir: dir }));
    const buf = helper.getNode('buf');
    const errors: string[] = [];
    const logs: string[] = [];
    buf.on('call:error', (call: { args: unknown[] }) => errors.push(String(call.args[0])));
    buf.on('call:log', (call: { args: unknown[] }) => logs.push(String(call.args[0])));
    const diskDir = path.join(dir, 'buf.disk');
    const send = async (from: number, n: number): Promise<void> => {
      for (let i = from; i < from + n; i++) {
        buf.receive({ topic: 'line', payload: { value: i, note: 'x'.repeat(40) } });
        if (i % 50 === 49) await settle(1);
      }
      await settle(20);
    };
    await send(0, 500);
    let s = stats('buf');
    assert.ok(s.spilled > 0, 'the ring overflowed to disk');
    assert.equal(s.droppedDiskError, 0);
    assertCountsAddUp(s);
    // The directory is removed and a file takes its place: no segment can be opened there.
    fs.rmSync(diskDir, { recursive: true, force: true });
    fs.writeFileSync(diskDir, 'in the way');
    await send(500, 1500);
    s = stats('buf');
    assert.equal(s.received, 2000);
    assert.ok(s.droppedDiskError > 0, `refused events counted (${s.droppedDiskError})`);
    assert.ok(s.diskErrors > 1, `several failed operations (${s.diskErrors})`);
    assertCountsAddUp(s);
    assert.equal(errors.filter((e) => /disk tier .* fails/.test(e)).length, 1, `one error for the change of state: ${JSON.stringify(errors)}`);
    fs.rmSync(diskDir, { force: true });
    await send(2000, 1000);
    s = stats('buf');
    assertCountsAddUp(s);
    assert.equal(logs.filter((l) => /works again/.test(l)).length, 1, `one log for the recovery: ${JSON.stringify(logs)}`);
    assert.equal(errors.filter((e) => /disk tier .* fails/.test(e)).length, 1);
    // Everything that is still held comes out; what the removed directory held is counted as lost.
    await waitUntil('the backlog replayed', () => {
      release('down');
      return stats('buf').depth === 0 && stats('buf').inFlight === 0;
    }, 60_000);
    s = stats('buf');
    assertCountsAddUp(s);
    assert.equal(s.received, 3000);
    assert.equal(s.delivered + s.dropped, 3000);
  });
});

describe('telemetry-buffer: a message comes back as it was sent, from memory, disk and spool', function () {
  const fs = require('fs') as typeof import('fs');
  const os = require('os') as typeof import('os');
  const path = require('path') as typeof import('path');
  let dir = '';
  beforeEach(function () {
    clearSpools();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telemetry-buffer-types-'));
  });
  afterEach(async function () {
    await helper.unload();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const frame = (i: number): Buffer => Buffer.from([i, 0, 255, 128, i]);
  const when = (i: number): Date => new Date(Date.UTC(2025, 5, 1, 0, 0, i));
  const sent = (i: number) => ({ topic: 'camera', payload: frame(i), shotAt: when(i), meta: { nested: [{ at: when(i) }] } });

  /** The ring and the disk replay interleaved: order holds within each, `inAnyOrder` across them. */
  function checkReceived(indexes: number[], inAnyOrder = false): void {
    const got = received.down.slice();
    if (inAnyOrder) got.sort((a, b) => (a.payload as Buffer)[0] - (b.payload as Buffer)[0]);
    assert.deepEqual(got.map((m) => (m.payload as Buffer)[0]), indexes);
    for (const [k, m] of got.entries()) {
      const i = indexes[k];
      assert.ok(Buffer.isBuffer(m.payload), `message ${i}: payload is a Buffer, not ${JSON.stringify(m.payload)}`);
      assert.deepStrictEqual(m.payload, frame(i));
      assert.ok(m.shotAt instanceof Date, `message ${i}: a Date stays a Date`);
      assert.deepStrictEqual(m.shotAt, when(i));
      assert.deepStrictEqual(m.meta, { nested: [{ at: when(i) }] });
    }
  }

  it('held as bytes by a full ring (overload, drop-oldest)', async function () {
    await helper.load([bufferNode, testNodes], bufferFlow({ capacity: 2, window: 1, spoolDir: dir }));
    const buf = helper.getNode('buf');
    for (let i = 1; i <= 6; i++) buf.receive(sent(i));
    await waitUntil('the first in flight', () => received.down.length === 1);
    assert.ok(stats('buf').heldAsText > 0, 'the ring holds messages encoded');
    await waitUntil('the rest', () => (release('down'), received.down.length === 3 && stats('buf').depth === 0));
    checkReceived([1, 5, 6]);
  });

  it('spilled to disk and replayed', async function () {
    await helper.load([bufferNode, testNodes], bufferFlow({ capacity: 1, window: 1, diskSpill: true, spoolDir: dir }));
    const buf = helper.getNode('buf');
    for (let i = 1; i <= 6; i++) buf.receive(sent(i));
    await waitUntil('four spilled', () => stats('buf').spilled === 4);
    await waitUntil('all six', () => (release('down'), received.down.length === 6 && stats('buf').depth === 0));
    checkReceived([1, 2, 3, 4, 5, 6], true);
  });

  it('spooled at close and restored at start', async function () {
    await helper.load([bufferNode, testNodes], bufferFlow({ capacity: 10, window: 2, spoolDir: dir }));
    const buf = helper.getNode('buf');
    for (let i = 1; i <= 4; i++) buf.receive(sent(i));
    await waitUntil('two in flight', () => received.down.length === 2);
    await helper.unload();
    await helper.load([bufferNode, testNodes], bufferFlow({ capacity: 10, window: 10, spoolDir: dir }, 'fast'));
    await waitUntil('the four spooled', () => received.down.length === 4);
    checkReceived([1, 2, 3, 4]);
  });
});

describe('telemetry-buffer: the shutdown spool counts what it wrote and keeps what it cannot restore', function () {
  const fs = require('fs') as typeof import('fs');
  const os = require('os') as typeof import('os');
  const path = require('path') as typeof import('path');
  let dir = '';
  beforeEach(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telemetry-buffer-spool-'));
  });
  afterEach(async function () {
    await helper.unload();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** Node-RED's own log, as a user sees it: the messages matching `pattern`, until stop(). */
  function captureLog(pattern: RegExp): { lines: string[]; stop(): void } {
    const log = (require('@node-red/util') as { log: { addHandler(h: unknown): void; removeHandler(h: unknown): void } }).log;
    const handler = new (require('events') as typeof import('events')).EventEmitter();
    const lines: string[] = [];
    handler.on('log', (evt: { msg?: unknown }) => {
      if (typeof evt.msg === 'string' && pattern.test(evt.msg)) lines.push(evt.msg);
    });
    log.addHandler(handler);
    return { lines, stop: () => log.removeHandler(handler) };
  }

  it('spooled counts only what was written; what could not be written is spoolLost (drained = spooled + spoolLost)', async function () {
    await helper.load([bufferNode, testNodes], bufferFlow({ capacity: 10, window: 1, spoolDir: dir }));
    const buf = helper.getNode('buf');
    let deep: unknown = 1;
    for (let i = 0; i < 200_000; i++) deep = { a: deep };
    buf.receive({ topic: 't', payload: 1 });
    buf.receive({ topic: 't', payload: [deep, 2, 3] });
    buf.receive({ topic: 't', payload: 4 });
    await waitUntil('five events', () => stats('buf').received === 5);
    const errors = captureLog(/could not spool/);
    try {
      await helper.unload();
    } finally {
      errors.stop();
    }
    const s = buf.telemetryStats();
    assert.equal(s.drained, 5);
    assert.equal(s.spooled, 2, 'the two one-event messages');
    assert.equal(s.spoolLost, 3, 'the message of three events JSON cannot write');
    assertCountsAddUp(s);
    assert.deepEqual(errors.lines, ['could not spool 1 unconfirmed messages (3 events) that cannot be written as JSON (nested too deep?)']);
  });

  it('a spool with unreadable lines: the rest restored, the lines counted, the file kept aside and logged by name', async function () {
    const file = path.join(dir, 'buf.jsonl');
    const header = JSON.stringify({ format: 'telemetry-spool', version: 1, savedAt: 0, sequences: { t: 3 } });
    fs.writeFileSync(file, [header, '{"topic":"t","payload":1,"seq":1}', '{"topic":"t","pay', '{"topic":"t","payload":2,"seq":2}', ''].join('\n'));
    const capture = captureLog(/could not restore/);
    const logged = capture.lines;
    try {
      await helper.load([bufferNode, testNodes], bufferFlow({ capacity: 10, window: 10, spoolDir: dir }, 'fast'));
      await waitUntil('the two good messages', () => received.down.length === 2);
      assert.deepEqual(received.down.map((m) => m.payload), [1, 2]);
      const s = stats('buf');
      assert.equal(s.restored, 2);
      assert.equal(s.spoolBadLines, 1);
      assert.equal(s.spoolBadBytes, '{"topic":"t","pay'.length);
      assert.equal(s.spoolErrors, 1);
      const kept = fs.readdirSync(dir).filter((f) => f.startsWith('buf.jsonl.unrestored-'));
      assert.equal(kept.length, 1, `kept aside: ${fs.readdirSync(dir).join(', ')}`);
      assert.equal(fs.existsSync(file), false);
      await waitUntil('the error logged', () => logged.length === 1);
      assert.ok(logged[0].includes(file) && logged[0].includes(kept[0]), logged[0]);
      helper.getNode('buf').receive({ topic: 't', payload: 3 });
      await waitUntil('a new message', () => received.down.length === 3);
      assert.equal(received.down[2].seq, 3, 'numbering continues from the header');
    } finally {
      capture.stop();
    }
  });
});

describe('telemetry-buffer: memory limit', function () {
  beforeEach(function () {
    clearSpools();
  });
  afterEach(async function () {
    await helper.unload();
  });

  it('defaults to 128 MB; large payloads are dropped by the policy at the limit, counted like the capacity', async function () {
    await helper.load([bufferNode, testNodes], bufferFlow({}));
    assert.equal(stats('buf').maxBytes, 128 * 1024 * 1024);
    await helper.unload();
    clearSpools();
    await helper.load([bufferNode, testNodes], bufferFlow({ capacity: 1000, window: 1, memoryLimit: 0.05 }));
    const buf = helper.getNode('buf');
    for (let i = 0; i < 20; i++) buf.receive({ topic: 'camera', payload: `${i}:`.padEnd(10_000, 'x') });
    await waitUntil('twenty received', () => stats('buf').received === 20);
    let s = stats('buf');
    assert.equal(s.maxBytes, 0.05 * 1024 * 1024);
    assert.ok(s.ringBytes <= s.maxBytes && s.ringBytes > s.maxBytes - 11_000, `ring bytes ${s.ringBytes}`);
    assert.equal(s.depth, 5, 'five messages of about 10 kB fit 52 kB; the capacity of 1000 would have taken all');
    assert.equal(s.droppedOverflow, 14);
    assertCountsAddUp(s);
    await waitUntil('the rest', () => (release('down'), stats('buf').depth === 0 && stats('buf').inFlight === 0));
    assert.deepEqual(received.down.map((m) => Number(String(m.payload).split(':')[0])), [0, 15, 16, 17, 18, 19], 'drop-oldest kept the newest');
    s = stats('buf');
    assert.equal(s.ringBytes, 0);
    assertCountsAddUp(s);
  });

  it('refuses a memory limit that is not a number of MB', async function () {
    await helper.load(bufferNode, [{ id: 'buf', type: 'telemetry-buffer', memoryLimit: '-1', wires: [[], []] }]);
    const err = await new Promise<Error>((resolve) => {
      helper.getNode('buf').on('call:error', (call: { args: unknown[] }) => {
        if (call.args[1] !== undefined) resolve(call.args[0] as Error);
      });
      helper.getNode('buf').receive({ payload: 1 });
    });
    assert.match(String(err), /Memory limit must be a number from 0 to 1048576/);
  });
});

describe('readings a deleted buffer left on disk', function () {
  afterEach(async function () {
    await helper.unload();
  });

  const warnings = (): string[] =>
    helper
      .log()
      .args.map((args: unknown[]) => JSON.stringify(args))
      .filter((line: string) => /that is not deployed/.test(line));

  it('are not confused with the files of a buffer in a disabled subflow instance, nested or not', async function () {
    clearSpools();
    fs.mkdirSync(spoolDir, { recursive: true });
    const spool = (id: string): void => fs.writeFileSync(path.join(spoolDir, `${id}.jsonl`), '{"format":"telemetry-spool","version":1,"savedAt":0,"sequences":{}}\n{"topic":"t","payload":1}\n');
    for (const id of ['inst-sbuf', 'outer-inner-sbuf', 'gone']) spool(id);
    await helper.load([bufferNode, testNodes], [
      { id: 'sf', type: 'subflow', name: 'with a buffer', in: [], out: [] },
      { id: 'sbuf', type: 'telemetry-buffer', z: 'sf', wires: [[], []] },
      { id: 'sf2', type: 'subflow', name: 'around it', in: [], out: [] },
      { id: 'inner', type: 'subflow:sf', z: 'sf2', wires: [] },
      { id: 'inst', type: 'subflow:sf', d: true, wires: [] },
      { id: 'outer', type: 'subflow:sf2', d: true, wires: [] },
    ]);
    await waitUntil('the warning', () => warnings().length > 0);
    await settle(50);
    assert.equal(warnings().length, 1, JSON.stringify(warnings()));
    assert.ok(warnings()[0].includes('gone.jsonl'), warnings()[0]);
  });

  it('are named in the log at the next start, once, with how many readings; a buffer restored under its id takes them back', async function () {
    clearSpools();
    const buffer = { id: 'old', type: 'telemetry-buffer', statsInterval: 0, capacity: 2, window: 1, diskSpill: true, fsyncInterval: 0, wires: [['down'], []] };
    const down = { id: 'down', type: 'test-hold', wires: [] };
    await helper.load([bufferNode, testNodes], [buffer, down]);
    for (let i = 0; i < 20; i++) helper.getNode('old').receive({ topic: 'line1/t', payload: i });
    await waitUntil('a disk backlog', () => stats('old').diskDepth > 10);
    const onDisk = stats('old').diskDepth;
    // Deleted with a full deploy: its own log line says where the readings are; no second warning.
    await helper.setFlows([down], 'full');
    await settle(50);
    assert.deepEqual(warnings(), []);
    await helper.unload();

    // The next start, with a copy of it pasted in (a new id): told once, in numbers.
    const copy = { ...buffer, id: 'copy' };
    await helper.load([bufferNode, testNodes], [copy, down]);
    await waitUntil('the warnings', () => warnings().length === 2);
    const [disk, spool] = [warnings().find((w) => / readings /.test(w)) ?? '', warnings().find((w) => /shutdown spool/.test(w)) ?? ''];
    assert.ok(disk.includes(`holds ${onDisk} readings (`), disk);
    assert.ok(disk.includes(JSON.stringify(path.join(spoolDir, 'old.disk')).slice(1, -1)), disk);
    assert.match(disk, /\(id old\)/);
    assert.ok(spool.includes(JSON.stringify(path.join(spoolDir, 'old.jsonl')).slice(1, -1)), spool);
    assert.ok(!warnings().some((w) => w.includes('copy.')), 'the running buffer is not named');
    await helper.setFlows([{ ...copy, name: 'renamed' }, down], 'full');
    await settle(50);
    assert.equal(warnings().length, 2, 'once per file and process');
    await helper.unload();

    // Restored under its id: nothing to warn about, and its readings come back.
    await helper.load([bufferNode, testNodes], [buffer, down]);
    await settle(100);
    assert.deepEqual(warnings(), []);
    const s = stats('old');
    assert.equal(s.diskRecovered, onDisk);
    assert.ok(s.restored > 0, `restored from the spool: ${s.restored}`);
  });
});
