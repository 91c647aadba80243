import * as fs from 'fs';
import * as path from 'path';
import { parseMessageLine, toMessageLine } from './message-codec';
import { stateFile, syncDirectory } from '../shared/state-files';

/**
 * The shutdown spool: what a buffer held when it closed (its ring and the messages it had released
 * but nobody had confirmed written), one JSON message per line after a header line, written to a
 * temporary file and renamed so a crash mid-write never leaves a half file under the real name.
 */
export interface SpoolHeader {
  format: 'telemetry-spool';
  version: 1;
  savedAt: number;
  /** Next sequence number per source, so numbering continues across restarts. */
  sequences: Record<string, number>;
}

export interface SpoolContents<M> {
  header: SpoolHeader | undefined;
  messages: M[];
  /** Lines that could not be parsed (a torn or edited file); counted, never fatal. */
  badLines: number;
}

/** What a restore did. */
export interface SpoolRestore {
  header: SpoolHeader | undefined;
  /** Messages handed to onMessage. */
  restored: number;
  /** Lines that could not be parsed or were too long. */
  badLines: number;
  /** Bytes not restored: the bad lines, and what was left unread after a read error. */
  badBytes: number;
  /** Where the file was kept when anything in it could not be restored (never overwritten, never read again). */
  keptAs?: string;
  /** The error that stopped the restore (the file could not be opened or read to its end). */
  error?: Error;
}

export interface RestoreOptions {
  /** Bytes read at a time. Default 1 MiB. */
  chunkBytes?: number;
  /** A longer line is skipped and counted, not held in memory. Default 256 MiB (below V8's longest string). */
  maxLineBytes?: number;
}

/**
 * writeSync may write less than asked (a disk that fills up mid-chunk) and says so only in its
 * return value; ignoring it silently truncates the spool. Writing the rest makes the disk say ENOSPC.
 */
function writeAll(fd: number, text: string): void {
  const bytes = Buffer.from(text, 'utf8');
  for (let offset = 0; offset < bytes.length; ) offset += fs.writeSync(fd, bytes, offset, bytes.length - offset);
}

/**
 * Writes the spool; returns the positions of the messages that could not be serialized (nested
 * too deep for JSON.stringify, a throwing getter) and were left out, so one bad message cannot lose
 * all the others, and the caller counts as spooled only what was written. A spool already there
 * (one that was never restored) is kept aside, never replaced.
 */
export function writeSpool(file: string, sequences: Record<string, number>, messages: Iterable<Record<string, unknown>>): { skipped: number; skippedAt: number[] } {
  const skippedAt: number[] = [];
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const header: SpoolHeader = { format: 'telemetry-spool', version: 1, savedAt: Date.now(), sequences };
  const tmp = `${file}.tmp`;
  const fd = fs.openSync(tmp, 'w');
  try {
    try {
      // Written in chunks so a spool of a million messages never becomes one giant string.
      let chunk = JSON.stringify(header) + '\n';
      let index = 0;
      for (const msg of messages) {
        let line: string;
        try {
          line = toMessageLine(msg);
        } catch {
          skippedAt.push(index++);
          continue;
        }
        index++;
        chunk += line + '\n';
        if (chunk.length > 1 << 20) {
          writeAll(fd, chunk);
          chunk = '';
        }
      }
      writeAll(fd, chunk);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    if (fs.existsSync(file)) keepAside(file);
    fs.renameSync(tmp, file);
    syncDirectory(path.dirname(file));
  } catch (err) {
    // A half-written spool (disk full) is useless and would keep the disk full for everyone else.
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  return { skipped: skippedAt.length, skippedAt };
}

/** Renames a spool that cannot be restored to a name nothing writes to; returns that name. */
export function keepAside(file: string): string {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  let aside = `${file}.unrestored-${stamp}`;
  for (let n = 2; fs.existsSync(aside); n++) aside = `${file}.unrestored-${stamp}-${n}`;
  fs.renameSync(file, aside);
  return aside;
}

const NEWLINE = 0x0a;

/**
 * Restores a spool line by line, reading it in chunks, so its size is limited by the disk and not
 * by the longest string V8 can make (about 512 MiB, which a ring of large messages can exceed).
 * onHeader comes before the first message. A file read to its end with every line restored is
 * removed; a file with anything that could not be restored (a bad or overlong line, a read error)
 * is kept aside under a new name and what it lost is counted in lines and bytes. Never throws for
 * the file: a missing file restores nothing, any other failure is in `error`.
 */
export function restoreSpool<M>(file: string, handlers: { onHeader?(header: SpoolHeader): void; onMessage(msg: M): void }, options: RestoreOptions = {}): SpoolRestore {
  const chunkBytes = options.chunkBytes ?? 1 << 20;
  const maxLineBytes = options.maxLineBytes ?? 256 * 1024 * 1024;
  const result: SpoolRestore = { header: undefined, restored: 0, badLines: 0, badBytes: 0 };
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return result;
    return setAside(file, result, err);
  }
  let lineNumber = 0;
  const line = (bytes: Buffer): void => {
    const first = lineNumber++ === 0;
    if (bytes.length === 0) return;
    try {
      const value = parseMessageLine(bytes.toString('utf8')) as unknown;
      if (first && typeof value === 'object' && value !== null && (value as SpoolHeader).format === 'telemetry-spool') {
        result.header = value as SpoolHeader;
        handlers.onHeader?.(result.header);
        return;
      }
      if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
        result.restored++;
        handlers.onMessage(value as M);
        return;
      }
    } catch {
      // counted below
    }
    result.badLines++;
    result.badBytes += bytes.length;
  };
  let position = 0;
  try {
    const buf = Buffer.allocUnsafe(chunkBytes);
    /** The start of a line that continues in the next chunk. */
    let carry: Buffer[] = [];
    let carried = 0;
    /** Skipping the rest of a line longer than maxLineBytes. */
    let skipping = false;
    for (;;) {
      const got = fs.readSync(fd, buf, 0, chunkBytes, position);
      if (got === 0) break;
      position += got;
      let start = 0;
      for (let nl = buf.indexOf(NEWLINE, 0); nl !== -1 && nl < got; nl = buf.indexOf(NEWLINE, start)) {
        if (skipping) {
          result.badBytes += nl - start;
          skipping = false;
        } else if (carried > 0) {
          carry.push(buf.subarray(start, nl));
          line(Buffer.concat(carry));
          carry = [];
          carried = 0;
        } else {
          line(buf.subarray(start, nl));
        }
        start = nl + 1;
      }
      if (start < got) {
        if (skipping) {
          result.badBytes += got - start;
        } else if (carried + got - start > maxLineBytes) {
          result.badLines++;
          result.badBytes += carried + got - start;
          lineNumber++;
          carry = [];
          carried = 0;
          skipping = true;
        } else {
          carry.push(Buffer.from(buf.subarray(start, got))); // the buffer is read into again
          carried += got - start;
        }
      }
    }
    if (carried > 0) line(Buffer.concat(carry));
  } catch (err) {
    let size = position;
    try {
      size = fs.fstatSync(fd).size;
    } catch {
      // the size stays unknown: what was read is all we can say
    }
    result.badBytes += Math.max(0, size - position);
    fs.closeSync(fd);
    return setAside(file, result, err);
  }
  fs.closeSync(fd);
  if (result.badLines > 0) return setAside(file, result, undefined);
  fs.rmSync(file, { force: true });
  return result;
}

function setAside(file: string, result: SpoolRestore, err: unknown): SpoolRestore {
  if (err !== undefined) result.error = err instanceof Error ? err : new Error(String(err));
  try {
    result.keptAs = keepAside(file);
  } catch (renameErr) {
    // It stays under its name: the next spool then keeps it aside before writing (writeSpool).
    result.error ??= renameErr as Error;
  }
  return result;
}

/** Restores a whole spool into memory (for tests and small files); see restoreSpool. */
export function takeSpool<M>(file: string, options?: RestoreOptions): SpoolContents<M> & SpoolRestore {
  const messages: M[] = [];
  const result = restoreSpool<M>(file, { onMessage: (m) => messages.push(m) }, options);
  if (result.error !== undefined) throw result.error;
  return { ...result, messages };
}

/** What a spool file is named after its node's id. */
export const SPOOL_SUFFIX = '.jsonl';

/** The spool file of a node. */
export function spoolFileFor(dir: string, nodeId: string): string {
  return stateFile(dir, nodeId, SPOOL_SUFFIX);
}
