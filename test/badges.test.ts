/**
 * Badges that explain (issue 19 item 5), in a real Node-RED runtime: a badge's colour and text
 * follow the node's present state and name the reason. The sink's held write is in
 * timescale-sink.test.ts (it needs a lock on a real table).
 */
import assert from 'node:assert/strict';
import { badgesOf, clearSpools, held, helper, testNodes, withHooks } from './support/node-red';
import { waitUntil } from './support/wait';

const batcherNode = withHooks(require('../nodes/telemetry-batcher.js'));

type AnyNode = any;

describe('badges that explain, in a Node-RED runtime', function () {
  afterEach(async function () {
    await helper.unload();
    clearSpools();
  });

  it('a batcher is red while it refuses and says so, and returns to its normal colour once the reason is gone', async function () {
    this.timeout(30_000);
    const flow = [
      { id: 'batcher', type: 'telemetry-batcher', maxSize: '3', maxAge: '600000', maxOpenBatches: '1', maxHeld: '3', wires: [['hold'], []] },
      { id: 'hold', type: 'test-hold' },
    ];
    await helper.load([batcherNode, testNodes], flow);
    const batcher = helper.getNode('batcher');
    const errors: unknown[] = [];
    batcher.on('call:error', (call: AnyNode) => errors.push(call.args[0]));
    for (let i = 0; i < 3; i++) batcher.receive({ topic: 'line1/temp', payload: i });
    await waitUntil('the batch at the hold node', () => (held.hold ?? []).length === 1);
    await waitUntil('a yellow badge: the one open batch is out', () => badgesOf('batcher').at(-1)?.fill === 'yellow');
    assert.deepEqual(badgesOf('batcher').at(-1), { fill: 'yellow', shape: 'dot', text: '1/1 open, 3 held' });
    batcher.receive({ topic: 'line1/temp', payload: 99 });
    await waitUntil('the refused message\'s error', () => errors.length === 1);
    assert.match(String(errors[0]), /telemetry-batcher is full \(3 events held\)/);
    await waitUntil('a red badge', () => badgesOf('batcher').at(-1)?.fill === 'red');
    assert.deepEqual(badgesOf('batcher').at(-1), { fill: 'red', shape: 'dot', text: 'full, refused 1' });
    // The next node confirms the batch: nothing held, nothing refused any more.
    const refusedAt = Date.now();
    held.hold[0].done();
    await waitUntil('the normal colour again', () => badgesOf('batcher').at(-1)?.fill === 'green', 15_000);
    assert.ok(Date.now() - refusedAt < 7000, 'within about REFUSAL_SHOWN_MS');
    assert.deepEqual(badgesOf('batcher').at(-1), { fill: 'green', shape: 'ring', text: '0 open, 0 held' });
  });
});
