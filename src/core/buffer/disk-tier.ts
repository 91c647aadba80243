import * as fs from 'fs';
import * as path from 'path';
import * as zlib from 'zlib';
import type { DropPolicy } from './ring-buffer';

/**
 * The store-and-forward tier: a segmented, append-only log of records on disk, bounded in bytes.
 *
 * Not to be confused with the shutdown spool (spool.ts), a one-shot JSON-lines file written when the
 * node closes. This log is written continuously while the ring overflows (or downstream has stopped
 * confirming) and read back at a bounded rate when downstream recovers.
 *
 * Layout, under `dir` (one directory per buffer node):
 *   00000001.seg, 00000002.seg, ...   segments, oldest first; only the newest one is appended to
 *   state.json                        replay cursor (segment, offset) and sequence snapshot, written
 *                                     with temp file + fsync + rename at every sync
 * A record is a 12-byte header and a payload:
 *   u32le length of payload | u32le CRC-32 of (weight bytes + payload) | u32le weight (events) | payload
 * A record whose length runs past the end of the file or whose CRC does not match is a torn tail
 * (the process died mid-write): it and everything after it in that segment are cut off and counted.
 */

export const RECORD_HEADER = 12;
const MAX_RECORD = 256 * 1024 * 1024;
const SEGMENT_NAME = /^(\d{8,})\.seg$/;

const crcTable = (() => {
  const t = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  return t;
})();

/** CRC-32 (IEEE): zlib.crc32 where Node has it (>= 20.15 / 22.2), else a table. */
export const crc32: (data: Uint8Array) => number =
  typeof (zlib as { crc32?: unknown }).crc32 === 'function'
    ? (data) => (zlib as unknown as { crc32(d: Uint8Array): number }).crc32(data)
    : (data) => {
        let c = -1;
        for (let i = 0; i < data.length; i++) c = crcTable[(c ^ data[i]) & 0xff] ^ (c >>> 8);
        return (c ^ -1) >>> 0;
      };

export interface DiskCodec<T> {
  /** A string is written as UTF-8 straight into the write buffer (no Buffer per record); bytes are copied at once. */
  encode(item: T): string | Buffer;
  /** `screened`: screen() passed the chunk this payload was read in. */
  decode(payload: Buffer, weight: number, screened: boolean): T;
  /** Optional, preferred when present: decode the payload at chunk[start..end) without a subarray per record. */
  decodeRange?(chunk: Buffer, start: number, end: number, weight: number, screened: boolean): T;
  /** Optional: true when nothing in this chunk of records needs decode's careful path (checked once per read, not per record). */
  screen?(chunk: Buffer): boolean;
}

export interface DiskTierOptions<T> {
  dir: string;
  /** Bytes all segment files may take together. */
  maxBytes: number;
  /** Bytes at which a segment is closed and the next begun. Default: maxBytes / 8, clamped to 1 MiB..64 MiB. */
  segmentBytes?: number;
  policy: DropPolicy;
  codec: DiskCodec<T>;
  /**
   * The tier started failing (a file operation threw: the error) or works again (undefined: a
   * sync went through without an error). Called once per change, however many events fail
   * meanwhile, so a caller can log changes only.
   */
  onStateChange?(error: Error | undefined): void;
}

export interface DiskCounters {
  /** Events written to disk. */
  spilled: number;
  /**
   * Of spilled, the events of this event-loop turn not yet handed to the operating system: the
   * most a killed process can lose of what it spilled.
   */
  spillPending: number;
  /** Events read back and handed out. */
  replayed: number;
  /** Events on disk not yet replayed. */
  diskDepth: number;
  /** Bytes of records not yet replayed. */
  diskBacklogBytes: number;
  /** Bytes the segment files take now (what the cap limits). */
  diskBytes: number;
  diskMaxBytes: number;
  segments: number;
  /** Events dropped by the policy at the byte cap. */
  diskDroppedOverflow: number;
  /** Events found on disk at start (left by the previous run), counted as received again. */
  diskRecovered: number;
  /** Torn or corrupt records cut off (at start or while reading), and their bytes. */
  tornTailRecords: number;
  tornTailBytes: number;
  /** Events lost after they were stored: a corrupt record found while replaying, a failed write, a segment that cannot be read. */
  diskLost: number;
  /** Events refused because they could not be stored: the codec could not encode them, or a segment could not be opened. */
  diskDroppedError: number;
  /** Messages the codec could not encode (nested too deep, a throwing getter); their events are in diskDroppedError. */
  diskEncodeErrors: number;
  /** Failed file operations (open, write, fsync, rename, read, remove). */
  diskErrors: number;
  /** Whether the last file operation failed (see onStateChange). */
  diskFailing: boolean;
  /** Number of fsync calls. */
  syncs: number;
}

interface Segment {
  id: number;
  file: string;
  /** Bytes in the file plus bytes pending for it. */
  bytes: number;
  /** Events in it not yet handed out. */
  events: number;
  /** Record bytes in it not yet handed out. */
  backlogBytes: number;
}

interface Ahead {
  /** The read buffer the payload is in, from `at`, `length` bytes. */
  chunk: Buffer;
  at: number;
  length: number;
  weight: number;
  screened: boolean;
  /** File offset just after this record. */
  end: number;
}

export interface DiskState {
  segment: number;
  offset: number;
  sequences?: Record<string, number>;
  /** Events stamped per source during the last sync interval: the margin to skip after a crash. */
  sequenceStep?: Record<string, number>;
  clean?: boolean;
}

const segName = (id: number): string => `${String(id).padStart(8, '0')}.seg`;

export class DiskTier<T> {
  readonly dir: string;
  readonly maxBytes: number;
  readonly segmentBytes: number;
  readonly policy: DropPolicy;
  private readonly codec: DiskCodec<T>;
  private readonly segments: Segment[] = [];
  private fd: number | undefined;
  /** Records queued for the active segment: one growing buffer, written in one call per flush. */
  private pending: Buffer = Buffer.allocUnsafe(1 << 20);
  private pendingBytes = 0;
  private pendingEvents = 0;
  /** Offset in the head segment of the next record to hand out. */
  private cursor = 0;
  /** Offset in the head segment up to which records were read into `ahead`. */
  private readPos = 0;
  private ahead: Ahead[] = [];
  private aheadIndex = 0;
  private dirty = false;
  private totalBytes = 0;
  /** Segment ids only grow, across restarts too (the state file names the head by id). */
  private nextId = 1;
  private depthEvents = 0;
  private backlogBytes = 0;
  private readonly c = { spilled: 0, replayed: 0, diskDroppedOverflow: 0, diskRecovered: 0, tornTailRecords: 0, tornTailBytes: 0, diskLost: 0, diskDroppedError: 0, diskEncodeErrors: 0, diskErrors: 0, syncs: 0 };
  private failing: Error | undefined;
  private readonly onStateChange: ((error: Error | undefined) => void) | undefined;
  /** Why the last push() returned false: the byte cap ('overflow') or a failure ('error'). */
  refusedFor: 'overflow' | 'error' | undefined;
  /** The state file found at start (sequence snapshot of the previous run), if any. */
  readonly recoveredState: DiskState | undefined;

  constructor(options: DiskTierOptions<T>) {
    if (!(options.maxBytes >= 64 * 1024)) throw new RangeError(`disk spool size must be at least 64 KiB, got ${String(options.maxBytes)}`);
    this.dir = options.dir;
    this.maxBytes = options.maxBytes;
    this.segmentBytes = options.segmentBytes ?? Math.min(64 << 20, Math.max(1 << 20, Math.floor(options.maxBytes / 8)));
    if (this.segmentBytes > this.maxBytes / 2) this.segmentBytes = Math.floor(this.maxBytes / 2);
    this.policy = options.policy;
    this.codec = options.codec;
    this.onStateChange = options.onStateChange;
    fs.mkdirSync(this.dir, { recursive: true });
    this.recoveredState = this.readState();
    this.recover(this.recoveredState);
  }

  get depth(): number {
    return this.depthEvents;
  }

  /** Bytes the segment files take (what the cap limits). */
  get bytes(): number {
    return this.totalBytes;
  }

  /**
   * Appends an item; applies the drop policy at the byte cap. Returns whether it was stored; when
   * not, `refusedFor` says why, and the events are counted (diskDroppedOverflow or diskDroppedError).
   * Never throws: a codec or file error is counted and reported through onStateChange.
   */
  push(item: T, weight: number): boolean {
    this.refusedFor = undefined;
    let payload: string | Buffer;
    try {
      payload = this.codec.encode(item);
    } catch {
      this.c.diskEncodeErrors++;
      return this.refuse(weight, 'error');
    }
    const length = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
    const size = RECORD_HEADER + length;
    if (size > this.segmentBytes || length > MAX_RECORD) return this.refuse(weight, 'overflow');
    let seg: Segment;
    try {
      // Drop-oldest frees whole segments (the oldest first), never the one being written.
      while (this.totalBytes + size > this.maxBytes) {
        if (this.policy === 'drop-newest' || this.segments.length < 2) return this.refuse(weight, 'overflow');
        this.dropHeadSegment();
      }
      seg = this.segments[this.segments.length - 1];
      // Segments left by the previous run are never appended to (fd undefined): their bytes are final.
      if (seg === undefined || this.fd === undefined || seg.bytes + size > this.segmentBytes) seg = this.rotate();
    } catch (err) {
      this.failed(err);
      return this.refuse(weight, 'error');
    }
    if (this.pendingBytes + size > this.pending.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.pending.length * 2, this.pendingBytes + size));
      this.pending.copy(grown, 0, 0, this.pendingBytes);
      this.pending = grown;
    }
    const buf = this.pending;
    const at = this.pendingBytes;
    buf.writeUInt32LE(length, at);
    buf.writeUInt32LE(weight, at + 8);
    if (typeof payload === 'string') buf.write(payload, at + RECORD_HEADER, length, 'utf8');
    else payload.copy(buf, at + RECORD_HEADER);
    buf.writeUInt32LE(crc32(buf.subarray(at + 8, at + size)), at + 4);
    this.pendingBytes += size;
    this.pendingEvents += weight;
    seg.bytes += size;
    seg.events += weight;
    seg.backlogBytes += size;
    this.totalBytes += size;
    this.depthEvents += weight;
    this.backlogBytes += size;
    this.c.spilled += weight;
    // A failed write counts what it lost (this item included) as diskLost.
    if (this.pendingBytes >= 4 << 20) this.flush();
    return true;
  }

  private refuse(weight: number, why: 'overflow' | 'error'): false {
    if (why === 'overflow') this.c.diskDroppedOverflow += weight;
    else this.c.diskDroppedError += weight;
    this.refusedFor = why;
    return false;
  }

  /** A file operation threw: counted, and reported if the tier was working until now. */
  private failed(err: unknown): void {
    this.c.diskErrors++;
    if (this.failing !== undefined) return;
    this.failing = err instanceof Error ? err : new Error(String(err));
    this.onStateChange?.(this.failing);
  }

  private worked(): void {
    if (this.failing === undefined) return;
    this.failing = undefined;
    this.onStateChange?.(undefined);
  }

  /** Weight of the next item (0 when empty). Reads ahead from disk as needed. */
  peekWeight(): number {
    if (this.depthEvents === 0) return 0;
    if (this.aheadIndex >= this.ahead.length) this.fill();
    return this.aheadIndex < this.ahead.length ? this.ahead[this.aheadIndex].weight : 0;
  }

  shift(): { item: T; weight: number } | undefined {
    for (;;) {
      const a = this.take();
      if (a === undefined) return undefined;
      try {
        const codec = this.codec;
        const item =
          codec.decodeRange !== undefined ? codec.decodeRange(a.chunk, a.at, a.at + a.length, a.weight, a.screened) : codec.decode(a.chunk.subarray(a.at, a.at + a.length), a.weight, a.screened);
        return { item, weight: a.weight };
      } catch {
        // Checksum right but not a message (written by something else?): counted, never fatal.
        this.c.diskLost += a.weight;
        this.c.replayed -= a.weight;
      }
    }
  }

  private take(): Ahead | undefined {
    if (this.peekWeight() === 0) return undefined;
    const a = this.ahead[this.aheadIndex];
    this.ahead[this.aheadIndex++] = undefined as unknown as Ahead;
    const head = this.segments[0];
    const size = a.end - this.cursor;
    this.cursor = a.end;
    head.events -= a.weight;
    head.backlogBytes -= size;
    this.depthEvents -= a.weight;
    this.backlogBytes -= size;
    this.c.replayed += a.weight;
    this.dirty = true;
    return a;
  }

  /**
   * Writes what push() queued to the active segment (the OS has it: a killed process loses nothing
   * of it). Never throws: a failed write loses the queued records, counted as diskLost.
   */
  flush(): void {
    if (this.pendingBytes === 0) return;
    const bytes = this.pendingBytes;
    const events = this.pendingEvents;
    this.pendingBytes = 0;
    this.pendingEvents = 0;
    try {
      if (this.fd === undefined) throw new Error('no open segment');
      let off = 0;
      while (off < bytes) off += fs.writeSync(this.fd, this.pending, off, bytes - off);
      this.dirty = true;
    } catch (err) {
      // The queued records are gone: count their events as lost, and shrink the books to match the file.
      const seg = this.segments[this.segments.length - 1];
      seg.bytes -= bytes;
      seg.events -= events;
      seg.backlogBytes -= bytes;
      this.totalBytes -= bytes;
      this.depthEvents -= events;
      this.backlogBytes -= bytes;
      this.c.diskLost += events;
      // Part of it may have reached the file: the next record goes to a new segment, never after torn bytes.
      this.closeActive();
      this.failed(err);
    }
  }

  /**
   * Flush, fsync the active segment and save the replay cursor (and `extra`, e.g. sequence numbers).
   * Never throws: a failure is counted in diskErrors and reported through onStateChange.
   */
  sync(extra: Omit<DiskState, 'segment' | 'offset'> = {}): void {
    const errorsBefore = this.c.diskErrors;
    this.flush();
    try {
      if (this.fd !== undefined && this.dirty) {
        fs.fsyncSync(this.fd);
        this.c.syncs++;
      }
      this.writeState(extra);
      this.dirty = false;
      // Working again only once a whole sync went through: a write into an open file proves little.
      if (this.c.diskErrors === errorsBefore) this.worked();
    } catch (err) {
      this.failed(err);
    }
  }

  close(extra: Omit<DiskState, 'segment' | 'offset'> = {}): void {
    this.sync({ ...extra, clean: true });
    this.closeActive();
  }

  /** Stops appending to the active segment (its bytes are final); the next push begins a new one. */
  private closeActive(): void {
    const fd = this.fd;
    this.fd = undefined;
    if (fd === undefined) return;
    try {
      fs.closeSync(fd);
    } catch (err) {
      this.failed(err);
    }
  }

  counters(): DiskCounters {
    return {
      ...this.c,
      diskFailing: this.failing !== undefined,
      spillPending: this.pendingEvents,
      diskDepth: this.depthEvents,
      diskBacklogBytes: this.backlogBytes,
      diskBytes: this.totalBytes,
      diskMaxBytes: this.maxBytes,
      segments: this.segments.length,
    };
  }

  /** Begins a new segment. Throws when it cannot be opened; the caller counts the item it was for. */
  private rotate(): Segment {
    this.flush();
    if (this.fd !== undefined) {
      // A closed segment is final: make it durable before the next one begins.
      const fd = this.fd;
      this.fd = undefined;
      try {
        fs.fsyncSync(fd);
        this.c.syncs++;
      } finally {
        fs.closeSync(fd);
      }
    }
    // The directory may have been removed under us: make it again (what it held is counted when replay reaches it).
    fs.mkdirSync(this.dir, { recursive: true });
    const id = this.nextId++;
    const file = path.join(this.dir, segName(id));
    this.fd = fs.openSync(file, 'w');
    const seg: Segment = { id, file, bytes: 0, events: 0, backlogBytes: 0 };
    this.segments.push(seg);
    if (this.segments.length === 1) this.cursor = this.readPos = 0;
    return seg;
  }

  private dropHeadSegment(): void {
    const head = this.segments.shift() as Segment;
    this.c.diskDroppedOverflow += head.events;
    this.depthEvents -= head.events;
    this.backlogBytes -= head.backlogBytes;
    this.totalBytes -= head.bytes;
    this.remove(head.file);
    this.ahead = [];
    this.aheadIndex = 0;
    this.cursor = this.readPos = 0;
    this.dirty = true;
  }

  /** Reads the next records of the head segment into `ahead`; retires finished segments. */
  private fill(): void {
    this.ahead = [];
    this.aheadIndex = 0;
    for (;;) {
      const head = this.segments[0];
      if (head === undefined) return;
      let active = this.fd !== undefined && head === this.segments[this.segments.length - 1];
      if (active) {
        this.flush();
        active = this.fd !== undefined; // a failed write closes it
      }
      const fileBytes = head.bytes;
      if (this.readPos >= fileBytes || head.events === 0) {
        if (active) return;
        this.segments.shift();
        this.totalBytes -= head.bytes;
        this.depthEvents -= head.events; // 0 unless a corrupt record cut the rest off
        this.backlogBytes -= head.backlogBytes;
        this.remove(head.file);
        this.cursor = this.readPos = 0;
        this.dirty = true;
        continue;
      }
      const want = Math.min(fileBytes - this.readPos, 1 << 20);
      let buf = Buffer.allocUnsafe(want);
      let got: number;
      try {
        const fd = fs.openSync(head.file, 'r');
        try {
          got = fs.readSync(fd, buf, 0, want, this.readPos);
          // One record larger than the chunk: read exactly that record.
          if (got >= RECORD_HEADER) {
            const len = buf.readUInt32LE(0) + RECORD_HEADER;
            if (len > got && len <= fileBytes - this.readPos) {
              buf = Buffer.allocUnsafe(len);
              got = fs.readSync(fd, buf, 0, len, this.readPos);
            }
          }
        } finally {
          fs.closeSync(fd);
        }
      } catch (err) {
        // The segment cannot be read (removed, a bad sector): what it still held is lost, and counted.
        this.failed(err);
        this.loseHead(head);
        continue;
      }
      const screened = this.codec.screen?.(buf.subarray(0, got)) === true;
      let off = 0;
      while (off + RECORD_HEADER <= got) {
        const len = buf.readUInt32LE(off);
        if (off + RECORD_HEADER + len > got) break;
        const body = buf.subarray(off + 8, off + RECORD_HEADER + len);
        if (crc32(body) !== buf.readUInt32LE(off + 4)) {
          this.cutCorrupt(head, this.readPos + off);
          break;
        }
        off += RECORD_HEADER + len;
        this.ahead.push({ chunk: buf, at: off - len, length: len, weight: buf.readUInt32LE(off - len - 4), screened, end: this.readPos + off });
      }
      this.readPos += off;
      if (this.ahead.length > 0) return;
      if (off === 0 && this.readPos < head.bytes && head.events > 0 && got < RECORD_HEADER) {
        this.cutCorrupt(head, this.readPos);
      }
    }
  }

  /** The head segment cannot be read: its events not yet handed out are lost; appending never resumes in it. */
  private loseHead(head: Segment): void {
    if (head === this.segments[this.segments.length - 1]) this.closeActive();
    this.segments.shift();
    this.c.diskLost += head.events;
    this.depthEvents -= head.events;
    this.backlogBytes -= head.backlogBytes;
    this.totalBytes -= head.bytes;
    this.remove(head.file);
    this.cursor = this.readPos = 0;
    this.dirty = true;
  }

  private remove(file: string): void {
    try {
      fs.rmSync(file, { force: true });
    } catch (err) {
      this.failed(err);
    }
  }

  /** A record in the middle of replay does not check out: the rest of that segment is lost, and counted. */
  private cutCorrupt(head: Segment, at: number): void {
    this.c.tornTailRecords++;
    this.c.tornTailBytes += head.bytes - at;
    this.c.diskLost += head.events - this.aheadWeight();
    this.depthEvents -= head.events - this.aheadWeight();
    this.backlogBytes -= head.backlogBytes;
    head.events = this.aheadWeight();
    head.backlogBytes = 0;
    this.readPos = head.bytes;
  }

  private aheadWeight(): number {
    let w = 0;
    for (let i = this.aheadIndex; i < this.ahead.length; i++) w += this.ahead[i].weight;
    return w;
  }

  private stateFile(): string {
    return path.join(this.dir, 'state.json');
  }

  private readState(): DiskState | undefined {
    try {
      const s = JSON.parse(fs.readFileSync(this.stateFile(), 'utf8')) as DiskState;
      if (Number.isSafeInteger(s.segment) && Number.isSafeInteger(s.offset)) return s;
    } catch {
      /* missing or unreadable: replay everything that is on disk */
    }
    return undefined;
  }

  private writeState(extra: Omit<DiskState, 'segment' | 'offset'>): void {
    const head = this.segments[0];
    const last = this.segments[this.segments.length - 1];
    const state: DiskState = { segment: head?.id ?? last?.id ?? this.nextId - 1, offset: head === undefined ? 0 : this.cursor, clean: false, ...extra };
    const file = this.stateFile();
    const tmp = `${file}.tmp`;
    const fd = fs.openSync(tmp, 'w');
    try {
      fs.writeSync(fd, JSON.stringify(state));
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  }

  /** Scans every segment: checks each record, cuts torn tails off, counts what is left to replay. */
  private recover(state: DiskState | undefined): void {
    const ids = fs
      .readdirSync(this.dir)
      .map((f) => SEGMENT_NAME.exec(f))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => a - b);
    this.nextId = Math.max(state?.segment ?? 0, ids[ids.length - 1] ?? 0) + 1;
    for (const id of ids) {
      const file = path.join(this.dir, segName(id));
      if (state !== undefined && id < state.segment) {
        fs.rmSync(file, { force: true }); // fully replayed before the restart
        continue;
      }
      const start = state !== undefined && id === state.segment ? state.offset : 0;
      const seg = this.scan(id, file, start);
      if (seg === undefined) continue;
      this.segments.push(seg);
      this.totalBytes += seg.bytes;
      this.depthEvents += seg.events;
      this.backlogBytes += seg.backlogBytes;
    }
    this.c.diskRecovered = this.depthEvents;
    const head = this.segments[0];
    if (head !== undefined && state !== undefined && head.id === state.segment) this.cursor = this.readPos = Math.min(state.offset, head.bytes);
    // Appending always starts a fresh segment: the old tail may have been cut, and its bytes are final.
    this.fd = undefined;
  }

  private scan(id: number, file: string, start: number): Segment | undefined {
    const data = fs.readFileSync(file);
    let off = 0;
    let events = 0;
    let backlogBytes = 0;
    while (off + RECORD_HEADER <= data.length) {
      const len = data.readUInt32LE(off);
      if (len > MAX_RECORD || off + RECORD_HEADER + len > data.length) break;
      if (crc32(data.subarray(off + 8, off + RECORD_HEADER + len)) !== data.readUInt32LE(off + 4)) break;
      if (off >= start) {
        events += data.readUInt32LE(off + 8);
        backlogBytes += RECORD_HEADER + len;
      }
      off += RECORD_HEADER + len;
    }
    if (off < data.length) {
      this.c.tornTailRecords++;
      this.c.tornTailBytes += data.length - off;
      fs.truncateSync(file, off);
    }
    if (events === 0) {
      fs.rmSync(file, { force: true });
      return undefined;
    }
    return { id, file, bytes: off, events, backlogBytes };
  }
}
