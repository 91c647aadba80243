import * as fs from 'fs';
import * as path from 'path';
import { backlogIn } from './segment-files';

/** Readings a telemetry-buffer left in its state directory that no deployed buffer will read. */
export interface LeftBehind {
  /** The disk tier's directory (`<id>.disk`) or the shutdown spool (`<id>.jsonl`). */
  path: string;
  /** The id of the buffer that wrote it (the file name, as stateFile made it safe). */
  nodeId: string;
  /** Readings waiting on disk; undefined for a spool, which is counted in messages only when read. */
  events?: number;
  bytes: number;
}

const DISK = '.disk';
const SPOOL = '.jsonl';

/** Whether a spool has a line after its header: one that closed holding nothing writes the header alone. */
function holdsMessages(file: string): boolean {
  const head = Buffer.alloc(64 * 1024);
  const fd = fs.openSync(file, 'r');
  try {
    const got = fs.readSync(fd, head, 0, head.length, 0);
    const end = head.subarray(0, got).indexOf(0x0a);
    // A header longer than what was read: say so rather than miss readings.
    if (end < 0) return got === head.length;
    return head.subarray(end + 1, got).toString('utf8').trim() !== '';
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * What lies in `dir` with readings in it and belongs to none of `owned` (the paths the deployed
 * buffers use): the backlog of a deleted buffer, or of one pasted back as a copy with a new id.
 * Only read, never changed. Unreadable entries are passed over: this is a warning, not a check.
 */
export function leftBehind(dir: string, owned: ReadonlySet<string>): LeftBehind[] {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  const found: LeftBehind[] = [];
  for (const entry of entries) {
    const file = path.join(dir, entry.name);
    if (owned.has(file)) continue;
    try {
      if (entry.isDirectory() && entry.name.endsWith(DISK)) {
        const { events, bytes } = backlogIn(file);
        if (events > 0) found.push({ path: file, nodeId: entry.name.slice(0, -DISK.length), events, bytes });
      } else if (entry.isFile() && entry.name.endsWith(SPOOL)) {
        const { size } = fs.statSync(file);
        if (holdsMessages(file)) found.push({ path: file, nodeId: entry.name.slice(0, -SPOOL.length), bytes: size });
      }
    } catch {
      /* gone or unreadable since the listing */
    }
  }
  return found;
}
