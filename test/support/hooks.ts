/** Mocha root hooks (loaded through .mocharc.json "require"): the shared test server dies with the run. */
import { stopTestServer } from './postgres';

export const mochaHooks = {
  async afterAll(): Promise<void> {
    await stopTestServer();
  }
};
