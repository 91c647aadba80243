import * as fs from 'fs';
import * as path from 'path';

interface Entry {
  source: string;
  next: number;
  /** `next` as last handed to the journal (0: never). */
  saved: number;
  /** Numbers handed out in the last save interval: the margin to skip after a crash. */
  step: number;
  /** Changed since it was last handed to the journal (it is in the stamper's list of changes). */
  dirty: boolean;
  /** Dropped with its generation: the floor speaks for it, nothing needs writing. */
  forgotten: boolean;
}

/** Sources a stamper remembers per generation; at most twice this many are held. */
export const DEFAULT_SOURCE_LIMIT = 65_536;

/**
 * Per-source sequence numbers, stamped at ingest before any drop decision, so that every drop
 * anywhere downstream shows up in the table as a gap a query can find, and two readings that share
 * a source and a time are still two rows.
 *
 * Memory is bounded however many sources appear: sources live in two generations of at most
 * `limit` each, and one unseen for a whole generation is forgotten (counted). A forgotten source
 * that comes back continues above every number any forgotten source had (the floor), never below
 * its own old numbers: its rows stay distinct, and its gap shows the forgetting (`forgotten`).
 */
export class SequenceStamper {
  private current = new Map<string, Entry>();
  private previous = new Map<string, Entry>();
  /** Entries changed since they were last handed to the journal, in order of their first change. */
  private changed: Entry[] = [];
  /** The first number of a source not (or no longer) known. */
  private floor = 1;
  private floorSaved = 1;
  /** Sources forgotten since the start. */
  forgotten = 0;

  constructor(private readonly limit = DEFAULT_SOURCE_LIMIT) {
    if (!Number.isSafeInteger(limit) || limit < 1) throw new RangeError(`source limit must be a whole number >= 1, got ${String(limit)}`);
  }

  /** Reserves `count` consecutive numbers for `source` and returns the first. */
  reserve(source: string, count: number): number {
    const entry = this.current.get(source) ?? this.adopt(source, this.floor);
    const first = entry.next;
    entry.next = first + count;
    if (!entry.dirty) {
      entry.dirty = true;
      this.changed.push(entry);
    }
    return first;
  }

  /**
   * Reserves `count` consecutive numbers free in every one of `sources` and returns the first: for
   * the readings of one message in several sources, which are numbered msg.seq, msg.seq + 1, ...
   */
  reserveAll(sources: readonly string[], count: number): number {
    let first = 0;
    for (const source of sources) first = Math.max(first, this.reserve(source, 0));
    for (const source of sources) this.reserve(source, first + count - this.reserve(source, 0));
    return first;
  }

  /** Continues numbering from a saved state (after a restart) without ever going backwards. */
  restore(state: Record<string, number>): void {
    for (const [source, next] of Object.entries(state)) this.restoreOne(source, next, 0);
  }

  /** One source of a saved state; `step` is its margin for a crash after this start. */
  restoreOne(source: string, next: number, step: number): void {
    if (!Number.isSafeInteger(next) || next < 1) return;
    const entry = this.current.get(source) ?? this.previous.get(source) ?? this.adopt(source, next);
    if (next > entry.next) entry.next = next;
    entry.saved = entry.next;
    entry.step = step;
  }

  /** Raises the floor (a saved floor after a restart). */
  restoreFloor(floor: number): void {
    if (Number.isSafeInteger(floor) && floor > this.floor) this.floor = floor;
  }

  /** Every source held, with its next number (for tests and the shutdown spool's header). */
  snapshot(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const entry of this.entries()) out[entry.source] = entry.next;
    return out;
  }

  /** Every source held. */
  *entries(): IterableIterator<Readonly<Entry>> {
    yield* this.previous.values();
    yield* this.current.values();
  }

  /** Sources changed since they were last taken. */
  get pending(): number {
    return this.changed.length;
  }

  /**
   * Takes up to `max` of the sources changed since they were last taken (each with its next number
   * and the numbers handed out since: the margin to skip after a crash), and the floor when it
   * moved. Costs what changed, never a pass over every source held.
   */
  takeChanges(max: number): { sources: Array<Readonly<Entry>>; floor: number | undefined } {
    const taken = (this.changed.length <= max ? this.changed.splice(0) : this.changed.splice(0, max)).filter((entry) => !entry.forgotten);
    for (const entry of taken) {
      entry.step = entry.saved === 0 ? entry.next - 1 : entry.next - entry.saved;
      entry.saved = entry.next;
      entry.dirty = false;
    }
    const floor = this.floor !== this.floorSaved ? this.floor : undefined;
    this.floorSaved = this.floor;
    return { sources: taken, floor };
  }

  get sources(): number {
    return this.current.size + this.previous.size;
  }

  /** The first number a source that is not held would get. */
  get firstNumber(): number {
    return this.floor;
  }

  private adopt(source: string, next: number): Entry {
    let entry = this.previous.get(source);
    if (entry !== undefined) this.previous.delete(source);
    else entry = { source, next, saved: 0, step: 0, dirty: false, forgotten: false };
    this.current.set(source, entry);
    if (this.current.size >= this.limit) this.rotate();
    return entry;
  }

  /** The older generation is forgotten; the floor rises above everything it handed out. */
  private rotate(): void {
    for (const entry of this.previous.values()) {
      if (entry.next > this.floor) this.floor = entry.next;
      entry.forgotten = true;
    }
    this.forgotten += this.previous.size;
    this.previous = this.current;
    this.current = new Map();
    // Changes the journal has not taken yet may be mostly forgotten sources (a flood of topics):
    // let them go, so the list never holds more than the sources held.
    if (this.changed.length > 2 * this.limit) this.changed = this.changed.filter((entry) => !entry.forgotten);
  }
}

type JournalLine = ['s', string, number, number] | ['f', number] | ['open'] | ['clean'];

/** Sources written per event-loop turn: a flood of topics never stalls the line for long. */
const CHUNK = 8192;
/** JSON for a source, without JSON.stringify for the common case of a topic with nothing to escape. */
function quoted(source: string): string {
  for (let i = 0; i < source.length; i++) {
    const c = source.charCodeAt(i);
    if (c < 0x20 || c === 0x22 || c === 0x5c) return JSON.stringify(source);
  }
  return `"${source}"`;
}

function sourceLine(source: string, next: number, step: number): string {
  return `["s",${quoted(source)},${next},${step}]\n`;
}

/**
 * A node's sequence numbers on disk, so numbering continues across redeploys and restarts: an
 * append-only journal of what changed (one line per changed source, written about once a second),
 * rewritten whole when it has grown to four times what it holds (at least 1 MiB). Both are done
 * a few thousand sources per event-loop turn. A clean close ends with a `clean` line; after a crash
 * the numbers skip ahead by ten save intervals' worth per source (plus 1000), so none is used twice
 * and what the crash lost shows as a gap.
 */
export class SequenceJournal {
  private fd: number | undefined;
  private bytes = 0;
  private live = 0;
  private busy = false;
  private closed = false;

  constructor(readonly file: string) {}

  /** Reads the journal into `stamper` (a missing file is a first start); marks the journal open. */
  open(stamper: SequenceStamper): { clean: boolean; sources: number } {
    const state = new Map<string, { next: number; step: number }>();
    let floor = 1;
    let clean = true;
    let text = '';
    try {
      text = fs.readFileSync(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    for (const line of text.split('\n')) {
      if (line === '') continue;
      let entry: JournalLine;
      try {
        entry = JSON.parse(line) as JournalLine;
      } catch {
        clean = false; // a torn last line: the process died while writing
        continue;
      }
      if (entry[0] === 's' && typeof entry[1] === 'string') state.set(entry[1], { next: Number(entry[2]), step: Number(entry[3]) || 0 });
      else if (entry[0] === 'f') floor = Math.max(floor, Number(entry[1]));
      clean = entry[0] === 'clean' ? true : entry[0] === 'open' ? false : clean;
    }
    if (text === '') clean = true;
    let skip = 0;
    for (const [source, { next, step }] of state) {
      const margin = clean ? 0 : 10 * step + 1000;
      skip = Math.max(skip, margin);
      stamper.restoreOne(source, next + margin, step);
    }
    stamper.restoreFloor(floor + (clean ? 0 : skip + 1000));
    stamper.takeChanges(Infinity);
    this.writeAll(stamper);
    return { clean, sources: state.size };
  }

  /**
   * Appends what changed since the last save, a chunk per event-loop turn, and rewrites the file
   * when it has grown too much. Returns at once; a save still running makes this one a no-op.
   */
  save(stamper: SequenceStamper, onError?: (err: Error) => void): void {
    if (this.busy || this.closed) return;
    this.busy = true;
    const step = (): void => {
      try {
        if (this.closed) return;
        if (this.bytes > Math.max(1 << 20, 4 * this.live)) {
          this.rewrite(stamper, () => {
            this.busy = false;
          }, onError);
          return;
        }
        this.appendChanges(stamper, CHUNK);
        if (stamper.pending > 0) {
          setImmediate(step);
          return;
        }
      } catch (err) {
        onError?.(err as Error);
      }
      this.busy = false;
    };
    step();
  }

  /** The last save of a clean close: everything that changed, then the `clean` line, fsynced. */
  close(stamper: SequenceStamper): void {
    this.closed = true;
    try {
      while (stamper.pending > 0) this.appendChanges(stamper, Infinity);
      this.append(`${JSON.stringify(['clean'])}\n`);
      if (this.fd !== undefined) fs.fsyncSync(this.fd);
    } finally {
      if (this.fd !== undefined) fs.closeSync(this.fd);
      this.fd = undefined;
    }
  }

  /** Deletes the journal (the node was deleted). */
  remove(): void {
    this.closed = true;
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
    fs.rmSync(this.file, { force: true });
  }

  private appendChanges(stamper: SequenceStamper, max: number): void {
    const { sources, floor } = stamper.takeChanges(max);
    let text = floor === undefined ? '' : `${JSON.stringify(['f', floor])}\n`;
    for (const entry of sources) text += sourceLine(entry.source, entry.next, entry.step);
    if (text !== '') this.append(text);
  }

  private append(text: string): void {
    if (this.fd === undefined) this.fd = fs.openSync(this.file, 'a');
    fs.writeSync(this.fd, text);
    this.bytes += Buffer.byteLength(text);
  }

  /** Writes every source held to a new file that replaces the journal, at once (at open). */
  private writeAll(stamper: SequenceStamper): void {
    let text = `${JSON.stringify(['f', stamper.firstNumber])}\n`;
    for (const entry of stamper.entries()) text += sourceLine(entry.source, entry.next, entry.step);
    text += `${JSON.stringify(['open'])}\n`;
    fs.mkdirSync(path.dirname(this.file), { recursive: true });
    const tmp = `${this.file}.tmp`;
    fs.writeFileSync(tmp, text);
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
    fs.renameSync(tmp, this.file);
    this.bytes = this.live = Buffer.byteLength(text);
  }

  /**
   * The same, a chunk per turn: the sources held now go to a temporary file, which then replaces
   * the journal. What changes meanwhile stays pending and is appended after, so the last line of a
   * source is its latest number either way.
   */
  private rewrite(stamper: SequenceStamper, done: () => void, onError?: (err: Error) => void): void {
    const all = [...stamper.entries()];
    const tmp = `${this.file}.tmp`;
    let fd: number | undefined;
    let written = 0;
    let at = 0;
    const finish = (err?: Error): void => {
      if (fd !== undefined) fs.closeSync(fd);
      if (err) onError?.(err);
      done();
    };
    const step = (): void => {
      try {
        if (this.closed) return finish();
        if (fd === undefined) {
          fd = fs.openSync(tmp, 'w');
          const head = `${JSON.stringify(['f', stamper.firstNumber])}\n`;
          fs.writeSync(fd, head);
          written += Buffer.byteLength(head);
        }
        let text = '';
        for (const end = Math.min(all.length, at + CHUNK); at < end; at++) text += sourceLine(all[at].source, all[at].next, all[at].step);
        if (text !== '') {
          fs.writeSync(fd, text);
          written += Buffer.byteLength(text);
        }
        if (at < all.length) {
          setImmediate(step);
          return;
        }
        const tail = `${JSON.stringify(['open'])}\n`;
        fs.writeSync(fd, tail);
        written += Buffer.byteLength(tail);
        fs.closeSync(fd);
        fd = undefined;
        if (this.fd !== undefined) fs.closeSync(this.fd);
        this.fd = undefined;
        fs.renameSync(tmp, this.file);
        this.bytes = this.live = written;
        finish();
      } catch (err) {
        finish(err as Error);
      }
    };
    step();
  }
}
