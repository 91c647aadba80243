/**
 * The Batcher controller (src/core/batching/batcher.ts) on its own, without Node-RED: what it sends,
 * when each message's done() is called and with which completion mark, and what it counts. Its ports
 * stand in for the node and the contract; the wirings, fault and end-to-end tests run it in Node-RED.
 */
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Batcher, REFUSAL_SHOWN_MS, type BatcherSettings, type BatchMessage } from '../src/core/batching/batcher';
import { resolveShapeOptions } from '../src/core/readings/shapes';
import { english } from '../src/nodes/i18n';
import type { Completion } from '../src/core/shared/completion';

interface Harness {
  batcher: Batcher;
  sent: BatchMessage[];
  /** Per message id: every done() call (its error, if any) and the mark set before it. */
  dones: Map<string, Array<{ err?: Error; mark?: Completion }>>;
  handBack: Set<string>;
  held: { ids: Set<string> | undefined };
  receive(id: string, msg?: Record<string, unknown>): void;
}

const dirs: string[] = [];
const running: Batcher[] = [];
afterEach(function () {
  for (const b of running.splice(0)) b.close(true);
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

function harness(settings: Partial<BatcherSettings> = {}): Harness {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'batcher-test-'));
  dirs.push(dir);
  const sent: BatchMessage[] = [];
  const dones = new Map<string, Array<{ err?: Error; mark?: Completion }>>();
  const marks = new WeakMap<object, Completion>();
  const handBack = new Set<string>();
  const held: { ids: Set<string> | undefined } = { ids: undefined };
  let nextId = 0;
  const batcher = new Batcher(
    { maxSize: 3, maxAgeMs: 60_000, maxOpenBatches: 2, maxHeldEvents: 100, ackTimeoutMs: 60_000, shape: resolveShapeOptions(), downstreamCount: 1, fileBase: path.join(dir, 'b1'), ...settings },
    {
      sendBatch: (msg) => sent.push(msg),
      newId: () => `batch-${nextId++}`,
      markCompletion: (msg, completion) => marks.set(msg, completion),
      canHandBack: (msg) => handBack.has((msg as { _msgid: string })._msgid),
      heldDownstream: () => held.ids,
      rowFields: () => ({ seq: 'seq', source: 'source' }),
      log: () => undefined,
      warn: (text) => assert.fail(text),
      t: english('telemetry-batcher'),
    }
  );
  running.push(batcher);
  return {
    batcher,
    sent,
    dones,
    handBack,
    held,
    receive(id, msg = { topic: 't', payload: { value: 1 } }) {
      const m = { _msgid: id, ...msg };
      batcher.receive(m, (err) => {
        const mark = marks.get(m);
        marks.delete(m);
        (dones.get(id) ?? dones.set(id, []).get(id))?.push({ err, mark });
      });
    },
  };
}

/** Every message's done() calls: exactly one each, of the given outcome. */
function assertDone(h: Harness, ids: string[], outcome: { mark?: Completion; error?: RegExp }): void {
  for (const id of ids) {
    const calls = h.dones.get(id) ?? [];
    assert.equal(calls.length, 1, `${id}: exactly one done()`);
    assert.equal(calls[0].mark, outcome.mark, `${id}: completion mark`);
    if (outcome.error) assert.match(String(calls[0].err?.message), outcome.error, `${id}: error`);
    else assert.equal(calls[0].err, undefined, `${id}: no error`);
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('Batcher (the telemetry-batcher controller)', function () {
  it('sends full batches, at most Open batches at once, and completes each message with its batch', function () {
    const h = harness();
    for (let i = 0; i < 8; i++) h.receive(`m${i}`);
    assert.deepEqual(h.sent.map((b) => b.batch.count), [3, 3], 'two full batches out, the third waits for a slot');
    assert.deepEqual(h.sent[0].payload.map((r) => r.topic), ['t', 't', 't']);
    assert.equal(h.dones.size, 0, 'nothing completed before its batch is');
    h.batcher.completed(h.sent[0]._msgid, 'ok');
    assertDone(h, ['m0', 'm1', 'm2'], {});
    assert.equal(h.dones.size, 3);
    h.batcher.flush();
    assert.deepEqual(h.sent.map((b) => b.batch.reason), ['size', 'size', 'flush'], 'the slot freed takes the batch being filled');
    h.batcher.completed(h.sent[1]._msgid, 'failed');
    assertDone(h, ['m3', 'm4', 'm5'], { mark: 'failed' });
    const stats = h.batcher.stats();
    assert.equal(stats.receivedMessages, 8);
    assert.equal(stats.receivedEvents, 8);
    assert.equal(stats.batchesSent, 3);
    assert.equal(stats.batchesCompleted, 1);
    assert.equal(stats.batchesFailed, 1);
    assert.equal(stats.flushedBySize, 2);
    assert.equal(stats.flushedByRequest, 1);
    assert.equal(stats.heldEvents, 2);
    assert.equal(stats.openBatches, 1);
  });

  it('numbers readings that no node before numbered, one sequence per source', function () {
    const h = harness();
    h.receive('a', { topic: 'x', payload: 1 });
    h.receive('b', { topic: 'x', payload: 2 });
    h.receive('c', { topic: 'y', payload: 3, seq: 40 });
    assert.deepEqual(h.sent[0].payload.map((r) => [r.topic, r.seq]), [['x', 1], ['x', 2], ['y', 40]]);
  });

  it('completes a message that is not a reading at once and counts it ignored', function () {
    const h = harness();
    h.receive('sub', { topic: 'subscriptionId', payload: 7 });
    assertDone(h, ['sub'], {});
    assert.equal(h.batcher.stats().ignored, 1);
    assert.match(h.batcher.stats().ignoredReason, /subscription id/);
    assert.equal(h.batcher.heldEvents, 0);
  });

  it('a record group made elsewhere whose record takes no number fails once with the reason, counted ignored; a frozen record is copied and taken', function () {
    const h = harness();
    const unnumbered = Object.defineProperty({ topic: 't', payload: { value: 1 } }, 'seq', {
      get() {
        throw new Error('no number here');
      },
    });
    h.receive('unnumbered', { telemetryRecords: true, payload: [unnumbered] });
    assertDone(h, ['unnumbered'], { error: /^not taken: a reading could not be given its number \(no number here\)$/ });
    assert.deepEqual([h.batcher.stats().ignored, h.batcher.stats().receivedMessages, h.batcher.heldEvents], [1, 0, 0]);
    h.receive('next');
    h.receive('frozen', { telemetryRecords: true, payload: [Object.freeze({ topic: 't', payload: { value: 1 } })] });
    assert.equal(h.batcher.heldEvents, 2, 'a frozen record is copied and taken');
  });

  it('beyond Max held: hands a message back to a buffer that keeps it, refuses it with an error otherwise', function () {
    const h = harness({ maxHeldEvents: 3, maxOpenBatches: 1 });
    for (let i = 0; i < 3; i++) h.receive(`m${i}`);
    h.handBack.add('kept');
    h.receive('kept');
    h.receive('lost');
    assertDone(h, ['kept'], { mark: 'returned' });
    assertDone(h, ['lost'], { error: /telemetry-batcher is full \(3 events held\)/ });
    const stats = h.batcher.stats();
    assert.equal(stats.refusedMessages, 2);
    assert.equal(stats.refusedEvents, 2);
  });

  it('is red while it refuses, and names why; back to its normal colour once nothing was refused for a while', function () {
    const h = harness({ maxHeldEvents: 3, maxOpenBatches: 1 });
    assert.deepEqual(h.batcher.badge(Date.now()), { fill: 'green', shape: 'ring', text: '0 open, 0 held' });
    for (let i = 0; i < 3; i++) h.receive(`m${i}`);
    assert.deepEqual(h.batcher.badge(Date.now()), { fill: 'yellow', shape: 'dot', text: '1/1 open, 3 held' }, 'the open-batch limit is reached: batches wait');
    h.receive('refused');
    assertDone(h, ['refused'], { error: /full/ });
    const refusedAt = Date.now();
    assert.deepEqual(h.batcher.badge(refusedAt), { fill: 'red', shape: 'dot', text: 'full, refused 1' });
    // The next node confirms: nothing is held, nothing refused any more.
    h.batcher.completed(h.sent[0]._msgid, 'ok');
    assert.equal(h.batcher.heldEvents, 0);
    assert.deepEqual(h.batcher.badge(refusedAt + 1000), { fill: 'red', shape: 'ring', text: 'full, refused 1' }, 'a refusal just now stays visible');
    assert.deepEqual(h.batcher.badge(refusedAt + REFUSAL_SHOWN_MS), { fill: 'green', shape: 'ring', text: '0 open, 0 held' }, 'the reason is gone: normal colour');
  });

  it('on close hands back everything held, sent or not, never as written; refuses what arrives after', function () {
    const h = harness({ maxOpenBatches: 1 });
    for (let i = 0; i < 5; i++) h.receive(`m${i}`);
    assert.equal(h.sent.length, 1);
    h.batcher.close(false);
    assertDone(h, ['m0', 'm1', 'm2', 'm3', 'm4'], { mark: 'returned' });
    h.receive('late');
    assertDone(h, ['late'], { error: /closing/ });
    const saved = JSON.parse(fs.readFileSync(`${dirs[0]}/b1.totals.json`, 'utf8')) as { counters: Record<string, number> };
    assert.equal(saved.counters.batchesReturned, 1);
    assert.equal(saved.counters.receivedEvents, 5);
  });

  it('a batch handed back during a deploy is sent again after it, in its first order, and counted once more as resent', function () {
    const h = harness();
    for (let i = 0; i < 6; i++) h.receive(`m${i}`);
    const [first, second] = h.sent;
    h.batcher.pause();
    h.batcher.completed(second._msgid, 'returned');
    h.batcher.completed(first._msgid, 'returned');
    assert.equal(h.sent.length, 2, 'nothing is sent while paused');
    assert.equal(h.dones.size, 0, 'handed back by the stopping node: kept, not completed');
    h.batcher.resume();
    assert.equal(h.sent.length, 4);
    assert.deepEqual(h.sent[2].payload, first.payload, 'the first batch first');
    assert.deepEqual(h.sent[3].payload, second.payload);
    const stats = h.batcher.stats();
    assert.equal(stats.batchesResent, 2);
    assert.equal(stats.flushedBySize, 2, 'a resent batch is not a new flush');
    h.batcher.completed(h.sent[2]._msgid, 'ok');
    assertDone(h, ['m0', 'm1', 'm2'], {});
  });

  it('a deploy that replaced the next node: what it never completed goes out again', function () {
    const h = harness();
    for (let i = 0; i < 3; i++) h.receive(`m${i}`);
    h.batcher.pause();
    h.batcher.lost();
    h.batcher.resume();
    assert.equal(h.sent.length, 2);
    assert.deepEqual(h.sent[1].payload, h.sent[0].payload);
    assert.notEqual(h.sent[1]._msgid, h.sent[0]._msgid, 'a new message id for the new node');
    h.batcher.completed(h.sent[0]._msgid, 'ok');
    assert.equal(h.dones.size, 0, 'the old id no longer completes anything');
  });

  it('an ack timeout spares a batch the next node still holds, and reports one nobody holds as unacknowledged', async function () {
    const h = harness({ ackTimeoutMs: 40 });
    for (let i = 0; i < 3; i++) h.receive(`m${i}`);
    h.held.ids = new Set([h.sent[0]._msgid]);
    await sleep(150);
    assert.equal(h.dones.size, 0, 'held downstream: a new deadline, not expired');
    h.held.ids = new Set();
    await sleep(150);
    assertDone(h, ['m0', 'm1', 'm2'], { mark: 'unacknowledged' });
    assert.equal(h.batcher.stats().batchesUnacknowledged, 1);
  });

  it('sends a batch Max age after its first event', async function () {
    const h = harness({ maxAgeMs: 30 });
    h.receive('m0');
    assert.equal(h.sent.length, 0);
    await sleep(120);
    assert.equal(h.sent.length, 1);
    assert.equal(h.sent[0].batch.reason, 'age');
    assert.equal(h.batcher.stats().flushedByAge, 1);
  });

  it('offers record groups of a tenth of a batch', function () {
    assert.equal(harness({ maxSize: 1000 }).batcher.recordGroupLimit, 100);
    assert.equal(harness({ maxSize: 5 }).batcher.recordGroupLimit, 1);
  });
});
