import assert from 'node:assert/strict';
import { EVENT_KINDS, Pacer, SimEvent, SimMessage, TelemetryGenerator, apportionSources } from '../src/core/simulator/simulator';
import { CompletionCounter, helper, received, settle, testNodes, withHooks } from './support/node-red';
import { waitUntil } from './support/wait';

const simulatorNode = withHooks(require('../nodes/telemetry-simulator.js'));
const bufferNode = withHooks(require('../nodes/telemetry-buffer.js'));

const T = 1_700_000_000_000;

function events(messages: SimMessage[]): SimEvent[] {
  const out: SimEvent[] = [];
  for (const m of messages) {
    if (Array.isArray(m.payload)) out.push(...m.payload);
    else out.push({ source: m.topic, ...m.payload });
  }
  return out;
}

describe('telemetry-simulator generator (core)', function () {
  it('shares the sources out by the mix, at least one per kind', function () {
    assert.deepEqual(apportionSources(10, { sample: 80, detection: 10, counter: 10 }), { sample: 8, detection: 1, counter: 1 });
    assert.deepEqual(apportionSources(3, { sample: 98, detection: 1, counter: 1 }), { sample: 1, detection: 1, counter: 1 });
    assert.deepEqual(apportionSources(5, { sample: 1, detection: 0, counter: 1 }), { sample: 3, detection: 0, counter: 2 });
    assert.throws(() => apportionSources(2, { sample: 1, detection: 1, counter: 1 }), /Sources must be at least 3/);
    assert.throws(() => new TelemetryGenerator({ mix: { sample: 0, detection: 0, counter: 0 } }), /at least one kind/);
    assert.throws(() => new TelemetryGenerator({ eventsPerMessage: 0 }), /Events per message/);
  });

  it('is deterministic for a seed: exact first messages', function () {
    const g = new TelemetryGenerator();
    assert.deepEqual(
      g.sources.map((s) => s.topic),
      ['temp-01', 'vib-02', 'temp-03', 'vib-04', 'temp-05', 'vib-06', 'temp-07', 'vib-08', 'cam-09', 'press-10'].map((n) => `sim/line1/${n}`),
    );
    assert.deepEqual(g.generate(3, T), [
      { topic: 'sim/line1/press-10', kind: 'counter', payload: { value: 42580, kind: 'counter', time: T, seq: 1 } },
      { topic: 'sim/line1/temp-01', kind: 'sample', payload: { value: 57.61, kind: 'sample', time: T, seq: 1, unit: 'degC' } },
      { topic: 'sim/line1/vib-02', kind: 'sample', payload: { value: 1.99, kind: 'sample', time: T, seq: 1, unit: 'mm/s' } },
    ]);
    const a = new TelemetryGenerator({ seed: 99, sources: 25 }).generate(2000, T);
    const b = new TelemetryGenerator({ seed: 99, sources: 25 }).generate(2000, T);
    assert.deepEqual(a, b);
    assert.notDeepEqual(new TelemetryGenerator({ seed: 100, sources: 25 }).generate(2000, T), a);
    const detection = events(a).find((e) => e.kind === 'detection');
    assert.ok(detection && typeof detection.label === 'string' && detection.value === 1);
    assert.ok(detection.confidence !== undefined && detection.confidence >= 0.5 && detection.confidence <= 1);
  });

  it('reset goes back to the seed and zeroes the counts', function () {
    const g = new TelemetryGenerator({ seed: 5 });
    const first = g.generate(500, T);
    assert.equal(g.stats().messages, 500);
    g.reset();
    assert.deepEqual(g.stats(), { messages: 0, events: 0, byKind: { sample: 0, detection: 0, counter: 0 } });
    assert.deepEqual(g.generate(500, T), first);
  });

  it('follows the mix over 10k events (exact for the seed, and within 4 sigma of the weights)', function () {
    const g = new TelemetryGenerator({ seed: 1 });
    const messages = g.generate(10_000, T);
    const counted = { sample: 0, detection: 0, counter: 0 };
    for (const m of messages) counted[m.kind]++;
    assert.deepEqual(counted, { sample: 7986, detection: 1024, counter: 990 });
    assert.deepEqual(g.stats().byKind, counted);
    const weights = { sample: 0.8, detection: 0.1, counter: 0.1 };
    for (const k of EVENT_KINDS) {
      const sigma = Math.sqrt(10_000 * weights[k] * (1 - weights[k]));
      assert.ok(Math.abs(counted[k] - 10_000 * weights[k]) < 4 * sigma, `${k}: ${counted[k]}`);
    }
    // A kind with weight 0 never appears; the others split evenly here.
    const only = new TelemetryGenerator({ seed: 8, mix: { sample: 1, detection: 0, counter: 1 } }).generate(10_000, T);
    assert.equal(only.filter((m) => m.kind === 'detection').length, 0);
    const counters = only.filter((m) => m.kind === 'counter').length;
    assert.ok(Math.abs(counters - 5000) < 4 * 50, `counters: ${counters}`);
  });

  it('keeps one kind per source, counters rising by one and seq counting 1, 2, 3 per source', function () {
    const g = new TelemetryGenerator({ seed: 3, sources: 12, mix: { sample: 1, detection: 1, counter: 1 } });
    const kindOf = new Map(g.sources.map((s) => [s.topic, s.kind]));
    const lastValue = new Map<string, number>();
    const lastSeq = new Map<string, number>();
    for (const m of g.generate(6000, T)) {
      const e = m.payload as SimEvent;
      assert.equal(m.kind, kindOf.get(m.topic));
      assert.equal(e.kind, m.kind);
      assert.equal(e.seq, (lastSeq.get(m.topic) ?? 0) + 1);
      lastSeq.set(m.topic, e.seq);
      if (m.kind === 'counter') {
        const previous = lastValue.get(m.topic);
        if (previous !== undefined) assert.equal(e.value, previous + 1);
        lastValue.set(m.topic, e.value);
      }
      if (m.kind === 'sample') assert.ok(Number.isFinite(e.value) && e.value > 0);
    }
    assert.equal(lastValue.size, 4);
  });

  it('with eventsPerMessage N sends arrays of N events of one source', function () {
    const g = new TelemetryGenerator({ seed: 11, eventsPerMessage: 5 });
    const messages = g.generate(200, T);
    assert.equal(g.stats().events, 1000);
    for (const m of messages) {
      assert.ok(Array.isArray(m.payload));
      assert.equal(m.payload.length, 5);
      const first = m.payload[0].seq;
      m.payload.forEach((e, i) => {
        assert.equal(e.source, m.topic);
        assert.equal(e.kind, m.kind);
        assert.equal(e.time, T);
        assert.equal(e.seq, first + i);
      });
    }
    assert.deepEqual(new TelemetryGenerator({ eventsPerMessage: 2 }).generate(1, T), [
      {
        topic: 'sim/line1/press-10',
        kind: 'counter',
        payload: [
          { source: 'sim/line1/press-10', value: 42580, kind: 'counter', time: T, seq: 1 },
          { source: 'sim/line1/press-10', value: 42581, kind: 'counter', time: T, seq: 2 },
        ],
      },
    ]);
  });

  it('paces exactly over irregular ticks, carrying the fraction', function () {
    const p = new Pacer({ rate: 333 });
    p.start(0);
    let taken = 0;
    let t = 0;
    for (let i = 0; i < 1000; i++) {
      t += 1 + (i % 7) * 0.37; // ticks from 1 to 3.2 ms apart
      const due = p.advance(t);
      p.consume(due);
      taken += due;
    }
    assert.equal(taken, Math.floor((t * 333) / 1000));
    const slow = new Pacer({ rate: 3 });
    slow.start(0);
    let n = 0;
    for (let ms = 1; ms <= 1000; ms++) {
      const due = slow.advance(ms);
      slow.consume(due);
      n += due;
    }
    assert.equal(n, 3);
  });

  it('adds bursts on top of the rate and skips (and counts) time beyond the catch-up limit', function () {
    const p = new Pacer({ rate: 100, burstEveryMs: 1000, burstSize: 50 });
    p.start(0);
    assert.equal(p.advance(999), 99);
    assert.equal(p.advance(1000), 150);
    p.consume(150);
    const late = new Pacer({ rate: 1000, maxCatchUpMs: 1000 });
    late.start(0);
    assert.equal(late.advance(5000), 1000);
    assert.equal(late.skipped, 4000);
  });
});

describe('telemetry-simulator in a real Node-RED runtime', function () {
  let completions: CompletionCounter;

  beforeEach(function () {
    completions = new CompletionCounter();
  });

  afterEach(async function () {
    completions.stop();
    await helper.unload();
  });

  function flow(options: Record<string, unknown>): object[] {
    return [
      { id: 'sim', type: 'telemetry-simulator', ...options, wires: [['out']] },
      { id: 'out', type: 'test-hold', mode: 'fast', wires: [] },
    ];
  }

  it('with count 500 sends exactly 500 messages and stops', async function () {
    await helper.load([simulatorNode, testNodes], flow({ count: 500, rate: 100_000 }));
    await waitUntil('the simulator to stop', () => helper.getNode('sim').telemetryStats().running === false);
    await settle(50);
    assert.equal(received.out.length, 500);
    const s = helper.getNode('sim').telemetryStats();
    assert.equal(s.sentMessages, 500);
    assert.equal(s.sentEvents, 500);
    assert.equal(new Set(received.out.map((m) => m._msgid)).size, 500, 'every message has its own _msgid');
    const first = received.out[0];
    assert.equal(first.topic, 'sim/line1/press-10');
    assert.deepEqual({ ...(first.payload as object), time: 0 }, { value: 42580, kind: 'counter', time: 0, seq: 1 });
  });

  it('sends a large backlog in turns of at most 1,000 messages, so the event loop keeps turning', async function () {
    // A turn counter that advances once per event-loop iteration (in the same phase as Node-RED's deliveries).
    let turn = 0;
    let spinning = true;
    const spin = (): void => {
      turn++;
      if (spinning) setImmediate(spin);
    };
    spin();
    const arrivals = new Map<number, number>();
    try {
      await helper.load([simulatorNode, testNodes], flow({ count: 5000, rate: 10_000_000 }));
      helper.getNode('out').on('input', () => arrivals.set(turn, (arrivals.get(turn) ?? 0) + 1));
      await waitUntil('5,000 messages', () => received.out.length === 5000);
    } finally {
      spinning = false;
    }
    const perTurn = [...arrivals.values()];
    assert.equal(perTurn.reduce((a, b) => a + b, 0), 5000);
    // All 5,000 were due at the first tick (10M/s); they arrive spread over at least five turns.
    assert.ok(Math.max(...perTurn) <= 1000, `at most 1,000 messages in one turn, got ${Math.max(...perTurn)}`);
    assert.ok(perTurn.length >= 5, `spread over ${perTurn.length} turns`);
    assert.equal(helper.getNode('sim').telemetryStats().sentMessages, 5000);
  });

  it('sends arrays at a rate; the test checks the count only', async function () {
    await helper.load([simulatorNode, testNodes], flow({ count: 40, rate: 4000, eventsPerMessage: 10 }));
    await waitUntil('40 messages', () => received.out.length === 40);
    await settle(50);
    assert.equal(received.out.length, 40);
    assert.ok(received.out.every((m) => Array.isArray(m.payload) && m.payload.length === 10));
    assert.equal(helper.getNode('sim').telemetryStats().sentEvents, 400);
  });

  it('obeys start, stop, reset and stats, completing each control message exactly once', async function () {
    await helper.load([simulatorNode, testNodes], flow({ autoStart: false, rate: 20_000 }));
    const sim = helper.getNode('sim');
    await settle(50);
    assert.equal(received.out.length, 0, 'autoStart false sends nothing');
    assert.equal(sim.telemetryStats().running, false);

    sim.receive({ control: 'start' });
    await waitUntil('messages after start', () => received.out.length >= 100);
    sim.receive({ control: 'stop' });
    await waitUntil('stopped', () => sim.telemetryStats().running === false);
    const atStop = sim.telemetryStats().sentMessages;
    await waitUntil('the messages sent before the stop to arrive', () => received.out.length === atStop);
    await settle(60);
    assert.equal(sim.telemetryStats().sentMessages, atStop, 'nothing sent after stop');
    assert.equal(received.out.length, atStop);

    sim.receive({ control: 'reset' });
    await waitUntil('three completions', () => completions.total('sim') === 3);
    assert.equal(sim.telemetryStats().sentMessages, 0);
    sim.receive({ control: 'start' });
    await waitUntil('messages after reset and start', () => received.out.length >= atStop + 10);
    // After a reset the seed starts over: the same first message again.
    assert.deepEqual({ ...(received.out[atStop].payload as object), time: 0 }, { ...(received.out[0].payload as object), time: 0 });
    sim.receive({ control: 'stop' });
    sim.receive({ control: 'stats' });
    await waitUntil('a stats message', () => received.out.some((m) => m.control === 'stats'));
    const stats = received.out.find((m) => m.control === 'stats') as { topic: string; payload: { sentMessages: number; running: boolean } };
    assert.equal(stats.topic, 'stats');
    assert.equal(stats.payload.running, false);
    assert.ok(stats.payload.sentMessages >= 10);

    const errors: unknown[] = [];
    sim.on('call:error', (call: { args: unknown[] }) => errors.push(call.args[0]));
    sim.receive({ control: 'faster' });
    await waitUntil('seven completions and an error', () => completions.total('sim') === 7 && errors.length > 0);
    assert.match(String(errors[0]), /msg.control must be one of start, stop, reset, stats/);
    assert.deepEqual(completions.repeats('sim'), []);
  });

  it('feeds a telemetry-buffer whose sequence numbers match the simulator seq per source', async function () {
    await helper.load([simulatorNode, bufferNode, testNodes], [
      { id: 'sim', type: 'telemetry-simulator', count: 1000, rate: 50_000, wires: [['buf']] },
      { id: 'buf', type: 'telemetry-buffer', statsInterval: 0, wires: [['out'], []] },
      { id: 'out', type: 'test-hold', mode: 'fast', wires: [] },
    ]);
    await waitUntil('every message through the buffer', () => received.out?.length === 1000);
    for (const m of received.out) assert.equal(m.seq, (m.payload as SimEvent).seq);
    assert.equal(helper.getNode('buf').telemetryStats().dropped, 0);
  });

  it('refuses a bad option with a clear error', async function () {
    await helper.load([simulatorNode, testNodes], flow({ sources: 'many' }));
    const sim = helper.getNode('sim');
    const err = await new Promise<unknown>((resolve) => {
      sim.on('call:error', (call: { args: unknown[] }) => {
        if (call.args[1] !== undefined) resolve(call.args[0]);
      });
      sim.receive({ control: 'start' });
    });
    assert.match(String(err), /Sources must be a whole number/);
  });
});
