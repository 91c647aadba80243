import assert from 'assert';
import * as v8 from 'v8';
import * as vm from 'vm';
import { Fifo } from '../src/core/shared/fifo';

// A full collection on demand, without starting mocha with --expose-gc.
v8.setFlagsFromString('--expose-gc');
const collectGarbage = vm.runInNewContext('gc') as () => void;

describe('Fifo', function () {
  it('hands items out first in, first out, through its compactions', function () {
    const fifo = new Fifo<number>();
    let next = 0;
    let expected = 0;
    for (let round = 0; round < 50; round++) {
      for (let i = 0; i < 97; i++) fifo.push(next++);
      for (let i = 0; i < 60; i++) assert.strictEqual(fifo.shift(), expected++);
      assert.strictEqual(fifo.length, next - expected);
      assert.strictEqual(fifo.peek(), expected);
    }
    while (fifo.length > 0) assert.strictEqual(fifo.shift(), expected++);
    assert.strictEqual(expected, next);
    assert.strictEqual(fifo.shift(), undefined);
    assert.strictEqual(fifo.peek(), undefined);
  });

  it('keeps nothing it handed out reachable (a written batch is garbage at once)', async function () {
    const fifo = new Fifo<{ records: number[] }>();
    const refs: WeakRef<object>[] = [];
    for (let i = 0; i < 10; i++) {
      const job = { records: new Array<number>(1000).fill(i) };
      refs.push(new WeakRef(job));
      fifo.push(job);
    }
    for (let i = 0; i < 9; i++) fifo.shift();
    // WeakRef targets stay alive until the current job ends.
    await new Promise((resolve) => setImmediate(resolve));
    collectGarbage();
    assert.deepStrictEqual(
      refs.map((ref) => ref.deref() !== undefined),
      [false, false, false, false, false, false, false, false, false, true],
      'only the item still queued is alive'
    );
  });
});
