import * as fs from 'fs';
import * as zlib from 'zlib';

/**
 * One record of the disk tier's segments: a 12-byte header and a payload,
 *   u32le length of payload | u32le CRC-32 of (weight bytes + payload) | u32le weight (events) | payload
 * A record whose length runs past the end of the file or whose CRC does not match is a torn tail
 * (the process died mid-write).
 */
export const RECORD_HEADER = 12;
/** A longer payload is refused (and a longer length read back is a torn record). */
export const MAX_RECORD = 256 * 1024 * 1024;

/** Turns an item into a record's payload and back. */
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

/** Writes one record at buf[at..at + RECORD_HEADER + length): the payload is `length` bytes (UTF-8 for a string). */
export function writeRecord(buf: Buffer, at: number, payload: string | Buffer, length: number, weight: number): void {
  buf.writeUInt32LE(length, at);
  buf.writeUInt32LE(weight, at + 8);
  if (typeof payload === 'string') buf.write(payload, at + RECORD_HEADER, length, 'utf8');
  else payload.copy(buf, at + RECORD_HEADER);
  buf.writeUInt32LE(crc32(buf.subarray(at + 8, at + RECORD_HEADER + length)), at + 4);
}

/** Whether the record at buf[off..) is whole within `end` and its checksum matches; its payload length then. */
export function checkedLength(buf: Buffer, off: number, end: number): number | undefined {
  if (off + RECORD_HEADER > end) return undefined;
  const len = buf.readUInt32LE(off);
  if (len > MAX_RECORD || off + RECORD_HEADER + len > end) return undefined;
  return crc32(buf.subarray(off + 8, off + RECORD_HEADER + len)) === buf.readUInt32LE(off + 4) ? len : undefined;
}

/** A record read back, its payload still in the chunk it was read in. */
export interface ReadRecord {
  /** The read buffer the payload is in, from `at`, `length` bytes. */
  chunk: Buffer;
  at: number;
  length: number;
  weight: number;
  /** The codec's screen() passed this chunk. */
  screened: boolean;
  /** File offset just after this record. */
  end: number;
}

/**
 * Appends the whole records of buf[0..got) to `out` (`offset`: where buf starts in its file).
 * Returns the bytes they take, and whether the record after them fails its checksum (a record cut
 * off by the end of the chunk is not corrupt: it is read again with the next chunk).
 */
export function readRecords(buf: Buffer, got: number, offset: number, screened: boolean, out: ReadRecord[]): { used: number; corrupt: boolean } {
  let off = 0;
  while (off + RECORD_HEADER <= got) {
    const len = buf.readUInt32LE(off);
    if (off + RECORD_HEADER + len > got) break;
    if (crc32(buf.subarray(off + 8, off + RECORD_HEADER + len)) !== buf.readUInt32LE(off + 4)) return { used: off, corrupt: true };
    off += RECORD_HEADER + len;
    out.push({ chunk: buf, at: off - len, length: len, weight: buf.readUInt32LE(off - len - 4), screened, end: offset + off });
  }
  return { used: off, corrupt: false };
}

/** Records waiting to be written to the active segment: one growing buffer, written in one call. */
export class RecordQueue {
  private buf: Buffer = Buffer.allocUnsafe(1 << 20);
  private queuedBytes = 0;
  private queuedEvents = 0;

  /** Bytes queued. */
  get bytes(): number {
    return this.queuedBytes;
  }

  /** Events queued: what a killed process would lose of what was spilled. */
  get events(): number {
    return this.queuedEvents;
  }

  append(payload: string | Buffer, length: number, weight: number): void {
    const size = RECORD_HEADER + length;
    if (this.queuedBytes + size > this.buf.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.queuedBytes + size));
      this.buf.copy(grown, 0, 0, this.queuedBytes);
      this.buf = grown;
    }
    writeRecord(this.buf, this.queuedBytes, payload, length, weight);
    this.queuedBytes += size;
    this.queuedEvents += weight;
  }

  /** Writes everything queued to `fd` and empties the queue; when that throws, what was queued is gone all the same. */
  writeTo(fd: number | undefined): void {
    const bytes = this.queuedBytes;
    this.queuedBytes = 0;
    this.queuedEvents = 0;
    if (fd === undefined) throw new Error('no open segment');
    let off = 0;
    while (off < bytes) off += fs.writeSync(fd, this.buf, off, bytes - off);
  }
}
