/**
 * The real input packages in a real Node-RED (in process): node-red-contrib-modbus's modbus-server
 * serves registers to its modbus-read and modbus-flex-getter, node-red-contrib-opcua's OpcUa-Server
 * serves variables to its OpcUa-Client (subscribe, read, readmultiple, browse), and the input halves
 * of examples 04 and 05 run with their stand-ins. What they send is collected and read by
 * shapeMessage; each reading is mapped to its row. The unit tests
 * (shapes.test.ts) use copies of these messages (test/fixtures/input-messages.ts); the last test of
 * each package checks that the copies still have the fields the real nodes send.
 */
import assert from 'assert';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { helper } from './support/node-red';
import { freePort } from './support/node-red-process';
import { readingCount, resolveShapeOptions, shapeMessage, type ShapeResult } from '../src/core/readings/shapes';
import { mapRecord, resolveMappingOptions, type TelemetryRow } from '../src/core/sink/row-mapping';
import type { TelemetryRecord } from '../src/core/readings/records';
import * as fixtures from './fixtures/input-messages';
import { waitUntil } from './support/wait';

type Msg = Record<string, any>;

const RECEIVED_AT = Date.UTC(2026, 5, 1, 12, 0, 0);
const mapping = resolveMappingOptions({ extra: true });

/** `test-collect`: keeps every message it gets, by the collector's name. */
const collected: Record<string, Msg[]> = {};
function collectorNode(RED: any): void {
  RED.nodes.registerType('test-collect', function (this: any, config: any) {
    RED.nodes.createNode(this, config);
    const list: Msg[] = (collected[config.name] = collected[config.name] ?? []);
    this.on('input', (msg: Msg, _send: unknown, done: () => void) => {
      list.push(msg);
      done();
    });
  });
}

function readings(result: ShapeResult): TelemetryRecord[] {
  assert.equal(result.outcome, 'readings', result.outcome === 'not-a-reading' ? result.reason : '');
  return result.outcome === 'readings' ? result.readings : [];
}

function rows(records: TelemetryRecord[]): TelemetryRow[] {
  return records.map((record) => {
    const mapped = mapRecord(record, RECEIVED_AT, mapping);
    if (!mapped.ok) assert.fail(`${record.topic}: ${mapped.reason}`);
    return mapped.row;
  });
}

/** source, time (ISO), value, kind of each row: what a reader of the table sees. */
function table(records: TelemetryRecord[]): [string, string, number | null, string | null][] {
  return rows(records).map((r) => [r.source, new Date(r.time).toISOString(), r.value, r.kind]);
}

/** The fields a real message has, for comparing with its copy in the fixtures (ids and node ids differ). */
function fieldsOf(msg: Msg): string[] {
  return Object.keys(msg).filter((k) => k !== '_msgid').sort();
}

/** Whether something accepts connections on the port now. */
function listens(port: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });
}

/**
 * node-red-contrib-opcua keeps its certificates under env-paths' config folder, which its utils.js
 * reads once, when first required (the node files require it only when Node-RED registers them);
 * node-opcua-pki points OPENSSL_CONF and RANDFILE of this process into that folder when it runs
 * openssl. Both go to a folder of this run, and the environment is restored after it.
 */
const opcuaEnvironment = {
  pkiDir: '',
  saved: {} as Record<string, string | undefined>,
  nodes: [] as ((RED: any) => void)[],
  setUp(): void {
    if (this.pkiDir !== '') return;
    for (const name of ['OPENSSL_CONF', 'RANDFILE', 'XDG_CONFIG_HOME']) this.saved[name] = process.env[name];
    this.pkiDir = fs.mkdtempSync(path.join(os.tmpdir(), 'telemetry-opcua-pki-'));
    process.env.XDG_CONFIG_HOME = this.pkiDir;
    require('node-red-contrib-opcua/opcua/utils.js');
    this.restore('XDG_CONFIG_HOME');
    this.nodes = ['104-opcuaserver', '105-opcuaendpoint', '102-opcuaclient'].map((n) => require(`node-red-contrib-opcua/opcua/${n}.js`));
  },
  restore(name: string): void {
    if (this.saved[name] === undefined) delete process.env[name];
    else process.env[name] = this.saved[name];
  },
  tearDown(): void {
    if (this.pkiDir === '') return;
    this.restore('OPENSSL_CONF');
    this.restore('RANDFILE');
    fs.rmSync(this.pkiDir, { recursive: true, force: true });
  },
};

describe('input nodes: what the real packages send, read as readings', function () {
  this.timeout(60_000);

  after(function () {
    opcuaEnvironment.tearDown();
  });

  describe('node-red-contrib-modbus 5.23.3: modbus-server -> modbus-read / modbus-flex-getter', function () {
    const TAB = 'mbtab00000000001';
    let port: number;

    before(async function () {
      for (const key of Object.keys(collected)) delete collected[key];
      port = await freePort();
      const modbusNodes = ['modbus-client', 'modbus-server', 'modbus-read', 'modbus-flex-getter'].map((n) => require(`node-red-contrib-modbus/modbus/${n}.js`));
      const read = { type: 'modbus-read', z: TAB, showStatusActivities: false, showErrors: false, unitid: '1', rate: '100', rateUnit: 'ms', delayOnStart: false, startDelayTime: '', server: 'mbclient00000001', useIOFile: false, ioFile: '', useIOForPayload: false, emptyMsgOnFail: true };
      const flow = [
        { id: TAB, type: 'tab', label: 'modbus' },
        { id: 'mbserver00000001', type: 'modbus-server', z: TAB, name: '', logEnabled: false, hostname: '127.0.0.1', serverPort: port, responseDelay: 1, delayUnit: 'ms', coilsBufferSize: 64, holdingBufferSize: 64, inputBufferSize: 64, discreteBufferSize: 64, showErrors: false, wires: [] },
        { id: 'mbclient00000001', type: 'modbus-client', name: 'plc1', clienttype: 'tcp', bufferCommands: true, stateLogEnabled: false, queueLogEnabled: false, failureLogEnabled: false, tcpHost: '127.0.0.1', tcpPort: port, tcpType: 'DEFAULT', serialPort: '/dev/null', serialType: 'RTU-BUFFERD', serialBaudrate: 9600, serialDatabits: 8, serialStopbits: 1, serialParity: 'none', serialConnectionDelay: 100, serialAsciiResponseStartDelimiter: '0x3A', unit_id: 1, commandDelay: 1, clientTimeout: 1000, reconnectOnTimeout: true, reconnectTimeout: 2000, parallelUnitIdsAllowed: true },
        { ...read, id: 'mbreadhr00000001', name: 'holding', topic: 'plc1', dataType: 'HoldingRegister', adr: '10', quantity: '4', wires: [['mbout1hr00000001'], ['mbout2hr00000001']] },
        { ...read, id: 'mbreadco00000001', name: 'coils', topic: 'plc1', dataType: 'Coil', adr: '0', quantity: '3', wires: [['mbout1co00000001'], []] },
        // Past the end of the server's memory: the read fails and "empty message on fail" sends one.
        { ...read, id: 'mbreadfa00000001', name: 'failing', topic: 'plc1', dataType: 'HoldingRegister', adr: '1000', quantity: '2', wires: [['mbout1fa00000001'], []] },
        { id: 'mbflex0000000001', type: 'modbus-flex-getter', z: TAB, name: 'flex', showStatusActivities: false, showErrors: false, logIOActivities: false, server: 'mbclient00000001', useIOFile: false, ioFile: '', useIOForPayload: false, emptyMsgOnFail: true, keepMsgProperties: false, wires: [['mbout1fl00000001'], []] },
        { id: 'mbout1hr00000001', type: 'test-collect', z: TAB, name: 'holding' },
        { id: 'mbout2hr00000001', type: 'test-collect', z: TAB, name: 'holding output 2' },
        { id: 'mbout1co00000001', type: 'test-collect', z: TAB, name: 'coils' },
        { id: 'mbout1fa00000001', type: 'test-collect', z: TAB, name: 'failing' },
        { id: 'mbout1fl00000001', type: 'test-collect', z: TAB, name: 'flex' },
      ];
      await helper.load([...modbusNodes, collectorNode], flow);
      // The PLC's memory: holding registers 10..13 hold 100..103, coils 0 and 2 are on.
      const server = helper.getNode('mbserver00000001');
      for (let i = 0; i < 8; i++) server.modbusServer.holding.writeUInt16BE(100 + i, 2 * (10 + i));
      server.modbusServer.coils.writeUInt8(0b101, 0);
      await waitUntil('two polls of each modbus-read', () => ['holding', 'holding output 2', 'coils', 'failing'].every((name) => (collected[name]?.length ?? 0) >= 2));
      helper.getNode('mbflex0000000001').receive({ topic: 'plc1', payload: { unitid: 1, fc: 4, address: 5, quantity: 2 } });
      await waitUntil('the modbus-flex-getter answer', () => (collected.flex?.length ?? 0) >= 1);
    });

    after(async function () {
      await helper.unload();
    });

    it('modbus-read of holding registers: one reading per register, source <topic>/hr<address>', function () {
      for (const msg of collected.holding) {
        const result = shapeMessage(msg);
        assert.equal(result.outcome === 'readings' && result.shape, 'registers');
        assert.equal(readingCount(result), 4);
        assert.deepStrictEqual(table(readings(result)), [
          ['plc1/hr10', new Date(RECEIVED_AT).toISOString(), 100, null],
          ['plc1/hr11', new Date(RECEIVED_AT).toISOString(), 101, null],
          ['plc1/hr12', new Date(RECEIVED_AT).toISOString(), 102, null],
          ['plc1/hr13', new Date(RECEIVED_AT).toISOString(), 103, null],
        ]);
      }
    });

    it('output 2 (the raw response, values in msg.values) reads as the same registers', function () {
      const result = shapeMessage(collected['holding output 2'][0]);
      assert.deepStrictEqual(table(readings(result)).map(([source, , value]) => [source, value]), [
        ['plc1/hr10', 100],
        ['plc1/hr11', 101],
        ['plc1/hr12', 102],
        ['plc1/hr13', 103],
      ]);
    });

    it('coils: the quantity read, not the whole bytes the answer is padded to', function () {
      const msg = collected.coils[0];
      assert.equal(msg.payload.length, 8, 'the package sends 8 booleans for 3 coils');
      assert.deepStrictEqual(table(readings(shapeMessage(msg))).map(([source, , value]) => [source, value]), [
        ['plc1/coil0', 1],
        ['plc1/coil1', 0],
        ['plc1/coil2', 1],
      ]);
    });

    it('modbus-flex-getter: start address and function code from msg.modbusRequest', function () {
      const result = shapeMessage(collected.flex[0]);
      assert.deepStrictEqual(table(readings(result)).map(([source, , value]) => [source, value]), [
        ['plc1/ir5', 0],
        ['plc1/ir6', 0],
      ]);
    });

    it('a failed read ("empty message on fail") is not a reading, with the error as the reason', function () {
      const result = shapeMessage(collected.failing[0]);
      assert.deepStrictEqual(result, { outcome: 'not-a-reading', reason: 'the input node reported a failed read: Data length error, expected 9 got 5' });
      assert.equal(readingCount(result), 0);
    });

    it('the copies in test/fixtures have the fields the real nodes send', function () {
      assert.deepStrictEqual(fieldsOf(collected.holding[0]), fieldsOf(fixtures.modbusReadHolding));
      assert.deepStrictEqual(fieldsOf(collected.holding[0].input), fieldsOf(fixtures.modbusReadHolding.input));
      assert.deepStrictEqual(collected.holding[0].input.payload.address, fixtures.modbusReadHolding.input.payload.address, 'the address as the node config has it (a string)');
      assert.deepStrictEqual(fieldsOf(collected['holding output 2'][0]), fieldsOf(fixtures.modbusReadHoldingOutput2));
      assert.deepStrictEqual(fieldsOf(collected.coils[0]), fieldsOf(fixtures.modbusReadCoils));
      assert.deepStrictEqual(fieldsOf(collected.failing[0]), fieldsOf(fixtures.modbusReadFailed));
      assert.deepStrictEqual(fieldsOf(collected.flex[0]), fieldsOf(fixtures.modbusFlexGetter));
      assert.deepStrictEqual(fieldsOf(collected.flex[0].modbusRequest), fieldsOf(fixtures.modbusFlexGetter.modbusRequest));
    });
  });

  describe('node-red-contrib-opcua 0.2.354: OpcUa-Server -> OpcUa-Client', function () {
    const TAB = 'uatab00000000001';
    const SERVER = 'uaserver00000001';
    let port: number;

    const client = (id: string, name: string, action: string, collector: string) => ({
      id, type: 'OpcUa-Client', z: TAB, name, endpoint: 'uaendpoint000001', action, deadbandtype: 'a', deadbandvalue: 1, time: 100, timeUnit: 'ms', certificate: 'n', localfile: '', localkeyfile: '', securitymode: 'None', securitypolicy: 'None', useTransport: false, maxChunkCount: 1, maxMessageSize: 8192, receiveBufferSize: 8192, sendBufferSize: 8192, setstatusandtime: false, keepsessionalive: false, applicationName: '', applicationUri: '',
      wires: [[`${collector}`], [`${collector}st`], [`${collector}o3`]],
    });
    const collectors = (id: string, name: string) => [
      { id, type: 'test-collect', z: TAB, name },
      { id: `${id}st`, type: 'test-collect', z: TAB, name: `${name} status` },
      { id: `${id}o3`, type: 'test-collect', z: TAB, name: `${name} output 3` },
    ];
    const setVariable = (value: number, quality?: string, sourceTimestamp?: number) =>
      helper.getNode(SERVER).receive({ payload: { messageType: 'Variable', namespace: 1, variableName: 'MyVariable2', variableValue: value, datatype: 'Double', ...(quality ? { quality, sourceTimestamp } : {}) } });
    const sessionActive = (name: string) => (collected[`${name} status`] ?? []).some((m) => m.status === 'session active');

    /**
     * Sends a command once the client's session is up (the package drops what arrives before). A
     * client that tried before the server listened connects again only on its next input message,
     * so after a while without a session a message goes to wake it.
     * `name`: the client's collectors.
     */
    async function command(clientId: string, name: string, msg: Msg, arrived: () => boolean): Promise<void> {
      const start = Date.now();
      while (!sessionActive(name)) {
        await waitUntil(`${name}: session`, () => sessionActive(name), 10_000).catch(() => helper.getNode(clientId).receive({ ...msg }));
        if (Date.now() - start > 30_000) throw new Error(`${name}: no session; states: ${(collected[`${name} status`] ?? []).map((m) => m.status).join(', ')}`);
      }
      if (arrived()) return;
      helper.getNode(clientId).receive({ ...msg });
      await waitUntil(`${name}: answer to ${JSON.stringify(msg.topic)}`, arrived, 10_000);
    }

    before(async function () {
      for (const key of Object.keys(collected)) delete collected[key];
      opcuaEnvironment.setUp();
      port = await freePort();
      const server = { id: SERVER, type: 'OpcUa-Server', z: TAB, port: String(port), name: '', endpoint: '', usersFile: '', nodesetDir: '', autoAcceptUnknownCertificate: true, registerToDiscovery: false, constructDefaultAddressSpace: true, allowAnonymous: true, endpointNone: true, endpointSign: false, endpointSignEncrypt: false, endpointBasic128Rsa15: false, endpointBasic256: false, endpointBasic256Sha256: false, maxConnectionsPerEndpoint: 20, maxMessageSize: 4096, maxBufferSize: 4096, maxSessions: 20, wires: [[]] };
      const flow = [
        { id: TAB, type: 'tab', label: 'opcua' },
        server,
        { id: 'uaendpoint000001', type: 'OpcUa-Endpoint', endpoint: `opc.tcp://127.0.0.1:${port}`, secpol: 'None', secmode: 'None', none: true, login: false, usercert: false, usercertificate: '', userprivatekey: '' },
        client('uasubscribe00001', 'subscriber', 'subscribe', 'uacsub0000000001'),
        client('uaread0000000001', 'reader', 'read', 'uacread000000001'),
        client('uamulti000000001', 'multireader', 'readmultiple', 'uacmulti00000001'),
        client('uabrowse00000001', 'browser', 'browse', 'uacbrowse0000001'),
        client('uagroup000000001', 'group subscriber', 'subscribe', 'uacgroup00000001'),
        ...collectors('uacsub0000000001', 'subscribe'),
        ...collectors('uacread000000001', 'read'),
        ...collectors('uacmulti00000001', 'readmultiple'),
        ...collectors('uacbrowse0000001', 'browse'),
        ...collectors('uacgroup00000001', 'group'),
      ];
      // The server first, listening, so the clients connect at their first try.
      await helper.load([...opcuaEnvironment.nodes, collectorNode], [flow[0], server]);
      await waitUntil(`something to listen on port ${port}`, () => listens(port), 30_000, 50);
      await helper.setFlows(flow, 'full');

      await command('uasubscribe00001', 'subscribe', { topic: 'ns=1;s=MyVariable2', datatype: 'Double', payload: '' }, () => (collected.subscribe ?? []).some((m) => m.statusCode !== undefined));
      setVariable(21.5);
      await waitUntil('the change to 21.5', () => collected.subscribe.some((m) => m.payload === 21.5));
      setVariable(22.5, 'UncertainLastUsableValue', Date.UTC(2026, 0, 2, 3, 4, 5));
      await waitUntil('the uncertain 22.5', () => collected.subscribe.some((m) => m.payload === 22.5));
      setVariable(23.5, 'BadSensorFailure', Date.UTC(2026, 0, 2, 3, 4, 6));
      await waitUntil('the bad 23.5', () => collected.subscribe.some((m) => m.payload === 23.5));
      setVariable(24.5);
      await waitUntil('the good 24.5', () => collected.subscribe.some((m) => m.payload === 24.5));

      await command('uaread0000000001', 'read', { topic: 'ns=1;s=Counter', payload: '' }, () => (collected.read ?? []).length >= 1);
      await command('uamulti000000001', 'readmultiple', { topic: 'readmultiple', payload: ['ns=1;s=MyVariable2', 'ns=1;s=Counter'] }, () => (collected['readmultiple output 3'] ?? []).length >= 1);
      helper.getNode('uamulti000000001').receive({ topic: 'readmultiple', payload: 'ALL' });
      await waitUntil('readmultiple ALL', () => (collected.readmultiple ?? []).some((m) => m.topic === 'readmultiple'));
      await command('uagroup000000001', 'group', { topic: 'multiple', payload: [{ nodeId: 'ns=1;s=MyVariable2' }, { nodeId: 'ns=1;s=Counter' }] }, () => (collected.group ?? []).some((m) => m.topic === 'ns=1;s=Counter'));
      await command('uabrowse00000001', 'browse', { topic: 'ns=1;s=VendorName', payload: '' }, () => (collected.browse ?? []).length >= 1);
    });

    after(async function () {
      await helper.unload();
    });

    it('subscribe: the subscription id message is not a reading', function () {
      const msg = collected.subscribe[0];
      assert.equal(msg.topic, 'subscriptionId');
      assert.deepStrictEqual(shapeMessage(msg), { outcome: 'not-a-reading', reason: `OPC UA subscription id ${msg.payload} (the client's own message when a subscription starts)` });
    });

    it('subscribe: a Good value is one reading at its source timestamp, source = the node id', function () {
      const msg = collected.subscribe.find((m) => m.payload === 21.5) as Msg;
      assert.ok(msg.sourceTimestamp instanceof Date);
      const result = shapeMessage(msg);
      assert.equal(readingCount(result), 1);
      assert.deepStrictEqual(table(readings(result)), [['ns=1;s=MyVariable2', msg.sourceTimestamp.toISOString(), 21.5, null]]);
    });

    it('subscribe: Uncertain and Bad values are refused by default, with the status as the reason', function () {
      const uncertain = shapeMessage(collected.subscribe.find((m) => m.payload === 22.5) as Msg);
      const bad = shapeMessage(collected.subscribe.find((m) => m.payload === 23.5) as Msg);
      assert.ok(uncertain.outcome === 'readings' && bad.outcome === 'readings');
      assert.deepStrictEqual([uncertain.readings, bad.readings], [[], []]);
      assert.deepStrictEqual(uncertain.refused.map((r) => r.reason), ['ns=1;s=MyVariable2: OPC UA status UncertainLastUsableValue (0x40900000) is uncertain; quality good-only stores only Good values']);
      assert.deepStrictEqual(bad.refused.map((r) => r.reason), ['ns=1;s=MyVariable2: OPC UA status BadSensorFailure (0x808C0000) is bad; quality good-only stores only Good values']);
    });

    it('subscribe: quality keep-all stores them with kind uncertain / bad and the status in extra', function () {
      const keepAll = resolveShapeOptions({ quality: 'keep-all' });
      const stored = [22.5, 23.5].map((v) => rows(readings(shapeMessage(collected.subscribe.find((m) => m.payload === v) as Msg, keepAll)))[0]);
      assert.deepStrictEqual(stored.map((r) => [r.source, new Date(r.time).toISOString(), r.value, r.kind, r.extra]), [
        ['ns=1;s=MyVariable2', '2026-01-02T03:04:05.000Z', 22.5, 'uncertain', { statusCode: 0x40900000, statusName: 'UncertainLastUsableValue' }],
        ['ns=1;s=MyVariable2', '2026-01-02T03:04:06.000Z', 23.5, 'bad', { statusCode: 0x808c0000, statusName: 'BadSensorFailure' }],
      ]);
    });

    it('subscribe: a message that went through JSON (spool, disk tier) maps to the same row', function () {
      for (const msg of collected.subscribe.filter((m) => m.statusCode !== undefined)) {
        const before = shapeMessage(msg);
        const after = shapeMessage(JSON.parse(JSON.stringify(msg)));
        assert.equal(readingCount(after), readingCount(before));
        if (before.outcome === 'readings' && after.outcome === 'readings') assert.deepStrictEqual(rows(after.readings), rows(before.readings));
      }
    });

    it('subscribe to a group (topic "multiple"): one DataValue per change, read at its source timestamp', function () {
      const changes = collected.group.filter((m) => m.topic !== 'subscriptionId');
      assert.deepStrictEqual(changes.map((m) => m.topic).sort(), ['ns=1;s=Counter', 'ns=1;s=MyVariable2']);
      for (const msg of changes) {
        assert.deepStrictEqual(table(readings(shapeMessage(msg))), [[msg.topic, msg.payload.sourceTimestamp.toISOString(), msg.payload.value.value, null]]);
      }
    });

    it('read: one reading at the source timestamp', function () {
      const msg = collected.read.find((m) => m.topic === 'ns=1;s=Counter') as Msg;
      assert.deepStrictEqual(table(readings(shapeMessage(msg))), [['ns=1;s=Counter', msg.sourceTimestamp.toISOString(), msg.payload, null]]);
    });

    it('readmultiple: one message per item, "ALL" (DataValues with msg.items) and output 3 read alike', function () {
      const perItem = collected.readmultiple.filter((m) => m.topic !== 'readmultiple').slice(0, 2);
      const expected = perItem.map((m) => [m.topic, m.sourceTimestamp.toISOString(), m.payload, null]);
      assert.deepStrictEqual(expected.map(([source, , value]) => [source, value]), [['ns=1;s=MyVariable2', 24.5], ['ns=1;s=Counter', 1]]);
      assert.deepStrictEqual(perItem.flatMap((m) => table(readings(shapeMessage(m)))), expected);
      assert.deepStrictEqual(table(readings(shapeMessage(collected['readmultiple output 3'][0]))), expected);
      assert.deepStrictEqual(table(readings(shapeMessage(collected.readmultiple.find((m) => m.topic === 'readmultiple') as Msg))), expected);
    });

    it('browse results and the status output are not readings', function () {
      const browse = shapeMessage(collected.browse[0]);
      assert.equal(browse.outcome, 'not-a-reading');
      assert.match((browse as { reason: string }).reason, /^OPC UA browse result \(\d+ references\)$/);
      const statuses = Object.keys(collected).filter((k) => k.endsWith(' status')).flatMap((k) => collected[k]);
      assert.ok(statuses.length >= 8, `${statuses.length} status messages`);
      for (const msg of statuses) assert.equal(shapeMessage(msg).outcome, 'not-a-reading', JSON.stringify(msg));
    });

    it('every data change of a monitored item carries the _msgid of the message that asked for it', function () {
      const changes = [21.5, 22.5, 23.5, 24.5].map((v) => collected.subscribe.find((m) => m.payload === v) as Msg);
      assert.equal(new Set(changes.map((m) => m._msgid)).size, 1);
    });

    it('the copies in test/fixtures have the fields the real nodes send', function () {
      assert.deepStrictEqual(fieldsOf(collected.subscribe[0]), fieldsOf(fixtures.opcuaSubscriptionId));
      assert.deepStrictEqual(fieldsOf(collected.subscribe.find((m) => m.payload === 21.5) as Msg), fieldsOf(fixtures.opcuaSubscribeGood));
      assert.deepStrictEqual(fieldsOf(collected.read[collected.read.length - 1]), fieldsOf(fixtures.opcuaReadCounter));
      assert.deepStrictEqual(fieldsOf(collected.readmultiple.find((m) => m.topic === 'readmultiple') as Msg), fieldsOf(fixtures.opcuaReadMultipleAll));
      assert.deepStrictEqual(fieldsOf(collected['readmultiple output 3'][0]), fieldsOf(fixtures.opcuaReadMultipleOutput3));
      assert.deepStrictEqual(fieldsOf(collected['subscribe status'][0]), fieldsOf(fixtures.opcuaStatus));
      const change = collected.group.find((m) => m.topic === 'ns=1;s=Counter') as Msg;
      assert.deepStrictEqual(fieldsOf(change), fieldsOf(fixtures.opcuaGroupChange));
      assert.deepStrictEqual(fieldsOf(change.payload), fieldsOf(fixtures.opcuaGroupChange.payload));
      assert.deepStrictEqual(fieldsOf(collected.browse[0]), fieldsOf(fixtures.opcuaBrowse));
      assert.deepStrictEqual(fieldsOf(collected.browse[0].payload[0].item), fieldsOf(fixtures.opcuaBrowse.payload[0].item));
    });
  });
  /**
   * Examples 04 and 05 as a user imports them, with their stand-in PLC / OPC UA server enabled: the
   * pipeline part (buffer onwards) is replaced by a collector in the buffer's place, so this checks
   * what the input half sends the buffer. Ports are moved to free ones.
   */
  describe('examples 04 and 05: what their input nodes send the buffer, stand-ins enabled', function () {
    const examples = path.join(__dirname, '..', 'examples');
    const PIPELINE = new Set(['telemetry-buffer', 'telemetry-batcher', 'timescale-sink', 'timescale-connection', 'catch', 'debug', 'comment']);

    function asInputHalf(file: string, replace: (node: Msg) => void): Msg[] {
      const flow: Msg[] = JSON.parse(fs.readFileSync(path.join(examples, file), 'utf8'));
      const tab = flow.find((n) => n.z !== undefined)?.z as string;
      const out: Msg[] = [{ id: tab, type: 'tab', label: file }];
      for (const node of flow) {
        if (node.type === 'telemetry-buffer') out.push({ id: node.id, type: 'test-collect', z: tab, name: file });
        if (PIPELINE.has(node.type)) continue;
        const copy = { ...node };
        delete copy.d;
        replace(copy);
        // Wires to the pipeline's side outputs (debug nodes) are gone with them.
        if (Array.isArray(copy.wires)) copy.wires = copy.wires.map((port: string[]) => port.filter((id) => flow.some((n) => n.id === id && (!PIPELINE.has(n.type) || n.type === 'telemetry-buffer'))));
        out.push(copy);
      }
      return out;
    }

    afterEach(async function () {
      await helper.unload();
    });

    it('04 Modbus TCP: ten holding registers per poll, plc1/hr0 .. plc1/hr9, register 0 changing', async function () {
      const file = '04 - Modbus TCP into TimescaleDB.json';
      collected[file] = [];
      const port = await freePort();
      const flow = asInputHalf(file, (node) => {
        if (node.type === 'modbus-server') node.serverPort = String(port);
        if (node.type === 'modbus-client') node.tcpPort = String(port);
      });
      const modbusNodes = ['modbus-client', 'modbus-server', 'modbus-read'].map((n) => require(`node-red-contrib-modbus/modbus/${n}.js`));
      await helper.load([...modbusNodes, require('@node-red/nodes/core/common/20-inject.js'), collectorNode], flow);
      await waitUntil('a poll that sees register 0 changed by the stand-in', () => collected[file].some((m) => Array.isArray(m.payload) && m.payload[0] > 0), 20_000);
      for (const msg of collected[file]) {
        const got = readings(shapeMessage(msg));
        assert.deepStrictEqual(got.map((r) => r.topic), Array.from({ length: 10 }, (_, i) => `plc1/hr${i}`));
        assert.deepStrictEqual(got.map((r) => r.payload), msg.payload);
        assert.ok(got.slice(1).every((r) => r.payload === 0) && (got[0].payload as number) <= 1000);
      }
    });

    it('05 OPC UA subscription: the subscription id is not a reading, then the two variables at their source times', async function () {
      const file = '05 - OPC UA subscription into TimescaleDB.json';
      collected[file] = [];
      opcuaEnvironment.setUp();
      const port = await freePort();
      const flow = asInputHalf(file, (node) => {
        if (node.type === 'OpcUa-Server') node.port = String(port);
        if (node.type === 'OpcUa-Endpoint') node.endpoint = `opc.tcp://127.0.0.1:${port}`;
      });
      const server = flow.find((n) => n.type === 'OpcUa-Server') as Msg;
      // The stand-in first, listening, as a server already running would be.
      await helper.load([...opcuaEnvironment.nodes, require('@node-red/nodes/core/common/20-inject.js'), collectorNode], [flow[0], server]);
      await waitUntil(`something to listen on port ${port}`, () => listens(port), 30_000, 50);
      await helper.setFlows(flow, 'full');
      const injects = flow.filter((n) => n.type === 'inject' && /^ns=/.test(n.topic));
      const has = (topic: string) => collected[file].some((m) => m.topic === topic && m.statusCode !== undefined);
      // What the repeating injects would do every 30 s, pressed now.
      const start = Date.now();
      while (!(has('ns=1;s=MyVariable2') && has('ns=1;s=Counter'))) {
        for (const inject of injects) helper.getNode(inject.id).receive({});
        await waitUntil('both variables', () => has('ns=1;s=MyVariable2') && has('ns=1;s=Counter'), 5_000).catch(() => undefined);
        if (Date.now() - start > 40_000) throw new Error('no values from the stand-in server');
      }
      helper.getNode(flow.find((n) => n.type === 'inject' && n.payloadType === 'jsonata')?.id).receive({});
      await waitUntil('MyVariable2 changed by the stand-in inject', () => collected[file].some((m) => m.topic === 'ns=1;s=MyVariable2' && m.payload !== 10));

      const ids = collected[file].filter((m) => m.topic === 'subscriptionId');
      assert.equal(ids.length, 1);
      assert.equal(shapeMessage(ids[0]).outcome, 'not-a-reading');
      for (const msg of collected[file].filter((m) => m.topic !== 'subscriptionId')) {
        assert.deepStrictEqual(table(readings(shapeMessage(msg))), [[msg.topic, msg.sourceTimestamp.toISOString(), msg.payload, null]]);
      }
      const changed = collected[file].find((m) => m.topic === 'ns=1;s=MyVariable2' && m.payload !== 10) as Msg;
      assert.ok(changed.payload >= 15 && changed.payload <= 25, String(changed.payload));
    });
  });
});
