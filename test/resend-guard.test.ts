import assert from 'node:assert/strict';
import { ResendGuard } from '../src/core/buffer/resend-guard';

describe('ResendGuard', function () {
  const msg = (i: number, qos = 1): Record<string, unknown> => ({ topic: 'plant/s1', payload: { value: i }, qos });

  it('fingerprints only what a broker may send again (QoS 1 or 2)', function () {
    assert.equal(ResendGuard.fingerprint(msg(1, 0)), undefined);
    assert.equal(ResendGuard.fingerprint({ topic: 'x', payload: 1 }), undefined);
    assert.equal(ResendGuard.fingerprint(msg(1, 1)), ResendGuard.fingerprint(msg(1, 2)));
    assert.notEqual(ResendGuard.fingerprint(msg(1)), ResendGuard.fingerprint(msg(2)));
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    assert.equal(ResendGuard.fingerprint({ topic: 'x', payload: circular, qos: 1 }), undefined);
  });

  it('after a deploy, takes a repeat of what came in the seconds before it, or since, for a re-send; never outside that window', function () {
    const guard = new ResendGuard(5_000, 30_000);
    const fp = (i: number): string => ResendGuard.fingerprint(msg(i)) as string;
    assert.equal(guard.check(fp(1), 0), false);
    assert.equal(guard.check(fp(1), 100), false, 'identical readings outside a deploy are readings');
    assert.equal(guard.check(fp(2), 9_000), false);
    assert.equal(guard.check(fp(3), 9_500), false);
    const lately = guard.lately(10_000);
    assert.deepEqual(lately, [fp(2), fp(3)], 'only the last five seconds');
    guard.arm(lately, 10_000);
    assert.equal(guard.check(fp(2), 10_100), true);
    assert.equal(guard.check(fp(2), 10_200), true, 'sent again a second time');
    assert.equal(guard.check(fp(1), 10_300), false, 'older than the lookback');
    assert.equal(guard.check(fp(4), 10_400), false);
    assert.equal(guard.check(fp(4), 11_000), true, 'repeated since the deploy, within the window');
    assert.equal(guard.check(fp(3), 40_001), false, 'the window is over');
    assert.equal(guard.check(fp(5), 40_002), false);
    assert.equal(guard.check(fp(5), 40_003), false);
  });
});
