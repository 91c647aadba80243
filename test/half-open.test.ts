import assert from 'node:assert/strict';
import { Pool } from 'pg';
import { CONNECTION_DEFAULTS, poolConfig } from '../src/core/connection/connection-settings';
import { classifyError } from '../src/core/sink/error-classes';
import { getTestServer } from './support/postgres';
import { startTcpProxy, TcpProxy } from './support/tcp-proxy';

/**
 * A half-open connection (cable pulled, NAT entry gone, a firewall that drops instead of
 * rejecting): the socket stays open and nothing ever answers. statement_timeout lives on the
 * server, which never hears of it; only a client-side timeout frees the sink's write.
 */
describe('a half-open connection to the database', function () {
  this.timeout(30_000);
  let proxy: TcpProxy | undefined;
  let pool: Pool | undefined;

  afterEach(async function () {
    // The proxy first: closing it resets any socket a failed run left hanging, so end() returns.
    await proxy?.close();
    proxy = undefined;
    await pool?.end().catch(() => undefined);
    pool = undefined;
  });

  it('fails a query that never gets an answer within the statement timeout plus a margin, as the database being unavailable', async function () {
    const server = await getTestServer();
    const target = new URL(server.url());
    proxy = await startTcpProxy(Number(target.port), target.hostname);
    const config = poolConfig({
      ...CONNECTION_DEFAULTS,
      host: '127.0.0.1',
      port: proxy.port,
      database: 'postgres',
      user: decodeURIComponent(target.username),
      password: decodeURIComponent(target.password),
      caFile: '',
      poolSize: 1,
      connectTimeout: 2000,
      statementTimeout: 1000,
    });
    pool = new Pool(config);
    pool.on('error', () => undefined);
    assert.equal((await pool.query('SELECT 1 AS one')).rows[0].one, 1);
    proxy.blackhole();
    const started = Date.now();
    // Without a client-side timeout this query waits for ever (the test times out at 30 s).
    const err = await pool.query('SELECT 2').then(
      () => assert.fail('a query through a blackhole cannot succeed'),
      (e: Error) => e,
    );
    const c = classifyError(err);
    assert.equal(c.kind, 'unavailable', `${err.message} is waited out`);
    assert.match(c.code, /QUERY_TIMEOUT|CONN_TIMEOUT/);
    assert.ok(Date.now() - started < 25_000);
    // After the network heals the pool works again (the hung connection was thrown away).
    proxy.heal();
    assert.equal((await pool.query('SELECT 3 AS three')).rows[0].three, 3);
  });

  it('the pool configuration carries a client-side timeout a little longer than the statement timeout', function () {
    const config = poolConfig({ ...CONNECTION_DEFAULTS, caFile: '', statementTimeout: 30_000 }) as { query_timeout?: number };
    assert.ok(config.query_timeout !== undefined && config.query_timeout > 30_000 && config.query_timeout <= 40_000, `query_timeout ${config.query_timeout}`);
    assert.equal((poolConfig({ ...CONNECTION_DEFAULTS, caFile: '', statementTimeout: 0 }) as { query_timeout?: number }).query_timeout, undefined);
  });
});
