/** Mocha root hooks (loaded through .mocharc.json "require"). */
import { clearSpools } from './node-red';
import { stopTestServer } from './postgres';

export const mochaHooks = {
  // Buffers spool on close and restore on start by node id; a test must not see another test's spool.
  beforeEach(): void {
    clearSpools();
  },
  // The shared test server dies with the run.
  async afterAll(): Promise<void> {
    await stopTestServer();
  }
};
