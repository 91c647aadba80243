import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as http from 'http';
import type { AddressInfo } from 'net';
import * as path from 'path';
import { makeUserDir, NodeRedProcess, startNodeRed } from './support/node-red-process';
import { checkTable, createSlowTable, deploy, IDS, nodeStats, pipelineFlow, TAB, waitForDrain } from './support/pipeline';
import { createTestDatabase } from './support/postgres';
import { waitUntil } from './support/wait';

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
    // The same table the sink would create, made slow for real: every INSERT waits 40 ms.
    await createSlowTable(url, table);

    const total = 20_000;
    red = await startNodeRed();
    await deploy(red, pipelineFlow({ databaseUrl: url, table, rate: 10_000, count: total, capacity: 2000, window: 500, batchSize: 100, maxAge: 50, maxConcurrent: 1, poolSize: 1 }));
    await waitUntil('the simulator to finish', async () => (await nodeStats(red as NodeRedProcess))[IDS.sim]?.sentEvents === total, 60_000);
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

    // Operators see the same numbers in Prometheus format.
    const metrics = await red.request('GET', '/telemetry/metrics');
    assert.equal(metrics.status, 200);
    assert.match(metrics.body, /# TYPE telemetry_telemetry_buffer_dropped_total counter/);
    assert.ok(metrics.body.includes(`telemetry_telemetry_buffer_dropped_total{node_id="${IDS.buffer}",node_name="",flow="e2e0tab000000001"} ${b.dropped}\n`));
    assert.ok(metrics.body.includes(`telemetry_timescale_sink_written_total{node_id="${IDS.sink}",node_name="",flow="e2e0tab000000001"} ${s.written}\n`));
  });

  it('full and modified-nodes deploys and disabling the flow in the middle of a stream lose nothing and write nothing twice', async function () {
    const url = await createTestDatabase('e2e_deploy');
    const table = 'deploy_line';
    // A ring far larger than the events of the test: nothing may be dropped, even on a slow machine.
    const options = { databaseUrl: url, table, rate: 10_000, capacity: 2_000_000 };
    red = await startNodeRed();
    const proc = red;
    await deploy(proc, pipelineFlow(options));
    // The simulator is restarted by a full deploy (its count starts again), not by a modified-nodes one.
    const sent = async (): Promise<number> => (await nodeStats(proc))[IDS.sim]?.sentEvents ?? 0;
    await waitUntil('20,000 events sent', async () => (await sent()) >= 20_000, 60_000);

    // A full deploy restarts every node; the buffer spools and restores what is unconfirmed.
    await deploy(proc, pipelineFlow({ ...options, batchSize: 500 }));
    await waitUntil('20,000 more events sent', async () => (await sent()) >= 20_000, 60_000);
    // A modified-nodes deploy restarts only the batcher and the sink; the buffer stays and resends.
    await deploy(proc, pipelineFlow({ ...options, batchSize: 500, maxAge: 100 }), 'nodes');
    await waitUntil('15,000 more events sent', async () => (await sent()) >= 35_000, 60_000);
    // Disabling the flow closes every node (the buffer spools); enabling it again restores.
    const disabled = pipelineFlow({ ...options, batchSize: 500, maxAge: 100 }).map((n) => ((n as { id: string }).id === TAB ? { ...n, disabled: true } : n));
    await deploy(proc, disabled, 'flows');
    await waitUntil('the flow to stop', async () => (await nodeStats(proc))[IDS.buffer] === undefined, 60_000);
    // Enable it with the line stopped, and let everything drain.
    await deploy(proc, pipelineFlow({ ...options, batchSize: 500, maxAge: 100, autoStart: false }), 'flows');
    const stats = await waitForDrain(proc, 120_000);

    const t = await checkTable(url, table);
    assert.ok(t.rows >= 50_000, `at least 50,000 events went through (${t.rows})`);
    assert.equal(t.distinctKeys, t.rows, 'no duplicate rows');
    assert.equal(t.distinctSourceSeq, t.rows, 'no sequence number twice');
    assert.equal(t.gaps, 0, 'no sequence number missing: every event the buffer stamped was written');
    assert.equal(t.sumMaxSeq, t.rows);
    assert.equal(stats[IDS.buffer].dropped, 0);
    assert.equal(stats[IDS.buffer].failed, 0);
    assert.doesNotMatch(proc.output(), /could not spool|could not restore|\[error\]/);
  });

  it('Node-RED stopped with SIGTERM under load and started again: nothing lost, nothing twice', async function () {
    const url = await createTestDatabase('e2e_sigterm');
    const table = 'sigterm_line';
    const userDir = makeUserDir();
    red = await startNodeRed({ userDir });
    await deploy(red, pipelineFlow({ databaseUrl: url, table, rate: 10_000, capacity: 2_000_000 }));
    const proc = red;
    await waitUntil('30,000 events in', async () => ((await nodeStats(proc))[IDS.buffer]?.received ?? 0) >= 30_000, 60_000);
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

  it('gives backpressure to a node from another package that completes its messages (core HTTP request)', async function () {
    // A slow web service: each request is answered after 20 ms; we record how many were open at once.
    let open = 0;
    let maxOpen = 0;
    const bodies: number[] = [];
    const server = http.createServer((req, res) => {
      open++;
      maxOpen = Math.max(maxOpen, open);
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        bodies.push(JSON.parse(body).seq);
        setTimeout(() => {
          open--;
          res.end('ok');
        }, 20);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    try {
      const total = 2000;
      red = await startNodeRed();
      await deploy(red, [
        { id: TAB, type: 'tab', label: 'http' },
        { id: 'h0sim00000000001', type: 'telemetry-simulator', z: TAB, sources: 1, mixSample: 100, mixDetection: 0, mixCounter: 0, rate: 2000, count: total, topicPrefix: 'web', wires: [['h0buf00000000001']] },
        { id: 'h0buf00000000001', type: 'telemetry-buffer', z: TAB, capacity: 200, window: 5, statsInterval: 0, wires: [['h0req00000000001'], []] },
        { id: 'h0req00000000001', type: 'http request', z: TAB, method: 'POST', ret: 'txt', paytoqs: 'ignore', url: `http://127.0.0.1:${port}/reading`, persist: false, wires: [[]] },
      ]);
      const proc = red;
      await waitUntil('the simulator to finish and the buffer to drain', async () => {
        const st = (await nodeStats(proc))['h0buf00000000001'];
        const sim = (await nodeStats(proc))['h0sim00000000001'];
        return sim?.sentEvents === total && st?.depth === 0 && st?.inFlight === 0;
      }, 60_000).catch(async (err) => {
        throw new Error(`${err.message}: ${JSON.stringify(await nodeStats(proc))} open=${open} served=${bodies.length}\n${proc.output().slice(-2000)}`);
      });
      const b = (await nodeStats(proc))['h0buf00000000001'];
      assert.ok(maxOpen <= 5, `at most the window of 5 requests were open at once (saw ${maxOpen})`);
      assert.ok(b.dropped > 0, 'the slow service made the ring overflow');
      assert.equal(b.received, total);
      assert.equal(b.delivered + b.dropped, total);
      assert.equal(bodies.length, b.delivered, 'every delivered event reached the service once');
      assert.equal(new Set(bodies).size, bodies.length);
    } finally {
      server.close();
    }
  });
});

