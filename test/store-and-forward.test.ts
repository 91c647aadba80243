import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { Client } from 'pg';
import { makeUserDir, NodeRedProcess, startNodeRed } from './support/node-red-process';
import { checkTable, Counters, deploy, IDS, nodeStats, pipelineFlow, waitForDrain } from './support/pipeline';
import { createTestDatabase, getTestServer, TestServer, waitForServer } from './support/postgres';
import { assertCountsAddUp } from './support/counting';
import { waitUntil } from './support/wait';

/**
 * Store-and-forward on real processes: Node-RED 4 with the package installed, a real PostgreSQL
 * that is stopped for the outage and started again. The table is the judge: every event exactly
 * once, sequence numbers contiguous per source, and in the same order as the event times.
 */
interface SafOptions {
  databaseUrl: string;
  table: string;
  rate: number;
  /** Messages the simulator sends (0 = until stopped). */
  count: number;
  eventsPerMessage: number;
  autoStart?: boolean;
  capacity?: number;
  window?: number;
  dropPolicy?: 'drop-oldest' | 'drop-newest';
  diskMaxMB?: number;
  fsyncInterval?: number;
  replayRate?: number;
}

function safFlow(o: SafOptions): object[] {
  return pipelineFlow({
    databaseUrl: o.databaseUrl, table: o.table, label: 'store and forward', rate: o.rate, count: o.count, autoStart: o.autoStart,
    capacity: o.capacity ?? 20_000, window: o.window ?? 20_000, dropPolicy: o.dropPolicy, batchSize: 5000, maxAge: 100, maxConcurrent: 0, poolSize: 4,
    simulator: { sources: 4, eventsPerMessage: o.eventsPerMessage, topicPrefix: 'saf', seed: 11 },
    buffer: { ackTimeout: 3600, diskSpill: true, diskMaxMB: o.diskMaxMB ?? 1024, fsyncInterval: o.fsyncInterval ?? 1, replayRate: o.replayRate ?? 1_000_000, spillAfter: 0 },
    batcher: { ackTimeout: 3600 },
    sink: { extra: false, maxAttempts: 1000, maxDelay: 500 },
    connection: { connectTimeout: '2000', statementTimeout: '60000' },
  });
}

async function createTable(url: string, table: string): Promise<void> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`CREATE TABLE ${table} (time timestamptz NOT NULL, source text NOT NULL, kind text, value double precision, seq bigint NOT NULL DEFAULT 0, extra jsonb)`);
    await client.query(`CREATE UNIQUE INDEX ${table}_key ON ${table} (source, time, seq)`);
  } finally {
    await client.end();
  }
}

/** Rows whose time is earlier than the row before them in seq order, per source: must be none. */
async function outOfOrder(url: string, table: string): Promise<number> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    const r = await client.query(`SELECT count(*)::int AS n FROM (SELECT time < lag(time) OVER (PARTITION BY source ORDER BY seq) AS back FROM ${table}) x WHERE back`);
    return r.rows[0].n as number;
  } finally {
    await client.end();
  }
}

async function buffer(red: NodeRedProcess): Promise<Counters> {
  return (await nodeStats(red))[IDS.buffer] ?? {};
}

describe('store and forward: a database outage on real processes', function () {
  this.timeout(480_000);
  let server: TestServer;
  let red: NodeRedProcess | undefined;

  before(async function () {
    server = await getTestServer();
    if (server.external) this.skip();
  });

  afterEach(async function () {
    if (red !== undefined) {
      await red.stop('SIGKILL');
      fs.rmSync(red.userDir, { recursive: true, force: true });
      red = undefined;
    }
    // Whatever a test did to the server, the next one finds it up.
    await server.start().catch(() => undefined);
  });

  it('spills 2 million events during an outage and writes each exactly once, in order, after it', async function () {
    const url = await createTestDatabase('saf_outage');
    const table = 'outage_line';
    await createTable(url, table);
    const perMessage = 500;
    const messages = 4000; // 2,000,000 events
    const total = messages * perMessage;
    await server.stop();
    red = await startNodeRed();
    const proc = red;
    await deploy(proc, safFlow({ databaseUrl: url, table, rate: 400_000, count: messages, eventsPerMessage: perMessage }));
    await waitUntil('the simulator to finish and every event to be held', async () => {
      const b = await buffer(proc);
      return b.received === total;
    }, 300_000);
    const during = await buffer(proc);
    assert.ok(during.spilled >= 2_000_000 - 40_000, `spilled ${during.spilled}`);
    assert.equal(during.dropped, 0);
    assert.equal(during.depth + during.inFlight, total, 'everything is held: in the ring, on disk or in flight');
    assertCountsAddUp(during);

    await server.start();
    await waitForServer(url);
    const b = (await waitForDrain(proc, 400_000))[IDS.buffer];
    assertCountsAddUp(b);
    assert.equal(b.replayed, b.spilled, 'all that was spilled was replayed');
    assert.equal(b.delivered, total);
    assert.equal(b.dropped + b.failed + b.unacknowledged, 0);
    assert.equal(b.diskLost, 0);

    const t = await checkTable(url, table);
    assert.equal(t.rows, total, 'every event written');
    assert.equal(t.distinctKeys, t.rows, 'no duplicate rows');
    assert.equal(t.distinctSourceSeq, t.rows, 'no sequence number twice');
    assert.equal(t.gaps, 0, 'sequence numbers contiguous per source');
    assert.equal(t.sumMaxSeq, total);
    assert.equal(await outOfOrder(url, table), 0, 'seq order agrees with time order per source');
  });

  it('Node-RED killed with SIGKILL while spilling: on restart the disk is replayed, a torn tail is cut and counted', async function () {
    const url = await createTestDatabase('saf_sigkill');
    const table = 'sigkill_line';
    await createTable(url, table);
    const userDir = makeUserDir();
    const capacity = 5000;
    const window = 5000;
    await server.stop();
    red = await startNodeRed({ userDir });
    const proc = red;
    await deploy(proc, safFlow({ databaseUrl: url, table, rate: 100_000, count: 0, eventsPerMessage: 100, capacity, window, fsyncInterval: 0.2 }));
    let before: Counters = {};
    await waitUntil('300,000 events spilled', async () => ((before = await buffer(proc)).spilled ?? 0) >= 300_000, 240_000);
    await proc.stop('SIGKILL');

    // A record torn by the kill: a header promising more bytes than follow it, at the end of the newest segment.
    const diskDir = path.join(userDir, 'telemetry-spool', `${IDS.buffer}.disk`);
    const segments = fs.readdirSync(diskDir).filter((f) => f.endsWith('.seg')).sort();
    assert.ok(segments.length > 0);
    const torn = Buffer.alloc(12 + 40, 0x41);
    torn.writeUInt32LE(5000, 0);
    fs.appendFileSync(path.join(diskDir, segments[segments.length - 1]), torn);

    // Restart with the line stopped, so the table ends with exactly what survived the kill.
    const flowsFile = path.join(userDir, 'flows.json');
    const flows = JSON.parse(fs.readFileSync(flowsFile, 'utf8')) as { id: string; autoStart?: boolean }[];
    for (const n of flows) if (n.id === IDS.sim) n.autoStart = false;
    fs.writeFileSync(flowsFile, JSON.stringify(flows));
    await server.start();
    await waitForServer(url);
    red = await startNodeRed({ userDir });
    const after = (await waitForDrain(red, 240_000))[IDS.buffer];
    assert.equal(after.tornTailRecords, 1, 'the torn record is counted');
    // The kill itself can tear the record being written (Linux ends a write to a file at a page
    // boundary for a fatal signal): the tail cut from there on holds that part and ours, one tear.
    assert.ok(after.tornTailBytes >= torn.length && after.tornTailBytes < torn.length + 1024 * 1024, `torn tail of ${after.tornTailBytes} bytes, ${torn.length} of them ours`);
    // What the last event-loop turn spilled reaches the OS at the end of that turn; a kill can land
    // before. What was read back into the ring (replayed; the ring refills from the disk to keep
    // the order) is memory again, lost with the process and bounded below with the ring.
    const handedToOs = before.spilled - before.spillPending - before.replayed;
    assert.ok(Number.isInteger(before.spillPending));
    assert.ok(after.diskRecovered >= handedToOs, `everything spilled, handed to the OS and not read back before the kill was on disk (${after.diskRecovered} >= ${handedToOs}); before the kill ${JSON.stringify(before)}, after ${JSON.stringify(after)}`);
    assert.match(red.output(), /did not close cleanly/);
    assertCountsAddUp(after);

    const t = await checkTable(url, table);
    assert.equal(t.distinctKeys, t.rows, 'no duplicate rows');
    assert.equal(t.distinctSourceSeq, t.rows, 'no sequence number twice');
    assert.ok(t.rows >= after.diskRecovered, `every recovered event written (${t.rows} >= ${after.diskRecovered})`);
    // What the kill lost is what was in memory (the ring and the window, oldest first), and only
    // that: records reach the OS once per event-loop turn, so none of the spilled ones are lost.
    assert.ok(t.gaps <= capacity + window, `lost ${t.gaps} <= ring + window (${capacity + window})`);
    assert.equal(await outOfOrder(url, table), 0, 'seq order agrees with time order per source');
  });

  it('at a full disk cap the drop policy acts and is counted exactly', async function () {
    const url = await createTestDatabase('saf_cap');
    const table = 'cap_line';
    await createTable(url, table);
    const perMessage = 100;
    const messages = 3000;
    const total = messages * perMessage;
    await server.stop();
    red = await startNodeRed();
    const proc = red;
    await deploy(proc, safFlow({ databaseUrl: url, table, rate: 200_000, count: messages, eventsPerMessage: perMessage, capacity: 5000, window: 5000, diskMaxMB: 4 }));
    let during: Counters = {};
    await waitUntil('every event in', async () => (during = await buffer(proc)).received === total, 240_000);
    assert.ok(during.diskDroppedOverflow > 0, 'the cap was reached');
    assert.ok(during.diskBytes <= 4 * 1024 * 1024, `disk use ${during.diskBytes} within the cap`);
    assert.equal(during.dropped, during.diskDroppedOverflow);
    assertCountsAddUp(during);

    await server.start();
    await waitForServer(url);
    const b = (await waitForDrain(proc, 240_000))[IDS.buffer];
    assertCountsAddUp(b);
    assert.equal(b.delivered + b.dropped, total);
    const t = await checkTable(url, table);
    assert.equal(t.rows, total - b.dropped, 'rows = received - dropped');
    assert.equal(t.distinctKeys, t.rows, 'no duplicate rows');
    // drop-oldest keeps the newest, so every source's last number is there and the gaps are exactly the drops.
    assert.equal(t.sumMaxSeq, total);
    assert.equal(t.gaps, b.dropped, 'sequence gaps = dropped, exactly');
    assert.equal(await outOfOrder(url, table), 0);
  });
});
