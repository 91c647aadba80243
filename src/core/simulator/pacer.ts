/** The pace of telemetry-simulator: how many events are due at a moment, at a rate with bursts. */

export interface PacerOptions {
  /** Events per second. */
  rate: number;
  /** Every this many ms, burstSize extra events at once (0: no bursts). */
  burstEveryMs?: number;
  burstSize?: number;
  /** A late tick catches up at most this much time; the rest is counted as skipped. Default 1000. */
  maxCatchUpMs?: number;
}

/**
 * Turns elapsed time into a whole number of due events, carrying the fraction so that the long-run
 * rate is exact however the ticks fall.
 */
export class Pacer {
  private last = 0;
  private carry = 0;
  private nextBurst = Infinity;
  /** Events not generated because the process fell behind by more than maxCatchUpMs. */
  skipped = 0;
  private readonly perMs: number;
  private readonly burstEveryMs: number;
  private readonly burstSize: number;
  private readonly maxCatchUpMs: number;

  constructor(options: PacerOptions) {
    this.perMs = options.rate / 1000;
    this.burstEveryMs = options.burstEveryMs ?? 0;
    this.burstSize = options.burstSize ?? 0;
    this.maxCatchUpMs = options.maxCatchUpMs ?? 1000;
  }

  /** Starts (or restarts) the clock at `nowMs`: nothing is due for the time before. */
  start(nowMs: number): void {
    this.last = nowMs;
    this.nextBurst = this.burstEveryMs > 0 && this.burstSize > 0 ? nowMs + this.burstEveryMs : Infinity;
  }

  /** Adds the events due up to `nowMs` and returns how many whole events are due in total. */
  advance(nowMs: number): number {
    let from = this.last;
    if (nowMs - from > this.maxCatchUpMs) {
      const lost = nowMs - this.maxCatchUpMs - from;
      this.skipped += lost * this.perMs;
      from = nowMs - this.maxCatchUpMs;
      while (this.nextBurst <= from) {
        this.skipped += this.burstSize;
        this.nextBurst += this.burstEveryMs;
      }
    }
    if (nowMs > from) this.carry += (nowMs - from) * this.perMs;
    this.last = Math.max(this.last, nowMs);
    while (this.nextBurst <= nowMs) {
      this.carry += this.burstSize;
      this.nextBurst += this.burstEveryMs;
    }
    return Math.floor(this.carry);
  }

  /** Takes `events` (at most what advance returned) out of the due amount. */
  consume(events: number): void {
    this.carry -= events;
  }

  /** Whole events due now. */
  get due(): number {
    return Math.floor(this.carry);
  }

  clear(): void {
    this.carry = 0;
  }
}
