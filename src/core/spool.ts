import * as fs from 'fs';
import * as path from 'path';

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

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/** JSON that survives what Node-RED messages may carry: circular references, functions, bigints, sockets. */
export function toSpoolLine(msg: Record<string, unknown>): string {
  const seen = new WeakSet<object>();
  return JSON.stringify(msg, (key, value: unknown) => {
    if (key === 'req' || key === 'res' || key === '_msgid') return undefined;
    if (typeof value === 'bigint') return value.toString();
    if (typeof value === 'function' || typeof value === 'symbol') return undefined;
    if (typeof value === 'object' && value !== null) {
      if (seen.has(value)) return undefined;
      seen.add(value);
    }
    return value;
  });
}

export function writeSpool(file: string, sequences: Record<string, number>, messages: readonly Record<string, unknown>[]): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const header: SpoolHeader = { format: 'telemetry-spool', version: 1, savedAt: Date.now(), sequences };
  const tmp = `${file}.tmp`;
  const fd = fs.openSync(tmp, 'w');
  try {
    // Written in chunks so a spool of a million messages never becomes one giant string.
    let chunk = JSON.stringify(header) + '\n';
    for (const msg of messages) {
      chunk += toSpoolLine(msg) + '\n';
      if (chunk.length > 1 << 20) {
        fs.writeSync(fd, chunk);
        chunk = '';
      }
    }
    fs.writeSync(fd, chunk);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}

/** JSON.parse reviver that strips keys which could pollute prototypes (a spool file is input). */
export function reviveSafely(_key: string, value: unknown): unknown {
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    for (const k of Object.keys(value)) if (FORBIDDEN_KEYS.has(k)) delete (value as Record<string, unknown>)[k];
  }
  return value;
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
      const value = JSON.parse(line, reviveSafely) as unknown;
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
