#!/usr/bin/env node
'use strict';
// The one-command demo (`npm start`): a real PostgreSQL, Node-RED 4 with this package and the
// "simulated line" example deployed, a progress line every few seconds, and on Ctrl-C a drain and
// the final counters. Options (environment or flags):
//   TELEMETRY_DATABASE_URL=postgres://user:pass@host:5432/db  use that database instead of the embedded one
//   --duration=N (DEMO_DURATION)   stop by itself after N seconds; exit 1 if the counters do not add up
//   --rate=N (DEMO_RATE)           events per second from the simulator (default 1000)
//   --port=N (PORT)                editor port (default 1880, or a free one if that is taken)
const fs = require('fs');
const http = require('http');
const net = require('net');
const path = require('path');

const root = path.resolve(__dirname, '..');
const pkg = require(path.join(root, 'package.json'));
const dataDir = path.join(root, '.data');
const exampleFile = path.join(root, 'examples', '01 - Simulated line into TimescaleDB.json');

function option(name, envName, fallback) {
  const flag = process.argv.find((a) => a.startsWith(`--${name}=`));
  const raw = flag ? flag.slice(name.length + 3) : process.env[envName];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a number, got "${raw}"`);
  return n;
}

function freePort(preferred) {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => {
      const other = net.createServer();
      other.listen(0, '127.0.0.1', () => {
        const { port } = other.address();
        other.close(() => resolve(port));
      });
    });
    server.listen(preferred, '127.0.0.1', () => server.close(() => resolve(preferred)));
  });
}

const delay = (ms) => new Promise((r) => setTimeout(r, ms));
const fmt = (n) => Number(n).toLocaleString('en-US');

async function startDatabase() {
  const external = process.env.TELEMETRY_DATABASE_URL;
  if (external) {
    const u = new URL(external);
    return {
      host: u.hostname, port: u.port || '5432', database: decodeURIComponent(u.pathname.slice(1)) || 'postgres',
      user: decodeURIComponent(u.username), password: decodeURIComponent(u.password), label: `${u.hostname}:${u.port || 5432}`,
      async stop() {},
    };
  }
  const { startEmbeddedPostgres } = require('./embedded-pg');
  process.stdout.write('starting PostgreSQL (embedded, data in .data/postgres) ... ');
  const pg = await startEmbeddedPostgres({ baseDir: path.join(dataDir, 'postgres'), settings: { fsync: 'on', full_page_writes: 'on' } });
  console.log(`up on port ${pg.port}`);
  return { host: pg.host, port: String(pg.port), database: 'postgres', user: pg.user, password: pg.password, label: `embedded, port ${pg.port}`, stop: () => pg.stop() };
}

/** The example flow on its own tab, pointed at our database. */
function demoFlow(db, rate) {
  const example = JSON.parse(fs.readFileSync(exampleFile, 'utf8'));
  const tab = { id: 'demo0000tab00001', type: 'tab', label: 'Telemetry demo', info: 'Deployed by npm start.' };
  const flow = [tab];
  const credentials = {};
  for (const node of example) {
    const n = { ...node };
    if (n.z) n.z = tab.id;
    if (n.type === 'timescale-connection') {
      Object.assign(n, { host: db.host, port: db.port, database: db.database });
      credentials[n.id] = { user: db.user, password: db.password };
    }
    if (n.type === 'telemetry-simulator') n.rate = rate;
    if (n.type === 'file') Object.assign(n, { filename: path.join(dataDir, 'dead-letters.jsonl'), filenameType: 'str' });
    flow.push(n);
  }
  return { flow, credentials };
}

function nodesOf(flow, type) {
  return flow.filter((n) => n.type === type).map((n) => n.id);
}

async function main() {
  const duration = option('duration', 'DEMO_DURATION', 0);
  const rate = option('rate', 'DEMO_RATE', 1000);
  const port = await freePort(option('port', 'PORT', 1880));
  fs.mkdirSync(dataDir, { recursive: true });

  const db = await startDatabase();
  const { Client } = require('pg');
  const countRows = async () => {
    const client = new Client({ host: db.host, port: Number(db.port), database: db.database, user: db.user, password: db.password });
    await client.connect();
    try {
      const exists = await client.query("SELECT to_regclass('public.telemetry') AS t");
      if (exists.rows[0].t === null) return 0;
      return Number((await client.query('SELECT count(*) AS n FROM public.telemetry')).rows[0].n);
    } finally {
      await client.end();
    }
  };
  const rowsBefore = await countRows();

  // Node-RED 4 in this process, with this package installed in its user directory.
  const userDir = path.join(dataDir, 'node-red');
  fs.mkdirSync(path.join(userDir, 'node_modules'), { recursive: true });
  const link = path.join(userDir, 'node_modules', pkg.name);
  if (!fs.existsSync(link)) fs.symlinkSync(root, link, 'dir');
  const { flow, credentials } = demoFlow(db, rate);
  fs.writeFileSync(path.join(userDir, 'flows.json'), JSON.stringify(flow, null, 2));
  // Plain credentials file: this is a throwaway demo database, and its password is in .data already.
  fs.writeFileSync(path.join(userDir, 'flows_cred.json'), JSON.stringify(credentials), { mode: 0o600 });

  const RED = require('node-red');
  const server = http.createServer();
  RED.init(server, {
    userDir,
    flowFile: 'flows.json',
    credentialSecret: false,
    uiHost: '127.0.0.1',
    uiPort: port,
    httpAdminRoot: '/',
    httpNodeRoot: '/api',
    logging: { console: { level: process.env.DEMO_LOG_LEVEL || 'warn', metrics: false, audit: false } },
    externalModules: { autoInstall: false, palette: { allowInstall: false } },
    // Node-RED loads the node modules beside its installation: not the input packages that are
    // devDependencies here for the tests of examples 04 and 05.
    nodesExcludes: ['node-red-contrib-modbus', 'node-red-contrib-opcua'],
    editorTheme: { tours: false, projects: { enabled: false } },
    telemetry: { enabled: false },
    diagnostics: { enabled: false },
  });
  server.on('request', RED.httpAdmin);
  await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
  await RED.start();

  const get = (id) => RED.nodes.getNode(id);
  const stats = (id) => (get(id) && get(id).telemetryStats ? get(id).telemetryStats() : {});
  const [simId] = nodesOf(flow, 'telemetry-simulator');
  const [bufferId] = nodesOf(flow, 'telemetry-buffer');
  const [sinkId] = nodesOf(flow, 'timescale-sink');
  console.log(`Node-RED ${RED.version()} editor: http://127.0.0.1:${port}/   database: ${db.label}   rate: ${fmt(rate)} events/s`);
  console.log(`counters as JSON: http://127.0.0.1:${port}/telemetry/stats   Prometheus: http://127.0.0.1:${port}/telemetry/metrics`);
  console.log(duration > 0 ? `stopping by itself after ${duration} s` : 'Ctrl-C drains the pipeline and prints the final counters');

  const started = Date.now();
  const progress = setInterval(() => {
    const b = stats(bufferId);
    const s = stats(sinkId);
    const fill = b.capacity ? ((100 * b.depth) / b.capacity).toFixed(1) : '0';
    console.log(`${String(Math.round((Date.now() - started) / 1000)).padStart(5)} s  received ${fmt(b.received || 0)}  written ${fmt(s.written || 0)}  dropped ${fmt(b.dropped || 0)}  buffer ${fill}%  in flight ${fmt(b.inFlight || 0)}  sink ${s.state || '?'}`);
  }, 5000);

  let stopping = false;
  const stop = async (reason) => {
    if (stopping) return;
    stopping = true;
    clearInterval(progress);
    console.log(`\n${reason}: stopping the simulator and draining the pipeline ...`);
    get(simId)?.receive({ control: 'stop' });
    const drainUntil = Date.now() + 30_000;
    while (Date.now() < drainUntil) {
      const b = stats(bufferId);
      if ((b.depth || 0) + (b.inFlight || 0) === 0) break;
      await delay(200);
    }
    const sim = stats(simId);
    const b = stats(bufferId);
    const s = stats(sinkId);
    await RED.stop(); // closes every node: whatever is still unconfirmed is spooled to .data/node-red
    server.close();
    const spooled = b.depth + b.inFlight;
    const rowsAfter = await countRows();
    await db.stop();

    const written = rowsAfter - rowsBefore;
    const sinkEvents = (s.written || 0) + (s.duplicates || 0) + (s.rejected || 0) + (s.deadLetteredEvents || 0);
    const checks = [
      ['simulator sent = buffer received - restored', sim.sentEvents, b.received - (b.restored || 0)],
      ['buffer received = delivered + failed + dropped + unacknowledged + still held (spooled)', b.received, b.delivered + b.failed + b.dropped + b.unacknowledged + spooled],
      ['buffer delivered + failed = sink written + duplicates + rejected + dead-lettered', b.delivered + b.failed, sinkEvents],
      ['new rows in the table = sink written', written, s.written || 0],
    ];
    console.log('\nfinal counters (events)');
    console.log(`  simulator sent ${fmt(sim.sentEvents)} | buffer received ${fmt(b.received)} (restored ${fmt(b.restored || 0)}), delivered ${fmt(b.delivered)}, dropped ${fmt(b.dropped)}, failed ${fmt(b.failed)}, unacknowledged ${fmt(b.unacknowledged)}, held at stop ${fmt(spooled)}`);
    console.log(`  sink written ${fmt(s.written || 0)}, duplicates ${fmt(s.duplicates || 0)}, rejected ${fmt(s.rejected || 0)}, dead-lettered ${fmt(s.deadLetteredEvents || 0)} | rows in table ${fmt(rowsAfter)} (+${fmt(written)})`);
    let ok = true;
    for (const [what, left, right] of checks) {
      const good = left === right;
      ok = ok && good;
      console.log(`  ${good ? 'ok  ' : 'FAIL'} ${what}: ${fmt(left)} ${good ? '=' : '!='} ${fmt(right)}`);
    }
    console.log(ok ? 'the counters add up: nothing was lost without a number' : 'the counters do NOT add up');
    process.exit(ok ? 0 : 1);
  };
  process.on('SIGINT', () => void stop('Ctrl-C'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
  if (duration > 0) setTimeout(() => void stop(`${duration} s elapsed`), duration * 1000);
}

main().catch((err) => {
  console.error(`demo failed: ${err && err.stack ? err.stack : err}`);
  process.exit(2);
});
