import assert from 'node:assert/strict';
import { Client, type PoolConfig } from 'pg';
import { FailoverPool, type HostSwitch } from '../src/core/connection/failover-pool';
import { hostLabel, parseHostList } from '../src/core/connection/host-list';
import type { TelemetryRecord } from '../src/core/readings/records';
import { TimescaleWriter, type WriterState } from '../src/core/sink/timescale-writer';
import { freePort } from './support/node-red-process';
import { createTestDatabase } from './support/postgres';
import { errorText, say, type Translate } from '../src/core/shared/text';
import { catalog, english, lookUp } from '../src/nodes/i18n';

/** A node's texts in German, from its de catalog. */
function german(type: string): Translate {
  return (key, params) => lookUp(catalog(type, 'de'), key, params) ?? key;
}

const { startEmbeddedPostgres } = require('../scripts/embedded-pg.js') as {
  startEmbeddedPostgres(): Promise<{ port: number; url(database?: string): string; destroy(): Promise<void>; recentLog(): string[] }>;
};

describe('the Host field: one host or a list', function () {
  it('reads host:port entries; an entry without a port takes the Port field', function () {
    assert.deepEqual(parseHostList('db1:5432, db2:5433 ,db3', 6000), [
      { host: 'db1', port: 5432 },
      { host: 'db2', port: 5433 },
      { host: 'db3', port: 6000 }
    ]);
    assert.deepEqual(parseHostList('localhost', 5432), [{ host: 'localhost', port: 5432 }]);
  });

  it('reads IPv6 addresses, in brackets with a port, and socket directories', function () {
    assert.deepEqual(parseHostList('[fd00::1]:5433,::1,/var/run/postgresql', 5432), [
      { host: 'fd00::1', port: 5433 },
      { host: '::1', port: 5432 },
      { host: '/var/run/postgresql', port: 5432 }
    ]);
    assert.equal(hostLabel({ host: 'fd00::1', port: 5433 }), '[fd00::1]:5433');
    assert.equal(hostLabel({ host: 'db2', port: 5433 }), 'db2:5433');
  });

  it('names the bad entry', function () {
    assert.throws(() => parseHostList('db1,,db2', 5432), /empty entry in "db1,,db2"/);
    assert.throws(() => parseHostList('db1:70000', 5432), /port of "db1:70000" must be a whole number from 1 to 65535/);
    assert.throws(() => parseHostList('db1:x', 5432), /port of "db1:x"/);
    assert.throws(() => parseHostList('db1:', 5432), /port of "db1:"/);
    assert.throws(() => parseHostList(':5432', 5432), /has a port but no host/);
    assert.throws(() => parseHostList('[fd00::1', 5432), /not an address in brackets/);
  });
});

describe('FailoverPool: writes go to the host that accepts them (real servers)', function () {
  this.timeout(60_000);
  // A server of our own that the tests make read-only; the shared test server stays writable.
  let own: Awaited<ReturnType<typeof startEmbeddedPostgres>>;
  let writableUrl: URL;
  let ownUrl: URL;
  let deadPort: number;
  const pools: FailoverPool[] = [];

  async function sql(url: URL, text: string): Promise<Array<Record<string, unknown>>> {
    const client = new Client({ connectionString: url.toString() });
    await client.connect();
    try {
      return (await client.query(text)).rows;
    } finally {
      await client.end();
    }
  }

  function pool(urls: Array<URL | number>): FailoverPool {
    const hosts = urls.map((u) => (typeof u === 'number' ? { host: '127.0.0.1', port: u } : { host: u.hostname, port: Number(u.port) }));
    const config: PoolConfig = { database: 'failover_pool', user: decodeURIComponent(writableUrl.username), password: decodeURIComponent(writableUrl.password), max: 2, connectionTimeoutMillis: 5000 };
    const created = new FailoverPool(hosts, config);
    pools.push(created);
    return created;
  }

  const setReadOnly = async (on: boolean): Promise<void> => {
    const admin = new URL(ownUrl.toString());
    admin.pathname = '/postgres';
    await sql(admin, `ALTER SYSTEM SET default_transaction_read_only = ${on ? 'on' : 'off'}`);
    await sql(admin, 'SELECT pg_reload_conf()');
    // Each backend reads the reloaded setting when its signal arrives, before its next statement.
    await new Promise((resolve) => setTimeout(resolve, 300));
  };

  before(async function () {
    writableUrl = new URL(await createTestDatabase('failover_pool'));
    own = await startEmbeddedPostgres();
    // The same user and password on both servers, as on a primary and its replicas.
    const password = decodeURIComponent(writableUrl.password);
    await sql(new URL(own.url()), `ALTER ROLE postgres PASSWORD '${password.replace(/'/g, "''")}'`);
    ownUrl = new URL(await createTestDatabase('failover_pool', { url: (database?: string) => { const u = new URL(own.url(database)); u.password = encodeURIComponent(password); return u.toString(); } }));
    for (const url of [writableUrl, ownUrl]) await sql(url, 'CREATE TABLE IF NOT EXISTS t (n int)');
    deadPort = await freePort();
  });

  afterEach(async function () {
    await Promise.all(pools.splice(0).map((p) => p.end()));
    if (own) await setReadOnly(false);
  });

  after(async function () {
    await own?.destroy();
  });

  it('skips a host that refuses connections and a read-only one, and says why once', async function () {
    await setReadOnly(true);
    const p = pool([deadPort, ownUrl, writableUrl]);
    const switches: HostSwitch[] = [];
    p.on('switch', (change: HostSwitch) => switches.push(change));
    for (let i = 0; i < 5; i++) await p.query('INSERT INTO t VALUES ($1)', [i]);
    const port = (await p.query('SELECT inet_server_port() AS port')).rows[0].port;
    assert.equal(port, Number(writableUrl.port));
    assert.equal(p.host, `127.0.0.1:${writableUrl.port}`);
    assert.equal(switches.length, 1, 'one switch: the first choice');
    assert.equal(switches[0].to, `127.0.0.1:${writableUrl.port}`);
    assert.equal(switches[0].from, undefined);
    assert.match(switches[0].skipped[0], new RegExp(`^127.0.0.1:${deadPort}: .*ECONNREFUSED`));
    assert.equal(switches[0].skipped[1], `127.0.0.1:${ownUrl.port} is read-only`);
    assert.deepEqual(switches[0].skippedWords.map((words) => say(words, english('timescale-connection'))), switches[0].skipped, 'the words say the same in en-US');
    assert.equal(say(switches[0].skippedWords[1], german('timescale-connection')), `127.0.0.1:${ownUrl.port} ist schreibgeschützt`);
    assert.equal((await sql(ownUrl, 'SELECT count(*)::int AS n FROM t'))[0].n, 0, 'nothing reached the read-only server');
    assert.ok(!own.recentLog().some((line) => /read-only transaction/.test(line)), 'no statement was even tried there');
  });

  it('no host accepting writes is "read-only" (25006) while one is read-only, else the connection error', async function () {
    await setReadOnly(true);
    await assert.rejects(pool([deadPort, ownUrl]).query('SELECT 1'), (err: Error & { code?: string }) => {
      assert.equal(err.code, '25006');
      assert.match(err.message, new RegExp(`^no host accepts writes: 127.0.0.1:${deadPort}: .*ECONNREFUSED.*; 127.0.0.1:${ownUrl.port} is read-only$`));
      assert.equal(errorText(err, english('timescale-sink')), err.message);
      assert.match(errorText(err, german('timescale-sink')), new RegExp(`^kein Host nimmt Schreibvorgänge an: 127.0.0.1:${deadPort}: .*ECONNREFUSED.*; 127.0.0.1:${ownUrl.port} ist schreibgeschützt$`));
      return true;
    });
    await assert.rejects(pool([deadPort]).query('SELECT 1'), { code: 'ECONNREFUSED' });
  });

  it('a write refused as read-only (a demoted primary) moves the next one to the next host, even over idle connections', async function () {
    const p = pool([ownUrl, writableUrl]);
    const switches: HostSwitch[] = [];
    p.on('switch', (change: HostSwitch) => switches.push(change));
    // Two connections open and idle on the first host.
    await Promise.all([p.query('INSERT INTO t VALUES (1)'), p.query('INSERT INTO t VALUES (2)')]);
    assert.equal(p.host, `127.0.0.1:${ownUrl.port}`);
    await setReadOnly(true);
    await assert.rejects(p.query('INSERT INTO t VALUES (3)'), { code: '25006' });
    await p.query('INSERT INTO t VALUES (4)');
    assert.equal(p.host, `127.0.0.1:${writableUrl.port}`);
    assert.deepEqual(switches.map((s) => [s.from, s.to, s.skipped]), [
      [undefined, `127.0.0.1:${ownUrl.port}`, []],
      [`127.0.0.1:${ownUrl.port}`, `127.0.0.1:${writableUrl.port}`, [`127.0.0.1:${ownUrl.port} is read-only`]]
    ]);
  });

  it('the writer waits out the demotion and writes every row once, on the host that accepts them', async function () {
    await sql(writableUrl, 'DROP TABLE IF EXISTS telemetry');
    await sql(ownUrl, 'DROP TABLE IF EXISTS telemetry');
    // The table as a replica has it: the writer creates it on the first host only.
    await sql(writableUrl, 'CREATE TABLE telemetry (time timestamptz NOT NULL, source text NOT NULL, kind text, value float8, seq int8 NOT NULL DEFAULT 0); CREATE UNIQUE INDEX ON telemetry (source, time, seq)');
    const p = pool([ownUrl, writableUrl]);
    const writer = new TimescaleWriter(p, { table: 'telemetry' });
    const states: WriterState[] = [];
    writer.on('state', (s: WriterState) => states.push(s));
    const batch = (start: number): TelemetryRecord[] => Array.from({ length: 100 }, (_, i) => ({ topic: 'line1', seq: start + i, timestamp: Date.UTC(2025, 0, 1) + start + i, payload: { value: i } }));
    assert.equal((await writer.write(batch(0))).written, 100);
    // The first host goes read-only: the next batch is refused there, the probe finds the other host.
    await setReadOnly(true);
    const started = Date.now();
    const outcome = await writer.write(batch(100));
    assert.equal(outcome.written, 100);
    assert.ok(Date.now() - started < 5000, `moved within seconds (${Date.now() - started} ms)`);
    assert.deepEqual(states.map((s) => [s.state, s.code]), [['up', undefined], ['down', '25006'], ['up', undefined]]);
    assert.equal((await sql(ownUrl, 'SELECT count(*)::int AS n FROM telemetry'))[0].n, 100, 'the first batch stayed where it was written');
    assert.equal((await sql(writableUrl, 'SELECT count(*)::int AS n FROM telemetry'))[0].n, 100, 'the second batch went to the writable host, once');
  });
});
