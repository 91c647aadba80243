import * as fs from 'fs';
import * as path from 'path';
import { parseMessageLine, toMessageLine } from './message-codec';

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


/**
 * writeSync may write less than asked (a disk that fills up mid-chunk) and says so only in its
 * return value; ignoring it silently truncates the spool. Writing the rest makes the disk say ENOSPC.
 */
function writeAll(fd: number, text: string): void {
  const bytes = Buffer.from(text, 'utf8');
  for (let offset = 0; offset < bytes.length; ) offset += fs.writeSync(fd, bytes, offset, bytes.length - offset);
}

/**
 * Writes the spool; returns how many messages could not be serialized (nested too deep for
 * JSON.stringify, a throwing getter) and were left out, so one bad message cannot lose all the others.
 */
export function writeSpool(file: string, sequences: Record<string, number>, messages: readonly Record<string, unknown>[]): { skipped: number } {
  let skipped = 0;
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const header: SpoolHeader = { format: 'telemetry-spool', version: 1, savedAt: Date.now(), sequences };
  const tmp = `${file}.tmp`;
  const fd = fs.openSync(tmp, 'w');
  try {
    try {
      // Written in chunks so a spool of a million messages never becomes one giant string.
      let chunk = JSON.stringify(header) + '\n';
      for (const msg of messages) {
        let line: string;
        try {
          line = toMessageLine(msg);
        } catch {
          skipped++;
          continue;
        }
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
    fs.renameSync(tmp, file);
  } catch (err) {
    // A half-written spool (disk full) is useless and would keep the disk full for everyone else.
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  return { skipped };
}


/** Reads a spool and removes it (the caller now holds the messages). Missing file: empty contents. */
export function takeSpool<M>(file: string): SpoolContents<M> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { header: undefined, messages: [], badLines: 0 };
    throw err;
  }
  const lines = text.split('\n');
  let header: SpoolHeader | undefined;
  const messages: M[] = [];
  let badLines = 0;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line === '') continue;
    try {
      const value = parseMessageLine(line) as unknown;
      if (i === 0 && typeof value === 'object' && value !== null && (value as SpoolHeader).format === 'telemetry-spool') {
        header = value as SpoolHeader;
      } else if (typeof value === 'object' && value !== null) {
        messages.push(value as M);
      } else {
        badLines++;
      }
    } catch {
      badLines++;
    }
  }
  fs.rmSync(file, { force: true });
  return { header, messages, badLines };
}

/** A file name for a node id that is safe on every filesystem. */
export function spoolFileFor(dir: string, nodeId: string): string {
  return path.join(dir, `${nodeId.replace(/[^A-Za-z0-9_.-]/g, '_')}.jsonl`);
}
