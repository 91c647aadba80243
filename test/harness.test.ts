import assert from 'assert';
import { Client } from 'pg';
import { createTestDatabase, getTestServer, waitForServer } from './support/postgres';

describe('test PostgreSQL harness', function () {
  it('creates an isolated database that accepts connections', async function () {
    const url = await createTestDatabase('harness_check');
    const client = new Client({ connectionString: url });
    await client.connect();
    try {
      const { rows } = await client.query<{ db: string }>('SELECT current_database() AS db');
      assert.strictEqual(rows[0].db, 'harness_check');
    } finally {
      await client.end();
    }
  });

  it('restarts the server after it is stopped', async function () {
    const server = await getTestServer();
    if (server.external) this.skip();
    const url = server.url();
    await server.stop();
    await server.start();
    await waitForServer(url);
    assert.ok(server.pid() > 0);
  });
});
