import * as fs from 'fs';
import * as path from 'path';

interface Entry {
  next: number;
  /** `next` as last handed to the journal (0: never). */
  saved: number;
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
    return first;
  }

  /** Continues numbering from a saved state (after a restart) without ever going backwards. */
  restore(state: Record<string, number>): void {
    for (const [source, next] of Object.entries(state)) {
      if (!Number.isSafeInteger(next) || next < 1) continue;
      const entry = this.current.get(source) ?? this.previous.get(source);
      if (entry === undefined) this.adopt(source, next).saved = next;
      else if (next > entry.next) entry.next = next;
    }
  }

  /** Raises the floor (a saved floor after a restart). */
  restoreFloor(floor: number): void {
    if (Number.isSafeInteger(floor) && floor > this.floor) this.floor = floor;
  }

  /** Every source held, with its next number (for tests and the shutdown spool's header). */
  snapshot(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [source, entry] of this.previous) out[source] = entry.next;
    for (const [source, entry] of this.current) out[source] = entry.next;
    return out;
  }

  /**
   * What changed since the last call: [source, next, step] per changed source (step: numbers handed
   * out since, the margin to skip after a crash), and the floor when it moved. Costs one pass over
   * the sources held (bounded), not over every source ever seen.
   */
  changes(): { sources: Array<[string, number, number]>; floor: number | undefined } {
    const sources: Array<[string, number, number]> = [];
    const collect = (map: Map<string, Entry>): void => {
      for (const [source, entry] of map) {
        if (entry.next === entry.saved) continue;
        sources.push([source, entry.next, entry.saved === 0 ? entry.next - 1 : entry.next - entry.saved]);
        entry.saved = entry.next;
      }
    };
    collect(this.previous);
    collect(this.current);
    const floor = this.floor !== this.floorSaved ? this.floor : undefined;
    this.floorSaved = this.floor;
    return { sources, floor };
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
    else entry = { next, saved: 0 };
    this.current.set(source, entry);
    if (this.current.size >= this.limit) this.rotate();
    return entry;
  }

  /** The older generation is forgotten; the floor rises above everything it handed out. */
  private rotate(): void {
    for (const entry of this.previous.values()) if (entry.next > this.floor) this.floor = entry.next;
    this.forgotten += this.previous.size;
    this.previous = this.current;
    this.current = new Map();
  }
}

type JournalLine = ['s', string, number, number] | ['f', number] | ['open'] | ['clean'];

/**
 * A node's sequence numbers on disk, so numbering continues across redeploys and restarts: an
 * append-only journal of what changed (one line per changed source, written about once a second),
 * rewritten whole when it has grown to several times what it holds. A clean close ends with a
 * `clean` line; after a crash the numbers skip ahead by ten save intervals' worth per source (plus
 * 1000), so none is used twice and what the crash lost shows as a gap.
 */
export class SequenceJournal {
  private fd: number | undefined;
  private bytes = 0;
  private live = 0;

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
    const restored: Record<string, number> = {};
    for (const [source, { next, step }] of state) {
      const margin = clean ? 0 : 10 * step + 1000;
      skip = Math.max(skip, margin);
      restored[source] = next + margin;
    }
    stamper.restoreFloor(floor + (clean ? 0 : skip + 1000));
    stamper.restore(restored);
    this.rewrite(stamper, 'open', new Map([...state].map(([source, { step }]) => [source, step])));
    return { clean, sources: state.size };
  }

  /** Appends what changed since the last save; rewrites the file when it has grown too much. */
  save(stamper: SequenceStamper): void {
    const { sources, floor } = stamper.changes();
    if (sources.length === 0 && floor === undefined) return;
    let text = floor === undefined ? '' : `${JSON.stringify(['f', floor])}\n`;
    for (const entry of sources) text += `${JSON.stringify(['s', ...entry])}\n`;
    if (this.bytes + text.length > Math.max(1 << 20, 4 * this.live)) {
      this.rewrite(stamper, 'open', new Map(sources.map(([source, , step]) => [source, step])));
      return;
    }
    this.append(text);
  }

  /** The last save of a clean close: what changed, then the `clean` line, fsynced. */
  close(stamper: SequenceStamper): void {
    try {
      this.save(stamper);
      this.append(`${JSON.stringify(['clean'])}\n`);
      if (this.fd !== undefined) fs.fsyncSync(this.fd);
    } finally {
      if (this.fd !== undefined) fs.closeSync(this.fd);
      this.fd = undefined;
    }
  }

  /** Deletes the journal (the node was deleted). */
  remove(): void {
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
    fs.rmSync(this.file, { force: true });
  }

  private append(text: string): void {
    if (this.fd === undefined) this.fd = fs.openSync(this.file, 'a');
    fs.writeSync(this.fd, text);
    this.bytes += Buffer.byteLength(text);
  }

  /** Writes every source held (and the floor) to a new file that replaces the journal. */
  private rewrite(stamper: SequenceStamper, last: 'open' | 'clean', steps = new Map<string, number>()): void {
    stamper.changes(); // everything is in the new file: nothing is pending any more
    const all = stamper.snapshot();
    let text = `${JSON.stringify(['f', stamper.firstNumber])}\n`;
    for (const source of Object.keys(all)) text += `${JSON.stringify(['s', source, all[source], steps.get(source) ?? 0])}\n`;
    text += `${JSON.stringify([last])}\n`;
    fs.mkdirSync(path.dirname(this.file), { recursive: true });
    const tmp = `${this.file}.tmp`;
    fs.writeFileSync(tmp, text);
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
    fs.renameSync(tmp, this.file);
    this.bytes = Buffer.byteLength(text);
    this.live = this.bytes;
  }
}
