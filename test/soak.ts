/**
 * Soak run (`npm run soak`, not part of CI): the simulated line in a real Node-RED process writing
 * to a real PostgreSQL, first flat out for a short while to measure the pipeline's maximum, then at
 * 80% of that for SOAK_MINUTES (default 30), printing Node-RED's memory (heap used, RSS) and the
 * counters every SOAK_EVERY seconds (default 30). It ends by checking the table: no duplicate rows,
 * sequence gaps = dropped. Exit code 1 when the counters do not add up.
 *
 *   npm run soak                       30 minutes
 *   SOAK_MINUTES=10 npm run soak       shorter
 *   SOAK_REDEPLOY_EVERY=3 npm run soak  also a modified-nodes deploy every 3 minutes under load, which
 *                                      restarts the connection and the sink (their credentials are
 *                                      sent again) while buffer and batcher keep running
 */
import * as fs from 'fs';
import { startNodeRed } from './support/node-red-process';
import { checkTable, deploy, IDS, nodeStats, pipelineFlow, waitForDrain } from './support/pipeline';
import { createTestDatabase, getTestServer, stopTestServer } from './support/postgres';
import { waitUntil } from './support/wait';

const minutes = Number(process.env.SOAK_MINUTES ?? 30);
const everySeconds = Number(process.env.SOAK_EVERY ?? 30);
const measureSeconds = Number(process.env.SOAK_MEASURE_SECONDS ?? 30);
// Far above what the pipeline takes, so the probe measures the pipeline, not its own producer.
const probeRate = Number(process.env.SOAK_PROBE_RATE ?? 80_000);
const redeployEvery = Number(process.env.SOAK_REDEPLOY_EVERY ?? 0);

const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const mb = (bytes: number): string => (bytes / 1048576).toFixed(1);

async function main(): Promise<void> {
  await getTestServer();
  const url = await createTestDatabase('soak');
  // Node-RED's own process reports its memory through a tiny admin middleware (a function value in
  // settings.js runs inside the Node-RED process).
  // With --expose-gc (NODE_OPTIONS below) each sample is also taken after a full collection, so a
  // leak shows as a rising floor rather than hiding in the sawtooth of uncollected garbage.
  const settings = `httpAdminMiddleware: function (req, res, next) {
    if (req.url !== '/soak/memory') return next();
    const before = process.memoryUsage();
    if (typeof global.gc === 'function') global.gc();
    res.json({ ...before, heapAfterGc: process.memoryUsage().heapUsed });
  },`;
  const env = { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --expose-gc`.trim() };
  // 1. The maximum, in a Node-RED of its own (so its spool and sequence numbers stay out of the
  //    soak): a simulator far faster than the database, drop-newest so the ring stays full and the
  //    sink always has work; the sink's written rate is the pipeline's ceiling.
  let max = Number(process.env.SOAK_MAX_RATE ?? 0);
  // SOAK_MAX_RATE=<rows/s> skips the measurement (a maximum measured before on this machine).
  if (max === 0) {
    const probe = await startNodeRed({ settings, env });
    try {
      await deploy(probe, pipelineFlow({ databaseUrl: url, table: 'soak_measure', rate: probeRate, capacity: 200_000, window: 2000, dropPolicy: 'drop-newest' }));
      await waitUntil('the probe to write', async () => ((await nodeStats(probe))[IDS.sink]?.written ?? 0) > 0, 180_000);
      await delay(5000);
      const w0 = (await nodeStats(probe))[IDS.sink].written;
      const t0 = Date.now();
      await delay(measureSeconds * 1000);
      const w1 = (await nodeStats(probe))[IDS.sink].written;
      max = ((w1 - w0) * 1000) / (Date.now() - t0);
      const p = await nodeStats(probe);
      console.log(`probe at ${probeRate} events/s: simulator measured ${p[IDS.sim].measuredRate}/s, buffer dropped ${p[IDS.buffer].dropped}, sink written ${p[IDS.sink].written}`);
    } finally {
      await probe.stop('SIGKILL');
      fs.rmSync(probe.userDir, { recursive: true, force: true });
    }
  }
  const red = await startNodeRed({ settings, env });
  const memory = async (): Promise<NodeJS.MemoryUsage & { heapAfterGc: number }> => JSON.parse((await red.request('GET', '/soak/memory')).body);
  try {
    const table = 'soak_line';
    const rate = Math.round(max * 0.8);
    console.log(`measured maximum ${Math.round(max)} rows/s over ${measureSeconds} s; soaking at 80%: ${rate} events/s for ${minutes} min`);

    // 2. The soak at 80%.
    const line = pipelineFlow({ databaseUrl: url, table, rate, capacity: 100_000, window: 2000, dropPolicy: 'drop-oldest' });
    await deploy(red, line);
    await waitUntil('the line to start', async () => {
      try {
        const s = await nodeStats(red);
        return s[IDS.sink] !== undefined && s[IDS.buffer] !== undefined;
      } catch {
        return false; // the admin routes are still being set up
      }
    }, 60_000);
    const start = Date.now();
    const samples: { t: number; heap: number; heapAfterGc: number; rss: number }[] = [];
    console.log(`min   heapUsed MB  after GC MB  rss MB  received    written${redeployEvery > 0 ? '*' : ' '}    dropped  depth`);
    let redeploys = 0;
    for (;;) {
      const elapsed = (Date.now() - start) / 60000;
      const m = await memory();
      const s = await nodeStats(red);
      samples.push({ t: elapsed, heap: m.heapUsed, heapAfterGc: m.heapAfterGc, rss: m.rss });
      const b = s[IDS.buffer];
      console.log(`${elapsed.toFixed(1).padStart(5)} ${mb(m.heapUsed).padStart(10)} ${mb(m.heapAfterGc).padStart(12)} ${mb(m.rss).padStart(7)} ${String(b.received).padStart(10)} ${String(s[IDS.sink].written).padStart(10)} ${String(b.dropped).padStart(10)} ${String(b.depth).padStart(6)}`);
      if (elapsed >= minutes) break;
      if (redeployEvery > 0 && elapsed >= (redeploys + 1) * redeployEvery) {
        await deploy(red, line, 'nodes');
        redeploys++;
      }
      await delay(everySeconds * 1000);
    }
    if (redeploys > 0) console.log(`* written by the sink since its last restart; ${redeploys} modified-nodes deploys restarted the connection and the sink`);

    // 3. Stop the line, drain, check the table. A modified-nodes deploy restarts the simulator (and
    //    the connection and sink, whose credentials are sent again): the buffer keeps running, so its
    //    counters (dropped) cover the whole soak.
    await deploy(red, pipelineFlow({ databaseUrl: url, table, rate, capacity: 100_000, window: 2000, dropPolicy: 'drop-oldest', autoStart: false }), 'nodes');
    const stats = await waitForDrain(red, 300_000);
    const t = await checkTable(url, table);
    const b = stats[IDS.buffer];
    const heaps = samples.map((x) => x.heap);
    const rss = samples.map((x) => x.rss);
    const firstHalf = samples.filter((x) => x.t >= 1 && x.t < minutes / 2).map((x) => x.heapAfterGc);
    const secondHalf = samples.filter((x) => x.t >= minutes / 2).map((x) => x.heapAfterGc);
    const avg = (a: number[]): number => (a.length ? a.reduce((p, q) => p + q, 0) / a.length : NaN);
    console.log(`heapUsed MB min ${mb(Math.min(...heaps))} max ${mb(Math.max(...heaps))}; after GC: mean first half ${mb(avg(firstHalf))}, second half ${mb(avg(secondHalf))}`);
    console.log(`rss MB min ${mb(Math.min(...rss))} max ${mb(Math.max(...rss))}, last ${mb(rss[rss.length - 1])}`);
    console.log(`table: ${t.rows} rows, ${t.distinctKeys} distinct keys, ${t.gaps} sequence gaps; buffer received ${b.received}, dropped ${b.dropped} (spool restored ${b.restored}); batcher sent ${stats[IDS.batcher].batchesResent} batches again`);
    const ok = t.distinctKeys === t.rows && t.gaps === b.dropped && b.unacknowledged === 0 && t.rows + b.dropped === b.received;
    console.log(ok ? 'OK: no duplicates, gaps = dropped, rows + dropped = received' : 'FAILED: the counters do not add up');
    if (!ok) {
      // Enough to find where the events went without running the soak again.
      console.log(`buffer: ${JSON.stringify(b)}`);
      console.log(`batcher: ${JSON.stringify(stats[IDS.batcher])}`);
      console.log(`sink: ${JSON.stringify(stats[IDS.sink])}`);
      console.log(`Node-RED's log (warnings and errors):\n${red.output().split('\n').filter((line) => /\[(warn|error)\]/.test(line)).slice(-40).join('\n')}`);
    }
    if (process.env.SOAK_JSON) fs.writeFileSync(process.env.SOAK_JSON, JSON.stringify({ max, rate, samples, table: t, buffer: b }, null, 2));
    process.exitCode = ok ? 0 : 1;
  } finally {
    await red.stop('SIGKILL');
    fs.rmSync(red.userDir, { recursive: true, force: true });
    await stopTestServer();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
