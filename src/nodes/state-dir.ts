import * as os from 'os';
import * as path from 'path';
import type { NodeDef, RedAPI } from './red';

/**
 * The directory our nodes keep their state in, so that it outlives a redeploy and a restart:
 * `<userDir>/telemetry-spool`. Not an editor option: `spoolDir` in a node's definition (tests set it).
 */
export function stateDir(RED: RedAPI, def?: NodeDef): string {
  return typeof def?.spoolDir === 'string' && def.spoolDir !== '' ? def.spoolDir : path.join(RED.settings.userDir ?? os.tmpdir(), 'telemetry-spool');
}
