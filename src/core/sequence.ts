/**
 * Per-source sequence numbers, stamped at ingest before any drop decision, so that every drop
 * anywhere downstream shows up in the table as a gap a query can find.
 */
export class SequenceStamper {
  private readonly next = new Map<string, number>();

  /** Reserves `count` consecutive numbers for `source` and returns the first. */
  reserve(source: string, count: number): number {
    const first = this.next.get(source) ?? 1;
    this.next.set(source, first + count);
    return first;
  }

  /** Continues numbering from a saved state (after a restart) without ever going backwards. */
  restore(state: Record<string, number>): void {
    for (const [source, next] of Object.entries(state)) {
      if (Number.isSafeInteger(next) && next > (this.next.get(source) ?? 1)) this.next.set(source, next);
    }
  }

  snapshot(): Record<string, number> {
    return Object.fromEntries(this.next);
  }

  get sources(): number {
    return this.next.size;
  }
}
