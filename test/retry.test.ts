import assert from 'assert';
import { AbortedError, classifyError, redactSecrets, type ErrorKind } from '../src/core/sink/error-classes';
import { backoffDelay, probeDelay, resolveBackoffOptions, sleep } from '../src/core/sink/retry';

function pgError(code: string, message = `error ${code}`): Error {
  return Object.assign(new Error(message), { code });
}

describe('error classification', function () {
  const table: Array<[string, unknown, ErrorKind, string]> = [
    ['connection exception (class 08)', pgError('08006'), 'unavailable', '08006'],
    ['admin shutdown', pgError('57P01', 'terminating connection due to administrator command'), 'unavailable', '57P01'],
    ['crash shutdown', pgError('57P02'), 'unavailable', '57P02'],
    ['cannot connect now', pgError('57P03', 'the database system is starting up'), 'unavailable', '57P03'],
    ['too many connections', pgError('53300'), 'unavailable', '53300'],
    ['disk full (class 53)', pgError('53100'), 'unavailable', '53100'],
    ['serialization failure', pgError('40001'), 'transient', '40001'],
    ['deadlock', pgError('40P01'), 'transient', '40P01'],
    ['commit outcome unknown', pgError('40003'), 'transient', '40003'],
    ['lock not available', pgError('55P03'), 'transient', '55P03'],
    ['statement timeout', pgError('57014', 'canceling statement due to statement timeout'), 'unavailable', '57014'],
    ['read-only server (a replica, a demoted primary)', pgError('25006', 'cannot execute INSERT in a read-only transaction'), 'unavailable', '25006'],
    ['refused socket', Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }), 'unavailable', 'ECONNREFUSED'],
    ['reset socket', Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }), 'unavailable', 'ECONNRESET'],
    ['broken pipe', Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }), 'unavailable', 'EPIPE'],
    ['socket timeout', Object.assign(new Error('connect ETIMEDOUT'), { code: 'ETIMEDOUT' }), 'unavailable', 'ETIMEDOUT'],
    ['unreachable host', Object.assign(new Error('connect EHOSTUNREACH'), { code: 'EHOSTUNREACH' }), 'unavailable', 'EHOSTUNREACH'],
    ['terminated connection', new Error('Connection terminated unexpectedly'), 'unavailable', 'CONN_TERMINATED'],
    ['connect timeout', new Error('Connection terminated due to connection timeout'), 'unavailable', 'CONN_TIMEOUT'],
    ['pool connect timeout', new Error('timeout exceeded when trying to connect'), 'unavailable', 'CONN_TIMEOUT'],
    ['query read timeout', new Error('Query read timeout'), 'unavailable', 'QUERY_TIMEOUT'],
    ['happy-eyeballs AggregateError', new AggregateError([Object.assign(new Error('connect ECONNREFUSED ::1:5432'), { code: 'ECONNREFUSED' })], 'connect failed'), 'unavailable', 'ECONNREFUSED'],
    ['numeric out of range', pgError('22003'), 'data', '22003'],
    ['invalid text', pgError('22P02'), 'data', '22P02'],
    ['check violation', pgError('23514'), 'data', '23514'],
    ['not null violation', pgError('23502'), 'data', '23502'],
    ['index row too large', pgError('54000'), 'data', '54000'],
    ['TimescaleDB decompression limit (late rows into compressed chunks)', pgError('53400'), 'data', '53400'],
    ['undefined table', pgError('42P01'), 'config', '42P01'],
    ['insufficient privilege', pgError('42501'), 'config', '42501'],
    ['a row-level security policy refusing a row', Object.assign(pgError('42501'), { routine: 'ExecWithCheckOptions' }), 'data', '42501'],
    ["a trigger's RAISE EXCEPTION", pgError('P0001'), 'data', 'P0001'],
    ["a view's check option", pgError('44000'), 'data', '44000'],
    ['bad password', pgError('28P01'), 'config', '28P01'],
    ['host not allowed (pg_hba.conf)', pgError('28000'), 'config', '28000'],
    ['no password configured', new Error('SASL: SCRAM-SERVER-FIRST-MESSAGE: client password must be a string'), 'config', 'NO_PASSWORD'],
    ['unknown host', Object.assign(new Error('getaddrinfo ENOTFOUND db.invalid'), { code: 'ENOTFOUND' }), 'config', 'ENOTFOUND'],
    ['self-signed certificate', Object.assign(new Error('self-signed certificate'), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' }), 'config', 'DEPTH_ZERO_SELF_SIGNED_CERT'],
    ['unknown database', pgError('3D000'), 'config', '3D000'],
    ['internal error', pgError('XX000'), 'permanent', 'XX000'],
    ['ended pool', new Error('Cannot use a pool after calling end on the pool'), 'permanent', 'UNKNOWN'],
    ['a string thrown', 'boom', 'permanent', 'UNKNOWN']
  ];
  for (const [name, error, kind, code] of table) {
    it(`${name} -> ${kind} ${code}`, function () {
      const classification = classifyError(error);
      assert.strictEqual(classification.kind, kind);
      assert.strictEqual(classification.code, code);
    });
  }

  it('never repeats a password from a connection string in the message', function () {
    const classification = classifyError(new Error('could not connect to postgres://writer:s3cret@db:5432/plant (password=s3cret)'));
    assert.ok(!classification.message.includes('s3cret'), classification.message);
    assert.strictEqual(redactSecrets('postgresql://u:p%40ss@h/db'), 'postgresql://u:***@h/db');
  });
});

describe('backoff', function () {
  const options = resolveBackoffOptions();

  it('defaults to 10 attempts, 500 ms initial delay, 30 s cap', function () {
    assert.deepStrictEqual(options, { maxAttempts: 10, initialDelayMs: 500, maxDelayMs: 30000 });
  });

  it('doubles the ceiling per retry up to the cap (random = 1 shows the ceiling)', function () {
    const ceilings = [1, 2, 3, 4, 5, 6, 7, 8, 20, 2000].map((retry) => backoffDelay(retry, options, () => 1));
    assert.deepStrictEqual(ceilings, [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000]);
  });

  it('draws uniformly between 0 and the ceiling (full jitter)', function () {
    assert.strictEqual(backoffDelay(3, options, () => 0), 0);
    assert.strictEqual(backoffDelay(3, options, () => 0.25), 500);
    for (let retry = 1; retry < 40; retry++) {
      for (const r of [0, 0.1, 0.5, 0.999999]) {
        const delay = backoffDelay(retry, options, () => r);
        assert.ok(delay >= 0 && delay <= 30000, `retry ${retry} r ${r}: ${delay}`);
      }
    }
  });

  it('tolerates a broken random source', function () {
    assert.strictEqual(backoffDelay(2, options, () => NaN), 0);
    assert.strictEqual(backoffDelay(2, options, () => 7), 1000);
  });

  it('probes an unavailable database at least once a second, a misconfigured one at most every 30 s', function () {
    const waits = (kind: 'unavailable' | 'config', r: number) => Array.from({ length: 12 }, (_, i) => probeDelay(i + 1, kind, () => r));
    assert.deepStrictEqual(waits('unavailable', 1), [200, 400, 800, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000]);
    assert.deepStrictEqual(waits('unavailable', 0).slice(0, 4), [100, 200, 400, 500]);
    assert.deepStrictEqual(waits('config', 1), [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000, 30000, 30000, 30000]);
    assert.strictEqual(probeDelay(1000, 'config', () => NaN), 15000);
  });

  it('rejects nonsense options', function () {
    assert.throws(() => resolveBackoffOptions({ maxAttempts: -1 }), /maxAttempts/);
    assert.strictEqual(resolveBackoffOptions({ maxAttempts: 0 }).maxAttempts, 1);
  });

  it('stops a wait as soon as the signal aborts', async function () {
    const controller = new AbortController();
    const waiting = sleep(3_600_000, controller.signal);
    controller.abort();
    await assert.rejects(waiting, AbortedError);
    await assert.rejects(sleep(10, controller.signal), AbortedError);
  });
});
