/**
 * A first-in, first-out log of byte strings (encoded messages, or UTF-8 texts) in one block of
 * memory outside the JavaScript heap. Positions are virtual (they only grow), so the block can wrap
 * around and be enlarged without renumbering what it holds. Entries leave in the order they came.
 */
export class ByteLog {
  private block: Buffer;
  private head = 0;
  private tail = 0;
  private readonly initialBytes: number;
  /** Bytes of the last append(). */
  lastLength = 0;

  constructor(initialBytes = 1 << 20) {
    this.initialBytes = initialBytes;
    this.block = Buffer.allocUnsafeSlow(initialBytes);
  }

  /** Bytes held. */
  get bytes(): number {
    return this.tail - this.head;
  }

  /** Bytes of memory the block takes. */
  get allocated(): number {
    return this.block.length;
  }

  /** Stores `data` (a string as UTF-8); returns its position (its length in bytes is in lastLength). */
  append(data: string | Uint8Array): number {
    const start = this.tail;
    let size = this.block.length;
    let at = start % size;
    if (typeof data !== 'string' && at + data.length <= size && this.bytes + data.length <= size) {
      this.block.set(data, at);
      this.lastLength = data.length;
    } else if (typeof data === 'string' && at + data.length * 3 <= size && this.bytes + data.length * 3 <= size) {
      // Three bytes per UTF-16 unit is the most UTF-8 can need: then it is written in place.
      this.lastLength = this.block.write(data, at, 'utf8');
    } else {
      const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
      if (this.bytes + bytes.length > size) {
        this.grow(this.bytes + bytes.length);
        size = this.block.length;
        at = start % size;
      }
      const first = Math.min(bytes.length, size - at);
      this.block.set(bytes.subarray(0, first), at);
      if (first < bytes.length) this.block.set(bytes.subarray(first), 0);
      this.lastLength = bytes.length;
    }
    this.tail = start + this.lastLength;
    return start;
  }

  /**
   * The bytes stored at `start`: a view into the block while they are contiguous, so read them
   * (decode, copy) before the next append.
   */
  read(start: number, length: number): Buffer {
    const size = this.block.length;
    const at = start % size;
    if (at + length <= size) return this.block.subarray(at, at + length);
    return Buffer.concat([this.block.subarray(at), this.block.subarray(0, length - (size - at))]);
  }

  /** Where in `block` the entry at `start` lies, or -1 when it wraps around the end (then use read). */
  contiguousAt(start: number, length: number): number {
    const at = start % this.block.length;
    return at + length <= this.block.length ? at : -1;
  }

  /** The block itself, for contiguousAt. */
  get buffer(): Buffer {
    return this.block;
  }

  /** The text stored at `start` (appended as a string). */
  readText(start: number, length: number): string {
    return this.read(start, length).toString('utf8');
  }

  /** Frees the oldest text, which must be the one at `start`. */
  release(start: number, length: number): void {
    if (start !== this.head) throw new Error(`byte log released out of order: ${start} is not the oldest (${this.head})`);
    this.head = start + length;
    if (this.head === this.tail && this.block.length > 4 * this.initialBytes) {
      // Empty after a backlog: give the memory back.
      this.block = Buffer.allocUnsafeSlow(this.initialBytes);
    }
  }

  /**
   * Enlarges the block to at least `bytes` now, in one step, when the caller knows what it will
   * need: every block left behind stays in memory until V8 collects its Buffer, and doubling
   * overshoots by up to half.
   */
  reserve(bytes: number): void {
    if (bytes > this.block.length) this.resize(Math.ceil(bytes));
  }

  private grow(needed: number): void {
    let size = this.block.length * 2;
    while (size < needed) size *= 2;
    this.resize(size);
  }

  private resize(size: number): void {
    const next = Buffer.allocUnsafeSlow(size);
    // Same virtual positions, new modulus: copy the held bytes one contiguous run at a time.
    for (let v = this.head; v < this.tail; ) {
      const from = v % this.block.length;
      const to = v % size;
      const run = Math.min(this.tail - v, this.block.length - from, size - to);
      this.block.copy(next, to, from, from + run);
      v += run;
    }
    this.block = next;
  }
}
