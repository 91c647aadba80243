/**
 * What a full deploy loses behind a real MQTT input: a real broker (aedes), a real Node-RED process
 * with core MQTT in -> buffer -> batcher -> sink, a publisher at a steady rate, and full deploys in
 * the middle of it. The README's table of what a deploy can lose per kind of input quotes these.
 */
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as net from 'net';
import { Client } from 'pg';
import { connectAsync, type MqttClient } from 'mqtt';
import { Aedes } from 'aedes';
import { freePort, startNodeRed, type NodeRedProcess } from './support/node-red-process';
import { deploy, nodeStats } from './support/pipeline';
import { createTestDatabase } from './support/postgres';

const T0 = Date.UTC(2026, 6, 1);
const IDS = { tab: 'mq0tab0000000001', broker: 'mq0brk0000000001', mqttIn: 'mq0in00000000001', buffer: 'mq0buf0000000001', batcher: 'mq0bat0000000001', sink: 'mq0snk0000000001', conn: 'mq0con0000000001' };

interface Settings {
  qos: 0 | 1;
  /** A fixed client id, a persistent session (clean session off) and no unsubscribe on redeploy. */
  persistent: boolean;
  /** The device numbers its readings (payload.seq) and the buffer keeps those numbers. */
  deviceSeq?: boolean;
}

function flow(broker: number, db: URL, table: string, s: Settings): object[] {
  return [
    { id: IDS.tab, type: 'tab', label: 'mqtt' },
    {
      id: IDS.broker, type: 'mqtt-broker', name: 'test broker', broker: '127.0.0.1', port: String(broker), protocolVersion: '4', keepalive: '15',
      clientid: s.persistent ? 'telemetry-gateway-1' : '', cleansession: !s.persistent, autoUnsubscribe: !s.persistent, autoConnect: true, usetls: false,
      birthTopic: '', closeTopic: '', willTopic: '',
    },
    { id: IDS.mqttIn, type: 'mqtt in', z: IDS.tab, topic: 'factory/#', qos: String(s.qos), datatype: 'json', broker: IDS.broker, nl: false, rap: true, rh: 0, inputs: 0, wires: [[IDS.buffer]] },
    { id: IDS.buffer, type: 'telemetry-buffer', z: IDS.tab, statsInterval: 0, stampSequence: !s.deviceSeq, wires: [[IDS.batcher], []] },
    { id: IDS.batcher, type: 'telemetry-batcher', z: IDS.tab, maxAge: 100, wires: [[IDS.sink], []] },
    { id: IDS.sink, type: 'timescale-sink', z: IDS.tab, connection: IDS.conn, table, statsInterval: 0, wires: [[], []] },
    {
      id: IDS.conn, type: 'timescale-connection', host: db.hostname, port: db.port, database: decodeURIComponent(db.pathname.slice(1)),
      credentials: { user: decodeURIComponent(db.username), password: decodeURIComponent(db.password) },
    },
  ];
}

describe('full deploys under MQTT load: what each input setting loses', function () {
  this.timeout(240_000);
  let broker: Aedes;
  let server: net.Server;
  let brokerPort: number;
  let db: URL;
  let red: NodeRedProcess | undefined;
  let publisher: MqttClient | undefined;
  const results: string[] = [];

  before(async function () {
    broker = await Aedes.createBroker();
    server = net.createServer(broker.handle as (socket: net.Socket) => void);
    brokerPort = await freePort();
    await new Promise<void>((resolve) => server.listen(brokerPort, '127.0.0.1', resolve));
    db = new URL(await createTestDatabase('mqtt_deploy'));
  });

  after(async function () {
    await publisher?.endAsync();
    await new Promise<void>((resolve) => broker?.close(() => resolve()));
    await new Promise((resolve) => server?.close(resolve));
    if (results.length > 0) console.log(`      ${results.join('\n      ')}`);
  });

  afterEach(async function () {
    await publisher?.endAsync();
    publisher = undefined;
    if (red !== undefined) {
      await red.stop('SIGKILL');
      fs.rmSync(red.userDir, { recursive: true, force: true });
      red = undefined;
    }
  });

  /** Publishes `total` readings at `rate`/s with full deploys at the given seconds; returns the rows stored. */
  /**
   * Publishes `total` readings at `rate`/s with a deploy at each of `deployAt` seconds: full, or of
   * modified nodes after renaming `changed` (the nodes it leaves alone keep running).
   */
  async function run(table: string, s: Settings, total: number, rate: number, deployAt: number[], changed?: string): Promise<{ rows: number; lost: number; twice: number; dropped: number; resent: number; deploySeconds: number }> {
    const nodes = flow(brokerPort, db, table, s);
    const renamed = (n: number): object[] => nodes.map((node) => ((node as { id: string }).id === changed ? { ...node, name: `deploy ${n}` } : node));
    red = await startNodeRed();
    const proc = red;
    await deploy(proc, nodes);
    // The subscription must exist before the first reading is published.
    for (let i = 0; i < 100 && !/Connected to broker/.test(proc.output()); i++) await new Promise((r) => setTimeout(r, 100));
    publisher = await connectAsync(`mqtt://127.0.0.1:${brokerPort}`, { clientId: `publisher-${table}` });
    const started = Date.now();
    // How long each deploy took, from the request to the answer (given once the new flows run).
    let deploySeconds = 0;
    const timed = async (work: Promise<unknown>): Promise<void> => {
      const t0 = Date.now();
      await work;
      deploySeconds += (Date.now() - t0) / 1000;
    };
    const deploys = deployAt.map((at, n) => new Promise<void>((resolve, reject) => setTimeout(() => timed(changed ? deploy(proc, renamed(n + 1), 'nodes') : deploy(proc, nodes, 'full')).then(resolve, reject), at * 1000)));
    for (let i = 0; i < total; i++) {
      // Paced in steps of 10 ms; each reading has a time of its own, so rows can be told apart.
      const due = started + (i * 1000) / rate;
      if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
      const reading = s.deviceSeq ? { value: i, ts: T0 + i, seq: Math.floor(i / 10) + 1 } : { value: i, ts: T0 + i };
      publisher.publish(`factory/line1/s${i % 10}`, JSON.stringify(reading), { qos: s.qos });
    }
    await Promise.all(deploys);
    const client = new Client({ connectionString: db.toString() });
    await client.connect();
    try {
      let rows = -1;
      let stableSince = Date.now();
      for (;;) {
        const r = await client.query(`SELECT count(*)::int AS n FROM public."${table}"`).catch(() => ({ rows: [{ n: 0 }] }));
        const n = r.rows[0].n as number;
        if (n !== rows) {
          rows = n;
          stableSince = Date.now();
        }
        if (Date.now() - stableSince > 4000) break;
        await new Promise((r2) => setTimeout(r2, 250));
      }
      // Each reading has a value of its own: the readings stored, and those stored twice.
      const distinct = (await client.query(`SELECT count(DISTINCT value)::int AS n FROM public."${table}"`)).rows[0].n as number;
      const b = (await nodeStats(proc))[IDS.buffer];
      return { rows: distinct, lost: total - distinct, twice: rows - distinct, dropped: b?.dropped ?? 0, resent: b?.resentSkipped ?? 0, deploySeconds };
    } finally {
      await client.end();
    }
  }

  it('QoS 1, persistent session (example 02), three modified-nodes deploys of the pipeline: the MQTT input keeps running, nothing lost, nothing twice', async function () {
    const total = 24_000;
    const r = await run('mqtt_qos1_modified_sink', { qos: 1, persistent: true }, total, 2000, [3, 6, 9], IDS.sink);
    results.push(`QoS 1 + persistent session, 3 modified-nodes deploys of the sink: ${r.rows} of ${total} stored (${r.lost} lost, ${r.twice} twice)`);
    assert.deepEqual([r.lost, r.twice, r.dropped], [0, 0, 0]);
  });

  it('... the same, with the buffer itself replaced three times: what arrives while it is replaced is measured', async function () {
    const total = 24_000;
    const r = await run('mqtt_qos1_modified_buffer', { qos: 1, persistent: true }, total, 2000, [3, 6, 9], IDS.buffer);
    results.push(`QoS 1 + persistent session, 3 modified-nodes deploys of the buffer: ${r.rows} of ${total} stored (${r.lost} lost, ${r.twice} twice; the deploys took ${r.deploySeconds.toFixed(2)} s)`);
    assert.equal(r.twice, 0);
    // Only what the input sends while the buffer is being replaced (no node there to take it), so
    // at most what the publisher sends during the three deploys.
    assert.ok(r.lost <= Math.ceil(2000 * r.deploySeconds), `${r.lost} lost > 2,000/s x ${r.deploySeconds.toFixed(2)} s of deploys`);
  });

  it('QoS 1, persistent session, three full deploys (the MQTT connection restarts too): measured', async function () {
    const total = 24_000;
    const r = await run('mqtt_qos1_full', { qos: 1, persistent: true }, total, 2000, [3, 6, 9]);
    results.push(`QoS 1 + persistent session, 3 full deploys: ${r.rows} of ${total} stored (${r.lost} lost; ${r.twice} stored twice, ${r.resent} re-sends recognised and skipped)`);
    assert.equal(r.dropped, 0);
    assert.equal(r.twice, 0, 'what the broker sends again after the reconnect is recognised');
    // Node-RED's MQTT node acknowledges what arrives between removing its handler and closing the
    // connection: up to a few dozen readings per run in 10 runs here (0 in most).
    assert.ok(r.lost <= total * 0.005, `${r.lost} lost`);
  });

  it('example 02 ships with the settings that lose least', function () {
    const example = JSON.parse(fs.readFileSync(`${__dirname}/../examples/02 - MQTT in into TimescaleDB.json`, 'utf8')) as Array<Record<string, unknown>>;
    const broker = example.find((n) => n.type === 'mqtt-broker') as Record<string, unknown>;
    const input = example.find((n) => n.type === 'mqtt in') as Record<string, unknown>;
    assert.deepEqual([input.qos, broker.cleansession, broker.autoUnsubscribe, typeof broker.clientid === 'string' && broker.clientid !== ''], ['1', false, false, true]);
  });

  it('QoS 0, clean session: what is published while the flow restarts is lost (measured, not hidden)', async function () {
    const total = 24_000;
    const r = await run('mqtt_qos0', { qos: 0, persistent: false }, total, 2000, [3, 6, 9]);
    results.push(`QoS 0 + clean session: ${r.rows} of ${total} readings stored through 3 full deploys at 2,000/s (${r.lost} lost: ${(r.lost / 3).toFixed(0)} per deploy)`);
    assert.equal(r.dropped, 0);
    assert.equal(r.twice, 0);
    assert.ok(r.lost > 0, 'QoS 0 has nothing to bring back what arrives while nobody subscribes');
  });
});
