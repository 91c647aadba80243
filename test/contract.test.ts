import { strict as assert } from 'assert';
import { markCompletion, reportCompletions, watchCompletions } from '../src/contract';

/** Node-RED's hooks, reduced to what the contract uses: which onComplete hooks are installed. */
function fakeRed() {
  const installed = new Map<string, (event: { msg?: object; error?: unknown; node: { id: string } }) => void>();
  const red = {
    hooks: {
      add: (name: string, hook: (event: { msg?: object; error?: unknown; node: { id: string } }) => void) => installed.set(name, hook),
      remove: (name: string) => installed.delete(name),
    },
  };
  /** What Node-RED does on done(): every onComplete hook runs. */
  const done = (nodeId: string, msg: object, error?: unknown): void => {
    for (const hook of installed.values()) hook({ msg, error, node: { id: nodeId } });
  };
  return { red: red as never, installed, done };
}

describe('contract: completions', function () {
  it('the onComplete hook runs only while a watched node does not report its completions itself', function () {
    const { red, installed } = fakeRed();
    const seen: string[] = [];
    const stopBuffer = watchCompletions(red, ['bat'], (id, completion) => seen.push(`bat ${id} ${completion}`));
    assert.equal(installed.size, 1, 'the batcher is not there yet: the hook hears it');
    const bat = reportCompletions('bat');
    assert.equal(installed.size, 0, 'the batcher reports itself');
    const stopBatcher = watchCompletions(red, ['sink'], (id, completion) => seen.push(`sink ${id} ${completion}`));
    assert.equal(installed.size, 1);
    const sink = reportCompletions('sink');
    assert.equal(installed.size, 0, 'a pipeline of our nodes leaves every done() of the runtime alone');
    bat.completed({ _msgid: 'g1' });
    sink.completed({ _msgid: 'b1' }, new Error('x'));
    assert.deepEqual(seen, ['bat g1 ok', 'sink b1 failed']);
    sink.withdraw();
    assert.equal(installed.size, 1, 'a sink closed and not (yet) replaced: the hook hears whoever has the id');
    bat.withdraw();
    stopBatcher();
    stopBuffer();
    assert.equal(installed.size, 0, 'nobody watches');
  });

  it('every completion is told exactly once: by the node while it is registered, else by the hook', function () {
    const { red, done } = fakeRed();
    const seen: string[] = [];
    const stop = watchCompletions(red, ['bat', 'side'], (id, completion) => seen.push(`${id} ${completion}`));
    const bat = reportCompletions('bat');
    // A node of another package beside it: the hook stays and tells its done(), not the batcher's.
    const fromBatcher = { _msgid: 'm1' };
    markCompletion(fromBatcher, 'returned');
    done('bat', fromBatcher);
    bat.completed(fromBatcher);
    done('side', { _msgid: 'm2' });
    assert.deepEqual(seen, ['m1 returned', 'm2 ok']);
    // Withdrawn (a done() after close): the hook tells it, the node no longer does.
    bat.withdraw();
    const late = { _msgid: 'm3' };
    done('bat', late);
    bat.completed(late);
    assert.deepEqual(seen, ['m1 returned', 'm2 ok', 'm3 ok']);
    // A redeployed batcher registers before the old one withdraws: the id still reports itself.
    const oldInstance = reportCompletions('bat');
    const newInstance = reportCompletions('bat');
    oldInstance.withdraw();
    oldInstance.withdraw();
    done('bat', { _msgid: 'm4' });
    newInstance.completed({ _msgid: 'm4' });
    assert.deepEqual(seen.slice(3), ['m4 ok']);
    newInstance.withdraw();
    stop();
  });
});
