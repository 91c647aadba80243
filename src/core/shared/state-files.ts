import * as path from 'path';

/**
 * Where a node keeps a file of its own (spool, disk tier, totals, sequence journal): in `dir`, named
 * after the node's id with anything but letters, digits, `_`, `.` and `-` replaced, so the name is
 * safe on every filesystem.
 */
export function stateFile(dir: string, nodeId: string, suffix = ''): string {
  return path.join(dir, `${nodeId.replace(/[^A-Za-z0-9_.-]/g, '_')}${suffix}`);
}
