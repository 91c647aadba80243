import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { hasSequence, stampMissing, type TelemetryRecord } from '../src/core/readings/records';
import { SequenceJournal, SequenceStamper } from '../src/core/readings/sequence';
import { Totals } from '../src/core/shared/totals';

function tempFile(name: string): string {
  return path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'telemetry-seq-')), name);
}

describe('SequenceStamper with bounded memory', function () {
  it('holds at most two generations of sources; a forgotten source continues above every number a forgotten source had', function () {
    const s = new SequenceStamper(3);
    assert.equal(s.reserve('a', 10), 1); // a: next 11
    s.reserve('b', 1);
    s.reserve('c', 1); // third source: generation full, a b c become the older one
    assert.equal(s.sources, 3);
    s.reserve('d', 1);
    s.reserve('e', 1);
    s.reserve('a', 1); // a seen again: back in the current generation, at 11
    assert.equal(s.reserve('a', 1), 12);
    s.reserve('f', 1); // current full again: b and c (unseen for a generation) are forgotten
    assert.equal(s.forgotten, 2);
    assert.ok(s.sources <= 6);
    // b had handed out 1; the floor is above every number b and c had, so b never reuses one.
    const b = s.reserve('b', 1);
    assert.ok(b >= 2, `b continues at ${b}`);
  });

  it('reserveAll() gives a range free in every source named, and moves each past it', function () {
    const s = new SequenceStamper();
    s.reserve('a', 5); // a: 1-5
    s.reserve('b', 2); // b: 1-2
    assert.equal(s.reserveAll(['a', 'b', 'c'], 3), 6, 'above the highest of them');
    assert.deepEqual([s.reserve('a', 1), s.reserve('b', 1), s.reserve('c', 1)], [9, 9, 9]);
    assert.equal(s.reserveAll(['d'], 2), 1, 'one source: as reserve');
  });

  it('stays bounded under a flood of a million distinct sources', function () {
    const s = new SequenceStamper(10_000);
    for (let i = 0; i < 1_000_000; i++) s.reserve(`flood/${i}`, 1);
    assert.ok(s.sources <= 20_000, `${s.sources} sources held`);
    assert.equal(s.forgotten + s.sources, 1_000_000);
  });

  it('takeChanges() hands out only the sources that moved since, with their step, as many as asked', function () {
    const s = new SequenceStamper();
    s.reserve('a', 5);
    s.reserve('b', 1);
    s.reserve('a', 1);
    const line = (e: { source: string; next: number; step: number }) => [e.source, e.next, e.step];
    assert.deepEqual(s.takeChanges(1).sources.map(line), [['a', 7, 6]]);
    assert.equal(s.pending, 1);
    assert.deepEqual(s.takeChanges(10).sources.map(line), [['b', 2, 1]]);
    assert.deepEqual(s.takeChanges(10).sources, []);
    s.reserve('a', 2);
    assert.deepEqual(s.takeChanges(10).sources.map(line), [['a', 9, 2]]);
  });
});

describe('SequenceJournal', function () {
  it('continues exactly after a clean close', function () {
    const file = tempFile('n.sequences');
    const s1 = new SequenceStamper();
    const j1 = new SequenceJournal(file);
    assert.deepEqual(j1.open(s1), { clean: true, sources: 0 });
    s1.reserve('a', 41);
    j1.save(s1);
    s1.reserve('b', 3);
    s1.reserve('odd "topic"\\\n\u0001/ü', 5);
    j1.close(s1);
    const s2 = new SequenceStamper();
    assert.deepEqual(new SequenceJournal(file).open(s2), { clean: true, sources: 3 });
    assert.equal(s2.reserve('a', 1), 42);
    assert.equal(s2.reserve('b', 1), 4);
    assert.equal(s2.reserve('odd "topic"\\\n\u0001/ü', 1), 6);
  });

  it('after a crash (no clean close, a torn last line) skips ahead by ten steps and 1000 per source', function () {
    const file = tempFile('n.sequences');
    const s1 = new SequenceStamper();
    const j1 = new SequenceJournal(file);
    j1.open(s1);
    s1.reserve('a', 100);
    j1.save(s1); // a: next 101, step 100
    s1.reserve('a', 7); // never saved: the crash comes first
    fs.appendFileSync(file, '["s","a",10');
    const s2 = new SequenceStamper();
    assert.deepEqual(new SequenceJournal(file).open(s2), { clean: false, sources: 1 });
    const next = s2.reserve('a', 1);
    assert.equal(next, 101 + 10 * 100 + 1000);
    assert.ok(next > 108, 'no number handed out before the crash is used again');
    assert.ok(s2.reserve('new', 1) > 1000, 'a new source starts above the floor after a crash');
  });

  it('writes only what changed, and rewrites itself when it has grown past four times what it holds', function () {
    const file = tempFile('n.sequences');
    const s = new SequenceStamper();
    const j = new SequenceJournal(file);
    j.open(s);
    for (let i = 0; i < 1000; i++) s.reserve(`src/${i}`, 1);
    j.save(s);
    const full = fs.statSync(file).size;
    s.reserve('src/7', 1);
    j.save(s);
    assert.ok(fs.statSync(file).size - full < 40, 'one changed source appends one line');
    let largest = 0;
    for (let round = 0; round < 800; round++) {
      for (let i = 0; i < 1000; i += 10) s.reserve(`src/${i}`, 1);
      j.save(s);
      largest = Math.max(largest, fs.statSync(file).size);
    }
    // 800 saves of 100 changed sources append about 2 MB: rewritten whole each time it passes 1 MiB.
    assert.ok(largest <= (1 << 20) + 4096, `compacted: at most ${largest} bytes for ${full} of state`);
    j.close(s);
    const again = new SequenceStamper();
    new SequenceJournal(file).open(again);
    assert.equal(again.reserve('src/0', 1), s.reserve('src/0', 1));
  });
});

describe('records without a sequence number of their own', function () {
  it('are numbered per source (the topic, when the payload names none); msg.seq and payload.seq are kept', function () {
    const records: TelemetryRecord[] = [
      { topic: 'a', payload: 1 },
      { topic: 'a', payload: 2 },
      { topic: 'a', payload: { value: 3, seq: 77 } },
      { topic: 'b', payload: 4, seq: 0 },
      { topic: 'b', payload: 5 },
      { payload: [1, 2] }
    ];
    const s = new SequenceStamper();
    assert.equal(stampMissing(records, s), 4);
    assert.deepEqual(records.map((r) => r.seq), [1, 2, undefined, 0, 1, 1]);
    assert.ok(hasSequence({ payload: { value: 1, n: 3 } }, 'n'));
    assert.ok(!hasSequence({ payload: { value: 1, seq: '3' } }));
  });
});

describe('Totals', function () {
  it('add what earlier instances counted, across a restart, and forget it when the node is deleted', function () {
    const file = tempFile('n.totals.json');
    const first = new Totals(file, ['written', 'refused'] as const);
    first.save(first.add({ written: 10, refused: 1 }));
    const second = new Totals(file, ['written', 'refused'] as const);
    assert.deepEqual(second.add({ written: 5, refused: 0, inFlight: 3 } as { written: number; refused: number }), { written: 15, refused: 1, inFlight: 3 });
    second.remove();
    assert.deepEqual(new Totals(file, ['written'] as const).add({ written: 2 }), { written: 2 });
  });

  it('ignores a damaged file instead of failing the node', function () {
    const file = tempFile('n.totals.json');
    fs.writeFileSync(file, '{"counters": {"written": -5, "refused": "x"');
    assert.deepEqual(new Totals(file, ['written', 'refused'] as const).add({ written: 1, refused: 2 }), { written: 1, refused: 2 });
  });
});
