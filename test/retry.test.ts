import assert from 'assert';
import { AbortedError, backoffDelay, classifyError, redactSecrets, resolveBackoffOptions, sleep, type ErrorKind } from '../src/core/retry';

function pgError(code: string, message = `error ${code}`): Error {
  return Object.assign(new Error(message), { code });
}

describe('error classification', function () {
  const table: Array<[string, unknown, ErrorKind, string]> = [
    ['connection exception (class 08)', pgError('08006'), 'retryable', '08006'],
    ['admin shutdown', pgError('57P01', 'terminating connection due to administrator command'), 'retryable', '57P01'],
    ['crash shutdown', pgError('57P02'), 'retryable', '57P02'],
    ['cannot connect now', pgError('57P03', 'the database system is starting up'), 'retryable', '57P03'],
    ['too many connections', pgError('53300'), 'retryable', '53300'],
    ['disk full (class 53)', pgError('53100'), 'retryable', '53100'],
    ['serialization failure', pgError('40001'), 'retryable', '40001'],
    ['deadlock', pgError('40P01'), 'retryable', '40P01'],
    ['statement timeout', pgError('57014', 'canceling statement due to statement timeout'), 'retryable', '57014'],
    ['refused socket', Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }), 'retryable', 'ECONNREFUSED'],
    ['reset socket', Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }), 'retryable', 'ECONNRESET'],
    ['broken pipe', Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }), 'retryable', 'EPIPE'],
    ['socket timeout', Object.assign(new Error('connect ETIMEDOUT'), { code: 'ETIMEDOUT' }), 'retryable', 'ETIMEDOUT'],
    ['unreachable host', Object.assign(new Error('connect EHOSTUNREACH'), { code: 'EHOSTUNREACH' }), 'retryable', 'EHOSTUNREACH'],
    ['terminated connection', new Error('Connection terminated unexpectedly'), 'retryable', 'CONN_TERMINATED'],
    ['connect timeout', new Error('Connection terminated due to connection timeout'), 'retryable', 'CONN_TIMEOUT'],
    ['pool connect timeout', new Error('timeout exceeded when trying to connect'), 'retryable', 'CONN_TIMEOUT'],
    ['query read timeout', new Error('Query read timeout'), 'retryable', 'QUERY_TIMEOUT'],
    ['happy-eyeballs AggregateError', new AggregateError([Object.assign(new Error('connect ECONNREFUSED ::1:5432'), { code: 'ECONNREFUSED' })], 'connect failed'), 'retryable', 'ECONNREFUSED'],
    ['numeric out of range', pgError('22003'), 'data', '22003'],
    ['invalid text', pgError('22P02'), 'data', '22P02'],
    ['check violation', pgError('23514'), 'data', '23514'],
    ['not null violation', pgError('23502'), 'data', '23502'],
    ['index row too large', pgError('54000'), 'data', '54000'],
    ['undefined table', pgError('42P01'), 'schema', '42P01'],
    ['insufficient privilege', pgError('42501'), 'schema', '42501'],
    ['bad password', pgError('28P01'), 'permanent', '28P01'],
    ['unknown database', pgError('3D000'), 'permanent', '3D000'],
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
