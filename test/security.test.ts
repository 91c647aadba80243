import assert from 'node:assert/strict';
import { execFileSync } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Client, Pool } from 'pg';
import { CONNECTION_DEFAULTS, poolConfig, type TlsMode } from '../src/core/connection/connection-settings';
import { NodeRedProcess, startNodeRed } from './support/node-red-process';
import { deploy, IDS, nodeStats, pipelineFlow, TAB } from './support/pipeline';
import { createTestDatabase } from './support/postgres';
import { waitUntil } from './support/wait';

const { startEmbeddedPostgres } = require('../scripts/embedded-pg.js') as {
  startEmbeddedPostgres(options?: { settings?: Record<string, string> }): Promise<{ port: number; user: string; password: string; destroy(): Promise<void> }>;
};

/** The unprivileged account embedded-pg runs the server as when we are root (it must read the key). */
function serverAccount(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  for (const name of ['postgres', 'nobody']) {
    try {
      return { uid: Number(execFileSync('id', ['-u', name], { encoding: 'utf8' })), gid: Number(execFileSync('id', ['-g', name], { encoding: 'utf8' })) };
    } catch {
      /* next */
    }
  }
  return undefined;
}

describe('security', function () {
  this.timeout(180_000);

  describe('the database password never shows', function () {
    let red: NodeRedProcess | undefined;
    afterEach(async function () {
      if (red) {
        await red.stop('SIGKILL');
        fs.rmSync(red.userDir, { recursive: true, force: true });
        red = undefined;
      }
    });

    it('not in logs, status, errors, debug output, stats, GET /flows or flows_cred.json', async function () {
      const url = new URL(await createTestDatabase('sec_password'));
      const password = `Pw-${crypto.randomBytes(9).toString('base64url')}`;
      const admin = new Client({ connectionString: url.toString() });
      await admin.connect();
      await admin.query(`DROP ROLE IF EXISTS sec_writer`).catch(() => undefined);
      await admin.query(`CREATE ROLE sec_writer LOGIN PASSWORD '${password}'`);
      await admin.query(`GRANT ALL ON SCHEMA public TO sec_writer`);
      await admin.end();
      const dbUrl = new URL(url.toString());
      dbUrl.username = 'sec_writer';
      dbUrl.password = password;

      // Everything observable goes to the log: debug nodes print to the console, a status node and
      // a catch node report every status text and every error of the pipeline.
      const observers = [
        { id: 'sec0dbg000000001', type: 'debug', z: TAB, active: true, tosidebar: true, console: true, complete: 'true', wires: [] },
        { id: 'sec0sts000000001', type: 'status', z: TAB, scope: null, wires: [['sec0dbg000000001']] },
        { id: 'sec0cat000000001', type: 'catch', z: TAB, scope: null, uncaught: false, wires: [['sec0dbg000000001']] },
      ];
      const withObservers = (flow: object[]): object[] =>
        flow.map((n) => ((n as { id: string }).id === IDS.sink ? { ...n, statsInterval: 1, wires: [['sec0dbg000000001'], ['sec0dbg000000001']] } : n)).concat(observers);

      red = await startNodeRed();
      const proc = red;
      // 1. Wrong password: authentication errors, retries, down state.
      const wrong = new URL(dbUrl.toString());
      wrong.password = `${password}-wrong`;
      await deploy(proc, withObservers(pipelineFlow({ databaseUrl: wrong.toString(), table: 'sec_line', rate: 200 })));
      await waitUntil('the authentication failure to be reported', async () => /password authentication failed/.test(proc.output()), 60_000);
      // 2. Right password, with a bad row so the dead-letter output (to the debug node) has something.
      await deploy(proc, withObservers(pipelineFlow({ databaseUrl: dbUrl.toString(), table: 'sec_line', rate: 200 })));
      await waitUntil('rows written', async () => ((await nodeStats(proc))[IDS.sink]?.written ?? 0) > 100, 60_000);

      const checks: Record<string, string> = {
        log: proc.output(),
        'GET /flows': (await proc.request('GET', '/flows')).body,
        'GET /flows (v2)': (await proc.request('GET', '/flows', undefined, { 'Node-RED-API-Version': 'v2' })).body,
        'GET /credentials': (await proc.request('GET', `/credentials/timescale-connection/${IDS.conn}`)).body,
        'GET /telemetry/stats': (await proc.request('GET', '/telemetry/stats')).body,
        'GET /telemetry/metrics': (await proc.request('GET', '/telemetry/metrics')).body,
        'flows.json': fs.readFileSync(path.join(proc.userDir, 'flows.json'), 'utf8'),
        'flows_cred.json': fs.readFileSync(path.join(proc.userDir, 'flows_cred.json'), 'utf8'),
      };
      for (const [where, text] of Object.entries(checks)) {
        assert.ok(!text.includes(password), `the password appears in ${where}`);
        assert.ok(!text.includes(encodeURIComponent(password)), `the encoded password appears in ${where}`);
      }
      // The observers did see things: the checks above searched real status, error and debug output.
      assert.match(checks.log, /rows\/s/, 'status texts reached the log');
      assert.match(checks.log, /refuses this configuration \(28P01/, 'errors reached the log');
      assert.match(checks['GET /credentials'], /"has_password":true/);
      // flows_cred.json is encrypted (Node-RED's {"$": "..."} form), not a readable credentials object.
      assert.deepEqual(Object.keys(JSON.parse(checks['flows_cred.json'])), ['$']);
      assert.ok(!checks['flows_cred.json'].includes('sec_writer'), 'not even the user name is readable');
    });
  });

  describe('TLS with certificate verification against a server with a self-signed CA', function () {
    let dir = '';
    let server: Awaited<ReturnType<typeof startEmbeddedPostgres>> | undefined;

    before(async function () {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telemetry-tls-'));
      const run = (...args: string[]): void => {
        execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
      };
      // Our CA, a server certificate it signs (valid for 127.0.0.1 and localhost), and a second CA
      // that signed nothing here.
      run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=telemetry test CA', '-keyout', 'ca.key', '-out', 'ca.pem');
      run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=some other CA', '-keyout', 'other.key', '-out', 'other.pem');
      run('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-keyout', 'server.key', '-out', 'server.csr');
      fs.writeFileSync(path.join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
      run('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-extfile', 'san.ext', '-out', 'server.pem');
      fs.chmodSync(dir, 0o755);
      fs.chmodSync(path.join(dir, 'server.key'), 0o600);
      const account = serverAccount();
      if (account) fs.chownSync(path.join(dir, 'server.key'), account.uid, account.gid);
      server = await startEmbeddedPostgres({ settings: { ssl: 'on', ssl_cert_file: path.join(dir, 'server.pem'), ssl_key_file: path.join(dir, 'server.key') } });
    });

    after(async function () {
      await server?.destroy();
      fs.rmSync(dir, { recursive: true, force: true });
    });

    async function connect(tls: TlsMode, caFile: string, host = '127.0.0.1'): Promise<{ ssl: boolean } | Error> {
      const s = server as NonNullable<typeof server>;
      const pool = new Pool(poolConfig({ ...CONNECTION_DEFAULTS, host, port: s.port, database: 'postgres', user: s.user, password: s.password, tls, caFile, poolSize: 1, connectTimeout: 10_000 }));
      pool.on('error', () => undefined);
      try {
        const r = await pool.query('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
        return { ssl: r.rows[0].ssl as boolean };
      } catch (err) {
        return err as Error;
      } finally {
        await pool.end().catch(() => undefined);
      }
    }

    it('verify-full and verify-ca with our CA connect, and the connection is encrypted', async function () {
      assert.deepEqual(await connect('verify-full', path.join(dir, 'ca.pem')), { ssl: true });
      assert.deepEqual(await connect('verify-full', path.join(dir, 'ca.pem'), 'localhost'), { ssl: true });
      assert.deepEqual(await connect('verify-ca', path.join(dir, 'ca.pem')), { ssl: true });
    });

    it('a wrong CA is refused, and so is the system trust store for a private CA', async function () {
      for (const [mode, ca] of [['verify-full', 'other.pem'], ['verify-ca', 'other.pem'], ['verify-full', '']] as [TlsMode, string][]) {
        const result = await connect(mode, ca ? path.join(dir, ca) : '');
        assert.ok(result instanceof Error, `${mode} with ${ca || 'the system CAs'} must be refused`);
        assert.match(result.message, /self[- ]signed certificate|unable to verify|unable to get local issuer/i);
      }
    });

    it('verify-full refuses a certificate for another host name; require encrypts without checking', async function () {
      // The certificate names 127.0.0.1 and localhost; 127.0.0.2 is the same server under another name.
      const other = await connect('verify-full', path.join(dir, 'ca.pem'), '127.0.0.2');
      if (!(other instanceof Error) || !/ECONNREFUSED/.test(other.message)) {
        assert.ok(other instanceof Error, 'a host name the certificate does not name is refused');
        assert.match(other.message, /altnames|Hostname\/IP does not match/i);
      }
      assert.deepEqual(await connect('require', ''), { ssl: true });
    });
  });

  describe('admin counters behind Node-RED admin authentication', function () {
    let red: NodeRedProcess | undefined;
    after(async function () {
      if (red) {
        await red.stop('SIGKILL');
        fs.rmSync(red.userDir, { recursive: true, force: true });
      }
    });

    it('GET /telemetry/stats and /telemetry/metrics: 401 without a token, 200 with one', async function () {
      const bcrypt = require('bcryptjs') as { hashSync(s: string, rounds: number): string };
      const hash = bcrypt.hashSync('admin-pass', 8);
      red = await startNodeRed({
        settings: `adminAuth: { type: 'credentials', users: [{ username: 'admin', password: ${JSON.stringify(hash)}, permissions: '*' }, { username: 'viewer', password: ${JSON.stringify(hash)}, permissions: 'read' }] },`,
      });
      const proc = red;
      for (const p of ['/telemetry/stats', '/telemetry/metrics']) {
        assert.equal((await proc.request('GET', p)).status, 401, `${p} without a token`);
        assert.equal((await proc.request('GET', p, undefined, { Authorization: 'Bearer not-a-token' })).status, 401, `${p} with a bad token`);
      }
      for (const [username, scope] of [['admin', '*'], ['viewer', 'read']]) {
        const login = await proc.request('POST', '/auth/token', { client_id: 'node-red-admin', grant_type: 'password', scope, username, password: 'admin-pass' });
        assert.equal(login.status, 200, `${username}: ${login.body}`);
        const token = JSON.parse(login.body).access_token as string;
        const stats = await proc.request('GET', '/telemetry/stats', undefined, { Authorization: `Bearer ${token}` });
        assert.equal(stats.status, 200);
        assert.ok(Array.isArray(JSON.parse(stats.body).nodes));
        const metrics = await proc.request('GET', '/telemetry/metrics', undefined, { Authorization: `Bearer ${token}` });
        assert.equal(metrics.status, 200);
      }
      const bad = await proc.request('POST', '/auth/token', { client_id: 'node-red-admin', grant_type: 'password', scope: '*', username: 'admin', password: 'wrong' });
      assert.notEqual(bad.status, 200);
    });
  });
});
