import * as fs from 'fs';
import * as path from 'path';
import { checkedLength, RECORD_HEADER } from './disk-record';

/**
 * The files of one disk tier, under its directory (one per buffer node):
 *   00000001.seg, 00000002.seg, ...   segments, oldest first; only the newest one is appended to
 *   state.json                        replay cursor (segment, offset) and sequence snapshot, written
 *                                     with temp file + fsync + rename at every sync
 */

/** One segment file, as the tier keeps account of it. */
export interface Segment {
  id: number;
  file: string;
  /** Bytes in the file plus bytes pending for it. */
  bytes: number;
  /** Events in it not yet handed out. */
  events: number;
  /** Record bytes in it not yet handed out. */
  backlogBytes: number;
}

/** The state file: where replay stands, and what the buffer saved with it. */
export interface DiskState {
  segment: number;
  offset: number;
  sequences?: Record<string, number>;
  /** Events stamped per source during the last sync interval: the margin to skip after a crash. */
  sequenceStep?: Record<string, number>;
  clean?: boolean;
}

const SEGMENT_NAME = /^(\d{8,})\.seg$/;

export function segmentFile(dir: string, id: number): string {
  return path.join(dir, `${String(id).padStart(8, '0')}.seg`);
}

/** The ids of the segment files in `dir`, oldest first. */
function segmentIds(dir: string): number[] {
  return fs
    .readdirSync(dir)
    .map((f) => SEGMENT_NAME.exec(f))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);
}

function stateFile(dir: string): string {
  return path.join(dir, 'state.json');
}

/** The state file of `dir`; undefined when it is missing or unreadable (everything on disk is then replayed). */
export function readState(dir: string): DiskState | undefined {
  try {
    const s = JSON.parse(fs.readFileSync(stateFile(dir), 'utf8')) as DiskState;
    if (Number.isSafeInteger(s.segment) && Number.isSafeInteger(s.offset)) return s;
  } catch {
    /* missing or unreadable */
  }
  return undefined;
}

/** Writes the state file durably: a temp file, fsync, rename. Throws on failure. */
export function writeState(dir: string, state: DiskState): void {
  const file = stateFile(dir);
  const tmp = `${file}.tmp`;
  const fd = fs.openSync(tmp, 'w');
  try {
    fs.writeSync(fd, JSON.stringify(state));
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  // No fsync of the directory: after a power cut an older state only replays again what the
  // table's key then skips, and this runs every sync.
  fs.renameSync(tmp, file);
}

/**
 * Reads up to 1 MiB of a segment from `at` (`left`: bytes of the file from there); one record
 * larger than that is read whole. Throws when the file cannot be read.
 */
export function readChunk(file: string, at: number, left: number): { buf: Buffer; got: number } {
  const want = Math.min(left, 1 << 20);
  let buf = Buffer.allocUnsafe(want);
  let got: number;
  const fd = fs.openSync(file, 'r');
  try {
    got = fs.readSync(fd, buf, 0, want, at);
    if (got >= RECORD_HEADER) {
      const len = buf.readUInt32LE(0) + RECORD_HEADER;
      if (len > got && len <= left) {
        buf = Buffer.allocUnsafe(len);
        got = fs.readSync(fd, buf, 0, len, at);
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  return { buf, got };
}

/**
 * The segments the previous run left in `dir`, from the replay cursor of its state file on (those
 * before it were replayed and are removed), each checked record by record; torn tails are cut off.
 */
export function recoverSegments(dir: string, state: DiskState | undefined): { segments: Segment[]; nextId: number; tornRecords: number; tornBytes: number } {
  const ids = segmentIds(dir);
  const found = { segments: [] as Segment[], nextId: Math.max(state?.segment ?? 0, ids[ids.length - 1] ?? 0) + 1, tornRecords: 0, tornBytes: 0 };
  for (const id of ids) {
    const file = segmentFile(dir, id);
    if (state !== undefined && id < state.segment) {
      fs.rmSync(file, { force: true }); // fully replayed before the restart
      continue;
    }
    const { segment, tornBytes } = scanSegment(id, file, state !== undefined && id === state.segment ? state.offset : 0);
    if (tornBytes > 0) {
      found.tornRecords++;
      found.tornBytes += tornBytes;
    }
    if (segment !== undefined) found.segments.push(segment);
  }
  return found;
}

/** What a scan of a segment file at start found. */
interface ScannedSegment {
  /** The segment's account (events and backlog from `start`), or undefined when nothing is left to replay (the file is removed). */
  segment: Segment | undefined;
  /** Bytes of a torn or corrupt tail cut off (0: none). */
  tornBytes: number;
}

/** Checks each record of a segment, cuts a torn tail off, and counts what is left to replay from `start`. */
function scanSegment(id: number, file: string, start: number): ScannedSegment {
  const data = fs.readFileSync(file);
  let off = 0;
  let events = 0;
  let backlogBytes = 0;
  for (;;) {
    const len = checkedLength(data, off, data.length);
    if (len === undefined) break;
    if (off >= start) {
      events += data.readUInt32LE(off + 8);
      backlogBytes += RECORD_HEADER + len;
    }
    off += RECORD_HEADER + len;
  }
  const tornBytes = data.length - off;
  if (tornBytes > 0) fs.truncateSync(file, off);
  if (events === 0) {
    fs.rmSync(file, { force: true });
    return { segment: undefined, tornBytes };
  }
  return { segment: { id, file, bytes: off, events, backlogBytes }, tornBytes };
}

/**
 * About how many events a disk tier's directory holds for replay, read without changing anything
 * and from the records' headers only (the tier that opens it checks each record): for a directory
 * no deployed buffer owns, which may hold gigabytes.
 */
export function backlogIn(dir: string): { events: number; bytes: number } {
  const state = readState(dir);
  const total = { events: 0, bytes: 0 };
  const head = Buffer.alloc(RECORD_HEADER);
  for (const id of segmentIds(dir)) {
    if (state !== undefined && id < state.segment) continue;
    const start = state !== undefined && id === state.segment ? state.offset : 0;
    const fd = fs.openSync(segmentFile(dir, id), 'r');
    try {
      const size = fs.fstatSync(fd).size;
      for (let off = 0; off + RECORD_HEADER <= size; ) {
        fs.readSync(fd, head, 0, RECORD_HEADER, off);
        const end = off + RECORD_HEADER + head.readUInt32LE(0);
        if (end > size) break; // a torn tail
        if (off >= start) {
          total.events += head.readUInt32LE(8);
          total.bytes += end - off;
        }
        off = end;
      }
    } finally {
      fs.closeSync(fd);
    }
  }
  return total;
}

/**
 * Sequence numbers to continue from after the previous run. After a clean close the saved numbers
 * are exact. After a crash (SIGKILL, power loss) they are as of the last sync, and events stamped
 * since may have reached the database: skip ahead by four sync intervals' worth per source, so a
 * number is never used twice and what the crash lost shows as a gap.
 */
export function sequencesAfter(state: DiskState | undefined): Record<string, number> {
  if (state?.sequences === undefined) return {};
  const out: Record<string, number> = {};
  for (const [source, next] of Object.entries(state.sequences)) {
    out[source] = state.clean === true ? next : next + 4 * (state.sequenceStep?.[source] ?? 0) + 1000;
  }
  return out;
}
