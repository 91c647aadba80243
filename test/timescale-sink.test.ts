import assert from 'node:assert/strict';
import { Client } from 'pg';
import { createTestDatabase } from './support/postgres';
import { badgesOf, helper, runtimeHooks } from './support/node-red';
import { waitUntil } from './support/wait';

const connectionNode = require('../nodes/timescale-connection.js');
const sinkNode = require('../nodes/timescale-sink.js');
const catchNode = require('@node-red/nodes/core/common/25-catch.js');

interface Completion {
  msgid: string;
  error?: unknown;
  /** Rows in the table counted by a query started synchronously inside the completion hook. */
  rowsAtDone?: Promise<number>;
}

interface Target {
  host: string;
  port: number;
  database: string;
  user: string;
  password: string;
}

/** Records every done() of node `sink`, synchronously, through the runtime's onComplete hook. */
class SinkCompletions {
  readonly list: Completion[] = [];
  private readonly name = `onComplete.sinkTest${Math.random().toString(36).slice(2)}`;
  constructor(private readonly countRows?: () => Promise<number>) {
    runtimeHooks.add(this.name, (evt: { node: { id: string }; msg?: { _msgid?: string }; error?: unknown }) => {
      if (evt.node.id !== 'sink') return;
      this.list.push({ msgid: evt.msg?._msgid ?? '?', error: evt.error, rowsAtDone: this.countRows?.() });
    });
  }
  of(msgid: string): Completion[] {
    return this.list.filter((c) => c.msgid === msgid);
  }
  stop(): void {
    runtimeHooks.remove(this.name);
  }
}

type AnyNode = any;

/** Every event taken in is in exactly one place: the sink's counting rule. */
function assertBalanced(s: Record<string, number | string>): void {
  const n = (k: string): number => s[k] as number;
  const parts = ['written', 'duplicates', 'rejected', 'deadLetteredEvents', 'refusedEvents', 'closedEvents', 'inFlightEvents', 'queuedEvents'];
  const accounted = parts.reduce((sum, k) => sum + n(k), 0);
  assert.equal(accounted, n('receivedEvents'), `counters do not add up: ${JSON.stringify(s)}`);
}

describe('timescale-sink and timescale-connection in a real Node-RED runtime', function () {
  let target: Target;
  let db: Client;
  let completions: SinkCompletions | undefined;
  let tableNo = 0;
  let table = '';

  before(async function () {
    const url = new URL(await createTestDatabase('sink_nodes'));
    target = {
      host: url.hostname,
      port: Number(url.port),
      database: decodeURIComponent(url.pathname.slice(1)),
      user: decodeURIComponent(url.username),
      password: decodeURIComponent(url.password)
    };
    db = new Client({ host: target.host, port: target.port, database: target.database, user: target.user, password: target.password });
    await db.connect();
  });

  after(async function () {
    await db?.end();
  });

  beforeEach(function () {
    table = `sink_t${++tableNo}`;
  });

  afterEach(async function () {
    completions?.stop();
    completions = undefined;
    await helper.unload();
  });

  function flow(sink: Record<string, unknown> = {}, conn: Record<string, unknown> = {}): object[] {
    return [
      { id: 'conn', type: 'timescale-connection', host: target.host, port: String(target.port), database: target.database, tls: 'off', poolSize: '4', ...conn },
      { id: 'sink', type: 'timescale-sink', connection: 'conn', schema: 'public', table, mode: 'auto', statsInterval: '0', wires: [['dead'], ['stats']], ...sink },
      { id: 'dead', type: 'helper' },
      { id: 'stats', type: 'helper' }
    ];
  }

  const credentials = (password?: string, user?: string) => ({ conn: { user: user ?? target.user, password: password ?? target.password } });

  async function rowCount(): Promise<number> {
    const { rows } = await db.query(`SELECT count(*)::int AS n FROM public."${table}"`);
    return rows[0].n as number;
  }

  /** Resolves once a statement of ours waits for a lock on the server. */
  async function untilBlockedOnLock(): Promise<void> {
    const blocked = async (): Promise<boolean> => (await db.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND application_name = 'node-red-telemetry'`)).rows[0].n > 0;
    await waitUntil('a statement of ours to wait for a lock', blocked, 60_000, 10);
  }

  async function lockTable(mode: string): Promise<Client> {
    const locker = new Client({ host: target.host, port: target.port, database: target.database, user: target.user, password: target.password });
    await locker.connect();
    await locker.query('BEGIN');
    await locker.query(`LOCK TABLE public."${table}" IN ${mode} MODE`);
    return locker;
  }

  async function ourConnections(): Promise<number> {
    const { rows } = await db.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'node-red-telemetry' AND datname = current_database()`);
    return rows[0].n as number;
  }

  function collect(nodeId: string): Record<string, unknown>[] {
    const out: Record<string, unknown>[] = [];
    helper.getNode(nodeId).on('input', (msg: Record<string, unknown>) => out.push(msg));
    return out;
  }

  function records(n: number, source = 'line1/temp', start = Date.UTC(2026, 0, 1)): Record<string, unknown>[] {
    return Array.from({ length: n }, (_, i) => ({ topic: source, payload: 20 + (i % 10), timestamp: start + i * 1000, seq: i }));
  }

  function batchMsg(recs: Record<string, unknown>[], id = 1): Record<string, unknown> {
    return { _msgid: `batch-${id}-${Math.random().toString(36).slice(2)}`, payload: recs, batch: { id, count: recs.length, reason: 'size' } };
  }

  async function send(msg: Record<string, unknown>): Promise<Completion> {
    const id = msg._msgid as string;
    helper.getNode('sink').receive(msg);
    await waitUntil(`done() for ${id}`, () => (completions as SinkCompletions).of(id).length > 0);
    return (completions as SinkCompletions).of(id)[0];
  }

  it('writes a batch of records and calls done() once, after the rows are committed', async function () {
    await helper.load([connectionNode, sinkNode], flow(), credentials());
    completions = new SinkCompletions(() => rowCount());
    const msg = batchMsg(records(500));
    const c = await send(msg);
    assert.equal(c.error, undefined);
    assert.equal(await c.rowsAtDone, 500);
    assert.equal(completions.of(msg._msgid as string).length, 1);
    const { rows } = await db.query(`SELECT source, value, seq::int AS seq FROM public."${table}" ORDER BY seq LIMIT 2`);
    assert.deepEqual(rows, [
      { source: 'line1/temp', value: 20, seq: 0 },
      { source: 'line1/temp', value: 21, seq: 1 }
    ]);
  });

  it('does not call done() while the insert waits for a lock, and calls it once the rows are in', async function () {
    await helper.load([connectionNode, sinkNode], flow(), credentials());
    completions = new SinkCompletions(() => rowCount());
    await send(batchMsg(records(1, 'warmup', Date.UTC(2025, 0, 1))));
    const locker = new Client({ host: target.host, port: target.port, database: target.database, user: target.user, password: target.password });
    await locker.connect();
    try {
      await locker.query('BEGIN');
      await locker.query(`LOCK TABLE public."${table}" IN SHARE ROW EXCLUSIVE MODE`);
      const msg = batchMsg(records(100));
      helper.getNode('sink').receive(msg);
      // Wait until the insert is blocked on the lock, on the server: done() must not have fired.
      await untilBlockedOnLock();
      assert.equal(completions.of(msg._msgid as string).length, 0);
      await locker.query('COMMIT');
      await waitUntil('done after the lock is released', () => completions!.of(msg._msgid as string).length > 0);
      const c = completions.of(msg._msgid as string);
      assert.equal(c.length, 1);
      assert.equal(c[0].error, undefined);
      assert.equal(await c[0].rowsAtDone, 101);
    } finally {
      await locker.end();
    }
  });

  it('while a write waits for a lock, the badge says the write waits (never a green "0 rows/s"), and shows the rate again once it is in', async function () {
    await helper.load([connectionNode, sinkNode], flow(), credentials());
    completions = new SinkCompletions(() => rowCount());
    await send(batchMsg(records(1, 'warmup', Date.UTC(2025, 0, 1))));
    const sinkBadges = (): Array<{ fill: string; text: string }> =>
      badgesOf('sink');
    const locker = await lockTable('SHARE ROW EXCLUSIVE');
    try {
      const msg = batchMsg(records(100));
      helper.getNode('sink').receive(msg);
      await untilBlockedOnLock();
      await waitUntil('the badge to say the write waits', () => /^write waits \d+s$/.test(sinkBadges().at(-1)?.text ?? ''), 10_000);
      const waitingFrom = sinkBadges().length - 1;
      await new Promise((resolve) => setTimeout(resolve, 1500));
      // As long as the write is held, every badge says so, counting up; none is a green rate.
      const whileHeld = sinkBadges().slice(waitingFrom);
      assert.ok(whileHeld.length >= 2, JSON.stringify(whileHeld));
      for (const badge of whileHeld) assert.deepEqual([badge.fill, /^write waits \d+s$/.test(badge.text)], ['yellow', true], JSON.stringify(whileHeld));
      await locker.query('COMMIT');
      await waitUntil('done after the lock is released', () => completions!.of(msg._msgid as string).length > 0);
      await waitUntil('the rate on the badge again', () => /rows\/s$/.test(sinkBadges().at(-1)?.text ?? ''), 10_000);
      assert.equal(sinkBadges().at(-1)?.fill, 'green');
    } finally {
      await locker.end();
    }
  });

  it('writes 999 of 1000 rows and dead-letters the bad one with its reason', async function () {
    await helper.load([connectionNode, sinkNode], flow(), credentials());
    completions = new SinkCompletions();
    const dead = collect('dead');
    const recs = records(1000);
    recs[417] = { ...recs[417], payload: 'not a number' };
    const msg = batchMsg(recs, 7);
    const c = await send(msg);
    assert.equal(c.error, undefined);
    assert.equal(await rowCount(), 999);
    await waitUntil('the dead-letter message', () => dead.length === 1);
    const letter = dead[0] as { payload: Array<{ record: { payload: unknown; seq: number }; reason: string; code: string }>; deadLetter: { reason: string; count: number }; batch: unknown };
    assert.equal(letter.deadLetter.reason, 'rejected');
    assert.equal(letter.deadLetter.count, 1);
    assert.equal(letter.payload.length, 1);
    assert.equal(letter.payload[0].record.payload, 'not a number');
    assert.equal(letter.payload[0].record.seq, 417);
    assert.match(letter.payload[0].reason, /string/);
    assert.deepEqual(letter.batch, { id: 7, count: 1000, reason: 'size' });
    const s = helper.getNode('sink').telemetryStats();
    assert.equal(s.written, 999);
    assert.equal(s.rejected, 1);
    assertBalanced(s);
    assert.equal(completions.of(msg._msgid as string).length, 1);
    // The badge says so for a while, instead of the rate alone.
    const badges = (): Array<{ fill: string; text: string }> => badgesOf('sink');
    await waitUntil('the badge', () => badges().some((b) => b.fill === 'yellow' && b.text === 'rejected 1 MAPPING'));
  });

  it('writes a single plain message {topic, payload: 21.5}', async function () {
    await helper.load([connectionNode, sinkNode], flow(), credentials());
    completions = new SinkCompletions();
    const c = await send({ _msgid: 'plain-1', topic: 'press7/temp', payload: 21.5 });
    assert.equal(c.error, undefined);
    const { rows } = await db.query(`SELECT source, value, kind FROM public."${table}"`);
    assert.deepEqual(rows, [{ source: 'press7/temp', value: 21.5, kind: null }]);
  });

  it('substitutes ${ENV} variables in connection fields and credentials', async function () {
    process.env.TS_TEST_PGHOST = target.host;
    process.env.TS_TEST_PGPORT = String(target.port);
    process.env.TS_TEST_PGDATABASE = target.database;
    process.env.TS_TEST_PGUSER = target.user;
    process.env.TS_TEST_PGPASSWORD = target.password;
    try {
      await helper.load(
        [connectionNode, sinkNode],
        flow({}, { host: '${TS_TEST_PGHOST}', port: '${TS_TEST_PGPORT}', database: '${TS_TEST_PGDATABASE}' }),
        { conn: { user: '${TS_TEST_PGUSER}', password: '${TS_TEST_PGPASSWORD}' } }
      );
      completions = new SinkCompletions();
      assert.equal(helper.getNode('conn').label, `${target.host}:${target.port}/${target.database}`);
      const c = await send({ _msgid: 'env-1', topic: 'env/test', payload: 1 });
      assert.equal(c.error, undefined);
      assert.equal(await rowCount(), 1);
    } finally {
      for (const k of ['HOST', 'PORT', 'DATABASE', 'USER', 'PASSWORD']) delete process.env[`TS_TEST_PG${k}`];
    }
  });

  it('a wrong password is a misconfiguration: named on the badge, one error to a Catch node, the message held, never the password shown', async function () {
    const secret = 'Wr0ng-S3cret-Passw0rd';
    await helper.load([connectionNode, sinkNode, catchNode], [...flow({ maxAttempts: '2', initialDelay: '10', maxDelay: '20', drainTimeout: '0.2' }), { id: 'catcher', type: 'catch', scope: ['sink'], wires: [['caught']] }, { id: 'caught', type: 'helper' }], credentials(secret));
    completions = new SinkCompletions();
    const caught = collect('caught');
    const sink: AnyNode = helper.getNode('sink');
    const statuses: unknown[] = [];
    sink.on('call:status', (call: { args: unknown[] }) => statuses.push(call.args));
    sink.receive({ _msgid: 'pw-1', topic: 'x', payload: 1 });
    sink.receive({ _msgid: 'pw-2', topic: 'x', payload: 2 });
    const log = helper.log();
    const logged = (): string => JSON.stringify(log.args, (_k, v) => (v instanceof Error ? { message: v.message, stack: v.stack } : v));
    await waitUntil('state misconfigured', () => sink.telemetryStats().state === 'misconfigured');
    await waitUntil('the Catch node', () => caught.length > 0);
    // The probe retries (1 s, 2 s, ...): the state does not change, so nothing more reaches the Catch node.
    await new Promise((resolve) => setTimeout(resolve, 2500));
    assert.equal(caught.length, 1, 'one error per change of state');
    assert.match(JSON.stringify(caught[0].error), /28P01.*password \(or user\) of the connection is wrong/);
    const s = sink.telemetryStats();
    assert.equal(s.code, '28P01');
    assert.equal(s.deadLetteredEvents, 0, 'nothing thrown away while misconfigured');
    assert.equal(s.inFlightEvents + s.queuedEvents, 2);
    assert.equal(completions.list.length, 0, 'both messages held, neither completed');
    const badges = badgesOf('sink');
    assert.deepEqual(badges[badges.length - 1], { fill: 'red', shape: 'ring', text: 'auth failed 28P01' });
    await helper.clearFlows();
    for (const id of ['pw-1', 'pw-2']) {
      const c = completions.of(id);
      assert.equal(c.length, 1);
      assert.equal(c[0].error, undefined, 'handed back, not failed');
    }
    assert.match(logged(), /not written: node closed: handed 2 messages \(2 events\) back upstream/);
    const everything = logged() + JSON.stringify(statuses) + JSON.stringify(caught);
    assert.ok(everything.includes('28P01'));
    assert.ok(!everything.includes(secret), 'the password leaked');
    assert.equal(log.args.filter((a: unknown[]) => /refuses this configuration/.test(JSON.stringify(a))).length, 0, 'a caught error is for the Catch node to report (Node-RED logs what no Catch node takes)');
  });

  it('an unknown database, with no Catch node: one error in the log saying what to fix, named on the badge; writes once it exists', async function () {
    const name = `later_${tableNo}`;
    await db.query(`DROP DATABASE IF EXISTS ${name}`);
    await helper.load([connectionNode, sinkNode], flow({}, { database: name }), credentials());
    completions = new SinkCompletions();
    const sink: AnyNode = helper.getNode('sink');
    const log = helper.log();
    const errors = (): unknown[][] => log.args.filter((a: unknown[]) => /refuses this configuration/.test(JSON.stringify(a)));
    sink.receive({ _msgid: 'db-1', topic: 'x', payload: 1 });
    await waitUntil('state misconfigured', () => sink.telemetryStats().state === 'misconfigured');
    await waitUntil('the error in the log', () => errors().length > 0);
    assert.equal(errors().length, 1);
    assert.match(JSON.stringify(errors()[0]), /3D000.*the database does not exist/);
    assert.equal((errors()[0][0] as { level: number }).level, 20, 'logged as an error');
    const badges = badgesOf('sink');
    assert.deepEqual(badges[badges.length - 1], { fill: 'red', shape: 'ring', text: 'no database 3D000' });
    // A person creates the database: the probe finds it (misconfiguration probes back off to 30 s; the first come after 1, 2, 4 s).
    await db.query(`CREATE DATABASE ${name}`);
    await waitUntil('the held message written', () => completions!.of('db-1').length === 1, 20_000);
    assert.equal(completions.of('db-1')[0].error, undefined);
    assert.equal(errors().length, 1);
    assert.equal(sink.telemetryStats().written, 1);
    await helper.clearFlows();
    await db.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  });

  it('shows "bad config" and refuses messages with done(err) when the connection is unusable', async function () {
    await helper.load([connectionNode, sinkNode], flow({}, { tls: 'verify-ca', ca: '' }), credentials());
    completions = new SinkCompletions();
    const c = await send({ _msgid: 'bad-1', topic: 'x', payload: 1 });
    assert.match((c.error as Error).message, /timescale-sink not started: connection .* is not usable: TLS mode verify-ca needs a CA file/);
    // Node.prototype.status is a spy (the test helper's): find the badge this node set.
    const statusSpy = (helper as AnyNode)._NodePrototype.status;
    const badges = statusSpy.getCalls().filter((call: AnyNode) => call.thisValue.id === 'sink').map((call: AnyNode) => call.args[0]);
    assert.deepEqual(badges[0], { fill: 'red', shape: 'ring', text: 'bad config' });
    // A sink that never started publishes no counters.
    const listed = await helper.request().get('/telemetry/stats');
    assert.ok(!JSON.stringify(listed.body).includes('"id":"sink"'), JSON.stringify(listed.body));
    await helper.clearFlows();
  });

  it('answers msg.control = "stats" with exact counters and writes nothing for it', async function () {
    await helper.load([connectionNode, sinkNode], flow(), credentials());
    completions = new SinkCompletions();
    const stats = collect('stats');
    const first = batchMsg(records(10), 1);
    await send(first);
    await send({ _msgid: 'plain-s', topic: 'other', payload: { value: 3, kind: 'count' } });
    await send({ ...first, _msgid: 'again' });
    await send({ _msgid: 'req', control: 'stats' });
    await waitUntil('the stats message', () => stats.length === 1);
    assert.equal(stats[0].topic, 'stats');
    // The rate depends on the clock (test/sink-controller.test.ts checks its value): here that it is there.
    const rate = (stats[0].payload as { rowsPerSecond: unknown }).rowsPerSecond;
    assert.ok(typeof rate === 'number' && Number.isFinite(rate) && rate >= 0, `rowsPerSecond ${String(rate)}`);
    assert.deepEqual({ ...(stats[0].payload as object), since: 0, rowsPerSecond: 0 }, {
      state: 'up',
      code: '',
      since: 0,
      host: `${target.host}:${target.port}`,
      idempotent: true,
      distinctRows: true,
      tableNotices: 0,
      ignored: 0,
      ignoredReason: '',
      rowsPerSecond: 0,
      receivedMessages: 3,
      receivedEvents: 21,
      written: 11,
      duplicates: 10,
      rejected: 0,
      deadLetteredBatches: 0,
      deadLetteredEvents: 0,
      refusedMessages: 0,
      refusedEvents: 0,
      closedMessages: 0,
      closedEvents: 0,
      retries: 0,
      writes: 3,
      inFlight: 0,
      inFlightEvents: 0,
      queued: 0,
      queuedEvents: 0
    });
    assertBalanced(stats[0].payload as Record<string, number | string>);
    assert.equal(await rowCount(), 11);
  });

  /** The sink's table, with a trigger that makes every insert fail with `sqlstate` while `armed` holds a row. */
  async function failInserts(sqlstate: string): Promise<{ disarm(): Promise<void> }> {
    await db.query(`CREATE TABLE IF NOT EXISTS public."${table}_armed" (on_ boolean)`);
    await db.query(`INSERT INTO public."${table}_armed" VALUES (true)`);
    await db.query(`CREATE OR REPLACE FUNCTION public."${table}_fail"() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF EXISTS (SELECT 1 FROM public."${table}_armed") THEN RAISE EXCEPTION 'caused by the test' USING ERRCODE = '${sqlstate}'; END IF; RETURN NULL; END $$`);
    await db.query(`CREATE TRIGGER fail BEFORE INSERT ON public."${table}" FOR EACH STATEMENT EXECUTE FUNCTION public."${table}_fail"()`);
    return { disarm: async () => void (await db.query(`DELETE FROM public."${table}_armed"`)) };
  }

  it('dead-letters the whole message and calls done(err) when a transient failure (deadlock) outlasts the attempts', async function () {
    await helper.load([connectionNode, sinkNode], flow({ maxAttempts: '3', initialDelay: '10', maxDelay: '20' }), credentials());
    completions = new SinkCompletions();
    const dead = collect('dead');
    await send(batchMsg(records(1, 'warmup', Date.UTC(2025, 0, 1))));
    const deadlock = await failInserts('40P01');
    const msg = batchMsg(records(20), 3);
    const c = await send(msg);
    assert.match((c.error as Error).message, /^not written: write failed after 3 attempts: 40P01/);
    await waitUntil('the dead-letter message', () => dead.length === 1);
    const letter = dead[0] as { payload: Array<{ record: { seq: number }; reason: string; code: string }>; deadLetter: Record<string, unknown>; batch: unknown };
    assert.deepEqual({ ...letter.deadLetter, error: undefined }, { reason: 'failed', count: 20, code: '40P01', written: 0, error: undefined });
    assert.equal(letter.payload.length, 20);
    assert.deepEqual(letter.payload.map((e) => e.record.seq), records(20).map((r) => r.seq));
    assert.ok(letter.payload.every((e) => e.code === '40P01' && /caused by the test/.test(e.reason)));
    assert.deepEqual(letter.batch, { id: 3, count: 20, reason: 'size' });
    const sink: AnyNode = helper.getNode('sink');
    let s = sink.telemetryStats();
    assert.equal(s.state, 'up', 'the database answered: the sink is up, the batch failed');
    assert.equal(s.deadLetteredBatches, 1);
    assert.equal(s.deadLetteredEvents, 20);
    assert.equal(s.retries, 2);
    assertBalanced(s);
    await deadlock.disarm();
    const again = await send({ ...msg, _msgid: 'again' });
    assert.equal(again.error, undefined);
    s = sink.telemetryStats();
    assert.equal(s.written, 21);
    assert.equal(await rowCount(), 21);
    assert.equal(completions.of(msg._msgid as string).length, 1);
    const badges = badgesOf('sink');
    assert.ok(badges.some((b: AnyNode) => b.fill === 'yellow' && b.shape === 'ring' && b.text === 'retry 1/3 40P01'), JSON.stringify(badges));
    assert.ok(badges.every((b: AnyNode) => !b.text || b.text.length < 20));
  });

  it('holds a write through an outage far longer than its attempts (a stalled server), logs it once, and writes it when it is back', async function () {
    await helper.load([connectionNode, sinkNode], flow({ maxAttempts: '2', initialDelay: '10', maxDelay: '20' }, { statementTimeout: '200' }), credentials());
    completions = new SinkCompletions();
    const dead = collect('dead');
    const log = helper.log();
    const lines = (pattern: RegExp): number => log.args.filter((a: unknown[]) => pattern.test(JSON.stringify(a))).length;
    await send(batchMsg(records(1, 'warmup', Date.UTC(2025, 0, 1))));
    const sink: AnyNode = helper.getNode('sink');
    const locker = await lockTable('ACCESS EXCLUSIVE');
    const msg = batchMsg(records(20), 3);
    try {
      sink.receive(msg);
      // Every attempt times out after 200 ms: well past two attempts, the write is still held.
      await waitUntil('six failed attempts', () => sink.telemetryStats().retries >= 6);
      const s = sink.telemetryStats();
      assert.equal(s.state, 'down');
      assert.equal(s.code, '57014');
      assert.equal(s.deadLetteredEvents, 0);
      assert.equal(completions.of(msg._msgid as string).length, 0);
      const badges = badgesOf('sink');
      assert.ok(badges.some((b: AnyNode) => b.fill === 'red' && /^stalled \d+s$/.test(b.text)), JSON.stringify(badges));
    } finally {
      await locker.query('ROLLBACK');
      await locker.end();
    }
    await waitUntil('done once the lock is gone', () => completions!.of(msg._msgid as string).length === 1);
    assert.equal(completions.of(msg._msgid as string)[0].error, undefined);
    assert.equal(dead.length, 0);
    assert.equal(await rowCount(), 21);
    assert.equal(sink.telemetryStats().state, 'up');
    assert.equal(lines(/unavailable/), 1);
    assert.equal(lines(/is back after/), 1);
    assertBalanced(sink.telemetryStats());
  });

  it('merges queued plain messages into one write and completes each once', async function () {
    await helper.load([connectionNode, sinkNode], flow({ maxConcurrent: '1' }), credentials());
    completions = new SinkCompletions();
    await send(batchMsg(records(1, 'warmup', Date.UTC(2025, 0, 1))));
    const locker = await lockTable('SHARE ROW EXCLUSIVE');
    const sink: AnyNode = helper.getNode('sink');
    const ids = ['m0', 'm1', 'm2', 'm3', 'm4'];
    try {
      ids.forEach((id, i) => sink.receive({ _msgid: id, topic: 'press7/count', payload: i, timestamp: Date.UTC(2026, 1, 1, 0, 0, i) }));
      await untilBlockedOnLock();
      await waitUntil('four queued messages', () => sink.telemetryStats().queued === 4);
      assert.equal(completions.list.length, 1);
    } finally {
      await locker.query('COMMIT');
      await locker.end();
    }
    await waitUntil('all five done', () => ids.every((id) => completions!.of(id).length > 0));
    assert.ok(ids.every((id) => completions!.of(id).length === 1 && completions!.of(id)[0].error === undefined));
    const s = sink.telemetryStats();
    assert.equal(s.writes, 3, 'warmup, m0, then m1..m4 together');
    assert.equal(s.written, 6);
    assert.equal(await rowCount(), 6);
  });

  it('refuses a message with done(err) when the queue is full, and counts it', async function () {
    await helper.load([connectionNode, sinkNode], flow({ maxConcurrent: '1', maxQueued: '1' }), credentials());
    completions = new SinkCompletions();
    await send(batchMsg(records(1, 'warmup', Date.UTC(2025, 0, 1))));
    const locker = await lockTable('SHARE ROW EXCLUSIVE');
    const sink: AnyNode = helper.getNode('sink');
    let refused: Completion;
    try {
      sink.receive(batchMsg(records(5), 1));
      await untilBlockedOnLock();
      sink.receive(batchMsg(records(5, 'line2'), 2));
      refused = await send(batchMsg(records(5, 'line3'), 3));
    } finally {
      await locker.query('COMMIT');
      await locker.end();
    }
    assert.match((refused.error as Error).message, /^not written: queue full \(5 events waiting\)$/);
    await waitUntil('every message completed', () => completions!.list.length === 4);
    const s = sink.telemetryStats();
    assert.equal(s.refusedMessages, 1);
    assert.equal(s.refusedEvents, 5);
    assert.equal(s.written, 11);
    assertBalanced(s);
  });

  it('sends the counters on output 2 on its interval', async function () {
    await helper.load([connectionNode, sinkNode], flow({ statsInterval: '0.05' }), credentials());
    completions = new SinkCompletions();
    const stats = collect('stats');
    await send(batchMsg(records(3)));
    await waitUntil('a stats message after the write', () => stats.some((m) => (m.payload as { written: number }).written === 3));
    assert.ok(stats.every((m) => m.topic === 'stats'));
  });

  it('survives idle pool connections being terminated, warns once, and keeps writing', async function () {
    await helper.load([connectionNode, sinkNode], flow(), credentials());
    completions = new SinkCompletions();
    const log = helper.log();
    const lines = (pattern: RegExp): number => log.args.filter((a: unknown[]) => pattern.test(JSON.stringify(a))).length;
    await send(batchMsg(records(10)));
    const { rows } = await db.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'node-red-telemetry' AND datname = current_database()`);
    assert.ok(rows.length >= 1);
    await waitUntil('the pool error to be reported', () => lines(/idle connection .* lost/) > 0);
    const c = await send(batchMsg(records(10, 'line2/temp')));
    assert.equal(c.error, undefined);
    assert.equal(await rowCount(), 20);
    assert.equal(lines(/idle connection .* lost/), 1);
  });

  it('ends the pool when the flow stops: no connection stays open', async function () {
    await helper.load([connectionNode, sinkNode], flow({}, { poolSize: '3' }), credentials());
    completions = new SinkCompletions();
    await Promise.all([1, 2, 3].map((i) => send(batchMsg(records(100, `s${i}`), i))));
    assert.ok((await ourConnections()) >= 1);
    await helper.clearFlows();
    await waitUntil('every connection of ours to close', async () => (await ourConnections()) === 0, 60_000, 10);
  });

  it('closes at once while the database is stalled, and hands the held write back upstream', async function () {
    // statement_timeout 300 ms + an exclusive lock held by the test: every insert fails with
    // 57014 (retryable), a real fault caused by the server itself.
    await helper.load(
      [connectionNode, sinkNode],
      flow({ maxAttempts: '100', initialDelay: '50', maxDelay: '100', drainTimeout: '1' }, { statementTimeout: '300' }),
      credentials()
    );
    completions = new SinkCompletions();
    await send(batchMsg(records(1, 'warmup', Date.UTC(2025, 0, 1))));
    const locker = new Client({ host: target.host, port: target.port, database: target.database, user: target.user, password: target.password });
    await locker.connect();
    try {
      await locker.query('BEGIN');
      await locker.query(`LOCK TABLE public."${table}" IN ACCESS EXCLUSIVE MODE`);
      const sink: AnyNode = helper.getNode('sink');
      const msg = batchMsg(records(50));
      sink.receive(msg);
      await waitUntil('the write to wait', () => sink.telemetryStats().state === 'down' && sink.telemetryStats().retries >= 2);
      assert.equal(completions.of(msg._msgid as string).length, 0);
      const started = Date.now();
      await helper.clearFlows();
      const took = Date.now() - started;
      assert.ok(took < 5000, `close took ${took} ms`);
      const c = completions.of(msg._msgid as string);
      assert.equal(c.length, 1);
      assert.equal(c[0].error, undefined, 'handed back upstream, not failed');
      const s = sink.telemetryStats();
      assert.equal(s.closedMessages, 1);
      assert.equal(s.closedEvents, 50);
      assert.equal(s.inFlight, 0);
      assertBalanced(s);
    } finally {
      await locker.query('ROLLBACK').catch(() => undefined);
      await locker.end();
    }
    assert.equal(await rowCount(), 1);
  });
});
