import assert from 'node:assert/strict';
import { helper, runtimeHooks, testNodes, withHooks } from './support/node-red';
import { waitUntil } from './support/wait';

const simulatorNode = withHooks(require('../nodes/telemetry-simulator.js'));

describe('telemetry-simulator: control values that cannot be turned into text', function () {
  afterEach(async function () {
    await helper.unload();
  });

  it('still complete with done(err) naming the problem (no throw inside the input handler)', async function () {
    await helper.load([simulatorNode, testNodes], [{ id: 'sim', type: 'telemetry-simulator', rate: 1, autoStart: false, wires: [[]] }]);
    const seen: { id: string; error?: Error }[] = [];
    const hook = `onComplete.simControl${Math.random().toString(36).slice(2)}`;
    runtimeHooks.add(hook, (evt: { node: { id: string }; msg: { _msgid: string }; error?: Error }) => {
      if (evt.node.id === 'sim') seen.push({ id: evt.msg._msgid, error: evt.error });
    });
    try {
      const values: unknown[] = [Object.create(null), { toString: () => { throw new Error('no text'); } }, Symbol('s'), 'begin'];
      values.forEach((control, i) => helper.getNode('sim').receive({ _msgid: `c${i}`, control }));
      await waitUntil('a done() for every control message', () => seen.length === values.length, 5000);
      assert.deepEqual(seen.map((s) => s.id).sort(), ['c0', 'c1', 'c2', 'c3']);
      for (const s of seen) assert.match(String(s.error?.message), /^msg.control must be one of start, stop, reset, stats, got (an object|a symbol|"begin")$/);
    } finally {
      runtimeHooks.remove(hook);
    }
  });
});
