import assert from 'node:assert/strict';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { makeUserDir, NodeRedProcess, startNodeRed } from './support/node-red-process';
import { checkTable, Counters, createSlowTable, deploy, IDS, nodeStats, pipelineFlow, PipelineOptions, TableCheck, waitForDrain } from './support/pipeline';
import { createTestDatabase } from './support/postgres';
import { startTcpProxy, TcpProxy } from './support/tcp-proxy';
import { assertCountsAddUp } from './support/counting';
import { waitUntil } from './support/wait';

// A server of our own: these tests kill, freeze and restart it, which must not disturb other files.
const { startEmbeddedPostgres } = require('../scripts/embedded-pg.js') as {
  startEmbeddedPostgres(options?: { settings?: Record<string, string> }): Promise<{
    port: number;
    url(database?: string): string;
    start(): Promise<void>;
    stop(): Promise<void>;
    kill(signal: NodeJS.Signals): void;
    freeze(): void;
    thaw(): void;
    destroy(): Promise<void>;
  }>;
};
type Server = Awaited<ReturnType<typeof startEmbeddedPostgres>>;

const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** No row twice, no sequence number twice, and every missing sequence number is a counted drop. */
function assertTable(t: TableCheck, dropped: number): void {
  assert.equal(t.distinctKeys, t.rows, 'no duplicate rows');
  assert.equal(t.distinctSourceSeq, t.rows, 'no sequence number twice');
  assert.equal(t.gaps, dropped, `sequence gaps (${t.gaps}) = dropped (${dropped})`);
}

/** A flow deployed without credentials leaves the connection node (and so the sink) as it is. */
function withoutCredentials(flow: object[]): object[] {
  return flow.map((n) => {
    const { credentials: _credentials, ...rest } = n as { credentials?: unknown };
    return rest;
  });
}

describe('faults on real processes: nothing lost without a count, nothing written twice', function () {
  this.timeout(300_000);
  let server: Server;
  let red: NodeRedProcess | undefined;
  let proxy: TcpProxy | undefined;

  before(async function () {
    if (process.env.TELEMETRY_PG_TEST_URL) this.skip(); // these tests must own the server they kill
    server = await startEmbeddedPostgres();
  });

  after(async function () {
    await server?.destroy();
  });

  afterEach(async function () {
    try {
      server?.thaw();
    } catch {
      /* not running */
    }
    await proxy?.close();
    proxy = undefined;
    if (red !== undefined) {
      await red.stop('SIGKILL');
      fs.rmSync(red.userDir, { recursive: true, force: true });
      red = undefined;
    }
  });

  function database(name: string): Promise<string> {
    return createTestDatabase(name, server);
  }

  const stats = (proc: NodeRedProcess): Promise<Record<string, Counters>> => nodeStats(proc);

  /** Waits for a simulator with a count to finish and the pipeline to drain; checks the rule and the table. */
  async function finishCounted(proc: NodeRedProcess, url: string, table: string, total: number): Promise<{ s: Record<string, Counters>; t: TableCheck }> {
    await waitUntil('the simulator to finish', async () => (await stats(proc))[IDS.sim]?.sentEvents === total, 120_000);
    const s = await waitForDrain(proc, 180_000);
    const b = s[IDS.buffer];
    assert.equal(b.received, total);
    assertCountsAddUp(b, { drained: true });
    assert.equal(b.received, b.delivered + b.dropped, 'received = written + dropped once drained');
    const t = await checkTable(url, table);
    assert.equal(t.rows, total - b.dropped, 'rows = received - dropped');
    assert.equal(t.sumMaxSeq, total, 'drop-oldest keeps the newest of every source');
    assertTable(t, b.dropped);
    // A write that timed out after the server committed it is retried and its rows come back as
    // duplicates (skipped by the unique key): written + duplicates is every row in the table.
    assert.equal(s[IDS.sink].written + s[IDS.sink].duplicates, t.rows, 'the sink counted every row in the table');
    assert.equal(s[IDS.sink].deadLetteredEvents, 0);
    assert.equal(s[IDS.sink].rejected, 0);
    return { s, t };
  }

  /**
   * A slow table (every INSERT waits 250 ms, two at a time: about 1,600 rows/s) behind a 4,000
   * events/s line of 24,000 events, so the sink has writes running and the batcher has full batches
   * waiting behind its open ones; returns once 2,000 rows are written.
   */
  async function slowLine(name: string): Promise<{ proc: NodeRedProcess; url: string; table: string; total: number; options: PipelineOptions }> {
    const url = await database(`fault_${name}`);
    const table = name;
    const total = 24_000;
    await createSlowTable(url, table, 0.25);
    const options: PipelineOptions = { databaseUrl: url, table, rate: 4000, count: total, capacity: 100_000, window: 3000, batchSize: 200, maxAge: 50, poolSize: 2 };
    red = await startNodeRed();
    const proc = red;
    await deploy(proc, pipelineFlow(options));
    await waitUntil('2,000 rows written', async () => (await stats(proc))[IDS.sink]?.written >= 2000, 60_000);
    return { proc, url, table, total, options };
  }

  it('PostgreSQL killed (SIGKILL) under load and restarted 10 s later: drops only by policy, counted', async function () {
    const url = await database('fault_pg_kill');
    const table = 'pg_kill';
    const total = 120_000;
    red = await startNodeRed();
    const proc = red;
    // 5,000 events/s; the ring holds 4 s of them, so a 10 s outage must overflow it (drop-oldest).
    await deploy(proc, pipelineFlow({ databaseUrl: url, table, rate: 5000, count: total, capacity: 20_000, window: 2000 }));
    await waitUntil('10,000 rows written', async () => (await stats(proc))[IDS.sink]?.written >= 10_000, 60_000);
    server.kill('SIGKILL');
    await delay(10_000);
    const during = await stats(proc);
    assertCountsAddUp(during[IDS.buffer]);
    assert.notEqual(during[IDS.sink].state, 'up', 'the sink noticed the outage');
    await server.start();

    const { s, t } = await finishCounted(proc, url, table, total);
    assert.ok(s[IDS.buffer].dropped > 0, 'the outage overflowed the ring');
    assert.ok(s[IDS.sink].retries > 0, 'writes were retried');
    assert.match(proc.output(), /unavailable/);
    assert.match(proc.output(), /is back after/);
    this.test!.title += ` [${t.rows} rows, ${s[IDS.buffer].dropped} dropped = ${t.gaps} gaps, ${s[IDS.sink].retries} retries]`;
  });

  it('example 01 as shipped, database stopped for 75 s (past the retry budget of old): nothing dead-lettered, drops = gaps, the counters agree', async function () {
    const url = new URL(await database('fault_example_outage'));
    const total = 200_000;
    const deadLetters = path.join(os.tmpdir(), `dead-letters-${process.pid}.jsonl`);
    fs.rmSync(deadLetters, { force: true });
    const example = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'examples', '01 - Simulated line into TimescaleDB.json'), 'utf8')) as Array<Record<string, unknown>>;
    const byType = (type: string): Record<string, unknown> => example.find((n) => n.type === type) as Record<string, unknown>;
    const [sim, buffer, batcher, sink] = ['telemetry-simulator', 'telemetry-buffer', 'telemetry-batcher', 'timescale-sink'].map(byType);
    // The example's options, but twice its rate (so 75 s overflow the ring of 100,000) and a count to finish.
    Object.assign(sim, { rate: 2000, count: total });
    Object.assign(byType('file'), { filename: deadLetters, filenameType: 'str' });
    Object.assign(byType('timescale-connection'), { host: url.hostname, port: url.port, database: 'fault_example_outage', credentials: { user: decodeURIComponent(url.username), password: decodeURIComponent(url.password) } });
    red = await startNodeRed();
    const proc = red;
    const of = async (node: Record<string, unknown>): Promise<Counters> => (await stats(proc))[node.id as string];
    await deploy(proc, example);
    await waitUntil('10,000 rows written', async () => (await of(sink))?.written >= 10_000, 60_000);
    await server.stop();
    await delay(75_000);
    const during = await stats(proc);
    assert.equal(String(during[sink.id as string].state), 'down');
    assert.equal(during[sink.id as string].deadLetteredEvents, 0, 'nothing dead-lettered during the outage');
    assert.equal(during[buffer.id as string].unacknowledged, 0, "the buffer's 60 s ack timeout spared what the sink holds");
    assertCountsAddUp(during[buffer.id as string]);
    await server.start();
    await waitUntil('the simulator to finish', async () => (await of(sim))?.sentEvents === total, 180_000);
    await waitForDrain(proc, 180_000, { buffer: buffer.id as string, sink: sink.id as string });
    const s = await stats(proc);
    const b = s[buffer.id as string];
    const k = s[sink.id as string];
    const bt = s[batcher.id as string];
    assertCountsAddUp(b, { drained: true });
    assert.equal(b.received, total);
    assert.ok(b.dropped > 0, 'the outage overflowed the ring');
    assert.equal(k.deadLetteredEvents, 0);
    assert.equal(fs.existsSync(deadLetters) ? fs.readFileSync(deadLetters, 'utf8') : '', '', 'the dead-letter output stayed empty');
    assert.equal(bt.batchesUnacknowledged, 0);
    assert.equal(b.delivered, k.written + k.duplicates, 'buffer delivered = sink written + duplicates');
    const t = await checkTable(url.toString(), 'telemetry');
    assert.equal(t.rows, total - b.dropped, 'rows = received - dropped');
    assertTable(t, b.dropped);
    assert.match(proc.output(), /unavailable/);
    assert.match(proc.output(), /dropping events: the buffer is full/);
    assert.match(proc.output(), /is back after 1m1\ds/);
    this.test!.title += ` [${t.rows} rows, ${b.dropped} dropped = ${t.gaps} gaps, ${k.retries} probes, 0 dead-lettered]`;
  });

  it('a wrong password: misconfigured, nothing thrown away while it is wrong; fixed and deployed, every event written once', async function () {
    const url = await database('fault_wrong_password');
    const table = 'wrong_password';
    const total = 20_000;
    const wrong = new URL(url);
    wrong.password = 'not-the-password';
    red = await startNodeRed();
    const proc = red;
    await deploy(proc, pipelineFlow({ databaseUrl: wrong.toString(), table, rate: 2000, count: total }));
    await waitUntil('the sink to name the misconfiguration', async () => String((await stats(proc))[IDS.sink]?.state) === 'misconfigured', 60_000);
    await delay(4000);
    const during = await stats(proc);
    assert.equal(String(during[IDS.sink].code), '28P01');
    assert.equal(during[IDS.sink].deadLetteredEvents, 0);
    assert.equal(during[IDS.buffer].failed + during[IDS.buffer].unacknowledged, 0, 'the buffer holds, nothing given up');
    assert.ok(during[IDS.buffer].depth + during[IDS.buffer].inFlight > 0);
    // The user fixes the password and deploys (modified nodes: the connection and the sink restart).
    await deploy(proc, pipelineFlow({ databaseUrl: url, table, rate: 2000, count: total }), 'nodes');
    const { t } = await finishCounted(proc, url, table, total);
    assert.equal(t.rows, total);
    assert.equal((proc.output().match(/refuses this configuration/g) ?? []).length, 1, 'one error for the change of state');
    this.test!.title += ` [${t.rows} rows, 0 gaps]`;
  });

  it('PostgreSQL frozen (SIGSTOP) for 20 s: statement and connect timeouts fire, nothing hangs', async function () {
    const url = await database('fault_pg_freeze');
    const table = 'pg_freeze';
    const total = 150_000;
    red = await startNodeRed();
    const proc = red;
    const flow = pipelineFlow({ databaseUrl: url, table, rate: 5000, count: total, capacity: 200_000, window: 2000, connection: { connectTimeout: '2000', statementTimeout: '2000' } });
    await deploy(proc, flow);
    await waitUntil('10,000 rows written', async () => (await stats(proc))[IDS.sink]?.written >= 10_000, 60_000);
    server.freeze();
    const frozenAt = Date.now();
    try {
      // While the server is still frozen the sink must have given up on the hung statements and be
      // retrying (a client without its own timeout would wait on the frozen socket for ever).
      await waitUntil('the sink to retry while the server is frozen', async () => {
        const s = (await stats(proc))[IDS.sink];
        return String(s.state) === 'down' && s.retries > 0;
      }, 18_000);
      const frozen = await stats(proc);
      assertCountsAddUp(frozen[IDS.buffer]);
      await delay(Math.max(0, 20_000 - (Date.now() - frozenAt)));
    } finally {
      server.thaw();
    }
    const { s, t } = await finishCounted(proc, url, table, total);
    assert.equal(s[IDS.buffer].dropped, 0, 'the ring was big enough for the whole freeze');
    assert.equal(t.gaps, 0);
    assert.match(proc.output(), /unavailable \((QUERY_TIMEOUT|CONN_TIMEOUT|57014)/);
    this.test!.title += ` [${t.rows} rows, 0 gaps, ${s[IDS.sink].retries} retries]`;
  });

  it('connections reset and left half-open by a TCP proxy: retried, nothing lost, nothing twice', async function () {
    const url = await database('fault_proxy');
    const table = 'proxy_cut';
    const total = 120_000;
    proxy = await startTcpProxy(server.port);
    const p = proxy;
    red = await startNodeRed();
    const proc = red;
    const flow = pipelineFlow({ databaseUrl: url, table, rate: 5000, count: total, capacity: 200_000, window: 2000, connection: { port: String(p.port), connectTimeout: '2000', statementTimeout: '2000' } });
    await deploy(proc, flow);
    // Three resets, each once more rows are written.
    for (const rows of [5000, 15_000, 25_000]) {
      await waitUntil(`${rows} rows written`, async () => (await stats(proc))[IDS.sink]?.written >= rows, 60_000);
      p.resetAll();
    }
    // Then 8 s of half-open connections: open sockets and new connects that never answer.
    await waitUntil('35,000 rows written', async () => (await stats(proc))[IDS.sink]?.written >= 35_000, 60_000);
    p.blackhole();
    await waitUntil('the sink to retry through the half-open connections', async () => (await stats(proc))[IDS.sink].retries > 0 && String((await stats(proc))[IDS.sink].state) === 'down', 20_000);
    await delay(8000);
    p.heal();
    const { s, t } = await finishCounted(proc, url, table, total);
    assert.equal(s[IDS.buffer].dropped, 0);
    assert.ok(p.accepted > 4, 'the pool reconnected after the cuts');
    this.test!.title += ` [${t.rows} rows, 0 gaps, ${s[IDS.sink].retries} retries, ${s[IDS.sink].duplicates} duplicate rows skipped]`;
  });

  it('Node-RED stopped with SIGTERM under load: everything unconfirmed is spooled and written after the restart', async function () {
    const url = await database('fault_sigterm');
    const table = 'nr_sigterm';
    const userDir = makeUserDir();
    red = await startNodeRed({ userDir });
    let proc = red;
    await deploy(proc, pipelineFlow({ databaseUrl: url, table, rate: 10_000, window: 2000 }));
    await waitUntil('30,000 events in', async () => (await stats(proc))[IDS.buffer]?.received >= 30_000, 60_000);
    assert.equal(await proc.stop('SIGTERM'), 0, 'Node-RED exits cleanly on SIGTERM');
    const spooled = Number(/spooled (\d+) unconfirmed messages/.exec(proc.output())?.[1] ?? 0);

    const flowsFile = path.join(userDir, 'flows.json');
    const flows = JSON.parse(fs.readFileSync(flowsFile, 'utf8')) as { id: string; autoStart?: boolean }[];
    for (const n of flows) if (n.id === IDS.sim) n.autoStart = false;
    fs.writeFileSync(flowsFile, JSON.stringify(flows));
    red = await startNodeRed({ userDir });
    proc = red;
    const s = await waitForDrain(proc, 120_000);
    const b = s[IDS.buffer];
    assert.equal(b.restored, spooled, 'every spooled message came back');
    assert.ok(b.received >= 30_000, 'the counters are totals: they go on from before the restart');
    assertCountsAddUp(b, { drained: true });
    const t = await checkTable(url, table);
    assert.equal(t.rows, b.received, 'every event received, before and after the restart, is a row');
    assert.equal(t.sumMaxSeq, t.rows, 'every stamped event is in the table');
    assertTable(t, 0);
    this.test!.title += ` [${t.rows} rows, ${spooled} spooled and restored, 0 gaps]`;
  });

  it('Node-RED killed with SIGKILL under load: loses at most what the buffer held in memory (ring + window)', async function () {
    const url = await database('fault_sigkill');
    const table = 'nr_sigkill';
    const capacity = 20_000;
    const window = 2000;
    const userDir = makeUserDir();
    red = await startNodeRed({ userDir });
    let proc = red;
    await deploy(proc, pipelineFlow({ databaseUrl: url, table, rate: 10_000, capacity, window }));
    await waitUntil('30,000 events in and 10,000 rows written', async () => {
      const s = await stats(proc);
      return s[IDS.buffer]?.received >= 30_000 && s[IDS.sink]?.written >= 10_000;
    }, 60_000);
    const last = await stats(proc);
    assert.equal(await proc.stop('SIGKILL'), null);
    assert.doesNotMatch(proc.output(), /spooled \d+/, 'a killed process spools nothing');

    const flowsFile = path.join(userDir, 'flows.json');
    const flows = JSON.parse(fs.readFileSync(flowsFile, 'utf8')) as { id: string; autoStart?: boolean }[];
    for (const n of flows) if (n.id === IDS.sim) n.autoStart = false;
    fs.writeFileSync(flowsFile, JSON.stringify(flows));
    red = await startNodeRed({ userDir });
    proc = red;
    const after = await waitForDrain(proc, 60_000);
    assert.equal(after[IDS.buffer].restored, 0, 'nothing to restore after a kill');

    const t = await checkTable(url, table);
    const b = last[IDS.buffer];
    // What a SIGKILL can lose: the buffer's memory (ring <= capacity, in flight <= window) plus what
    // arrived between our last look and the kill. What was committed before stays.
    assert.ok(t.rows >= last[IDS.sink].written, `every row confirmed before the kill is there (${t.rows} >= ${last[IDS.sink].written})`);
    assert.ok(t.rows >= b.received - b.dropped - (capacity + window), `rows ${t.rows} >= received ${b.received} - dropped ${b.dropped} - (capacity + window)`);
    assert.ok(t.gaps <= capacity + window, `missing sequence numbers ${t.gaps} <= capacity + window`);
    assert.equal(t.distinctKeys, t.rows, 'no duplicate rows');
    assert.equal(t.distinctSourceSeq, t.rows, 'no sequence number twice');
    this.test!.title += ` [${t.rows} rows of ${b.received}+ received; ${Math.max(0, b.received - t.rows)}+ lost with the process, bound ${capacity + window}]`;
  });

  it('six full and modified-nodes redeploys in a row under load: nothing lost, nothing twice', async function () {
    const url = await database('fault_redeploys');
    const table = 'redeploys';
    const base: PipelineOptions = { databaseUrl: url, table, rate: 10_000, window: 2000 };
    red = await startNodeRed();
    const proc = red;
    await deploy(proc, pipelineFlow(base));
    let dropped = 0;
    let spoolErrors = 0;
    const variants: [Partial<PipelineOptions>, 'full' | 'nodes'][] = [
      [{ batchSize: 500 }, 'full'],
      [{ batchSize: 500, maxAge: 100 }, 'nodes'],
      [{ batchSize: 800, maxAge: 100 }, 'nodes'],
      [{ batchSize: 800, maxAge: 100, poolSize: 2 }, 'full'],
      [{ batchSize: 300, maxAge: 50, poolSize: 2 }, 'nodes'],
      [{ batchSize: 300, maxAge: 50, poolSize: 3 }, 'full'],
    ];
    const received = async (): Promise<number | undefined> => (await stats(proc))[IDS.buffer]?.received;
    // Just after a deploy the new buffer may not be in the stats yet: wait for it, or "5,000 more"
    // would count from zero and pass at once.
    const start = async (): Promise<number> => {
      let n: number | undefined;
      await waitUntil('the buffer in the stats', async () => (n = await received()) !== undefined, 60_000);
      return n!;
    };
    for (const [change, type] of variants) {
      const from = await start();
      await waitUntil('5,000 more events in', async () => ((await received()) ?? 0) >= from + 5000, 60_000);
      const s = await stats(proc);
      assertCountsAddUp(s[IDS.buffer]);
      dropped += s[IDS.buffer].dropped;
      spoolErrors += s[IDS.buffer].spoolErrors;
      await deploy(proc, pipelineFlow({ ...base, ...change }), type);
    }
    const from = await start();
    await waitUntil('5,000 more events in', async () => ((await received()) ?? 0) >= from + 5000, 60_000);
    const last = await stats(proc);
    dropped += last[IDS.buffer].dropped;
    spoolErrors += last[IDS.buffer].spoolErrors;
    await deploy(proc, pipelineFlow({ ...base, autoStart: false }));
    const s = await waitForDrain(proc, 120_000);
    assertCountsAddUp(s[IDS.buffer], { drained: true });
    dropped += s[IDS.buffer].dropped;
    spoolErrors += s[IDS.buffer].spoolErrors;
    assert.equal(dropped, 0);
    assert.equal(spoolErrors, 0);
    const t = await checkTable(url, table);
    assert.ok(t.rows >= 30_000, `${t.rows} rows; buffer ${JSON.stringify(s[IDS.buffer])}`);
    assert.equal(t.sumMaxSeq, t.rows, 'every stamped event is in the table');
    assertTable(t, 0);
    assert.equal(t.rows, s[IDS.buffer].received, 'the buffer counted, across the deploys, every event in the table');
    assert.doesNotMatch(proc.output(), /could not spool|could not restore/);
    this.test!.title += ` [${t.rows} rows, 0 gaps, 0 duplicates]`;
  });

  it('modified-nodes deploys that restart only the sink, then only the batcher, while batches wait: nothing lost', async function () {
    // A message sent to a node while a deploy replaces it finds no receiver and vanishes without a
    // completion: nothing may be sent to it then, and whatever was sent to it and never completed
    // must be sent again once the new node is there.
    const { proc, url, table, total, options } = await slowLine('partial_deploys');
    // The same flow: the connection node carries credentials, so Node-RED counts it (and the sink
    // that uses it) as changed; buffer and batcher keep running.
    let s = await stats(proc);
    assert.ok(s[IDS.batcher].waitingBatches > 0, `batches wait behind the open ones: ${JSON.stringify(s[IDS.batcher])}`);
    await deploy(proc, pipelineFlow(options), 'nodes');
    // Without credentials the connection is left as it is: only the batcher (a new batch size) restarts.
    await waitUntil('6,000 rows written', async () => (await stats(proc))[IDS.sink]?.written >= 6000, 60_000);
    await deploy(proc, withoutCredentials(pipelineFlow({ ...options, batchSize: 250 })), 'nodes');
    await waitUntil('the simulator to finish', async () => (await stats(proc))[IDS.sim]?.sentEvents === total, 60_000);
    // 24,000 events at 1,600 rows/s: drained well within 60 s, unless something waits for the
    // buffer's 120 s ack timeout.
    const finishedAt = Date.now();
    s = await waitForDrain(proc, 60_000);
    const b = s[IDS.buffer];
    assert.equal(b.received, total);
    assertCountsAddUp(b, { drained: true });
    assert.equal(b.delivered, total);
    const t = await checkTable(url, table);
    assert.equal(t.rows, total, 'every event is in the table');
    assertTable(t, 0);
    this.test!.title += ` [${t.rows} rows, 0 gaps, 0 duplicates, drained in ${Math.round((Date.now() - finishedAt) / 1000)} s]`;
  });

  it('a modified-nodes deploy that replaces only the buffer while batches wait: spooled, restored, every event once', async function () {
    // The batcher and the sink keep running and write what the old buffer had released; the old
    // buffer spools the same events as unconfirmed, and the new one sends them again: the unique
    // key skips the second copy. The simulator sends nothing while the deploy replaces the buffer.
    const { proc, url, table, total, options } = await slowLine('buffer_deploy');
    await deploy(proc, withoutCredentials(pipelineFlow({ ...options, capacity: 100_001 })), 'nodes');
    await waitUntil('the simulator to finish', async () => (await stats(proc))[IDS.sim]?.sentEvents === total, 60_000);
    const s = await waitForDrain(proc, 60_000);
    const b = s[IDS.buffer];
    assert.equal(b.capacity, 100_001, 'the buffer was replaced');
    assert.ok(b.restored > 0, `the new buffer restored what the old one spooled: ${JSON.stringify(b)}`);
    assertCountsAddUp(b, { drained: true });
    assert.equal(b.spoolErrors, 0);
    const t = await checkTable(url, table);
    assert.equal(t.rows, total, 'every event the simulator sent is in the table');
    assert.equal(t.sumMaxSeq, total, 'sequence numbers continued across the new buffer');
    assertTable(t, 0);
    this.test!.title += ` [${t.rows} rows, 0 gaps, 0 duplicate rows; ${b.restored} events restored, ${s[IDS.sink].duplicates} skipped as already written]`;
  });

  it('spool directory not usable: a clear error, counted, no crash, and the loss is exactly what the log says', async function () {
    const url = await database('fault_spool_dir');
    const table = 'spool_dir';
    const total = 30_000;
    // A slow table (every INSERT waits 40 ms) so the buffer still holds events when Node-RED stops.
    await createSlowTable(url, table);
    // A regular file where the directory should be: neither restore nor spool can work (ENOTDIR /
    // EEXIST), whatever the user the tests run as (root ignores permission bits, not file types).
    const notADir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'telemetry-spool-file-')), 'spool');
    fs.writeFileSync(notADir, 'not a directory');
    const flow = pipelineFlow({ databaseUrl: url, table, rate: 10_000, count: total, window: 500, batchSize: 100, maxAge: 50, maxConcurrent: 1, poolSize: 1 })
      .map((n) => ((n as { id: string }).id === IDS.buffer ? { ...n, spoolDir: notADir } : n));
    red = await startNodeRed();
    const proc = red;
    await deploy(proc, flow);
    await waitUntil('the simulator to finish', async () => (await stats(proc))[IDS.sim]?.sentEvents === total, 60_000);
    const s = await stats(proc);
    assert.equal(s[IDS.buffer].spoolErrors, 1, 'the failed restore is counted');
    assert.ok(s[IDS.buffer].depth > 0, 'the buffer still holds events');
    assertCountsAddUp(s[IDS.buffer]);
    assert.match(proc.output(), /could not restore the spool .*ENOTDIR/);
    assert.equal(await proc.stop('SIGTERM'), 0, 'Node-RED still exits cleanly');
    const m = /could not spool (\d+) unconfirmed messages .*(ENOTDIR|EEXIST)/.exec(proc.output());
    assert.ok(m, 'the failed spool is reported with its count');
    const lost = Number(m[1]);
    const t = await checkTable(url, table);
    // Every event received is either in the table or in the error message. The message counts all
    // that was unconfirmed at close, and the sink's close may still commit some of what was in
    // flight (at most the window, 500): so the report may overstate the loss by that much, never understate it.
    assert.ok(t.rows + lost >= total, `rows ${t.rows} + events reported not spooled ${lost} >= received ${total}`);
    assert.ok(t.rows + lost <= total + 500, `rows ${t.rows} + events reported not spooled ${lost} <= received ${total} + window`);
    assert.equal(t.distinctKeys, t.rows, 'no duplicate rows');
    assert.equal(t.gaps, 0, 'what was lost is the newest of each source, not holes');
    fs.rmSync(path.dirname(notADir), { recursive: true, force: true });
    this.test!.title += ` [${total} received: ${t.rows} rows, ${total - t.rows} missing, ${lost} reported not spooled]`;
  });

  it('disk full while spooling (a 64 KiB tmpfs): a clear error with the count, no crash, no half file left', async function () {
    const mountPoint = fs.mkdtempSync(path.join(os.tmpdir(), 'telemetry-full-'));
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', mountPoint], { stdio: 'ignore' });
    } catch {
      fs.rmSync(mountPoint, { recursive: true, force: true });
      this.skip(); // needs root and a kernel that allows it
    }
    try {
      const url = await database('fault_disk_full');
      const table = 'disk_full';
      // The database is unreachable (a port nobody listens on) so the ring holds everything.
      const flow = pipelineFlow({ databaseUrl: url, table, rate: 10_000, window: 2000, buffer: { spoolDir: mountPoint }, connection: { port: '1', connectTimeout: '1000' } });
      red = await startNodeRed();
      const proc = red;
      await deploy(proc, flow);
      await waitUntil('20,000 events in', async () => (await stats(proc))[IDS.buffer]?.received >= 20_000, 60_000);
      // A full deploy closes the buffer: 20,000+ messages do not fit in 64 KiB.
      await deploy(proc, pipelineFlow({ databaseUrl: url, table, rate: 10_000, window: 2000, autoStart: false, buffer: { spoolDir: mountPoint } }));
      await waitUntil('the spool error', async () => /could not spool \d+ unconfirmed messages/.test(proc.output()), 30_000);
      assert.match(proc.output(), /could not spool (\d+) unconfirmed messages .*ENOSPC/);
      assert.deepEqual(fs.readdirSync(mountPoint).filter((f) => /\.jsonl|\.tmp$/.test(f)), [], 'no partial spool file left to fill the disk');
      // Still alive and answering, with the new buffer running.
      await waitUntil('the new buffer', async () => (await stats(proc))[IDS.buffer] !== undefined, 60_000);
      const s = await stats(proc);
      assertCountsAddUp(s[IDS.buffer]);
      assert.equal((await proc.request('GET', '/settings')).status, 200);
    } finally {
      execFileSync('umount', [mountPoint], { stdio: 'ignore' });
      fs.rmSync(mountPoint, { recursive: true, force: true });
    }
  });
});
