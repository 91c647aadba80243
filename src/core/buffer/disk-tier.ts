import * as fs from 'fs';
import type { DropPolicy } from './event-store';
import { OPTIONS } from '../../options/telemetry-buffer';
import { DiskCodec, MAX_RECORD, RECORD_HEADER, ReadRecord, readRecords, RecordQueue } from './disk-record';
import { DiskCounters, DiskHealth, DiskTally } from './disk-counters';
import { DiskState, readChunk, readState, recoverSegments, Segment, segmentFile, writeState } from './segment-files';
import { syncDirectory } from '../shared/state-files';

/**
 * The disk tier (store and forward): an append-only log of records in segment files, bounded in
 * bytes, written while the ring overflows (or downstream has stopped confirming) and read back at a
 * bounded rate when downstream recovers. Not the spool (spool.ts), the one file written at close.
 * The record format is disk-record.ts, the files segment-files.ts. A torn tail (a crash mid-write)
 * is cut off at its checksum and counted, with everything after it in that segment.
 */

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

export class DiskTier<T> {
  readonly dir: string;
  readonly maxBytes: number;
  readonly segmentBytes: number;
  readonly policy: DropPolicy;
  private readonly codec: DiskCodec<T>;
  private readonly segments: Segment[] = [];
  private fd: number | undefined;
  /** Records queued for the active segment, written in one call per flush. */
  private readonly pending = new RecordQueue();
  /** Offset in the head segment of the next record to hand out. */
  private cursor = 0;
  /** Offset in the head segment up to which records were read into `ahead`. */
  private readPos = 0;
  private ahead: ReadRecord[] = [];
  private aheadIndex = 0;
  private dirty = false;
  private totalBytes = 0;
  /** Segment ids only grow, across restarts too (the state file names the head by id). */
  private nextId = 1;
  private depthEvents = 0;
  private backlogBytes = 0;
  private readonly c: DiskTally = { spilled: 0, replayed: 0, diskDroppedOverflow: 0, diskRecovered: 0, tornTailRecords: 0, tornTailBytes: 0, diskLost: 0, diskDroppedError: 0, diskEncodeErrors: 0, diskErrors: 0, syncs: 0 };
  private readonly health: DiskHealth;
  /** Why the last push() returned false: the byte cap ('overflow') or a failure ('error'). */
  refusedFor: 'overflow' | 'error' | undefined;
  /** The state file found at start (sequence snapshot of the previous run), if any. */
  readonly recoveredState: DiskState | undefined;

  constructor(options: DiskTierOptions<T>) {
    const least = OPTIONS.diskMaxMB.min * 1024 * 1024;
    if (!(options.maxBytes >= least)) throw new RangeError(`disk tier size must be at least ${least} bytes, got ${String(options.maxBytes)}`);
    this.dir = options.dir;
    this.maxBytes = options.maxBytes;
    this.segmentBytes = options.segmentBytes ?? Math.min(64 << 20, Math.max(1 << 20, Math.floor(options.maxBytes / 8)));
    if (this.segmentBytes > this.maxBytes / 2) this.segmentBytes = Math.floor(this.maxBytes / 2);
    this.policy = options.policy;
    this.codec = options.codec;
    this.health = new DiskHealth(this.c, options.onStateChange);
    fs.mkdirSync(this.dir, { recursive: true });
    this.recoveredState = readState(this.dir);
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
    this.pending.append(payload, length, weight);
    seg.bytes += size;
    seg.events += weight;
    seg.backlogBytes += size;
    this.totalBytes += size;
    this.depthEvents += weight;
    this.backlogBytes += size;
    this.c.spilled += weight;
    // A failed write counts what it lost (this item included) as diskLost.
    if (this.pending.bytes >= 4 << 20) this.flush();
    return true;
  }

  private refuse(weight: number, why: 'overflow' | 'error'): false {
    if (why === 'overflow') this.c.diskDroppedOverflow += weight;
    else this.c.diskDroppedError += weight;
    this.refusedFor = why;
    return false;
  }

  private failed(err: unknown): void {
    this.health.failed(err);
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

  private take(): ReadRecord | undefined {
    if (this.peekWeight() === 0) return undefined;
    const a = this.ahead[this.aheadIndex];
    this.ahead[this.aheadIndex++] = undefined as unknown as ReadRecord;
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
    const bytes = this.pending.bytes;
    const events = this.pending.events;
    if (bytes === 0) return;
    try {
      this.pending.writeTo(this.fd);
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
      // Part of it may have reached the file: cut the file back to the books, or the next start
      // would replay records counted lost here. The next record goes to a new segment either way.
      try {
        if (this.fd !== undefined) fs.ftruncateSync(this.fd, seg.bytes);
      } catch {
        // Cannot cut (the disk fails): the next start may find whole records of the lost ones.
      }
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
      if (this.c.diskErrors === errorsBefore) this.health.worked();
    } catch (err) {
      this.failed(err);
    }
  }

  close(extra: Omit<DiskState, 'segment' | 'offset'> = {}): void {
    this.sync({ ...extra, clean: true });
    this.closeActive();
  }

  /**
   * The active segment cannot take more (it is lost or corrupt): what push() queued for it goes
   * there first, as its books say, and the next push begins a new segment.
   */
  private endActive(): void {
    this.flush();
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
      diskFailing: this.health.failing,
      spillPending: this.pending.events,
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
    const file = segmentFile(this.dir, id);
    this.fd = fs.openSync(file, 'w');
    const seg: Segment = { id, file, bytes: 0, events: 0, backlogBytes: 0 };
    this.segments.push(seg);
    if (this.segments.length === 1) this.cursor = this.readPos = 0;
    // The new file's name reaches the disk now, its records with each sync. A failure here is
    // reported, and the segment, already on the books, still takes records.
    try {
      syncDirectory(this.dir);
    } catch (err) {
      this.failed(err);
    }
    return seg;
  }

  private dropHeadSegment(): void {
    this.c.diskDroppedOverflow += this.retireHead().events;
    this.ahead = [];
    this.aheadIndex = 0;
  }

  /** Removes the head segment, its file and what it still held from the books; replay goes on at the next one. */
  private retireHead(): Segment {
    const head = this.segments.shift() as Segment;
    this.depthEvents -= head.events;
    this.backlogBytes -= head.backlogBytes;
    this.totalBytes -= head.bytes;
    this.remove(head.file);
    this.cursor = this.readPos = 0;
    this.dirty = true;
    return head;
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
        this.retireHead(); // its events are 0 unless a corrupt record cut the rest off
        continue;
      }
      let buf: Buffer;
      let got: number;
      try {
        ({ buf, got } = readChunk(head.file, this.readPos, fileBytes - this.readPos));
      } catch (err) {
        // The segment cannot be read (removed, a bad sector): what it still held is lost, and counted.
        this.failed(err);
        this.loseHead(head);
        continue;
      }
      const screened = this.codec.screen?.(buf.subarray(0, got)) === true;
      const { used: off, corrupt } = readRecords(buf, got, this.readPos, screened, this.ahead);
      if (corrupt) this.cutCorrupt(head, this.readPos + off);
      this.readPos += off;
      if (this.ahead.length > 0) return;
      if (off === 0 && this.readPos < head.bytes && head.events > 0 && got < RECORD_HEADER) {
        this.cutCorrupt(head, this.readPos);
      }
    }
  }

  /** The head segment cannot be read: its events not yet handed out are lost; appending never resumes in it. */
  private loseHead(head: Segment): void {
    if (head === this.segments[this.segments.length - 1]) this.endActive();
    this.c.diskLost += this.retireHead().events;
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
    // Appending never resumes behind a corrupt record: the next start would cut what follows it.
    if (head === this.segments[this.segments.length - 1]) this.endActive();
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

  private writeState(extra: Omit<DiskState, 'segment' | 'offset'>): void {
    const head = this.segments[0];
    const last = this.segments[this.segments.length - 1];
    writeState(this.dir, { segment: head?.id ?? last?.id ?? this.nextId - 1, offset: head === undefined ? 0 : this.cursor, clean: false, ...extra });
  }

  /** Takes over what the previous run left on disk: its segments, checked, torn tails cut off and counted. */
  private recover(state: DiskState | undefined): void {
    const found = recoverSegments(this.dir, state);
    this.nextId = found.nextId;
    this.c.tornTailRecords += found.tornRecords;
    this.c.tornTailBytes += found.tornBytes;
    for (const seg of found.segments) {
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
}
