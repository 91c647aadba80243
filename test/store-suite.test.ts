/**
 * One suite for every store the buffer can use, the way Telegraf runs one buffer suite against its
 * memory and disk buffers: the ring, the ring keeping what a full ring takes in as bytes (text
 * mode), each with and without a memory limit, and the ring in front of a disk tier (TieredStore),
 * the last also with faults in the disk tier's file operations, stubbed (a full disk mid-write
 * cannot be caused reliably) and real (its directory removed, or replaced by a file). A new store
 * kind goes in STORES and gets every case:
 * - the store against a reference model (EventStore contract: what comes out, in which order, what
 *   is dropped and reported, the counters), after every step;
 * - the buffer (BufferCore) on the store: the counting identity after every step, and every
 *   outcome the buffer reports matches what the test saw.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as os from 'os';
import * as path from 'path';
import sinon from 'sinon';
import { BufferCore, BufferHooks, BufferOptions, Outcome } from '../src/core/buffer/buffer-core';
import { DiskTier } from '../src/core/buffer/disk-tier';
import { packMessage, unpackMessage } from '../src/core/buffer/message-codec';
import { approximateSize } from '../src/core/buffer/approximate-size';
import type { DropListener, DropPolicy, DropReason, EventStore, RingCounters } from '../src/core/buffer/event-store';
import { ByteBound, CompactOptions, ItemCodec, RingBuffer } from '../src/core/buffer/ring-buffer';
import { TieredStore } from '../src/core/buffer/tiered-store';
import { assertCountsAddUp } from './support/counting';

// The module object itself, so sinon's stubs reach the code under test.
const fs = require('fs') as typeof import('fs');

// ---------------------------------------------------------------------------------------------
// The store kinds
// ---------------------------------------------------------------------------------------------

interface StoreKind {
  name: string;
  /** A full ring keeps what it takes in as bytes (CompactOptions). */
  text: boolean;
  /** A bound in bytes besides the capacity in events (ByteBound). */
  memoryLimit: boolean;
  /** The ring in front of a disk tier (TieredStore). */
  disk: boolean;
  /** Faults injected into the disk tier's file operations. */
  faults: 'none' | 'stubbed' | 'real';
  /** Runs of each property (fewer for the kinds that write files). */
  runs: { model: number; buffer: number };
}

const STORES: StoreKind[] = [
  { name: 'ring', text: false, memoryLimit: false, disk: false, faults: 'none', runs: { model: 300, buffer: 200 } },
  { name: 'ring keeping what a full ring takes in as bytes', text: true, memoryLimit: false, disk: false, faults: 'none', runs: { model: 300, buffer: 200 } },
  { name: 'ring with a memory limit', text: false, memoryLimit: true, disk: false, faults: 'none', runs: { model: 300, buffer: 200 } },
  // No model: it sizes items by sizeOfItem, while this ring counts what it holds as text by its exact bytes.
  { name: 'ring with a memory limit keeping what a full ring takes in as bytes', text: true, memoryLimit: true, disk: false, faults: 'none', runs: { model: 0, buffer: 200 } },
  { name: 'ring + disk tier', text: false, memoryLimit: false, disk: true, faults: 'none', runs: { model: 40, buffer: 40 } },
  { name: 'ring with a memory limit + disk tier', text: false, memoryLimit: true, disk: true, faults: 'none', runs: { model: 30, buffer: 30 } },
  { name: 'ring + disk tier, file operations failing (stubbed)', text: false, memoryLimit: false, disk: true, faults: 'stubbed', runs: { model: 30, buffer: 40 } },
  { name: 'ring + disk tier, directory removed or replaced by a file (real)', text: false, memoryLimit: false, disk: true, faults: 'real', runs: { model: 30, buffer: 30 } },
];

/** Drops are reported one by one: only by a store that holds objects (text and disk drop what they hold unread). */
const reportsEveryDrop = (kind: StoreKind): boolean => !kind.text && !kind.disk;

/** The ring, and with a disk tier the TieredStore in front of it, in a fresh directory. */
function buildStore<T>(
  kind: StoreKind,
  ring: RingBuffer<T>,
  onDrop: DropListener<T> | undefined,
  o: { policy: DropPolicy; codec: ItemCodec<T>; now(): number; onSpill?(item: T): void; diskBytes: number }
): { store: EventStore<T>; disk?: DiskTier<T>; dir?: string } {
  if (!kind.disk) return { store: ring };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'store-suite-'));
  const disk = new DiskTier<T>({ dir, maxBytes: o.diskBytes, segmentBytes: Math.min(16384, o.diskBytes / 4), policy: o.policy, codec: { encode: (item) => o.codec.encode(item) as Buffer, decode: (b) => o.codec.decode(b) } });
  return { store: new TieredStore<T>(ring, disk, { replayRate: 2000, now: o.now, onSpill: o.onSpill, onDrop }), disk, dir };
}

const FAILING = ['openSync', 'writeSync', 'fsyncSync', 'renameSync', 'readSync', 'closeSync'] as const;
const CODES = ['ENOSPC', 'EIO', 'EACCES'] as const;
type FaultOp = { kind: 'fail'; fn: (typeof FAILING)[number]; times: number; code: (typeof CODES)[number] } | { kind: 'dir'; what: 'remove' | 'block' | 'unblock' };

const faultOps: { arbitrary: fc.Arbitrary<FaultOp>; weight: number }[] = [
  { arbitrary: fc.record({ kind: fc.constant('fail' as const), fn: fc.constantFrom(...FAILING), times: fc.integer({ min: 1, max: 5 }), code: fc.constantFrom(...CODES) }), weight: 3 },
  { arbitrary: fc.record({ kind: fc.constant('dir' as const), what: fc.constantFrom<'remove' | 'block' | 'unblock'>('remove', 'block', 'unblock', 'unblock') }), weight: 1 },
];

/**
 * The faults of a kind, for one run: `apply` does a fault op, `heal` ends them all, `restore`
 * removes the stubs. With 'stubbed', each of FAILING throws while its budget (set by a 'fail' op)
 * lasts; with 'real', a 'dir' op removes the tier's directory or puts a file in its place.
 */
function diskFaults(kind: StoreKind, dir: string | undefined): { apply(op: FaultOp): void; heal(): void; restore(): void } {
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
  const blocked = (): boolean => dir !== undefined && fs.existsSync(dir) && !fs.statSync(dir).isDirectory();
  return {
    apply(op) {
      if (op.kind === 'fail') {
        if (kind.faults === 'stubbed') failing.set(op.fn, { times: op.times, code: op.code });
        return;
      }
      if (kind.faults !== 'real' || dir === undefined) return;
      if (op.what === 'remove') fs.rmSync(dir, { recursive: true, force: true });
      else if (op.what === 'block') {
        fs.rmSync(dir, { recursive: true, force: true });
        fs.writeFileSync(dir, 'in the way');
      } else if (blocked()) fs.rmSync(dir);
    },
    heal() {
      failing.clear();
      if (blocked()) fs.rmSync(dir as string);
    },
    restore() {
      sinon.restore();
      if (dir !== undefined) fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Every store against a reference model
// ---------------------------------------------------------------------------------------------

interface ModelItem {
  id: number;
  /** Text of varying length and width (multi-byte UTF-8) for text mode and the disk. */
  note?: string;
}

interface DropRecord {
  item: ModelItem;
  weight: number;
  reason: DropReason;
}

interface Held {
  item: ModelItem;
  weight: number;
}

/** What the memory limit counts for an item in the model tests. */
const sizeOfItem = (item: ModelItem): number => 10 + (item.note?.length ?? 0);

/**
 * A trivially correct reference: plain arrays with the documented semantics. The ring alone: one
 * FIFO and its drop policy. With a disk tier, what the ring has no room for goes to a second FIFO
 * (the disk) instead of being dropped, and shift() hands out the head of either.
 */
class ModelStore {
  readonly ring: Held[] = [];
  readonly disk: Held[] = [];
  readonly drops: DropRecord[] = [];
  readonly c: RingCounters = { received: 0, released: 0, droppedOverflow: 0, droppedOversize: 0, depth: 0, highWater: 0, drained: 0 };

  constructor(
    readonly capacity: number,
    readonly policy: DropPolicy,
    /** A memory limit, items sized by sizeOfItem (undefined: none). */
    readonly maxBytes: number | undefined,
    readonly tiered: boolean
  ) {
    if (maxBytes !== undefined) this.c.bytes = 0;
  }

  private sum(list: Held[]): number {
    return list.reduce((s, e) => s + e.weight, 0);
  }

  private bytes(): number {
    return this.ring.reduce((s, e) => s + sizeOfItem(e.item), 0);
  }

  private fits(w: number, size: number): boolean {
    return this.sum(this.ring) + w <= this.capacity && (this.maxBytes === undefined || this.bytes() + size <= this.maxBytes);
  }

  private update(): void {
    this.c.depth = this.sum(this.ring) + this.sum(this.disk);
    if (this.maxBytes !== undefined) this.c.bytes = this.bytes();
    this.c.highWater = Math.max(this.c.highWater, this.sum(this.ring));
  }

  private drop(item: ModelItem, weight: number, reason: DropReason): void {
    if (reason === 'oversize') this.c.droppedOversize += weight;
    else this.c.droppedOverflow += weight;
    this.drops.push({ item, weight, reason });
  }

  /** Where the store should put it: 'ring', 'disk' or dropped (false). */
  push(item: ModelItem, weight: number): 'ring' | 'disk' | false {
    const w = weight < 1 ? 1 : weight;
    this.c.received += w;
    const size = sizeOfItem(item);
    const oversize = w > this.capacity || (!this.tiered && this.maxBytes !== undefined && size > this.maxBytes);
    if (oversize) {
      this.drop(item, w, 'oversize');
      return false;
    }
    if (!this.fits(w, size)) {
      if (this.tiered) {
        this.disk.push({ item, weight: w });
        this.update();
        return 'disk';
      }
      if (this.policy === 'drop-newest') {
        this.drop(item, w, 'overflow');
        return false;
      }
      while (!this.fits(w, size)) {
        const old = this.ring.shift() as Held;
        this.drop(old.item, old.weight, 'overflow');
      }
    }
    this.ring.push({ item, weight: w });
    this.update();
    return 'ring';
  }

  /** The store handed out `got` (by id): the head of the ring, or an item of the disk (those before it it lost). */
  shifted(got: ModelItem): { from: 'ring' | 'disk'; item: ModelItem; lost: Held[] } | undefined {
    if (this.ring.length > 0 && this.ring[0].item.id === got.id) {
      const e = this.ring.shift() as Held;
      this.c.released += e.weight;
      this.update();
      return { from: 'ring', item: e.item, lost: [] };
    }
    const at = this.disk.findIndex((e) => e.item.id === got.id);
    if (at < 0) return undefined;
    const lost = this.disk.splice(0, at);
    const e = this.disk.shift() as Held;
    this.c.released += e.weight;
    this.update();
    return { from: 'disk', item: e.item, lost };
  }

  /** The store refused what the model would have put on disk (a disk error, or the disk's cap with drop-newest). */
  refusedByDisk(item: ModelItem, reason: DropReason): void {
    const e = this.disk.pop() as Held;
    assert.equal(e.item, item);
    this.drops.push({ item, weight: e.weight, reason });
    this.update();
  }

  /** Disk items the store lost (a segment dropped at the cap, a directory removed): gone, counted by the store. */
  lose(list: Held[]): void {
    for (const e of list) this.disk.splice(this.disk.indexOf(e), 1);
    this.update();
  }

  /** Only the ring: the disk keeps its records across a restart. */
  drain(): ModelItem[] {
    const all = this.ring.splice(0);
    for (const e of all) this.c.drained += e.weight;
    this.update();
    return all.map((e) => e.item);
  }
}

type ModelOp =
  | { kind: 'push'; weight: number }
  | { kind: 'shift' }
  | { kind: 'popBatch'; n: number }
  | { kind: 'drain' }
  | { kind: 'tick'; ms: number }
  | { kind: 'sync' }
  | FaultOp;

const ringOps: { arbitrary: fc.Arbitrary<ModelOp>; weight: number }[] = [
  { arbitrary: fc.record({ kind: fc.constant('push' as const), weight: fc.integer({ min: 1, max: 3 }) }), weight: 10 },
  { arbitrary: fc.record({ kind: fc.constant('push' as const), weight: fc.integer({ min: -2, max: 60 }) }), weight: 3 },
  { arbitrary: fc.record({ kind: fc.constant('shift' as const) }), weight: 4 },
  { arbitrary: fc.record({ kind: fc.constant('popBatch' as const), n: fc.integer({ min: 0, max: 8 }) }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant('drain' as const) }), weight: 1 },
];

/** Heavy on wrap-around: unit weights on a tiny ring. */
const unitOps: { arbitrary: fc.Arbitrary<ModelOp>; weight: number }[] = [
  { arbitrary: fc.constant({ kind: 'push' as const, weight: 1 }), weight: 3 },
  { arbitrary: fc.constant({ kind: 'shift' as const }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant('popBatch' as const), n: fc.integer({ min: 0, max: 4 }) }), weight: 1 },
];

/** The operations for a kind: the disk tier also needs time to pass (its replay rate), syncs, and its faults. */
function modelOps(kind: StoreKind, base: { arbitrary: fc.Arbitrary<ModelOp>; weight: number }[]): fc.Arbitrary<ModelOp> {
  const disk: { arbitrary: fc.Arbitrary<ModelOp>; weight: number }[] = kind.disk
    ? [
        { arbitrary: fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 200 }) }), weight: 3 },
        { arbitrary: fc.constant({ kind: 'sync' as const }), weight: 1 },
      ]
    : [];
  return fc.oneof(...base, ...disk, ...(kind.faults === 'none' ? [] : faultOps));
}

const NOTES = ['', 'x', 'Grüße 温度 🌡', 'a'.repeat(300), '"quoted" \\ back'];

const jsonCodec: ItemCodec<ModelItem> = { encode: (item) => JSON.stringify(item), decode: (data) => JSON.parse(data.toString('utf8')) as ModelItem };

/**
 * Runs one sequence of operations against one store kind and the model, checking after every step.
 * What the ring holds as objects comes back as the very same objects; what it holds as text, and
 * what comes from disk, as equal copies. Without faults the model predicts everything; with them
 * (or at the disk's cap) the disk may refuse or lose items: the model follows what the store
 * reports and checks that each lost event is counted once.
 */
function runAgainstModel(kind: StoreKind, capacity: number, policy: DropPolicy, ops: ModelOp[], { maxBytes, diskCap = false }: { maxBytes?: number; diskCap?: boolean } = {}): void {
  const drops: DropRecord[] = [];
  const encoded: ModelItem[] = [];
  const spilled: ModelItem[] = [];
  let now = 0;
  const onDrop: DropListener<ModelItem> = (item, weight, reason) => drops.push({ item, weight, reason });
  const compact: CompactOptions<ModelItem> | undefined = kind.text ? { codec: jsonCodec, onEncoded: (item) => encoded.push(item) } : undefined;
  const bound = maxBytes === undefined ? undefined : { maxBytes, sizeOf: sizeOfItem };
  const ring = new RingBuffer<ModelItem>(capacity, policy, onDrop, compact, bound);
  const { store, disk, dir } = buildStore(kind, ring, onDrop, { policy, codec: jsonCodec, now: () => now, onSpill: (item) => spilled.push(item), diskBytes: diskCap ? 64 * 1024 : 1 << 20 });
  const faults = diskFaults(kind, dir);
  // Without faults and with room on disk, the model predicts every drop; otherwise it follows the store's reports.
  const exact = kind.faults === 'none' && !diskCap;
  const model = new ModelStore(capacity, policy, maxBytes, kind.disk);
  let lostWeight = 0;
  let nextId = 1;
  const same = (actual: ModelItem | undefined, expected: ModelItem, from: 'ring' | 'disk', what: string): void => {
    if (from === 'ring' && !kind.text) assert.strictEqual(actual, expected, `${what} (the same object)`);
    else assert.deepStrictEqual(actual, expected, `${what} (an equal copy)`);
  };
  /** One item handed out by the store: it is the model's ring head or a disk item, with the weight peekWeight said. */
  const handedOut = (got: ModelItem | undefined, peeked: number, at: string): void => {
    if (got === undefined) {
      assert.strictEqual(peeked, 0, `${at}: peekWeight 0 when shift has nothing`);
      assert.strictEqual(model.ring.length, 0, `${at}: shift has nothing while the ring holds items`);
      return;
    }
    const weight = (model.ring.find((e) => e.item.id === got.id) ?? model.disk.find((e) => e.item.id === got.id))?.weight;
    const m = model.shifted(got);
    assert.ok(m !== undefined, `${at}: handed out item ${got.id}, which the model does not hold where the store may take from`);
    if (!kind.disk) assert.strictEqual(m.from, 'ring');
    assert.strictEqual(peeked, weight, `${at}: peekWeight said the weight of what shift returned`);
    same(got, m.item, m.from, `${at}: item ${got.id}`);
    if (m.lost.length > 0) {
      assert.ok(!exact, `${at}: the disk skipped items without faults: ${m.lost.map((e) => e.item.id).join(', ')}`);
      lostWeight += m.lost.reduce((s, e) => s + e.weight, 0);
    }
  };
  const shiftOne = (at: string): ModelItem | undefined => {
    const peeked = store.peekWeight();
    const got = store.shift();
    handedOut(got, peeked, at);
    return got;
  };

  try {
    ops.forEach((op, step) => {
      const at = `${kind.name}, step ${step} ${JSON.stringify(op)}`;
      switch (op.kind) {
        case 'push': {
          const id = nextId++;
          // At the disk's cap, longer items: 300 steps then fill the smallest disk tier (64 KiB) several times.
          const item = { id, note: (diskCap ? 'z'.repeat(5000) : '') + NOTES[id % NOTES.length] };
          const encodedBefore = encoded.length;
          const spilledBefore = spilled.length;
          const dropsBefore = model.drops.length;
          const heldTextBefore = kind.text && model.ring.some((e) => encoded.includes(e.item));
          const keptAsObject = kind.disk ? true : ring.keepsAsObject(op.weight, sizeOfItem(item));
          const where = model.push(item, op.weight);
          const stored = store.push(item, op.weight);
          if (where === 'disk' && !stored) {
            // Refused by the disk: reported once, as a disk error or as the cap's overflow (drop-newest).
            assert.ok(!exact, `${at}: the disk refused an item without faults`);
            const last = drops[drops.length - 1];
            assert.ok(last !== undefined && last.item === item && (last.reason === 'disk-error' || last.reason === 'overflow'), `${at}: a refusal by the disk is reported`);
            model.refusedByDisk(item, last.reason);
          } else assert.strictEqual(stored, where !== false, `${at}: push result`);
          assert.deepStrictEqual(spilled.slice(spilledBefore), where === 'disk' && stored ? [item] : [], `${at}: spilled to disk exactly when the ring had no room`);
          if (kind.text) {
            const pushedOthersOut = model.drops.length > dropsBefore && where === 'ring';
            assert.strictEqual(encoded.length - encodedBefore, where === 'ring' && (pushedOthersOut || heldTextBefore) ? 1 : 0, `${at}: kept as text exactly when it pushed older items out or the ring held text`);
          }
          if (!kind.disk) assert.strictEqual(keptAsObject, where === 'ring' && encoded.length === encodedBefore, `${at}: keepsAsObject said what push did`);
          break;
        }
        case 'shift':
          shiftOne(at);
          break;
        case 'popBatch': {
          if (store instanceof RingBuffer) {
            const expected = model.ring.slice(0, op.n).map((e) => e.item);
            const got = store.popBatch(op.n);
            assert.strictEqual(got.length, expected.length, `${at}: popBatch count`);
            got.forEach((item, i) => handedOut(item, model.ring[0].weight, `${at}: popBatch item ${i}`));
          } else for (let i = 0; i < op.n; i++) shiftOne(`${at}: shift ${i}`);
          break;
        }
        case 'drain': {
          const expected = model.drain();
          const got = store.drain();
          assert.strictEqual(got.length, expected.length, `${at}: drain count`);
          got.forEach((item, i) => same(item, expected[i], 'ring', `${at}: drained item ${i}`));
          break;
        }
        case 'tick':
          now += op.ms;
          break;
        case 'sync':
          disk?.sync();
          break;
        default:
          faults.apply(op);
      }
      // Reported drops: the same items, weights and reasons as the model, once each. An item kept
      // as text was settled when it was encoded: its drop is counted but not reported.
      const reported = kind.text ? model.drops.filter((d) => !encoded.includes(d.item)) : model.drops;
      assert.strictEqual(drops.length, reported.length, `${at}: number of drops reported`);
      drops.forEach((d, i) => {
        same(d.item, reported[i].item, 'ring', `${at}: dropped item ${i}`);
        assert.strictEqual(d.weight, reported[i].weight, `${at}: dropped weight ${i}`);
        assert.strictEqual(d.reason, reported[i].reason, `${at}: drop reason ${i}`);
      });
      const c = store.counters();
      assertCountsAddUp(c, { at });
      if (exact) {
        assert.deepStrictEqual({ ...c, droppedDiskError: c.droppedDiskError ?? 0 }, { ...model.c, droppedDiskError: 0 }, `${at}: counters`);
      } else {
        for (const key of ['received', 'released', 'drained', 'droppedOversize'] as const) assert.strictEqual(c[key], model.c[key], `${at}: ${key}`);
        // What the store dropped or lost without reporting it is what the model still thinks held, or saw skipped.
        const reportedWeight = drops.filter((d) => d.reason !== 'oversize').reduce((s, d) => s + d.weight, 0);
        const unreported = c.droppedOverflow + (c.droppedDiskError ?? 0) - reportedWeight;
        assert.ok(unreported >= lostWeight, `${at}: every event the disk lost is counted (${unreported} counted, ${lostWeight} seen lost)`);
        assert.strictEqual(c.depth + unreported, model.c.depth + lostWeight, `${at}: held + lost unreported = what the model holds + what it saw lost`);
      }
      assert.strictEqual(store.depth, c.depth, `${at}: depth`);
      assert.strictEqual(ring.depth, model.ring.reduce((s, e) => s + e.weight, 0), `${at}: the ring's depth`);
      assert.strictEqual(ring.length, model.ring.length, `${at}: the ring's length`);
      if (!kind.disk) assert.strictEqual(ring.peekWeight(), model.ring.length === 0 ? 0 : model.ring[0].weight, `${at}: peekWeight`);
      const text = ring.compactCounters();
      assert.ok(text.items <= ring.length, `${at}: items as text are among those held`);
      assert.strictEqual(text.items === 0, text.bytes === 0, `${at}: bytes held iff items held as text`);
    });

    // Faults healed and time given: everything held comes out, or is counted as lost.
    faults.heal();
    for (let round = 0; round < 1000 && store.depth > 0; round++) {
      now += 100;
      while (shiftOne(`${kind.name}, emptying, round ${round}`) !== undefined);
    }
    const c = store.counters();
    assert.strictEqual(c.depth, 0, `${kind.name}: everything came out ${JSON.stringify(c)}`);
    if (exact) assert.deepStrictEqual({ ...c, droppedDiskError: c.droppedDiskError ?? 0 }, { ...model.c, droppedDiskError: 0 }, `${kind.name}: at the end, the counters of the model (nothing lost)`);
    lostWeight += model.disk.reduce((s, e) => s + e.weight, 0);
    model.lose([...model.disk]);
    assertCountsAddUp(c, { at: `${kind.name}: at the end` });
    if (!exact) {
      const reportedWeight = drops.filter((d) => d.reason !== 'oversize').reduce((s, d) => s + d.weight, 0);
      assert.strictEqual(c.droppedOverflow + (c.droppedDiskError ?? 0) - reportedWeight, lostWeight, `${kind.name}: every event lost unreported is counted, once`);
    }
  } finally {
    faults.restore();
  }
}

describe('every store against a reference model (property-based)', function () {
  for (const kind of STORES.filter((k) => k.runs.model > 0)) {
    describe(kind.name, function () {
      this.timeout(120_000);
      const maxBytes = kind.memoryLimit ? fc.integer({ min: 10, max: 1500 }) : fc.constant(undefined);
      for (const policy of ['drop-oldest', 'drop-newest'] as const) {
        it(`${policy}: the same items, drops and counters as the model after every step`, function () {
          fc.assert(
            fc.property(fc.integer({ min: 1, max: 50 }), maxBytes, fc.array(modelOps(kind, ringOps), { maxLength: 300, size: 'max' }), (capacity, bytes, ops) => runAgainstModel(kind, capacity, policy, ops, { maxBytes: bytes })),
            { numRuns: kind.runs.model }
          );
        });
      }

      it('unit weights on a tiny ring (wrap-around heavy): the same as the model', function () {
        fc.assert(
          fc.property(fc.integer({ min: 1, max: 4 }), fc.constantFrom<DropPolicy>('drop-oldest', 'drop-newest'), maxBytes, fc.array(modelOps(kind, unitOps), { maxLength: 200, size: 'max' }), (capacity, policy, bytes, ops) =>
            runAgainstModel(kind, capacity, policy, ops, { maxBytes: bytes })
          ),
          { numRuns: kind.runs.model }
        );
      });

      if (kind.disk && kind.faults === 'none') {
        it("at the disk's cap (64 KiB): in order, and every event the cap drops counted once", function () {
          fc.assert(
            fc.property(fc.integer({ min: 1, max: 10 }), fc.constantFrom<DropPolicy>('drop-oldest', 'drop-newest'), maxBytes, fc.array(modelOps(kind, ringOps), { minLength: 50, maxLength: 300, size: 'max' }), (capacity, policy, bytes, ops) =>
              runAgainstModel(kind, capacity, policy, ops, { maxBytes: bytes, diskCap: true })
            ),
            { numRuns: kind.runs.model }
          );
        });
      }
    });
  }
});

// ---------------------------------------------------------------------------------------------
// The buffer on every store
// ---------------------------------------------------------------------------------------------

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
}

/** A memory limit the items' pads (up to 15 kB) reach often. */
const LIMIT: ByteBound<Item> = { maxBytes: 20_000, sizeOf: (item) => approximateSize(item) };

/** A BufferCore on a store of this kind: it builds the ring, buildStore puts the disk tier behind it. */
function buildCore(kind: StoreKind, options: BufferOptions, hooks: BufferHooks<Item>, state: State): Built {
  const compact: CompactOptions<Item> | undefined = kind.text ? { codec, onEncoded: (item) => state.custody.push(item) } : undefined;
  const bound = kind.memoryLimit ? LIMIT : undefined;
  if (!kind.disk) return { core: new BufferCore<Item>(options, hooks, undefined, compact, bound) };
  let built: { disk?: DiskTier<Item>; dir?: string } = {};
  const core = new BufferCore<Item>(options, hooks, (ring, onDrop) => {
    const made = buildStore(kind, ring, onDrop, { policy: options.policy, codec, now: () => state.now, onSpill: (item) => state.custody.push(item), diskBytes: 64 * 1024 });
    built = made;
    return made.store;
  }, compact, bound);
  return { core, ...built };
}

type Op =
  | { kind: 'offer'; weight: number; dupOf: number | null; pumpNow: boolean; pad: number }
  | { kind: 'complete'; pick: number; completion: 'ok' | 'failed' | 'returned' }
  | { kind: 'unknown' }
  | { kind: 'tick'; ms: number }
  | { kind: 'expire' }
  | { kind: 'pump' }
  | { kind: 'drain' }
  | { kind: 'sync' }
  | FaultOp;

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { arbitrary: fc.record({ kind: fc.constant('offer' as const), weight: fc.integer({ min: 1, max: 6 }), dupOf: fc.option(fc.nat(20), { freq: 8 }), pumpNow: fc.boolean(), pad: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 15000 })) }), weight: 10 },
  { arbitrary: fc.record({ kind: fc.constant('complete' as const), pick: fc.nat(), completion: fc.constantFrom<'ok' | 'failed' | 'returned'>('ok', 'ok', 'failed', 'returned') }), weight: 6 },
  { arbitrary: fc.constant({ kind: 'unknown' as const }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 600 }) }), weight: 3 },
  { arbitrary: fc.constant({ kind: 'expire' as const }), weight: 2 },
  { arbitrary: fc.constant({ kind: 'pump' as const }), weight: 3 },
  { arbitrary: fc.constant({ kind: 'drain' as const }), weight: 1 },
  { arbitrary: fc.constant({ kind: 'sync' as const }), weight: 3 },
  ...faultOps
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
  const { core, disk, dir } = buildCore(kind, { capacity, window, policy, ackTimeoutMs: 1_000 }, hooks, state);
  const faults = diskFaults(kind, dir);
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
    if (reportsEveryDrop(kind)) {
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
        default:
          faults.apply(op);
      }
      check(at);
    });

    // Faults healed, everything comes out: confirmed, replayed from disk, or counted as lost.
    faults.heal();
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
    faults.restore();
  }
}

describe('every store, one suite: the counting identity after every step (property-based)', function () {
  for (const kind of STORES) {
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
          fc.array(opArb, { minLength: kind.faults === 'none' && reportsEveryDrop(kind) ? 0 : 50, maxLength: 300, size: 'max' }),
          (capacity, window, policy, expected, groupLimit, ops) => run(kind, capacity, window, policy, expected, groupLimit, ops)
        ),
        { numRuns: kind.runs.buffer }
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
