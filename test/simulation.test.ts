/**
 * The Simulation controller (src/core/simulator/simulation.ts) on its own, without Node-RED: the
 * deploy pause, the count, start after the count, reset. The node tests (telemetry-simulator,
 * simulator-control) run it in Node-RED.
 */
import assert from 'node:assert/strict';
import { describeControl, Simulation } from '../src/core/simulator/simulation';
import type { SimMessage } from '../src/core/simulator/simulator';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function simulation(rate: number, count = 0): { sim: Simulation; sent: SimMessage[]; changes: number[] } {
  const sent: SimMessage[] = [];
  const changes: number[] = [];
  const sim = new Simulation({ generator: { sources: 4, seed: 7 }, pacer: { rate }, count, idPrefix: 'x.' }, { send: (msg) => sent.push(msg), changed: () => changes.push(sent.length) });
  return { sim, sent, changes };
}

describe('Simulation (the telemetry-simulator controller)', function () {
  it('sends nothing while a deploy is on, then catches up the time it paused', async function () {
    const { sim, sent } = simulation(1000);
    try {
      sim.pause();
      assert.ok(sim.start());
      await sleep(300);
      assert.equal(sent.length, 0, 'paused: nothing sent');
      sim.resume();
      await sleep(100);
      // 400 ms at 1,000/s, all within the 1 s catch-up limit: nothing skipped.
      assert.ok(sent.length >= 350, `caught up: ${sent.length}`);
      assert.equal(sim.stats().skippedEvents, 0);
      assert.equal(new Set(sent.map((m) => m._msgid)).size, sent.length, 'each message its own id');
      assert.ok(sent.every((m) => m._msgid?.startsWith('x.')));
    } finally {
      sim.close();
    }
  });

  it('sends at most 1,000 events in one event-loop turn (and at least one message), however many are due', async function () {
    for (const [eventsPerMessage, most] of [[1, 1000], [100, 10], [5000, 1]]) {
      let sent = 0;
      let burst = 0;
      let largest = 0;
      // A turn sends synchronously: what is sent before the next tick of the process is one burst.
      const send = (): void => {
        if (burst++ === 0) {
          process.nextTick(() => {
            largest = Math.max(largest, burst);
            burst = 0;
          });
        }
        sent++;
      };
      const sim = new Simulation({ generator: { sources: 4, seed: 7, eventsPerMessage }, pacer: { rate: 10_000_000 }, count: 0, idPrefix: 'x.' }, { send, changed: () => undefined });
      try {
        sim.start();
        await sleep(100);
      } finally {
        sim.close();
      }
      assert.equal(largest, most, `${eventsPerMessage} events per message: at most ${most} messages in a turn, and a backlog at 10M/s fills one (largest ${largest}, ${sent} sent)`);
    }
  });

  it('stops at its count, refuses to start again until reset, and tells the node each change', async function () {
    const { sim, sent, changes } = simulation(100_000, 250);
    try {
      sim.start();
      await sleep(100);
      assert.equal(sent.length, 250);
      assert.equal(sim.running, false);
      assert.equal(sim.start(), false, 'its count is sent');
      sim.reset();
      assert.equal(sim.stats().sentMessages, 0);
      assert.equal(sim.start(), true);
      await sleep(100);
      assert.equal(sent.length, 500);
      const event = (m: SimMessage): unknown => {
        const { time: _time, ...rest } = m.payload as { time: number };
        return [m.topic, rest];
      };
      assert.deepEqual(sent.slice(250).map(event), sent.slice(0, 250).map(event), 'reset: the seed\'s first events again (at a later time)');
      assert.deepEqual(changes, [0, 250, 250, 250, 500], 'start, stop at the count, reset, start, stop');
    } finally {
      sim.close();
    }
  });

  it('names a bad control value without throwing', function () {
    assert.equal(describeControl('go'), '"go"');
    assert.equal(describeControl(Object.create(null)), 'an object');
    assert.equal(describeControl([1]), 'an array');
    assert.equal(describeControl(undefined), 'undefined');
  });
});
