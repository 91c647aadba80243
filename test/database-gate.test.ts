import assert from 'node:assert/strict';
import { DatabaseGate } from '../src/core/sink/database-gate';
import { DropLog } from '../src/core/shared/drop-log';
import { InflightTracker } from '../src/core/buffer/inflight';
import { AbortedError } from '../src/core/sink/error-classes';
import { shortDuration, sinkBadge, type SinkBadgeFacts } from '../src/core/sink/sink-status';
import { english } from '../src/nodes/i18n';

const refused = { kind: 'unavailable' as const, code: 'ECONNREFUSED', message: 'connect ECONNREFUSED' };

describe('DatabaseGate', function () {
  it('lets everyone through while up; when closed, only the probe passes and the others wait for it', async function () {
    const gate = new DatabaseGate(0);
    const [a, b, c] = [{}, {}, {}];
    await gate.pass(a);
    assert.equal(gate.close(a, 'down', refused, 100), true);
    assert.equal(gate.close(b, 'down', refused, 110), false, 'the same outage: no new line to log');
    assert.equal(gate.since, 100, 'an outage dates from its first failure');
    assert.ok(gate.probing(a) && !gate.probing(b));
    await gate.pass(a);
    const order: string[] = [];
    const waitingB = gate.pass(b).then(() => order.push('b'));
    const waitingC = gate.pass(c).then(() => order.push('c'));
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(order, []);
    assert.equal(gate.waiting, 2);
    assert.equal(gate.open(200), true);
    await Promise.all([waitingB, waitingC]);
    assert.deepEqual(order.sort(), ['b', 'c']);
    assert.equal(gate.state, 'up');
  });

  it('hands the probe to a waiting write when the probe leaves (aborted), and a waiter can abort', async function () {
    const gate = new DatabaseGate(0);
    const [a, b, c] = [{}, {}, {}];
    gate.close(a, 'misconfigured', { kind: 'config', code: '28P01', message: 'password' }, 1);
    const controller = new AbortController();
    const waitingC = gate.pass(c, controller.signal);
    const waitingB = gate.pass(b);
    controller.abort();
    await assert.rejects(waitingC, AbortedError);
    gate.leave(a);
    await waitingB;
    assert.ok(gate.probing(b), 'b probes now');
    assert.equal(gate.state, 'misconfigured');
  });
});

describe('InflightTracker ack deadlines with custody', function () {
  it('spares what a downstream node still holds, with a new deadline, and expires the rest', function () {
    const t = new InflightTracker<string>();
    t.add('held', 'H', 5, 1, 100);
    t.add('lost', 'L', 3, 1, 100);
    t.add('young', 'Y', 1, 1, 500);
    const expired: string[] = [];
    assert.equal(t.due(150), true);
    t.expire(150, (value) => expired.push(value), { has: (key) => key === 'held', extended: 1000 });
    assert.deepEqual(expired, ['L']);
    assert.equal(t.weight, 6);
    t.expire(600, (value) => expired.push(value));
    assert.deepEqual(expired, ['L', 'Y'], 'the spared one waits for its new deadline');
    t.expire(1000, (value) => expired.push(value));
    assert.deepEqual(expired, ['L', 'Y', 'H']);
  });
});

describe('DropLog', function () {
  it('logs once when dropping starts and once when it has stopped, with the count; a quick restart continues the episode', function () {
    const log = new DropLog(english('telemetry-buffer'), 'the ring is full', 1000);
    const lines: Array<string | undefined> = [];
    const at = (dropped: number, now: number): void => void lines.push(log.check(dropped, now));
    at(0, 0);
    at(5, 100);
    at(50, 200);
    at(50, 900);
    at(60, 1500); // within a second of the last drop: the same episode
    at(60, 2400);
    at(60, 2600);
    assert.deepEqual(lines.filter((l) => l !== undefined), ['dropping events: the ring is full; 5 dropped so far (total 5)', 'stopped dropping: 60 events dropped in 1s (total 60)']);
  });

  it("its total adds what earlier instances dropped, as the stats' total does (a redeploy while full)", function () {
    const log = new DropLog(english('telemetry-buffer'), 'the ring is full', 1000);
    assert.equal(log.check(0, 0, 8354), undefined);
    assert.equal(log.check(5000, 100, 8354), 'dropping events: the ring is full; 5000 dropped so far (total 13354)');
    assert.equal(log.check(5000, 1200, 8354), 'stopped dropping: 5000 events dropped in 0s (total 13354)');
  });
});

describe('the sink badge', function () {
  const badge = (f: SinkBadgeFacts) => sinkBadge(f, english('timescale-sink'));
  const facts = (over: Partial<SinkBadgeFacts>): SinkBadgeFacts => ({ state: 'up', now: 200_000, rate: 1234, code: '', since: 8_000, attempt: 0, maxAttempts: 10, warning: '', ...over });

  it('names the state and its reason in at most 20 characters', function () {
    assert.deepEqual(badge(facts({})), { fill: 'green', shape: 'dot', text: '1.2k rows/s' });
    assert.deepEqual(badge(facts({ warning: '!policy' })), { fill: 'yellow', shape: 'dot', text: '1.2k rows/s !policy' });
    assert.deepEqual(badge(facts({ state: 'down', code: 'ECONNREFUSED' })), { fill: 'red', shape: 'ring', text: 'down 3m12s' });
    assert.deepEqual(badge(facts({ state: 'down', code: '57014' })), { fill: 'red', shape: 'ring', text: 'stalled 3m12s' });
    assert.deepEqual(badge(facts({ state: 'down', code: '25006' })), { fill: 'red', shape: 'ring', text: 'read-only 3m12s' });
    assert.deepEqual(badge(facts({ state: 'misconfigured', code: '28P01' })), { fill: 'red', shape: 'ring', text: 'auth failed 28P01' });
    assert.deepEqual(badge(facts({ state: 'misconfigured', code: '42501' })), { fill: 'red', shape: 'ring', text: 'no privilege 42501' });
    assert.deepEqual(badge(facts({ state: 'retrying', code: '40P01', attempt: 3 })), { fill: 'yellow', shape: 'ring', text: 'retry 3/10 40P01' });
    for (const state of ['up', 'down', 'misconfigured', 'retrying', 'starting', 'closing'] as const) {
      for (const code of ['ECONNREFUSED', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'ERR_TLS_CERT_ALTNAME_INVALID', '3D000']) {
        assert.ok(badge(facts({ state, code, since: 0, now: 9e9, warning: '!policy' })).text.length <= 20);
      }
    }
  });

  it('says the write waits when one has been out 2 s without finishing, instead of a rate of 0', function () {
    assert.deepEqual(badge(facts({ rate: 0, waitingMs: 12_000 })), { fill: 'yellow', shape: 'ring', text: 'write waits 12s' });
    assert.deepEqual(badge(facts({ rate: 0, waitingMs: 1999 })), { fill: 'green', shape: 'dot', text: '0 rows/s' }, 'a write under 2 s is a write');
    assert.deepEqual(badge(facts({ state: 'down', code: 'ECONNREFUSED', waitingMs: 12_000 })).text, 'down 3m12s', 'a state other than up is shown first');
  });

  it('is red while it refuses messages for a full queue, saying how many, whatever else is true', function () {
    assert.deepEqual(badge(facts({ refused: 12, waitingMs: 12_000 })), { fill: 'red', shape: 'dot', text: 'full, refused 12' });
    assert.deepEqual(badge(facts({ refused: 0 })), { fill: 'green', shape: 'dot', text: '1.2k rows/s' });
  });

  it('names the host for 10 s after the writes moved to another host of the list, then the rate again', function () {
    const moved = { host: 'db2.plant.example:5432', hostChangedAt: 195_000 };
    assert.deepEqual(badge(facts(moved)), { fill: 'green', shape: 'dot', text: 'on db2.plant.example' });
    assert.deepEqual(badge(facts({ host: 'db2:5432', hostChangedAt: 195_000 })), { fill: 'green', shape: 'dot', text: 'on db2:5432' });
    assert.deepEqual(badge(facts({ ...moved, now: 205_000 })), { fill: 'green', shape: 'dot', text: '1.2k rows/s' });
    assert.deepEqual(badge(facts({ ...moved, state: 'down', code: '25006' })).text, 'read-only 3m12s', 'a state other than up is shown first');
    assert.deepEqual(badge(facts({ host: 'db1:5432', hostChangedAt: 0 })).text, '1.2k rows/s', 'never moved');
  });

  it('says how long in the units a person reads', function () {
    assert.deepEqual([42, 192, 3600, 7500, 100_000].map((s) => shortDuration(s * 1000)), ['42s', '3m12s', '1h', '2h5m', '1d3h']);
  });
});
