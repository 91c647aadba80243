/**
 * The real TimescaleDB that the TimescaleDB tests run against: the server named by
 * TELEMETRY_TIMESCALE_TEST_URL, which `eval "$(../shared/timescaledb/start-server.sh)"` sets (as
 * root; .ci/run does it). It is the Apache-2 edition: hypertables yes, compression and retention
 * policies refused with 0A000. Without the variable those tests skip, saying how to run them.
 */
import { Client } from 'pg';
import { createTestDatabase, externalServer } from './postgres';

let skipNoted = false;

/** For a suite's before(): the server's URL, or the suite is skipped with a message. */
export function timescaleDbOrSkip(context: Mocha.Context): string {
  const url = process.env.TELEMETRY_TIMESCALE_TEST_URL;
  if (!url) {
    if (!skipNoted) console.log('      TimescaleDB tests skipped: TELEMETRY_TIMESCALE_TEST_URL is not set. Start a server as root with eval "$(../shared/timescaledb/start-server.sh)" (.ci/run does).');
    skipNoted = true;
    context.skip();
  }
  return url as string;
}

/** A fresh database on the TimescaleDB server, with the extension created in it; returns its URL. */
export async function createTimescaleDatabase(name: string): Promise<string> {
  const url = await createTestDatabase(name, externalServer(process.env.TELEMETRY_TIMESCALE_TEST_URL as string));
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('CREATE EXTENSION IF NOT EXISTS timescaledb');
  } finally {
    await client.end();
  }
  return url;
}
