/**
 * Examples 04 (Modbus TCP) and 05 (OPC UA subscription) as a user imports them, in a real Node-RED
 * process with node-red-contrib-modbus and node-red-contrib-opcua installed, writing into a real
 * PostgreSQL:
 * - with their stand-in PLC / OPC UA server enabled, each reading the input node sends is one row
 *   with its source, time and value (checked against a copy of every message the input node sent,
 *   kept by a file node beside the pipeline), and rows = readings - counted drops;
 * - full deploys while data flows, against a PLC and a server in this process that number what they
 *   serve: what a deploy loses, and what comes twice (the README's "What a deploy can lose").
 */
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { Client } from 'pg';
import { freePort, startNodeRed, type NodeRedProcess } from './support/node-red-process';
import { deploy, waitForDrain } from './support/pipeline';
import { createTestDatabase } from './support/postgres';
import { shapeMessage } from '../src/core/readings/shapes';
import { mapRecord, resolveMappingOptions } from '../src/core/sink/row-mapping';
import { waitUntil } from './support/wait';

type Node = Record<string, any>;

const examples = path.join(__dirname, '..', 'examples');
const MODBUS = '04 - Modbus TCP into TimescaleDB.json';
const OPCUA = '05 - OPC UA subscription into TimescaleDB.json';
const mapping = resolveMappingOptions({ extra: true });

interface Row {
  source: string;
  time: number;
  value: number | null;
  seq: number;
}

/** The ids of the pipeline nodes of an example (buffer, batcher, sink). */
function pipelineIds(flow: Node[]): { buffer: string; batcher: string; sink: string } {
  const id = (type: string) => (flow.find((n) => n.type === type) as Node).id as string;
  return { buffer: id('telemetry-buffer'), batcher: id('telemetry-batcher'), sink: id('timescale-sink') };
}

/**
 * An example as imported, its stand-ins enabled or not, its connection pointing at the test
 * database; `edit` moves ports. A file node beside the pipeline (wired to the same output of the
 * input node) keeps a copy of every message the input node sends, as JSON lines, when `copyTo` is set.
 */
function example(file: string, db: URL, table: string, o: { standIns: boolean; copyTo?: string; edit?: (node: Node) => void }): Node[] {
  let text = fs.readFileSync(path.join(examples, file), 'utf8');
  // Node ids of their own per table: the counters of a node id are totals across deploys.
  for (const { id } of JSON.parse(text) as Node[]) text = text.split(`"${id}"`).join(`"${id}-${table}"`);
  const flow: Node[] = JSON.parse(text);
  const tab = flow.find((n) => n.z !== undefined)?.z as string;
  const out: Node[] = [{ id: tab, type: 'tab', label: file }];
  for (const original of flow) {
    const node = { ...original };
    if (o.standIns) delete node.d;
    if (node.type === 'timescale-connection') Object.assign(node, { host: db.hostname, port: db.port, database: decodeURIComponent(db.pathname.slice(1)), credentials: { user: decodeURIComponent(db.username), password: decodeURIComponent(db.password) } });
    if (node.type === 'timescale-sink') node.table = table;
    if (node.type === 'telemetry-buffer' && o.copyTo !== undefined) node.__copyFrom = true;
    o.edit?.(node);
    out.push(node);
  }
  if (o.copyTo !== undefined) {
    const buffer = out.find((n) => n.type === 'telemetry-buffer') as Node;
    delete buffer.__copyFrom;
    const input = out.find((n) => Array.isArray(n.wires) && n.wires[0]?.includes(buffer.id)) as Node;
    input.wires = [[...input.wires[0], 'copyfn0000000001'], ...input.wires.slice(1)];
    out.push(
      { id: 'copyfn0000000001', type: 'function', z: tab, name: 'copy (test only)', func: 'return { payload: JSON.stringify({ topic: msg.topic, payload: msg.payload, input: msg.input, statusCode: msg.statusCode, sourceTimestamp: msg.sourceTimestamp, serverTimestamp: msg.serverTimestamp }) };', outputs: 1, wires: [['copyfile00000001']] },
      { id: 'copyfile00000001', type: 'file', z: tab, name: '', filename: o.copyTo, filenameType: 'str', appendNewline: true, createDir: true, overwriteFile: 'false', encoding: 'utf8', wires: [[]] },
    );
  }
  for (const node of out) delete node.__copyFrom;
  return out;
}

/**
 * The same flow with the input node (the one wired to the buffer) disabled, for a modified-nodes
 * deploy that stops it and nothing else. (The stand-in modbus-server's close times out after 15 s
 * in node-red-contrib-modbus 5.23.3: it is left running.)
 */
function inputStopped(flow: Node[]): Node[] {
  const buffer = flow.find((n) => n.type === 'telemetry-buffer') as Node;
  return flow.map((n) => (Array.isArray(n.wires) && n.wires[0]?.includes(buffer.id) ? { ...n, d: true } : n));
}

async function rowsOf(db: URL, table: string): Promise<Row[]> {
  const client = new Client({ connectionString: db.toString() });
  await client.connect();
  try {
    const { rows } = await client.query(`SELECT source, time, value, seq::int AS seq FROM public."${table}" ORDER BY source, seq`);
    return rows.map((r) => ({ source: r.source, time: (r.time as Date).getTime(), value: r.value, seq: r.seq }));
  } catch (err) {
    if ((err as { code?: string }).code === '42P01') return [];
    throw err;
  } finally {
    await client.end();
  }
}

/** The rows the messages the input node sent map to: [source, time, value] (time undefined: the buffer's clock). */
function expectedRows(copyFile: string): { rows: [string, number | undefined, number | null][]; ignored: number; readings: number } {
  const rows: [string, number | undefined, number | null][] = [];
  let ignored = 0;
  let readings = 0;
  for (const line of fs.readFileSync(copyFile, 'utf8').split('\n').filter((l) => l !== '')) {
    const shaped = shapeMessage(JSON.parse(line));
    if (shaped.outcome === 'not-a-reading') {
      ignored++;
      continue;
    }
    readings += shaped.readings.length + shaped.refused.length;
    for (const record of shaped.readings) {
      const mapped = mapRecord(record, Date.now(), mapping);
      assert.ok(mapped.ok, line);
      rows.push([mapped.row.source, record.timestamp === undefined ? undefined : mapped.row.time, mapped.row.value]);
    }
  }
  return { rows, ignored, readings };
}

function sorted<T extends unknown[]>(list: T[]): T[] {
  return list.slice().sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1));
}

/**
 * A PLC that numbers the reads it answers: holding register 0 holds the number of the read
 * (1, 2, 3, ...), registers 1..9 hold 7. A value in the table is a read the PLC answered.
 */
async function countingPlc(): Promise<{ port: number; reads(): number; close(): Promise<void> }> {
  const Modbus = require('jsmodbus');
  const server = net.createServer();
  const holding = Buffer.alloc(2048);
  for (let i = 1; i < 10; i++) holding.writeUInt16BE(7, 2 * i);
  const modbus = new Modbus.server.TCP(server, { holding });
  let reads = 0;
  modbus.on('preReadHoldingRegisters', () => holding.writeUInt16BE(++reads % 65536, 0));
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const sockets = new Set<net.Socket>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  return {
    port,
    reads: () => reads,
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * An OPC UA server (node-opcua, as node-red-contrib-opcua uses it) whose variable ns=1;s=Changes
 * takes the values 1, 2, 3, ... every `everyMs`, each with its source timestamp, and whose
 * ns=1;s=Setpoint keeps the value it had when the server started (a setpoint). Its certificates go
 * to a folder of its own; node-opcua's changes to the environment are undone on close.
 */
async function countingOpcuaServer(everyMs: number): Promise<{ port: number; changes(): number; close(): Promise<void> }> {
  const saved = { OPENSSL_CONF: process.env.OPENSSL_CONF, RANDFILE: process.env.RANDFILE };
  const pki = fs.mkdtempSync(path.join(os.tmpdir(), 'telemetry-opcua-server-'));
  const { OPCUAServer, OPCUACertificateManager, DataType, StatusCodes } = require('node-opcua');
  const port = await freePort();
  const server = new OPCUAServer({ port, hostname: '127.0.0.1', allowAnonymous: true, serverCertificateManager: new OPCUACertificateManager({ rootFolder: pki, automaticallyAcceptUnknownCertificate: true }) });
  await server.initialize();
  const variable = server.engine.addressSpace.getOwnNamespace().addVariable({
    organizedBy: server.engine.addressSpace.rootFolder.objects,
    nodeId: 's=Changes',
    browseName: 'Changes',
    dataType: 'Double',
    value: { dataType: DataType.Double, value: 0 },
  });
  server.engine.addressSpace.getOwnNamespace().addVariable({
    organizedBy: server.engine.addressSpace.rootFolder.objects,
    nodeId: 's=Setpoint',
    browseName: 'Setpoint',
    dataType: 'Double',
  }).setValueFromSource({ dataType: DataType.Double, value: 42.5 }, StatusCodes.Good, new Date());
  let changes = 0;
  const timer = setInterval(() => variable.setValueFromSource({ dataType: DataType.Double, value: ++changes }, StatusCodes.Good, new Date()), everyMs);
  await server.start();
  return {
    port,
    changes: () => changes,
    close: async () => {
      clearInterval(timer);
      await server.shutdown(0);
      fs.rmSync(pki, { recursive: true, force: true });
      for (const [name, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    },
  };
}

/** Numbers from 1 to the highest seen that are missing, and those seen more than once. */
function lostAndTwice(values: number[]): { lost: number[]; twice: number[]; highest: number } {
  const seen = new Map<number, number>();
  for (const v of values) seen.set(v, (seen.get(v) ?? 0) + 1);
  const highest = Math.max(0, ...values);
  const lowest = Math.min(highest, ...values);
  const lost: number[] = [];
  for (let v = lowest; v <= highest; v++) if (!seen.has(v)) lost.push(v);
  return { lost, twice: [...seen].filter(([, n]) => n > 1).map(([v]) => v), highest };
}

/** Full deploys of `flow`, `count` of them, `everyMs` apart; returns when the last is done. */
async function fullDeploys(red: NodeRedProcess, flow: Node[], count: number, everyMs: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    await new Promise((r) => setTimeout(r, everyMs));
    await deploy(red, flow, 'full');
  }
}

describe('examples 04 and 05 in a real Node-RED with the input packages, into PostgreSQL', function () {
  this.timeout(180_000);
  let db: URL;
  let red: NodeRedProcess | undefined;
  let copyDir: string;
  const results: string[] = [];

  before(async function () {
    db = new URL(await createTestDatabase('input_examples'));
    copyDir = fs.mkdtempSync(path.join(os.tmpdir(), 'telemetry-input-copy-'));
  });

  after(async function () {
    if (red !== undefined) {
      await red.stop('SIGKILL');
      fs.rmSync(red.userDir, { recursive: true, force: true });
    }
    fs.rmSync(copyDir, { recursive: true, force: true });
    if (results.length > 0) console.log(`      ${results.join('\n      ')}`);
  });

  async function nodeRed(): Promise<NodeRedProcess> {
    red ??= await startNodeRed({ inputPackages: true });
    return red;
  }

  describe('04 Modbus TCP', function () {
    it('as shipped, with the stand-in PLC enabled: one row per register and poll, at the time of the poll, nothing lost', async function () {
      const proc = await nodeRed();
      const port = await freePort();
      const copy = path.join(copyDir, 'modbus.jsonl');
      const table = 'example_04';
      const flow = example(MODBUS, db, table, {
        standIns: true,
        copyTo: copy,
        edit: (node) => {
          if (node.type === 'modbus-server') node.serverPort = String(port);
          if (node.type === 'modbus-client') node.tcpPort = String(port);
        },
      });
      const ids = pipelineIds(flow);
      const startedAt = Date.now();
      await deploy(proc, flow);
      // The stand-in changes register 0 every second; wait for a few polls that saw it change.
      await waitUntil('polls of a changing register 0', async () => new Set((await rowsOf(db, table)).filter((r) => r.source === 'plc1/hr0').map((r) => r.value)).size >= 3, 30_000);
      await deploy(proc, inputStopped(flow), 'nodes');
      const stats = await waitForDrain(proc, 30_000, ids);
      const rows = await rowsOf(db, table);
      const expected = expectedRows(copy);

      // Every reading the poller sent is one row with its source and value, at the time the buffer took it in.
      assert.deepEqual(sorted(rows.map((r) => [r.source, r.value])), sorted(expected.rows.map(([s, , v]) => [s, v])));
      assert.deepEqual([...new Set(rows.map((r) => r.source))].sort(), Array.from({ length: 10 }, (_, i) => `plc1/hr${i}`).sort());
      const polls = rows.length / 10;
      for (const r of rows) {
        assert.ok(r.time >= startedAt && r.time <= Date.now(), `${r.source}: ${new Date(r.time).toISOString()}`);
        if (r.source !== 'plc1/hr0') assert.equal(r.value, 0);
        else assert.ok(r.value !== null && r.value >= 0 && r.value <= 1000);
      }
      // The ten registers of a poll share its time; each register is numbered 1, 2, 3, ... without a gap.
      const byTime = new Map<number, number>();
      for (const r of rows) byTime.set(r.time, (byTime.get(r.time) ?? 0) + 1);
      assert.ok([...byTime.values()].every((n) => n % 10 === 0), 'ten readings per poll time');
      for (const source of new Set(rows.map((r) => r.source))) assert.deepEqual(rows.filter((r) => r.source === source).map((r) => r.seq), Array.from({ length: polls }, (_, i) => i + 1));

      const b = stats[ids.buffer];
      const s = stats[ids.sink];
      assert.equal(b.received, expected.readings, 'the buffer counts the readings the poller sent');
      assert.equal(rows.length, b.received - b.dropped, 'rows = readings - counted drops');
      assert.deepEqual([b.dropped, b.ignored, s.rejected, s.duplicates], [0, 0, 0, 0]);
      results.push(`example 04 with its stand-in PLC: ${polls} polls, ${rows.length} rows, ${b.dropped} dropped`);
    });

    it('full deploys while polling: every read the PLC answered is stored, once (measured)', async function () {
      const proc = await nodeRed();
      const plc = await countingPlc();
      try {
        const table = 'deploy_04';
        // As shipped, polling every 100 ms instead of every second (more reads to lose), against the counting PLC.
        const flow = example(MODBUS, db, table, {
          standIns: false,
          edit: (node) => {
            if (node.type === 'modbus-client') node.tcpPort = String(plc.port);
            if (node.type === 'modbus-read') Object.assign(node, { rate: '100', rateUnit: 'ms' });
          },
        });
        const ids = pipelineIds(flow);
        await deploy(proc, flow);
        await waitUntil('the first polls', async () => (await rowsOf(db, table)).length >= 20, 20_000);
        await fullDeploys(proc, flow, 3, 2000);
        await new Promise((r) => setTimeout(r, 2000));
        await deploy(proc, inputStopped(flow), 'nodes');
        const stats = await waitForDrain(proc, 30_000, ids);
        const rows = await rowsOf(db, table);
        const reads = rows.filter((r) => r.source === 'plc1/hr0').map((r) => r.value as number);
        const { lost, twice } = lostAndTwice(reads);
        const answered = plc.reads();
        const b = stats[ids.buffer];
        results.push(`Modbus poll every 100 ms, 3 full deploys: the PLC answered ${answered} reads, ${reads.length} stored (${rows.length} rows), ${lost.length} lost (${lost.join(', ') || 'none'}), ${twice.length} twice, ${answered - Math.max(0, ...reads)} answered after the last stored`);
        assert.equal(rows.length, b.received - b.dropped, 'rows = readings - counted drops');
        assert.ok(rows.every((r) => r.source === 'plc1/hr0' || r.value === 7));
        assert.deepEqual(twice, [], 'no read stored twice');
        // A read answered while the poller is being stopped by the deploy never reaches the flow: counted here, not hidden.
        assert.ok(lost.length <= 3, `lost: ${lost.join(', ')}`);
      } finally {
        await plc.close();
      }
    });
  });

  describe('05 OPC UA subscription', function () {
    it('as shipped, with the stand-in server enabled: each change one row at its source timestamp; the subscription id is not stored', async function () {
      const proc = await nodeRed();
      const port = await freePort();
      const copy = path.join(copyDir, 'opcua.jsonl');
      const table = 'example_05';
      const flow = example(OPCUA, db, table, {
        standIns: true,
        copyTo: copy,
        edit: (node) => {
          if (node.type === 'OpcUa-Server') node.port = String(port);
          if (node.type === 'OpcUa-Endpoint') node.endpoint = `opc.tcp://127.0.0.1:${port}`;
          // A client whose first try found the stand-in not yet listening tries again at the next inject (30 s as shipped).
          if (node.type === 'inject' && typeof node.topic === 'string' && node.topic.startsWith('ns=')) node.repeat = '5';
        },
      });
      const ids = pipelineIds(flow);
      await deploy(proc, flow);
      // The stand-in sets MyVariable2 every 5 s, starting 2 s after the deploy.
      await waitUntil('two values of MyVariable2 and one of Counter', async () => {
        const rows = await rowsOf(db, table);
        return rows.filter((r) => r.source === 'ns=1;s=MyVariable2').length >= 2 && rows.some((r) => r.source === 'ns=1;s=Counter');
      }, 60_000);
      await deploy(proc, inputStopped(flow), 'nodes');
      const stats = await waitForDrain(proc, 30_000, ids);
      const rows = await rowsOf(db, table);
      const expected = expectedRows(copy);

      // Every value the client sent is one row, at the value's source timestamp from the server.
      assert.ok(expected.rows.every(([, time]) => time !== undefined), 'every OPC UA value carries its own time');
      assert.deepEqual(sorted(rows.map((r) => [r.source, r.time, r.value])), sorted(expected.rows));
      assert.deepEqual([...new Set(rows.map((r) => r.source))].sort(), ['ns=1;s=Counter', 'ns=1;s=MyVariable2']);
      const b = stats[ids.buffer];
      const s = stats[ids.sink];
      assert.ok(expected.ignored >= 1, 'the client sent its subscription id');
      assert.equal(b.ignored, expected.ignored, 'each subscription id is ignored, and counted');
      assert.match(String(b.ignoredReason), /^OPC UA subscription id \d+/);
      assert.equal(b.received, expected.readings);
      assert.equal(rows.length, b.received - b.dropped - s.rejected, 'rows = readings - counted drops - refused');
      assert.deepEqual([b.dropped, s.rejected, s.duplicates], [0, 0, 0]);
      results.push(`example 05 with its stand-in server: ${rows.length} rows from ${expected.readings} values, ${b.ignored} subscription ids ignored`);
    });

    it('full deploys while subscribed: what changes between the old and the new subscription is lost, a value that did not change comes again (measured)', async function () {
      const proc = await nodeRed();
      const server = await countingOpcuaServer(250);
      try {
        const table = 'deploy_05';
        // As shipped (subscribe 3 s after a start), sampling every 100 ms instead of every second, one
        // variable that changes every 250 ms and one that does not change.
        const flow = example(OPCUA, db, table, {
          standIns: false,
          edit: (node) => {
            if (node.type === 'OpcUa-Endpoint') node.endpoint = `opc.tcp://127.0.0.1:${server.port}`;
            if (node.type === 'OpcUa-Client') Object.assign(node, { time: '100', timeUnit: 'ms' });
            if (node.type === 'inject' && node.topic === 'ns=1;s=MyVariable2') node.topic = 'ns=1;s=Changes';
            if (node.type === 'inject' && node.topic === 'ns=1;s=Counter') node.topic = 'ns=1;s=Setpoint';
          },
        });
        const ids = pipelineIds(flow);
        await deploy(proc, flow);
        await waitUntil('the first changes', async () => (await rowsOf(db, table)).length >= 8, 30_000);
        const before = lostAndTwice((await rowsOf(db, table)).filter((r) => r.source === 'ns=1;s=Changes').map((r) => r.value as number));
        await fullDeploys(proc, flow, 3, 4000);
        await new Promise((r) => setTimeout(r, 5000));
        await deploy(proc, inputStopped(flow), 'nodes');
        const stats = await waitForDrain(proc, 30_000, ids);
        const rows = await rowsOf(db, table);
        const values = rows.filter((r) => r.source === 'ns=1;s=Changes').map((r) => r.value as number);
        const setpoint = rows.filter((r) => r.source === 'ns=1;s=Setpoint');
        const { lost, twice, highest } = lostAndTwice(values);
        const b = stats[ids.buffer];
        const lowest = Math.min(...values);
        results.push(`OPC UA change every 250 ms, sampled every 100 ms, 3 full deploys: changes ${lowest}..${highest}, ${new Set(values).size} stored, ${lost.length} lost (${(lost.length / 3).toFixed(1)} per deploy), ${twice.length} stored twice; the unchanged setpoint stored ${setpoint.length} times; ${b.ignored} subscription ids ignored`);
        assert.deepEqual([before.lost, before.twice], [[], []], 'without a deploy every change is stored once');
        assert.equal(rows.length, b.received - b.dropped, 'rows = readings - counted drops');
        assert.deepEqual([...new Set(rows.map((r) => r.source))].sort(), ['ns=1;s=Changes', 'ns=1;s=Setpoint']);
        assert.ok(lost.length > 0, 'a new subscription does not see what changed before it');
        assert.deepEqual(twice, [], 'a value that changed is stored once');
        // Each new subscription sends the current value first: a value that did not change comes again,
        // at its old source timestamp, and is one more row (with a sequence number of its own).
        assert.equal(new Set(setpoint.map((r) => `${r.time}/${r.value}`)).size, 1);
        assert.equal(setpoint.length, 4, 'the setpoint once per subscription');
        assert.ok(b.ignored >= 4, 'one subscription id per start (and one per repeated subscribe)');
      } finally {
        await server.close();
      }
    });
  });
});

