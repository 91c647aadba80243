/**
 * The pipeline as a flow, for a Node-RED process (pipelineFlow: simulator -> buffer -> batcher ->
 * sink) or in process (chainFlow: test-producer -> the stages given); its stats, the drain waiter,
 * and the queries that check a table against the counting rule.
 */
import { Client } from 'pg';
import type { NodeRedProcess } from './node-red-process';
import { waitUntil } from './wait';

export const TAB = 'e2e0tab000000001';
export const IDS = { sim: 'e2e0sim000000001', buffer: 'e2e0buf000000001', batcher: 'e2e0bat000000001', sink: 'e2e0snk000000001', conn: 'e2e0con000000001' };

export type NodeSettings = Record<string, unknown>;

export interface PipelineOptions {
  databaseUrl: string;
  table: string;
  /** The tab's label. */
  label?: string;
  rate?: number;
  count?: number;
  sources?: number;
  autoStart?: boolean;
  capacity?: number;
  window?: number;
  dropPolicy?: 'drop-oldest' | 'drop-newest';
  batchSize?: number;
  maxAge?: number;
  maxConcurrent?: number;
  poolSize?: number;
  /** Per node: any other setting, over the ones above (a key given here wins). */
  simulator?: NodeSettings;
  buffer?: NodeSettings;
  batcher?: NodeSettings;
  sink?: NodeSettings;
  connection?: NodeSettings;
}

/** The one flow builder of the tests on a Node-RED process: the whole pipeline, each node's settings overridable. */
export function pipelineFlow(o: PipelineOptions): object[] {
  const db = new URL(o.databaseUrl);
  return [
    { id: TAB, type: 'tab', label: o.label ?? 'e2e' },
    {
      id: IDS.sim, type: 'telemetry-simulator', z: TAB, sources: o.sources ?? 5, rate: o.rate ?? 5000, count: o.count ?? 0,
      eventsPerMessage: 1, mixSample: 80, mixDetection: 10, mixCounter: 10, topicPrefix: 'e2e', seed: 7, autoStart: o.autoStart ?? true,
      ...o.simulator, wires: [[IDS.buffer]],
    },
    {
      id: IDS.buffer, type: 'telemetry-buffer', z: TAB, capacity: o.capacity ?? 100000, dropPolicy: o.dropPolicy ?? 'drop-oldest',
      // Below what the batcher can hold (4 open + 4 waiting batches, 4000 events at batchSize 500):
      // a larger window makes the batcher refuse messages under load, and the buffer counts them failed.
      window: o.window ?? 3000, ackTimeout: 120, stampSequence: true, statsInterval: 0, ...o.buffer, wires: [[IDS.batcher], []],
    },
    { id: IDS.batcher, type: 'telemetry-batcher', z: TAB, maxSize: o.batchSize ?? 1000, maxAge: o.maxAge ?? 200, maxOpenBatches: 4, ackTimeout: 300, ...o.batcher, wires: [[IDS.sink], []] },
    {
      id: IDS.sink, type: 'timescale-sink', z: TAB, connection: IDS.conn, schema: 'public', table: o.table, mode: 'auto', extra: true,
      maxAttempts: 100, initialDelay: 100, maxDelay: 1000, maxConcurrent: o.maxConcurrent ?? 0, statsInterval: 0, drainTimeout: 5, ...o.sink, wires: [[], []],
    },
    {
      id: IDS.conn, type: 'timescale-connection', host: db.hostname, port: db.port, database: decodeURIComponent(db.pathname.slice(1)),
      tls: 'off', poolSize: String(o.poolSize ?? 4), connectTimeout: '5000', statementTimeout: '30000',
      credentials: { user: decodeURIComponent(db.username), password: decodeURIComponent(db.password) },
      ...o.connection,
    },
  ];
}

export type Stage = 'buffer' | 'batcher' | 'sink';

/**
 * The same pipeline in process (node-red-node-test-helper), from `stages` in their order: a
 * test-producer `prod` -> buffer `buf` / batcher `bat` / sink `sink` (dead letters to a helper node
 * `dead`), and the connection `conn` (credentials go to helper.load).
 */
export function chainFlow(stages: Stage[], o: { databaseUrl: string | URL; table: string; perTurn?: number; buffer?: NodeSettings; batcher?: NodeSettings; sink?: NodeSettings }): object[] {
  const db = new URL(String(o.databaseUrl));
  const ids: Record<Stage, string> = { buffer: 'buf', batcher: 'bat', sink: 'sink' };
  const next = (i: number): string[] => (i + 1 < stages.length ? [ids[stages[i + 1]]] : []);
  const nodes: object[] = [{ id: 'prod', type: 'test-producer', perTurn: o.perTurn ?? 0, wires: [[ids[stages[0]]]] }];
  stages.forEach((stage, i) => {
    if (stage === 'sink') nodes.push({ id: 'sink', type: 'timescale-sink', connection: 'conn', table: o.table, mode: 'auto', extra: true, statsInterval: 0, ...o.sink, wires: [['dead'], []] });
    else if (stage === 'batcher') nodes.push({ id: 'bat', type: 'telemetry-batcher', maxSize: 100, maxAge: 20, ...o.batcher, wires: [next(i), []] });
    else nodes.push({ id: 'buf', type: 'telemetry-buffer', statsInterval: 0, ...o.buffer, wires: [next(i), []] });
  });
  nodes.push({ id: 'dead', type: 'helper' });
  nodes.push({ id: 'conn', type: 'timescale-connection', host: db.hostname, port: db.port, database: decodeURIComponent(db.pathname.slice(1)), poolSize: '2' });
  return nodes;
}

export async function deploy(red: NodeRedProcess, flow: object[], type: 'full' | 'nodes' | 'flows' = 'full'): Promise<void> {
  const res = await red.request('POST', '/flows', flow, { 'Node-RED-Deployment-Type': type });
  if (res.status !== 204) throw new Error(`deploy failed (${res.status}): ${res.body}`);
}

export type Counters = Record<string, number>;

export async function nodeStats(red: NodeRedProcess): Promise<Record<string, Counters>> {
  const res = await red.request('GET', '/telemetry/stats');
  if (res.status !== 200) throw new Error(`stats: ${res.status} ${res.body}`);
  const out: Record<string, Counters> = {};
  for (const n of JSON.parse(res.body).nodes as { id: string; stats: Counters }[]) out[n.id] = n.stats;
  return out;
}

/** Where the drain waiter reads stats: a Node-RED process (its stats endpoint), or in process by node id (helper.getNode(id).telemetryStats()). */
export type StatsSource = NodeRedProcess | ((id: string) => Counters | undefined);

/**
 * The one drain waiter: until the buffer (if `ids` names one) holds nothing, in memory or on disk,
 * and the sink has nothing in flight or queued, with at least `events` events through (taken in by
 * the sink or dropped by the buffer: what a producer still sends does not pass for drained).
 * Returns the stats as last read (in process: of the buffer and the sink).
 */
export async function waitForDrain(from: StatsSource, timeoutMs = 60_000, ids: { buffer?: string; sink: string } = IDS, events = 0): Promise<Record<string, Counters>> {
  let last: Record<string, Counters> = {};
  const drained = (all: Record<string, Counters>): boolean => {
    last = all;
    const b = ids.buffer === undefined ? undefined : all[ids.buffer];
    const s = all[ids.sink];
    if (s === undefined || (ids.buffer !== undefined && b === undefined)) return false;
    const bufferEmpty = b === undefined || (b.depth === 0 && b.inFlight === 0 && (b.diskDepth ?? 0) === 0);
    return bufferEmpty && s.inFlight === 0 && s.queued === 0 && (events === 0 || (s.receivedEvents ?? 0) + (b?.dropped ?? 0) >= events);
  };
  if (typeof from === 'function') {
    const read = (): Record<string, Counters> => {
      const all: Record<string, Counters> = {};
      for (const id of [ids.buffer, ids.sink]) {
        const stats = id === undefined ? undefined : from(id);
        if (id !== undefined && stats !== undefined) all[id] = stats;
      }
      return all;
    };
    await waitUntil('the pipeline to drain', () => drained(read()), timeoutMs);
  } else await waitUntil('the pipeline to drain', async () => drained(await nodeStats(from)), timeoutMs);
  return last;
}

export interface TableCheck {
  rows: number;
  distinctKeys: number;
  distinctSourceSeq: number;
  sources: number;
  /** Sum over sources of max(seq): the events stamped, when the newest of each source was kept. */
  sumMaxSeq: number;
  /** Missing sequence numbers between 1 and max(seq), over all sources. */
  gaps: number;
}

export async function checkTable(databaseUrl: string, table: string): Promise<TableCheck> {
  const client = new Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const t = `"public"."${table}"`;
    // The distinct counts hash in memory instead of sorting on disk: minutes less for a soak's tens of millions of rows.
    await client.query("SET work_mem = '512MB'");
    const r = await client.query(`
      SELECT count(*)::int AS rows,
             (SELECT count(*)::int FROM (SELECT DISTINCT source, time, seq FROM ${t}) k) AS distinct_keys,
             (SELECT count(*)::int FROM (SELECT DISTINCT source, seq FROM ${t}) k) AS distinct_source_seq,
             (SELECT count(DISTINCT source)::int FROM ${t}) AS sources,
             (SELECT coalesce(sum(m), 0)::int FROM (SELECT max(seq) AS m FROM ${t} GROUP BY source) s) AS sum_max_seq
      FROM ${t}`);
    const row = r.rows[0];
    return {
      rows: row.rows,
      distinctKeys: row.distinct_keys,
      distinctSourceSeq: row.distinct_source_seq,
      sources: row.sources,
      sumMaxSeq: row.sum_max_seq,
      gaps: row.sum_max_seq - row.distinct_source_seq,
    };
  } finally {
    await client.end();
  }
}

/** The table the sink would create, made slow for real: every INSERT statement waits `delaySeconds`. */
export async function createSlowTable(databaseUrl: string, table: string, delaySeconds = 0.04): Promise<void> {
  const client = new Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query(`CREATE TABLE ${table} (time timestamptz NOT NULL, source text NOT NULL, kind text, value double precision, seq bigint NOT NULL DEFAULT 0, extra jsonb)`);
    await client.query(`CREATE UNIQUE INDEX ${table}_key ON ${table} (source, time, seq)`);
    await client.query(`CREATE FUNCTION slow_insert() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(${Number(delaySeconds)}); RETURN NULL; END $$`);
    await client.query(`CREATE TRIGGER slow BEFORE INSERT ON ${table} FOR EACH STATEMENT EXECUTE FUNCTION slow_insert()`);
  } finally {
    await client.end();
  }
}
