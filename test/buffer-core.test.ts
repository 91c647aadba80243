import assert from 'assert';
import { BatchAssembler, Batch } from '../src/core/batching/batch-assembler';
import { BufferCore, BufferOptions, Outcome } from '../src/core/buffer/buffer-core';
import { InflightTracker } from '../src/core/buffer/inflight';
import { DropReason } from '../src/core/buffer/event-store';
import { SequenceStamper } from '../src/core/readings/sequence';
import { TelemetryMessageLike } from '../src/core/readings/records';
import { assertCountsAddUp } from './support/counting';

interface Item {
  key: string;
  w: number;
}

/** A BufferCore driven by hand: a fake clock and recorded hook calls. */
function harness(options: Partial<BufferOptions> = {}) {
  const state = {
    now: 1_000,
    expected: 1,
    releases: [] as Item[][],
    /** Messages sent: one per group. */
    groups: [] as Item[][],
    groupLimit: 1,
    settled: [] as { item: Item; outcome: Outcome | DropReason }[],
  };
  const core = new BufferCore<Item>(
    { capacity: 100, policy: 'drop-oldest', window: 3, ackTimeoutMs: 1_000, ...options },
    {
      keyOf: (group) => group.map((item) => item.key).join('+'),
      release: (groups) => {
        state.groups.push(...groups);
        state.releases.push(groups.flat());
      },
      groupLimit: () => state.groupLimit,
      settled: (item, outcome) => state.settled.push({ item, outcome }),
      expectedCompletions: () => state.expected,
      now: () => state.now,
    }
  );
  const items = (n: number, w = 1, prefix = 'm') => Array.from({ length: n }, (_, i) => ({ key: `${prefix}${i + 1}`, w }));
  const released = () => state.releases.flat();
  return { core, state, items, released };
}

describe('BufferCore', function () {
  it('rejects an invalid window or ack timeout', function () {
    const hooks = { keyOf: () => 'k', release: () => undefined, settled: () => undefined, expectedCompletions: () => 1, now: () => 0 };
    assert.throws(() => new BufferCore({ capacity: 10, policy: 'drop-oldest', window: 0, ackTimeoutMs: 10 }, hooks), /window must be a whole number of events >= 1, got 0/);
    assert.throws(() => new BufferCore({ capacity: 10, policy: 'drop-oldest', window: 1.5, ackTimeoutMs: 10 }, hooks), RangeError);
    assert.throws(() => new BufferCore({ capacity: 10, policy: 'drop-oldest', window: 2, ackTimeoutMs: 0 }, hooks), /ack timeout must be a positive number of milliseconds, got 0/);
    assert.throws(() => new BufferCore({ capacity: 10, policy: 'drop-oldest', window: 2, ackTimeoutMs: NaN }, hooks), RangeError);
    assert.throws(() => new BufferCore({ capacity: 0, policy: 'drop-oldest', window: 2, ackTimeoutMs: 10 }, hooks), /ring capacity/);
  });

  it('window 3: of 10 offered items exactly 3 are released; one completion lets pump release one more', function () {
    const { core, state, items, released } = harness({ window: 3 });
    const all = items(10);
    for (const item of all) core.offer(item, 1);
    assert.deepStrictEqual(released(), all.slice(0, 3));
    assert.strictEqual(state.releases.length, 3, 'each offer released its own item while credit lasted');
    let s = core.stats();
    assert.strictEqual(s.inFlight, 3);
    assert.strictEqual(s.depth, 7);
    assert.strictEqual(s.received, 10);

    assert.strictEqual(core.completed('m1', 'ok'), true);
    assert.deepStrictEqual(state.settled, [{ item: all[0], outcome: 'delivered' }]);
    assert.strictEqual(core.stats().inFlight, 2);
    core.pump();
    assert.deepStrictEqual(released(), all.slice(0, 4));
    assert.deepStrictEqual(state.releases[3], [all[3]]);
    s = core.stats();
    assert.strictEqual(s.inFlight, 3);
    assert.strictEqual(s.depth, 6);
    assert.strictEqual(s.delivered, 1);
    assertCountsAddUp(s);
  });

  it('releases several items in one batch when credit returns for them', function () {
    const { core, state, items } = harness({ window: 3 });
    const all = items(6);
    for (const item of all) core.offer(item, 1);
    for (const key of ['m1', 'm2', 'm3']) core.completed(key, 'ok');
    core.pump();
    assert.deepStrictEqual(state.releases[state.releases.length - 1], all.slice(3, 6));
    assert.strictEqual(core.stats().depth, 0);
  });

  it('counts the window in events: weighted items fill it', function () {
    const { core, released } = harness({ window: 5 });
    const a = { key: 'a', w: 2 };
    const b = { key: 'b', w: 2 };
    const c = { key: 'c', w: 2 };
    core.offer(a, 2);
    core.offer(b, 2);
    core.offer(c, 2);
    assert.deepStrictEqual(released(), [a, b]);
    assert.strictEqual(core.stats().inFlight, 4);
    assert.strictEqual(core.stats().depth, 2);
  });

  it('an item heavier than the window is released alone when nothing is in flight', function () {
    const { core, state } = harness({ window: 3 });
    const small = { key: 's', w: 1 };
    const big = { key: 'big', w: 10 };
    const after = { key: 'after', w: 1 };
    core.offer(small, 1);
    core.offer(big, 10);
    core.offer(after, 1);
    assert.deepStrictEqual(state.releases, [[small]], 'big waits while something is in flight');
    core.completed('s', 'ok');
    core.pump();
    assert.deepStrictEqual(state.releases, [[small], [big]], 'big goes alone, after waits');
    assert.strictEqual(core.stats().inFlight, 10);
    core.completed('big', 'ok');
    core.pump();
    assert.deepStrictEqual(state.releases, [[small], [big], [after]]);
    const s = core.stats();
    assert.strictEqual(s.delivered, 11);
    assertCountsAddUp(s);
  });

  it("'failed' completions are counted as failed, in events", function () {
    const { core, state } = harness({ window: 10 });
    const a = { key: 'a', w: 4 };
    core.offer(a, 4);
    assert.strictEqual(core.completed('a', 'failed'), true);
    assert.deepStrictEqual(state.settled, [{ item: a, outcome: 'failed' }]);
    const s = core.stats();
    assert.strictEqual(s.failed, 4);
    assert.strictEqual(s.delivered, 0);
    assert.strictEqual(s.inFlight, 0);
    assertCountsAddUp(s);
  });

  it('a completion for an unknown key is ignored', function () {
    const { core } = harness();
    core.offer({ key: 'a', w: 1 }, 1);
    assert.strictEqual(core.completed('zzz', 'ok'), false);
    assert.strictEqual(core.stats().inFlight, 1);
  });

  it("'returned' completion: the item is released again before newer ring items", function () {
    const { core, state, items } = harness({ window: 2 });
    const all = items(4);
    for (const item of all) core.offer(item, 1);
    assert.deepStrictEqual(state.releases.flat(), [all[0], all[1]]);
    core.pause(); // handed back during a deploy
    assert.strictEqual(core.completed('m1', 'returned'), true);
    core.resume();
    assert.deepStrictEqual(state.settled, [], 'a returned item is not settled');
    let s = core.stats();
    assert.strictEqual(s.inFlight, 1);
    assert.strictEqual(s.depth, 3, 'returned item counts as held');
    assertCountsAddUp(s);
    core.pump();
    assert.deepStrictEqual(state.releases[state.releases.length - 1], [all[0]], 'm1 again, not m3');
    core.completed('m1', 'ok');
    core.completed('m2', 'ok');
    core.pump();
    assert.deepStrictEqual(state.releases[state.releases.length - 1], [all[2], all[3]]);
    s = core.stats();
    assert.strictEqual(s.delivered, 2);
    assert.strictEqual(s.inFlight, 2);
    assert.strictEqual(s.depth, 0);
    assertCountsAddUp(s);
  });

  it('resendInFlight(): everything in flight is released again, before the ring, without being settled or counted', function () {
    const { core, state, items } = harness({ window: 3 });
    const all = items(5);
    for (const item of all) core.offer(item, 1);
    core.completed('m1', 'ok');
    core.pump();
    assert.deepStrictEqual(state.releases.flat(), [all[0], all[1], all[2], all[3]]);
    core.pause(); // the deploy that replaced the node downstream
    assert.strictEqual(core.resendInFlight(), 3);
    let s = core.stats();
    assert.strictEqual(s.inFlight, 0);
    assert.strictEqual(s.depth, 4, 'm2-m4 wait again, in front of m5');
    assert.strictEqual(s.delivered, 1);
    assertCountsAddUp(s);
    assert.deepStrictEqual(state.settled.map((x) => x.item), [all[0]], 'nothing new settled');
    assert.strictEqual(core.completed('m2', 'ok'), false, 'a late completion from the old node is not ours any more');
    core.resume();
    core.pump();
    assert.deepStrictEqual(state.releases[state.releases.length - 1], [all[1], all[2], all[3]]);
    for (const key of ['m2', 'm3', 'm4']) core.completed(key, 'ok');
    core.pump();
    core.completed('m5', 'ok');
    s = core.stats();
    assert.strictEqual(s.delivered, 5);
    assert.strictEqual(s.inFlight + s.depth + s.unacknowledged, 0);
    assert.strictEqual(core.resendInFlight(), 0);
  });

  it("'returned' outside a deploy (downstream full): the window shrinks to what downstream held and grows with acks", function () {
    const { core, state, items } = harness({ window: 4 });
    const all = items(8);
    for (const item of all) core.offer(item, 1);
    assert.deepStrictEqual(state.releases.flat(), all.slice(0, 4));
    const releasesBefore = state.releases.length;
    core.completed('m3', 'returned');
    core.completed('m4', 'returned');
    core.pump();
    assert.strictEqual(state.releases.length, releasesBefore, 'nothing resent while downstream holds two and is full');
    core.completed('m1', 'ok'); // one confirmed: the window grows from 2 to 3, with one in flight
    core.pump();
    assert.deepStrictEqual(state.releases[state.releases.length - 1], [all[2], all[3]], 'the handed-back items first');
    const s = core.stats();
    assert.strictEqual(s.inFlight, 3);
    assert.strictEqual(s.delivered, 1);
    assert.strictEqual(s.failed, 0);
    assertCountsAddUp(s);
  });

  it('drain hands back returned items first, then the ring, and in-flight items separately', function () {
    const { core, items } = harness({ window: 2 });
    const all = items(4);
    for (const item of all) core.offer(item, 1);
    core.completed('m2', 'returned');
    const { queued, inFlight } = core.drain();
    assert.deepStrictEqual(queued, [all[1], all[2], all[3]]);
    assert.deepStrictEqual(inFlight, [all[0]]);
    const s = core.stats();
    assert.strictEqual(s.drained, 4);
    assert.strictEqual(s.depth, 0);
    assert.strictEqual(s.inFlight, 0);
    assertCountsAddUp(s);
  });

  it('expire() after the deadline counts unacknowledged events and frees credit', function () {
    const { core, state, items } = harness({ window: 2, ackTimeoutMs: 1_000 });
    const all = items(3, 2);
    for (const item of all) core.offer(item, 2);
    assert.deepStrictEqual(state.releases.flat(), [all[0]]);
    state.now += 999;
    assert.strictEqual(core.expire(), 0, 'not yet');
    state.now += 1;
    assert.strictEqual(core.expire(), 1, 'deadline is inclusive');
    assert.deepStrictEqual(state.settled, [{ item: all[0], outcome: 'unacknowledged' }]);
    let s = core.stats();
    assert.strictEqual(s.unacknowledged, 2);
    assert.strictEqual(s.inFlight, 0);
    core.pump();
    assert.deepStrictEqual(state.releases.flat(), [all[0], all[1]]);
    assert.strictEqual(core.completed('m1', 'ok'), false, 'a late completion is no longer ours');
    s = core.stats();
    assert.strictEqual(s.delivered, 0);
    assertCountsAddUp(s);
  });

  it('expire() only removes items whose deadline passed, oldest first', function () {
    const { core, state } = harness({ window: 10, ackTimeoutMs: 100 });
    const a = { key: 'a', w: 1 };
    const b = { key: 'b', w: 1 };
    core.offer(a, 1);
    state.now += 50;
    core.offer(b, 1);
    state.now += 50;
    assert.strictEqual(core.expire(), 1);
    assert.deepStrictEqual(state.settled, [{ item: a, outcome: 'unacknowledged' }]);
    state.now += 50;
    assert.strictEqual(core.expire(), 1);
    assert.deepStrictEqual(
      state.settled.map((x) => x.item),
      [a, b]
    );
  });

  it('two items with the same key in flight complete one at a time, oldest first', function () {
    const { core, state } = harness({ window: 10 });
    const first = { key: 'dup', w: 1 };
    const second = { key: 'dup', w: 2 };
    core.offer(first, 1);
    core.offer(second, 2);
    assert.strictEqual(core.stats().inFlight, 3);
    assert.strictEqual(core.completed('dup', 'ok'), true);
    assert.deepStrictEqual(state.settled, [{ item: first, outcome: 'delivered' }]);
    assert.strictEqual(core.stats().inFlight, 2);
    assert.strictEqual(core.stats().delivered, 1);
    assert.strictEqual(core.completed('dup', 'failed'), true);
    assert.deepStrictEqual(state.settled[1], { item: second, outcome: 'failed' });
    assert.strictEqual(core.completed('dup', 'ok'), false);
    const s = core.stats();
    assert.strictEqual(s.inFlight, 0);
    assert.strictEqual(s.failed, 2);
    assertCountsAddUp(s);
  });

  it('expectedCompletions 2: an item needs two completions before its credit returns', function () {
    const { core, state } = harness({ window: 1 });
    state.expected = 2;
    const a = { key: 'a', w: 1 };
    const b = { key: 'b', w: 1 };
    core.offer(a, 1);
    core.offer(b, 1);
    core.completed('a', 'ok');
    assert.deepStrictEqual(state.settled, []);
    assert.strictEqual(core.stats().inFlight, 1);
    core.pump();
    assert.deepStrictEqual(state.releases, [[a]], 'no credit yet');
    assert.strictEqual(core.completed('a', 'ok'), true);
    assert.deepStrictEqual(state.settled, [{ item: a, outcome: 'delivered' }]);
    core.pump();
    assert.deepStrictEqual(state.releases, [[a], [b]]);
    assert.strictEqual(core.stats().delivered, 1);
  });

  it('drop policy decisions reach settled() with their reason', function () {
    const { core, state } = harness({ capacity: 2, window: 1, policy: 'drop-newest' });
    const items = ['a', 'b', 'c', 'd'].map((key) => ({ key, w: 1 }));
    for (const item of items) core.offer(item, 1);
    core.offer({ key: 'huge', w: 3 }, 3);
    // a is in flight, b and c fill the ring, d overflows, huge is oversize.
    assert.deepStrictEqual(
      state.settled.map((x) => [x.item.key, x.outcome]),
      [
        ['d', 'overflow'],
        ['huge', 'oversize'],
      ]
    );
    const s = core.stats();
    assert.strictEqual(s.droppedOverflow, 1);
    assert.strictEqual(s.droppedOversize, 3);
    assert.strictEqual(s.dropped, 4);
    assertCountsAddUp(s);
  });

  it('groups: items offered without pumping travel in messages of at most groupLimit events, and complete, come back and drain together', function () {
    const { core, state, items } = harness({ window: 10 });
    state.groupLimit = 3;
    const all = items(7);
    for (const item of all) core.offer(item, 1, false);
    assert.strictEqual(state.releases.length, 0, 'nothing released before pump()');
    core.pump();
    assert.deepStrictEqual(state.groups, [all.slice(0, 3), all.slice(3, 6), all.slice(6)]);
    assert.strictEqual(core.inflight.length, 3, 'three messages in flight');
    assert.strictEqual(core.stats().inFlight, 7, 'seven events in flight');
    // One completion of the first message settles its three items, in order.
    assert.strictEqual(core.completed('m1+m2+m3', 'ok'), true);
    assert.deepStrictEqual(state.settled, all.slice(0, 3).map((item) => ({ item, outcome: 'delivered' })));
    // Handed back during a deploy (the window keeps its size): the items come back and are
    // regrouped before newer ring items.
    const fresh = { key: 'new', w: 1 };
    core.offer(fresh, 1, false);
    core.pause();
    assert.strictEqual(core.completed('m4+m5+m6', 'returned'), true);
    assert.strictEqual(core.stats().depth, 4, 'three handed back + one new wait');
    core.resume();
    core.pump();
    assert.deepStrictEqual(state.groups.slice(3), [all.slice(3, 6), [fresh]]);
    const s = core.stats();
    assert.strictEqual(s.delivered, 3);
    assert.strictEqual(s.inFlight, 5);
    assertCountsAddUp(s);
    const { queued, inFlight } = core.drain();
    assert.deepStrictEqual(new Set([...queued, ...inFlight].map((x) => x.key)), new Set(['m4', 'm5', 'm6', 'm7', 'new']));
    assert.strictEqual(core.stats().drained, 5);
  });

  it('groups: an item weighing more than groupLimit travels alone; a message is never heavier than the window unless it is one item', function () {
    const { core, state } = harness({ window: 6 });
    state.groupLimit = 4;
    const a = { key: 'a', w: 1 };
    const big = { key: 'big', w: 5 };
    const b = { key: 'b', w: 1 };
    const c = { key: 'c', w: 2 };
    for (const item of [a, big, b, c]) core.offer(item, item.w, false);
    core.pump();
    // a (1) then big (5) would make 6 > 4: a goes alone, big alone; b would exceed the window (7 > 6).
    assert.deepStrictEqual(state.groups, [[a], [big]]);
    core.completed('big', 'ok');
    core.pump();
    assert.deepStrictEqual(state.groups.slice(2), [[b, c]]);
    assertCountsAddUp(core.stats());
  });

  // The counting identity after every step, with and without groups, for every store: test/store-suite.test.ts.

  describe('regressions: reused message ids and partial completions', function () {
    it('expires an item behind a reused id that was completed once', function () {
      const { core, state } = harness({ window: 10, ackTimeoutMs: 100 });
      const a1 = { key: 'a', w: 1 };
      const b = { key: 'b', w: 1 };
      const a2 = { key: 'a', w: 1 };
      core.offer(a1, 1); // t=1000, deadline 1100
      state.now += 10;
      core.offer(b, 1); // deadline 1110
      state.now += 40;
      core.offer(a2, 1); // same key: chained behind a1, deadline 1150
      core.completed('a', 'ok'); // a1 done; map entry 'a' (still first in Map order) now holds a2
      state.now = 1120; // b's deadline (1110) passed, a2's (1150) did not
      assert.strictEqual(core.expire(), 1, 'b should expire');
      assert.deepStrictEqual(state.settled[1], { item: b, outcome: 'unacknowledged' });
    });

    it('reports a partial completion of its own key as ours (expectedCompletions 2)', function () {
      const { core, state } = harness({ window: 10 });
      state.expected = 2;
      core.offer({ key: 'a', w: 1 }, 1);
      assert.strictEqual(core.completed('a', 'ok'), true, 'documented: "Returns whether the key was ours"');
    });
  });
});

describe('InflightTracker', function () {
  it('tracks weight and length, completes by key, and ignores unknown keys', function () {
    const t = new InflightTracker<string>();
    t.add('a', 'A', 3, 1, 100);
    t.add('b', 'B', 2, 1, 200);
    assert.strictEqual(t.weight, 5);
    assert.strictEqual(t.length, 2);
    assert.strictEqual(t.complete('zzz'), undefined);
    assert.strictEqual(t.complete('b'), 'B');
    assert.strictEqual(t.complete('b'), undefined);
    assert.strictEqual(t.weight, 3);
    assert.strictEqual(t.length, 1);
  });

  it('waits for the expected number of completions (0 or less counts as 1)', function () {
    const t = new InflightTracker<string>();
    t.add('a', 'A', 1, 3, 100);
    t.add('z', 'Z', 1, 0, 100);
    assert.strictEqual(t.complete('a'), undefined);
    assert.strictEqual(t.complete('a'), undefined);
    assert.strictEqual(t.complete('a'), 'A');
    assert.strictEqual(t.complete('z'), 'Z');
    assert.strictEqual(t.weight, 0);
  });

  it('chains items with the same key and completes them oldest first', function () {
    const t = new InflightTracker<string>();
    t.add('k', 'first', 1, 1, 100);
    t.add('k', 'second', 2, 1, 110);
    t.add('k', 'third', 4, 1, 120);
    assert.strictEqual(t.length, 3);
    assert.strictEqual(t.weight, 7);
    assert.strictEqual(t.complete('k'), 'first');
    assert.strictEqual(t.complete('k'), 'second');
    assert.strictEqual(t.weight, 4);
    assert.strictEqual(t.complete('k'), 'third');
    assert.strictEqual(t.complete('k'), undefined);
    assert.strictEqual(t.length, 0);
  });

  it('expire() removes items with deadline <= now, oldest first, including chained ones', function () {
    const t = new InflightTracker<string>();
    t.add('a', 'A', 1, 1, 100);
    t.add('k', 'K1', 2, 1, 110);
    t.add('k', 'K2', 3, 1, 130);
    t.add('b', 'B', 4, 1, 120);
    const out: [string, number][] = [];
    t.expire(99, (v, w) => out.push([v, w]));
    assert.strictEqual(out.length, 0);
    t.expire(120, (v, w) => out.push([v, w]));
    assert.deepStrictEqual(out, [
      ['A', 1],
      ['K1', 2],
      ['B', 4],
    ]);
    assert.strictEqual(t.weight, 3);
    assert.strictEqual(t.complete('k'), 'K2');
    assert.strictEqual(t.length, 0);
  });

  it('drain() removes and returns everything', function () {
    const t = new InflightTracker<string>();
    t.add('a', 'A', 1, 2, 100);
    t.add('b', 'B', 2, 1, 100);
    assert.deepStrictEqual(t.drain(), ['A', 'B']);
    assert.strictEqual(t.weight, 0);
    assert.strictEqual(t.length, 0);
    assert.strictEqual(t.complete('a'), undefined);
  });
});

describe('SequenceStamper', function () {
  it('reserves consecutive ranges per source starting at 1', function () {
    const s = new SequenceStamper();
    assert.strictEqual(s.reserve('a', 1), 1);
    assert.strictEqual(s.reserve('a', 3), 2);
    assert.strictEqual(s.reserve('b', 2), 1);
    assert.strictEqual(s.reserve('a', 1), 5);
    assert.strictEqual(s.reserve('b', 1), 3);
    assert.deepStrictEqual(s.snapshot(), { a: 6, b: 4 });
    assert.strictEqual(s.sources, 2);
  });

  it('restore() continues from a saved state but never goes backwards', function () {
    const s = new SequenceStamper();
    s.reserve('a', 10); // next 11
    s.restore({ a: 5, b: 42, c: 1.5, d: -3 });
    assert.strictEqual(s.reserve('a', 1), 11, 'older saved state ignored');
    assert.strictEqual(s.reserve('b', 1), 42, 'new source continues from the saved state');
    assert.strictEqual(s.reserve('c', 1), 1, 'non-integer state ignored');
    assert.strictEqual(s.reserve('d', 1), 1, 'state below the start ignored');
    s.restore({ a: 100 });
    assert.strictEqual(s.reserve('a', 2), 100);
    assert.deepStrictEqual(s.snapshot(), { a: 102, b: 43, c: 2, d: 2 });
  });

  it('a snapshot restored into a new stamper continues without reuse', function () {
    const s1 = new SequenceStamper();
    s1.reserve('x', 7);
    const s2 = new SequenceStamper();
    s2.restore(s1.snapshot());
    assert.strictEqual(s2.reserve('x', 1), 8);
  });
});

describe('BatchAssembler', function () {
  const opts = (over: Partial<ConstructorParameters<typeof BatchAssembler>[0]> = {}) => ({ maxSize: 5, maxAgeMs: 1_000, maxOpenBatches: 1, maxHeldEvents: 1000, ...over });
  const msg = (n: number, tag = 'm'): TelemetryMessageLike => ({ topic: tag, payload: n === 1 ? 1 : Array.from({ length: n }, (_, i) => i) });
  const inputsOf = (b: Batch<string> | undefined) => b?.inputs;

  it('validates its options', function () {
    assert.throws(() => new BatchAssembler(opts({ maxSize: 0 })), /maxSize must be a whole number >= 1/);
    assert.throws(() => new BatchAssembler(opts({ maxOpenBatches: 1.5 })), /maxOpenBatches must be a whole number >= 1/);
    assert.throws(() => new BatchAssembler(opts({ maxHeldEvents: 0 })), /maxHeldEvents must be a whole number >= 1/);
    assert.throws(() => new BatchAssembler(opts({ maxAgeMs: -1 })), /maxAgeMs must be >= 0/);
  });

  it('flushes by size at exactly maxSize events', function () {
    const b = new BatchAssembler<string>(opts({ maxSize: 5 }));
    for (let i = 1; i <= 4; i++) assert.strictEqual(b.add(msg(1), `i${i}`, 10 + i), true);
    assert.strictEqual(b.waitingBatches, 0);
    assert.strictEqual(b.currentSince, 11);
    assert.strictEqual(b.add(msg(1), 'i5', 15), true);
    assert.strictEqual(b.waitingBatches, 1);
    assert.strictEqual(b.currentSince, undefined);
    const batch = b.next() as Batch<string>;
    assert.deepStrictEqual(batch.inputs, ['i1', 'i2', 'i3', 'i4', 'i5']);
    assert.strictEqual(batch.records.length, 5);
    assert.strictEqual(batch.reason, 'size');
    assert.strictEqual(batch.firstAt, 11);
  });

  it('never splits a message: a 3-event message that does not fit closes the current batch first', function () {
    const b = new BatchAssembler<string>(opts({ maxSize: 5 }));
    b.add(msg(3, 'a'), 'a', 1);
    b.add(msg(3, 'b'), 'b', 2);
    assert.strictEqual(b.waitingBatches, 1);
    assert.strictEqual(b.events, 6);
    const first = b.next() as Batch<string>;
    assert.deepStrictEqual(first.inputs, ['a']);
    assert.deepStrictEqual(
      first.records.map((r) => [r.topic, r.payload]),
      [
        ['a', 0],
        ['a', 1],
        ['a', 2],
      ]
    );
    assert.strictEqual(b.currentSince, 2);
    b.close('flush');
    b.completed(first);
    const second = b.next() as Batch<string>;
    assert.deepStrictEqual(second.inputs, ['b']);
    assert.strictEqual(second.records.length, 3);
    assert.strictEqual(second.reason, 'flush');
  });

  it('an oversize message forms a batch of its own', function () {
    const b = new BatchAssembler<string>(opts({ maxSize: 5 }));
    b.add(msg(1), 'small', 1);
    b.add(msg(8), 'big', 2);
    b.add(msg(1), 'after', 3);
    assert.strictEqual(b.waitingBatches, 2);
    assert.strictEqual(b.events, 10);
    const x = b.next() as Batch<string>;
    assert.deepStrictEqual(x.inputs, ['small']);
    b.completed(x);
    const y = b.next() as Batch<string>;
    assert.deepStrictEqual(y.inputs, ['big']);
    assert.strictEqual(y.records.length, 8);
    b.completed(y);
    assert.strictEqual(b.next(), undefined, 'after is still being filled');
    assert.strictEqual(b.events, 1);
  });

  it('refuses a message beyond maxHeldEvents; completed() makes room; an empty assembler takes anything', function () {
    const b = new BatchAssembler<string>(opts({ maxSize: 2, maxOpenBatches: 1, maxHeldEvents: 5 }));
    b.add(msg(2), 'a', 1); // closes: waiting [a]
    const sent = b.next() as Batch<string>; // open 1
    assert.deepStrictEqual(sent.inputs, ['a']);
    b.add(msg(2), 'b', 2); // closes: waiting [b]
    assert.strictEqual(b.next(), undefined, 'no open slot');
    b.add(msg(1), 'c', 3); // current [c]
    assert.strictEqual(b.events, 5);
    assert.strictEqual(b.add(msg(1), 'd', 4), false, 'a sixth event would pass the bound');
    assert.strictEqual(b.events, 5, 'nothing changed');
    assert.strictEqual(b.currentSince, 3);

    b.completed(sent);
    assert.strictEqual(b.events, 3);
    assert.deepStrictEqual(inputsOf(b.next()), ['b']);
    assert.strictEqual(b.add(msg(2), 'd', 5), true, 'c closes, and d fills a batch of its own');
    assert.strictEqual(b.waitingBatches, 2);
    assert.strictEqual(b.events, 5);

    const empty = new BatchAssembler<string>(opts({ maxSize: 2, maxHeldEvents: 5 }));
    assert.strictEqual(empty.add(msg(9), 'huge', 1), true, 'alone, a message larger than the bound is still taken');
    assert.strictEqual(empty.add(msg(1), 'next', 2), false);
  });

  it('drainUnsent returns waiting batches then the current one, in order', function () {
    const b = new BatchAssembler<string>(opts({ maxSize: 2, maxOpenBatches: 1 }));
    b.add(msg(2), 'a', 1);
    const sent = b.next() as Batch<string>;
    b.add(msg(2), 'b', 2);
    b.add(msg(2), 'c', 3);
    b.add(msg(1), 'd', 4);
    assert.strictEqual(b.events, 7);
    const unsent = b.drainUnsent();
    assert.deepStrictEqual(
      unsent.map((x) => x.inputs),
      [['b'], ['c'], ['d']]
    );
    assert.strictEqual(b.waitingBatches, 0);
    assert.strictEqual(b.currentSince, undefined);
    assert.strictEqual(b.events, 2, 'the open batch is still held');
    b.completed(sent);
    assert.strictEqual(b.events, 0);
    assert.strictEqual(b.openBatches, 0);
    assert.deepStrictEqual(b.drainUnsent(), []);
  });

  it('resend() puts open batches back first in line, in the order they were first sent, still held', function () {
    const b = new BatchAssembler<string>(opts({ maxSize: 2, maxOpenBatches: 2 }));
    for (const tag of ['a', 'b', 'c']) b.add(msg(2), tag, 1);
    const first = b.next() as Batch<string>;
    const second = b.next() as Batch<string>;
    assert.strictEqual(b.next(), undefined, 'two open: no more');
    b.resend([second]);
    b.resend([first]);
    assert.strictEqual(b.openBatches, 0);
    assert.strictEqual(b.waitingBatches, 3);
    assert.strictEqual(b.events, 6);
    assert.deepStrictEqual([inputsOf(b.next()), inputsOf(b.next()), b.next()], [['a'], ['b'], undefined]);
    b.completed(first);
    assert.deepStrictEqual(inputsOf(b.next()), ['c']);
  });

  it('the events counter returns to 0 once every batch is completed', function () {
    const b = new BatchAssembler<string>(opts({ maxSize: 4, maxOpenBatches: 2 }));
    const sizes = [1, 3, 2, 5, 1, 1, 4];
    sizes.forEach((n, i) => assert.strictEqual(b.add(msg(n), `i${i}`, i), true));
    b.close('flush');
    assert.strictEqual(b.events, sizes.reduce((s, n) => s + n, 0));
    const inputs: string[] = [];
    for (;;) {
      const batch = b.next();
      if (batch === undefined) break;
      assert.ok(b.openBatches <= 2);
      inputs.push(...batch.inputs);
      b.completed(batch);
    }
    assert.deepStrictEqual(inputs, sizes.map((_, i) => `i${i}`));
    assert.strictEqual(b.events, 0);
    assert.strictEqual(b.openBatches, 0);
  });
});
