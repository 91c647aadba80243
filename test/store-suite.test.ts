/**
 * One suite of cases for every store the buffer can use (the way Telegraf runs one buffer suite
 * against its memory and disk buffers): the ring, the ring keeping what a full ring takes in as
 * bytes (CompactOptions), and the ring in front of a disk tier (TieredStore), the last also with
 * faults in the disk tier's file operations, stubbed (a full disk mid-write cannot be caused
 * reliably) and real (its directory removed, or replaced by a file). After every step the counting
 * identity holds, and every outcome the buffer reports matches what the test saw.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as os from 'os';
import * as path from 'path';
import sinon from 'sinon';
import { BufferCore, BufferHooks, BufferOptions, Outcome } from '../src/core/buffer/buffer-core';
import { DiskTier } from '../src/core/buffer/disk-tier';
import { packMessage, unpackMessage } from '../src/core/buffer/message-codec';
import { approximateSize, ByteBound, CompactOptions, DropReason, ItemCodec } from '../src/core/buffer/ring-buffer';
import { TieredStore } from '../src/core/buffer/tiered-store';
import { assertCountsAddUp } from './support/counting';

// The module object itself, so sinon's stubs reach the code under test.
const fs = require('fs') as typeof import('fs');

interface Item {
  id: number;
  key: string;
  w: number;
  pad: string;
}

const codec: ItemCodec<Item> = {
  encode: (item) => packMessage(item as unknown as Record<string, unknown>),
  decode: (bytes) => unpackMessage(bytes, true) as unknown as Item,
  decodeRange: (block, start, end) => unpackMessage(block, true, start, end) as unknown as Item,
};

interface State {
  now: number;
  expected: number;
  groupLimit: number;
  groups: Item[][];
  settled: { item: Item; outcome: Outcome | DropReason }[];
  /** Items whose custody passed to bytes (encoded by a full ring, or spilled): settled for their producer then. */
  custody: Item[];
}

interface Built {
  core: BufferCore<Item>;
  disk?: DiskTier<Item>;
  dir?: string;
  cleanup(): void;
}

interface StoreKind {
  name: string;
  /** Drops are reported one by one (only a store that holds objects: text and disk drop what they hold unread). */
  reportsEveryDrop: boolean;
  /** Faults injected into the disk tier's file operations. */
  faults: 'none' | 'stubbed' | 'real';
  runs: number;
  build(options: BufferOptions, hooks: BufferHooks<Item>, state: State): Built;
}

/** A memory limit the items' pads (up to 15 kB) reach often. */
const LIMIT: ByteBound<Item> = { maxBytes: 20_000, sizeOf: (item) => approximateSize(item) };

function tieredBuild(options: BufferOptions, hooks: BufferHooks<Item>, state: State, bound?: ByteBound<Item>): Built {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'store-suite-'));
  let disk: DiskTier<Item> | undefined;
  const core = new BufferCore<Item>(options, hooks, (ring, onDrop) => {
    disk = new DiskTier<Item>({ dir, maxBytes: 64 * 1024, segmentBytes: 16384, policy: options.policy, codec: { encode: (item) => codec.encode(item) as Buffer, decode: (b) => codec.decode(b) } });
    return new TieredStore<Item>(ring, disk, { replayRate: 2000, now: () => state.now, onSpill: (item) => state.custody.push(item), onDrop });
  }, undefined, bound);
  return {
    core,
    disk,
    dir,
    cleanup: () => {
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

const KINDS: StoreKind[] = [
  { name: 'ring', reportsEveryDrop: true, faults: 'none', runs: 200, build: (o, h) => ({ core: new BufferCore<Item>(o, h), cleanup: () => undefined }) },
  {
    name: 'ring keeping what a full ring takes in as bytes',
    reportsEveryDrop: false,
    faults: 'none',
    runs: 200,
    build: (o, h, state) => {
      const compact: CompactOptions<Item> = { codec, onEncoded: (item) => state.custody.push(item) };
      return { core: new BufferCore<Item>(o, h, undefined, compact), cleanup: () => undefined };
    },
  },
  { name: 'ring with a memory limit', reportsEveryDrop: true, faults: 'none', runs: 200, build: (o, h) => ({ core: new BufferCore<Item>(o, h, undefined, undefined, LIMIT), cleanup: () => undefined }) },
  {
    name: 'ring with a memory limit keeping what a full ring takes in as bytes',
    reportsEveryDrop: false,
    faults: 'none',
    runs: 200,
    build: (o, h, state) => ({ core: new BufferCore<Item>(o, h, undefined, { codec, onEncoded: (item) => state.custody.push(item) }, LIMIT), cleanup: () => undefined }),
  },
  { name: 'ring + disk tier', reportsEveryDrop: false, faults: 'none', runs: 40, build: (o, h, state) => tieredBuild(o, h, state) },
  { name: 'ring with a memory limit + disk tier', reportsEveryDrop: false, faults: 'none', runs: 30, build: (o, h, state) => tieredBuild(o, h, state, LIMIT) },
  { name: 'ring + disk tier, file operations failing (stubbed)', reportsEveryDrop: false, faults: 'stubbed', runs: 40, build: (o, h, state) => tieredBuild(o, h, state) },
  { name: 'ring + disk tier, directory removed or replaced by a file (real)', reportsEveryDrop: false, faults: 'real', runs: 30, build: (o, h, state) => tieredBuild(o, h, state) },
];

const FAILING = ['openSync', 'writeSync', 'fsyncSync', 'renameSync', 'readSync', 'closeSync'] as const;
const CODES = ['ENOSPC', 'EIO', 'EACCES'] as const;

type Op =
  | { kind: 'offer'; weight: number; dupOf: number | null; pumpNow: boolean; pad: number }
  | { kind: 'complete'; pick: number; completion: 'ok' | 'failed' | 'returned' }
  | { kind: 'unknown' }
  | { kind: 'tick'; ms: number }
  | { kind: 'expire' }
  | { kind: 'pump' }
  | { kind: 'drain' }
  | { kind: 'sync' }
  | { kind: 'fail'; fn: (typeof FAILING)[number]; times: number; code: (typeof CODES)[number] }
  | { kind: 'dir'; what: 'remove' | 'block' | 'unblock' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { arbitrary: fc.record({ kind: fc.constant('offer' as const), weight: fc.integer({ min: 1, max: 6 }), dupOf: fc.option(fc.nat(20), { freq: 8 }), pumpNow: fc.boolean(), pad: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 15000 })) }), weight: 10 },
  { arbitrary: fc.record({ kind: fc.constant('complete' as const), pick: fc.nat(), completion: fc.constantFrom<'ok' | 'failed' | 'returned'>('ok', 'ok', 'failed', 'returned') }), weight: 6 },
  { arbitrary: fc.constant({ kind: 'unknown' as const }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 600 }) }), weight: 3 },
  { arbitrary: fc.constant({ kind: 'expire' as const }), weight: 2 },
  { arbitrary: fc.constant({ kind: 'pump' as const }), weight: 3 },
  { arbitrary: fc.constant({ kind: 'drain' as const }), weight: 1 },
  { arbitrary: fc.constant({ kind: 'sync' as const }), weight: 3 },
  { arbitrary: fc.record({ kind: fc.constant('fail' as const), fn: fc.constantFrom(...FAILING), times: fc.integer({ min: 1, max: 5 }), code: fc.constantFrom(...CODES) }), weight: 3 },
  { arbitrary: fc.record({ kind: fc.constant('dir' as const), what: fc.constantFrom<'remove' | 'block' | 'unblock'>('remove', 'block', 'unblock', 'unblock') }), weight: 1 }
);

const weightOf = (items: Item[]): number => items.reduce((sum, x) => sum + x.w, 0);

/** Runs one sequence of operations against one store kind, checking after every step. */
function run(kind: StoreKind, capacity: number, window: number, policy: 'drop-oldest' | 'drop-newest', expected: number, groupLimit: number, ops: Op[]): void {
  const state: State = { now: 1_000, expected, groupLimit, groups: [], settled: [], custody: [] };
  const hooks: BufferHooks<Item> = {
    keyOf: (group) => group.map((item) => item.key).join('+'),
    release: (groups) => void state.groups.push(...groups),
    groupLimit: () => state.groupLimit,
    settled: (item, outcome) => void state.settled.push({ item, outcome }),
    expectedCompletions: () => state.expected,
    now: () => state.now,
  };
  const built = kind.build({ capacity, window, policy, ackTimeoutMs: 1_000 }, hooks, state);
  const { core, disk, dir } = built;
  /** Fault budget per stubbed function: that many more calls throw. */
  const failing = new Map<string, { times: number; code: string }>();
  if (kind.faults === 'stubbed') {
    for (const fn of FAILING) {
      const real = (fs[fn] as (...args: unknown[]) => unknown).bind(fs);
      sinon.stub(fs, fn).callsFake(((...args: unknown[]) => {
        const f = failing.get(fn);
        if (f !== undefined && f.times > 0) {
          f.times--;
          throw Object.assign(new Error(`${f.code}: injected, ${fn}`), { code: f.code });
        }
        return real(...args);
      }) as never);
    }
  }
  const offered = new Map<number, Item>();
  let outstanding: { key: string; items: Item[] }[] = [];
  const outstandingItems = (): Item[] => outstanding.flatMap((g) => g.items);
  let seenGroups = 0;
  let drainedWeight = 0;
  const check = (at: string): void => {
    for (; seenGroups < state.groups.length; seenGroups++) {
      const items = state.groups[seenGroups];
      assert.ok(items.length > 0, `${at}: no empty message`);
      assert.ok(items.length === 1 || weightOf(items) <= state.groupLimit, `${at}: a message of several items carries at most groupLimit events`);
      for (const item of items) assert.deepEqual(item, offered.get(item.id), `${at}: released as offered (item ${item.id})`);
      outstanding.push({ key: items.map((item) => item.key).join('+'), items });
    }
    const s = core.stats();
    assertCountsAddUp(s, { at });
    assert.equal(s.inFlight, weightOf(outstandingItems()), `${at}: inFlight`);
    assert.equal(core.inflight.length, outstanding.length, `${at}: messages in flight`);
    if (disk === undefined) assert.ok(s.depth <= capacity + window + 6, `${at}: depth bounded`);
    if (s.maxBytes > 0) assert.ok(s.ringBytes <= s.maxBytes, `${at}: the memory limit holds (${s.ringBytes} > ${s.maxBytes})`);
    assert.ok(s.inFlight <= window || outstandingItems().length === 1, `${at}: window respected`);
    const sumOf = (outcome: string): number => state.settled.filter((x) => x.outcome === outcome).reduce((sum, x) => sum + x.item.w, 0);
    assert.equal(s.delivered, sumOf('delivered'), `${at}: delivered`);
    assert.equal(s.failed, sumOf('failed'), `${at}: failed`);
    assert.equal(s.unacknowledged, sumOf('unacknowledged'), `${at}: unacknowledged`);
    assert.equal(s.drained, drainedWeight, `${at}: drained`);
    assert.equal(s.received, weightOf([...offered.values()]), `${at}: received`);
    if (kind.reportsEveryDrop) {
      assert.equal(s.droppedOverflow, sumOf('overflow'), `${at}: overflow`);
      assert.equal(s.droppedOversize, sumOf('oversize'), `${at}: oversize`);
    } else {
      // Items dropped unread from bytes were settled when they became bytes: not reported again.
      assert.ok(sumOf('overflow') <= s.droppedOverflow && sumOf('oversize') === s.droppedOversize && sumOf('disk-error') <= s.droppedDiskError, `${at}: drops reported at most once`);
    }
    if (disk === undefined) assert.equal(s.droppedDiskError, 0, `${at}: no disk, no disk errors`);
    // An item reaches its end once: delivered, failed, unacknowledged or dropped.
    const ends = new Set<number>();
    for (const x of state.settled) {
      assert.ok(!ends.has(x.item.id), `${at}: item ${x.item.id} settled twice (${x.outcome})`);
      ends.add(x.item.id);
    }
  };

  try {
    ops.forEach((op, step) => {
      const at = `${kind.name}, step ${step} ${JSON.stringify(op)}`;
      switch (op.kind) {
        case 'offer': {
          const id = offered.size;
          const key = op.dupOf !== null && op.dupOf < id ? (offered.get(op.dupOf) as Item).key : `k${id}`;
          const item: Item = { id, key, w: op.weight, pad: 'p'.repeat(op.pad) };
          offered.set(id, item);
          core.offer(item, op.weight, op.pumpNow);
          break;
        }
        case 'complete': {
          if (outstanding.length === 0) break;
          const key = outstanding[op.pick % outstanding.length].key;
          const before = core.stats();
          const settledBefore = state.settled.length;
          for (let i = 0; i < expected; i++) core.completed(key, op.completion);
          // Exactly the oldest outstanding message with that key left the window, with every item it carried.
          const gone = outstanding.find((x) => x.key === key) as { key: string; items: Item[] };
          outstanding = outstanding.filter((x) => x !== gone);
          assert.equal(core.stats().inFlight, before.inFlight - weightOf(gone.items), `${at}: credit returned`);
          const settledNow = state.settled.slice(settledBefore);
          if (op.completion === 'returned') assert.equal(settledNow.length, 0, `${at}: returned is not settled`);
          else assert.deepEqual(settledNow, gone.items.map((item) => ({ item, outcome: op.completion === 'ok' ? 'delivered' : 'failed' })), `${at}: settled`);
          break;
        }
        case 'unknown':
          assert.equal(core.completed('no-such-key', 'ok'), false);
          break;
        case 'tick':
          state.now += op.ms;
          break;
        case 'expire': {
          const before = state.settled.length;
          const n = core.expire();
          const settledNow = state.settled.slice(before);
          for (const e of settledNow) assert.equal(e.outcome, 'unacknowledged');
          const expired = new Set(settledNow.map((e) => e.item.id));
          const gone = outstanding.filter((g) => g.items.every((item) => expired.has(item.id)));
          assert.equal(gone.length, n, `${at}: expire() counts messages`);
          assert.equal(weightOf(gone.flatMap((g) => g.items)), weightOf(settledNow.map((e) => e.item)), `${at}: whole messages expired`);
          outstanding = outstanding.filter((g) => !gone.includes(g));
          break;
        }
        case 'pump':
          core.pump();
          break;
        case 'drain': {
          const { queued, inFlight } = core.drain();
          assert.deepEqual(new Set(inFlight.map((x) => x.id)), new Set(outstandingItems().map((x) => x.id)), `${at}: drained in-flight items`);
          drainedWeight += weightOf([...queued, ...inFlight]);
          outstanding = [];
          break;
        }
        case 'sync':
          disk?.sync();
          break;
        case 'fail':
          if (kind.faults === 'stubbed') failing.set(op.fn, { times: op.times, code: op.code });
          break;
        case 'dir':
          if (kind.faults !== 'real' || dir === undefined) break;
          if (op.what === 'remove') fs.rmSync(dir, { recursive: true, force: true });
          else if (op.what === 'block') {
            fs.rmSync(dir, { recursive: true, force: true });
            fs.writeFileSync(dir, 'in the way');
          } else if (fs.existsSync(dir) && !fs.statSync(dir).isDirectory()) fs.rmSync(dir);
          break;
      }
      check(at);
    });

    // Faults healed, everything comes out: confirmed, replayed from disk, or counted as lost.
    failing.clear();
    if (dir !== undefined && fs.existsSync(dir) && !fs.statSync(dir).isDirectory()) fs.rmSync(dir);
    for (let round = 0; round < 10_000; round++) {
      const s = core.stats();
      if (s.depth === 0 && s.inFlight === 0) break;
      for (const g of outstanding.splice(0)) for (let i = 0; i < expected; i++) core.completed(g.key, 'ok');
      state.now += 100;
      core.pump();
      check(`${kind.name}, draining, round ${round}`);
    }
    const s = core.stats();
    assert.equal(s.depth + s.inFlight, 0, `${kind.name}: everything came out ${JSON.stringify(s)}`);
    assertCountsAddUp(s, { at: `${kind.name}: at the end` });
  } finally {
    sinon.restore();
    built.cleanup();
  }
}

describe('every store, one suite: the counting identity after every step (property-based)', function () {
  for (const kind of KINDS) {
    it(`${kind.name}: received == depth + inFlight + delivered + failed + unacknowledged + dropped + drained, outcomes as seen`, function () {
      this.timeout(120_000);
      fc.assert(
        fc.property(
          fc.integer({ min: 1, max: 30 }),
          fc.integer({ min: 1, max: 10 }),
          fc.constantFrom<'drop-oldest' | 'drop-newest'>('drop-oldest', 'drop-newest'),
          fc.integer({ min: 1, max: 3 }),
          fc.constantFrom(1, 1, 2, 5, 12),
          // Long sequences: the disk tier needs a full ring before it sees anything, and faults need writes to hit.
          fc.array(opArb, { minLength: kind.faults === 'none' && kind.reportsEveryDrop ? 0 : 50, maxLength: 300, size: 'max' }),
          (capacity, window, policy, expected, groupLimit, ops) => run(kind, capacity, window, policy, expected, groupLimit, ops)
        ),
        { numRuns: kind.runs }
      );
    });
  }

  it('a disk tier whose directory cannot be listed at start says so (nothing was received yet, nothing to count)', function () {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'store-suite-'));
    try {
      sinon.stub(fs, 'readdirSync').throws(Object.assign(new Error('EACCES: injected, readdir'), { code: 'EACCES' }));
      assert.throws(() => new DiskTier<Item>({ dir, maxBytes: 64 * 1024, policy: 'drop-oldest', codec: { encode: (i) => codec.encode(i) as Buffer, decode: (b) => codec.decode(b) } }), /EACCES/);
    } finally {
      sinon.restore();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
