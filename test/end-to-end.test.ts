import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { Client } from 'pg';
import { makeUserDir, NodeRedProcess, startNodeRed } from './support/node-red-process';
import { checkTable, deploy, IDS, nodeStats, pipelineFlow, waitForDrain, waitUntil } from './support/pipeline';
import { createTestDatabase } from './support/postgres';

/**
 * The mission as a user sees it: Node-RED 4 as a real process with the package installed, the
 * whole pipeline deployed through the admin API, a real PostgreSQL. Every test checks the table
 * itself: no duplicate rows, and sequence numbers that prove what reached the buffer was written.
 */
describe('end to end: a real Node-RED process writing to a real PostgreSQL', function () {
  this.timeout(240_000);
  let red: NodeRedProcess | undefined;

  afterEach(async function () {
    if (red !== undefined) {
      await red.stop('SIGKILL');
      fs.rmSync(red.userDir, { recursive: true, force: true });
      red = undefined;
    }
  });

  it('with a database slower than the line, the buffer drops exactly by policy and the counters add up', async function () {
    const url = await createTestDatabase('e2e_slow');
    const table = 'slow_line';
    const client = new Client({ connectionString: url });
    await client.connect();
    // The same table the sink would create, made slow for real: every INSERT waits 40 ms.
    await client.query(`CREATE TABLE ${table} (time timestamptz NOT NULL, source text NOT NULL, kind text, value double precision, seq bigint NOT NULL DEFAULT 0, extra jsonb)`);
    await client.query(`CREATE UNIQUE INDEX ${table}_key ON ${table} (source, time, seq)`);
    await client.query(`CREATE FUNCTION slow_insert() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.04); RETURN NULL; END $$`);
    await client.query(`CREATE TRIGGER slow BEFORE INSERT ON ${table} FOR EACH STATEMENT EXECUTE FUNCTION slow_insert()`);
    await client.end();

    const total = 20_000;
    red = await startNodeRed();
    await deploy(red, pipelineFlow({ databaseUrl: url, table, rate: 10_000, count: total, capacity: 2000, window: 500, batchSize: 100, maxAge: 50, maxConcurrent: 1, poolSize: 1 }));
    await waitUntil('the simulator to finish', async () => (await nodeStats(red as NodeRedProcess))[IDS.sim]?.sentEvents === total);
    const stats = await waitForDrain(red, 120_000);
    const b = stats[IDS.buffer];
    const s = stats[IDS.sink];

    assert.equal(b.received, total);
    assert.ok(b.dropped > 1000, `the ring overflowed (dropped ${b.dropped})`);
    assert.equal(b.droppedOverflow, b.dropped);
    assert.equal(b.highWater, 2000);
    assert.equal(b.failed, 0);
    assert.equal(b.unacknowledged, 0);
    assert.equal(b.received, b.delivered + b.dropped, 'received = delivered + dropped once drained');

    const t = await checkTable(url, table);
    assert.equal(t.rows, total - b.dropped, 'rows = received - dropped');
    assert.equal(t.distinctKeys, t.rows, 'no duplicate rows');
    assert.equal(t.distinctSourceSeq, t.rows);
    // drop-oldest keeps the newest events, so each source's last number is in the table and the
    // numbers missing below it are exactly the drops.
    assert.equal(t.sumMaxSeq, total);
    assert.equal(t.gaps, b.dropped, 'sequence gaps = dropped');
    assert.equal(s.written, t.rows);
    assert.equal(s.duplicates, 0);
    assert.equal(s.rejected, 0);
  });

  it('full and modified-nodes deploys in the middle of a stream lose nothing and write nothing twice', async function () {
    const url = await createTestDatabase('e2e_deploy');
    const table = 'deploy_line';
    const options = { databaseUrl: url, table, rate: 10_000 };
    red = await startNodeRed();
    const proc = red;
    await deploy(proc, pipelineFlow(options));
    const received = async (): Promise<number> => (await nodeStats(proc))[IDS.buffer]?.received ?? 0;
    await waitUntil('20,000 events in', async () => (await received()) >= 20_000);

    // A full deploy restarts every node; the buffer spools and restores what is unconfirmed.
    await deploy(proc, pipelineFlow({ ...options, batchSize: 500 }));
    await waitUntil('20,000 more events in', async () => (await received()) >= 20_000);
    // A modified-nodes deploy restarts only the batcher and the sink; the buffer stays and resends.
    await deploy(proc, pipelineFlow({ ...options, batchSize: 500, maxAge: 100 }), 'nodes');
    await waitUntil('10,000 more events in', async () => (await nodeStats(proc))[IDS.batcher]?.receivedEvents >= 10_000);
    // Stop the line (another full deploy) and let everything drain.
    await deploy(proc, pipelineFlow({ ...options, batchSize: 500, maxAge: 100, autoStart: false }));
    const stats = await waitForDrain(proc, 120_000);

    const t = await checkTable(url, table);
    assert.ok(t.rows >= 50_000, `at least 50,000 events went through (${t.rows})`);
    assert.equal(t.distinctKeys, t.rows, 'no duplicate rows');
    assert.equal(t.distinctSourceSeq, t.rows, 'no sequence number twice');
    assert.equal(t.gaps, 0, 'no sequence number missing: every event the buffer stamped was written');
    assert.equal(t.sumMaxSeq, t.rows);
    assert.equal(stats[IDS.buffer].dropped, 0);
    assert.doesNotMatch(proc.output(), /could not spool|could not restore/);
  });

  it('Node-RED stopped with SIGTERM under load and started again: nothing lost, nothing twice', async function () {
    const url = await createTestDatabase('e2e_sigterm');
    const table = 'sigterm_line';
    const userDir = makeUserDir();
    red = await startNodeRed({ userDir });
    await deploy(red, pipelineFlow({ databaseUrl: url, table, rate: 10_000 }));
    const proc = red;
    await waitUntil('30,000 events in', async () => ((await nodeStats(proc))[IDS.buffer]?.received ?? 0) >= 30_000);
    assert.equal(await proc.stop('SIGTERM'), 0, 'Node-RED exits cleanly on SIGTERM');
    assert.match(proc.output(), /spooled \d+ unconfirmed messages/);

    // Start again with the line stopped, so the table ends with exactly what was received.
    const flowsFile = path.join(userDir, 'flows.json');
    const flows = JSON.parse(fs.readFileSync(flowsFile, 'utf8')) as { id: string; autoStart?: boolean }[];
    for (const n of flows) if (n.id === IDS.sim) n.autoStart = false;
    fs.writeFileSync(flowsFile, JSON.stringify(flows));
    red = await startNodeRed({ userDir });
    const stats = await waitForDrain(red, 120_000);
    assert.ok(stats[IDS.buffer].restored > 0, 'the spool came back');

    const t = await checkTable(url, table);
    assert.ok(t.rows >= 30_000, `at least 30,000 rows (${t.rows})`);
    assert.equal(t.distinctKeys, t.rows, 'no duplicate rows');
    assert.equal(t.distinctSourceSeq, t.rows);
    assert.equal(t.gaps, 0, 'no sequence number missing');
    assert.equal(t.sumMaxSeq, t.rows);
  });
});
