import { shortDuration } from '../sink/sink-status';
import type { Translate } from './text';

/**
 * Turns a growing dropped counter into two log lines per episode: one when dropping starts, one
 * when it has stopped for `quietMs`, with the count. An episode that starts again within
 * `quietMs` of the last one continues it, so a line that flaps does not flood the log.
 */
export class DropLog {
  private last = 0;
  private episode: { since: number; from: number; lastDropAt: number } | undefined;

  /** `what`: why events are dropped, already in the user's language; `lines`: the two lines' keys, for another counter of losses. */
  constructor(
    private readonly t: Translate,
    private readonly what: string,
    private readonly quietMs = 10_000,
    private readonly lines = { started: 'log.droppingStarted', stopped: 'log.droppingStopped' }
  ) {}

  /** Whether the counter grew within the last `quietMs` (as of the last check). */
  get active(): boolean {
    return this.episode !== undefined;
  }

  /**
   * Reads the counter (call it a few times a second); returns a line to log, if one is due.
   * `earlier`: what earlier instances dropped, so the line's total is the stats' total.
   */
  check(dropped: number, now: number, earlier = 0): string | undefined {
    const grew = dropped > this.last;
    const before = this.last;
    this.last = dropped;
    if (grew) {
      if (this.episode === undefined) {
        this.episode = { since: now, from: before, lastDropAt: now };
        return this.t(this.lines.started, { what: this.what, count: dropped - this.episode.from, total: dropped + earlier });
      }
      this.episode.lastDropAt = now;
      return undefined;
    }
    if (this.episode !== undefined && now - this.episode.lastDropAt >= this.quietMs) {
      const e = this.episode;
      this.episode = undefined;
      return this.t(this.lines.stopped, { count: dropped - e.from, duration: shortDuration(e.lastDropAt - e.since), total: dropped + earlier });
    }
    return undefined;
  }
}
