/**
 * A rate per second over the last few seconds, from a running total read now and then: the sink's
 * badge and its stats read the same meter, so a dashboard charts the rows/s the badge shows.
 */
export class RateMeter {
  /** (time, total) readings, oldest first, kept while inside the window (at least two). */
  private readonly readings: Array<[number, number]> = [];

  constructor(private readonly windowMs = 5000) {}

  /** Takes the total at `now` (ms) and returns the change per second over the window up to now. */
  rate(now: number, total: number): number {
    const last = this.readings[this.readings.length - 1];
    // A clock that went back (or a caller with its own clock): start again rather than divide by a negative.
    if (last !== undefined && now < last[0]) this.readings.length = 0;
    this.readings.push([now, total]);
    while (this.readings.length > 2 && now - this.readings[0][0] > this.windowMs) this.readings.shift();
    const [t0, v0] = this.readings[0];
    return now > t0 ? ((total - v0) * 1000) / (now - t0) : 0;
  }
}
