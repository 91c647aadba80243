import { strict as assert } from 'assert';
import { declareRowFields, markCompletion, reportCompletions, rowFieldsOf, watchCompletions } from '../src/contract';

type Event = { msg?: object; error?: unknown; node: { id: string; node?: object } };

/** Node-RED's hooks, reduced to what the contract uses: which onComplete hooks are installed. */
function fakeRed() {
  const installed = new Map<string, (event: Event) => void>();
  const red = {
    hooks: {
      add: (name: string, hook: (event: Event) => void) => installed.set(name, hook),
      remove: (name: string) => installed.delete(name),
    },
  };
  /** What Node-RED does on done(): the onComplete hooks run, with the instance that called it. */
  const done = (node: { id: string }, msg: object, error?: unknown): void => {
    for (const hook of installed.values()) hook({ msg, error, node: { id: node.id, node } });
  };
  return { red: red as never, installed, done };
}

const nodeDone = (): void => undefined;

describe('contract: completions', function () {
  it('the onComplete hook runs only while a watched node does not report its completions itself', function () {
    const { red, installed } = fakeRed();
    const seen: string[] = [];
    const stopBuffer = watchCompletions(red, ['bat'], (id, completion) => seen.push(`bat ${id} ${completion}`));
    assert.equal(installed.size, 1, 'the batcher is not there yet: the hook hears it');
    const bat = reportCompletions({ id: 'bat' });
    assert.equal(installed.size, 0, 'the batcher reports itself');
    const stopBatcher = watchCompletions(red, ['sink'], (id, completion) => seen.push(`sink ${id} ${completion}`));
    assert.equal(installed.size, 1);
    const sink = reportCompletions({ id: 'sink' });
    assert.equal(installed.size, 0, 'a pipeline of our nodes leaves every done() of the runtime alone');
    bat.wrap({ _msgid: 'g1' }, nodeDone)();
    sink.wrap({ _msgid: 'b1' }, nodeDone)(new Error('x'));
    assert.deepEqual(seen, ['bat g1 ok', 'sink b1 failed']);
    sink.withdraw();
    assert.equal(installed.size, 1, 'a sink closed and not replaced yet: the hook hears whoever comes with the id');
    bat.withdraw();
    stopBatcher();
    stopBuffer();
    assert.equal(installed.size, 0, 'nobody watches');
  });

  it('every completion is told exactly once: by an instance that reports itself, else by the hook', function () {
    const { red, done } = fakeRed();
    const seen: string[] = [];
    const stop = watchCompletions(red, ['bat', 'side'], (id, completion) => seen.push(`${id} ${completion}`));
    const batNode = { id: 'bat' };
    const bat = reportCompletions(batNode);
    // A node of another package beside it keeps the hook: it tells the side node's done(), not the batcher's.
    const fromBatcher = { _msgid: 'm1' };
    markCompletion(fromBatcher, 'returned');
    bat.wrap(fromBatcher, () => done(batNode, fromBatcher))();
    done({ id: 'side' }, { _msgid: 'm2' });
    assert.deepEqual(seen, ['m1 returned', 'm2 ok']);
    // A done() after close, or a hook that runs late (after another package's asynchronous hook,
    // after the withdraw): the instance told it, the hook does not tell it again.
    bat.withdraw();
    const late = { _msgid: 'm3' };
    bat.wrap(late, () => undefined)();
    done(batNode, late);
    assert.deepEqual(seen.slice(2), ['m3 ok']);
    // Its replacement (here one whose configuration failed) reports itself as well.
    const replacement = { id: 'bat' };
    const next = reportCompletions(replacement);
    const refused = { _msgid: 'm4' };
    next.wrap(refused, () => done(replacement, refused, new Error('bad config')))(new Error('bad config'));
    assert.deepEqual(seen.slice(3), ['m4 failed']);
    next.withdraw();
    stop();
  });

  it('a redeploy that starts the new instance before the old one has closed keeps the hook off', function () {
    const { red, installed } = fakeRed();
    const stop = watchCompletions(red, ['sink'], () => undefined);
    const old = reportCompletions({ id: 'sink' });
    const fresh = reportCompletions({ id: 'sink' });
    old.withdraw();
    old.withdraw();
    assert.equal(installed.size, 0, 'the new instance still reports for the id');
    fresh.withdraw();
    assert.equal(installed.size, 1);
    stop();
    assert.equal(installed.size, 0);
  });
});

describe('contract: the row fields', function () {
  it("a batcher passes on its sink's Seq from and Source from; none of ours, two that differ, or a loop read the defaults", function () {
    const fields = (seq: string, source: string) => () => ({ seq, source });
    const defaults = { seq: 'seq', source: 'source' };
    const withdraw = [
      declareRowFields('sink-n', fields('n', 'device')),
      declareRowFields('sink-seq', fields('seq', 'source')),
      declareRowFields('sink-seq-device', fields('seq', 'device')),
      declareRowFields('bat', () => rowFieldsOf(['sink-n'])),
    ];
    try {
      assert.deepEqual(rowFieldsOf(['sink-n']), { seq: 'n', source: 'device' });
      assert.deepEqual(rowFieldsOf(['bat']), { seq: 'n', source: 'device' }, 'through a batcher');
      assert.deepEqual(rowFieldsOf(['bat', 'sink-n']), { seq: 'n', source: 'device' }, 'two that agree');
      assert.deepEqual(rowFieldsOf(['bat', 'sink-seq']), defaults, 'two that differ');
      assert.deepEqual(rowFieldsOf(['sink-seq', 'sink-seq-device']), defaults, 'two that differ in the source only');
      assert.deepEqual(rowFieldsOf(['mqtt-out']), defaults, 'a node of another package');
      assert.deepEqual(rowFieldsOf(['sink-n', 'mqtt-out']), { seq: 'n', source: 'device' }, 'a node of another package beside a sink reads nothing');
      assert.deepEqual(rowFieldsOf([]), defaults, 'nothing wired');
      withdraw.push(declareRowFields('loop', () => rowFieldsOf(['loop'])));
      assert.deepEqual(rowFieldsOf(['loop']), defaults, 'a batcher wired to itself');
    } finally {
      for (const w of withdraw) w();
    }
    assert.deepEqual(rowFieldsOf(['sink-n']), defaults, 'withdrawn on close');
  });
});
