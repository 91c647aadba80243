/** The disk tier's counters (in the buffer's stats) and how it tells a caller it fails or works again. */

/** What the tier counts itself. */
export interface DiskTally {
  /** Events written to disk. */
  spilled: number;
  /** Events read back and handed out. */
  replayed: number;
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
  /** Number of fsync calls. */
  syncs: number;
}

/** The tally and the tier's state at the moment. */
export interface DiskCounters extends DiskTally {
  /**
   * Of spilled, the events of this event-loop turn not yet handed to the operating system: the
   * most a killed process can lose of what it spilled.
   */
  spillPending: number;
  /** Events on disk not yet replayed. */
  diskDepth: number;
  /** Bytes of records not yet replayed. */
  diskBacklogBytes: number;
  /** Bytes the segment files take now (what the cap limits). */
  diskBytes: number;
  diskMaxBytes: number;
  segments: number;
  /** Whether the last file operation failed (see onStateChange). */
  diskFailing: boolean;
}

/**
 * Failed file operations: each counted (diskErrors); the listener told once when the tier starts
 * failing and once when it works again, however many events fail meanwhile, so a caller logs
 * changes only.
 */
export class DiskHealth {
  private error: Error | undefined;

  constructor(
    private readonly tally: DiskTally,
    private readonly onStateChange?: (error: Error | undefined) => void,
  ) {}

  get failing(): boolean {
    return this.error !== undefined;
  }

  /** A file operation threw: counted, and reported if the tier was working until now. */
  failed(err: unknown): void {
    this.tally.diskErrors++;
    if (this.error !== undefined) return;
    this.error = err instanceof Error ? err : new Error(String(err));
    this.onStateChange?.(this.error);
  }

  /** A whole sync went through without an error. */
  worked(): void {
    if (this.error === undefined) return;
    this.error = undefined;
    this.onStateChange?.(undefined);
  }
}
