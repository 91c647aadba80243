import type { DiskCounters } from './disk-counters';
import type { Translate } from '../shared/text';
import { diskBadgeText, type DiskTierSettings } from './disk-tier-settings';
import type { TieredStore } from './tiered-store';

export interface DiskTierDriverHooks {
  /** Events released downstream and not yet confirmed. */
  inFlight(): number;
  /** Whether the buffer releases nothing now (a deploy, the start). */
  paused(): boolean;
  /** Release what the window allows (the disk tier has a backlog to replay). */
  pump(): void;
  error(message: string): void;
  now(): number;
}

/** How often the replay cursor is saved when no fsync interval sets it. */
const CURSOR_SAVE_MS = 1000;

/** The disk tier's counters in the stats, with the time to replay its backlog (-1: unknown). */
export type DiskStats = DiskCounters & { diskDrainSeconds: number };

/**
 * When the disk tier writes, syncs and replays. Records go to the OS once per event-loop turn
 * after a spill (a killed process loses only what it spilled in that turn), to the platter every
 * fsync interval (a power cut loses at most that much) with the replay cursor; a timer keeps
 * replay going while the token bucket refills, measures the replay rate for the time-to-drain
 * estimate, and forces spilling while downstream has confirmed nothing for `spillAfterMs`.
 */
export class DiskTierDriver<T> {
  private flushScheduled = false;
  private stopped = false;
  private lastCompletionAt: number;
  private readonly meter: { at: number; replayed: number; rate: number };
  private syncTimer: NodeJS.Timeout | undefined;
  private replayTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly store: TieredStore<T>,
    private readonly settings: DiskTierSettings,
    private readonly hooks: DiskTierDriverHooks,
  ) {
    this.lastCompletionAt = hooks.now();
    this.meter = { at: hooks.now(), replayed: store.diskCounters().replayed, rate: 0 };
  }

  start(): void {
    // With an fsync after every write (interval 0) the timer still saves the replay cursor while
    // only replay runs, so a crash replays again at most the last second of it.
    this.syncTimer = setInterval(() => this.guarded(() => this.store.syncDisk()), this.settings.fsyncIntervalMs > 0 ? this.settings.fsyncIntervalMs : CURSOR_SAVE_MS);
    this.syncTimer.unref();
    this.replayTimer = setInterval(() => this.tick(), 50);
    this.replayTimer.unref();
  }

  /** An item went to disk: hand it to the OS before the next event-loop turn. */
  afterSpill(): void {
    if (this.flushScheduled || this.stopped) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.guarded(() => (this.settings.fsyncIntervalMs === 0 ? this.store.syncDisk() : this.store.flushDisk()));
    });
  }

  /** Downstream confirmed something: spilling is not forced. */
  completed(): void {
    this.lastCompletionAt = this.hooks.now();
  }

  /** Stops the timers and closes the disk tier: its records stay for the next run, with the cursor. */
  close(): void {
    this.stopped = true;
    if (this.syncTimer !== undefined) clearInterval(this.syncTimer);
    if (this.replayTimer !== undefined) clearInterval(this.replayTimer);
    this.guarded(() => this.store.closeDisk());
  }

  stats(): DiskStats {
    const d = this.store.diskCounters();
    const eta = this.drainSeconds(d);
    return { ...d, diskDrainSeconds: Number.isFinite(eta) ? Math.round(eta) : -1 };
  }

  /** The badge while a backlog is on disk (its facts in turn, 2 s each), else undefined. */
  badgeText(dropped: number, t: Translate): string | undefined {
    const d = this.store.diskCounters();
    if (d.diskDepth === 0) return undefined;
    return diskBadgeText(Math.floor(this.hooks.now() / 2000), d.diskDepth, d.diskBacklogBytes, this.drainSeconds(d), dropped, t);
  }

  /** Seconds to replay the disk backlog at the rate seen lately (bounded by the configured rate). */
  private drainSeconds(d: DiskCounters): number {
    return d.diskDepth === 0 ? 0 : this.meter.rate > 0 ? d.diskDepth / this.meter.rate : Infinity;
  }

  private tick(): void {
    const now = this.hooks.now();
    const inFlight = this.hooks.inFlight();
    const backlog = this.store.diskDepth;
    const meter = this.meter;
    if (now - meter.at >= 2000) {
      const replayed = this.store.diskCounters().replayed;
      const rate = ((replayed - meter.replayed) * 1000) / (now - meter.at);
      // Nothing replayed while nothing waits downstream: the configured rate is the best guess.
      meter.rate = rate > 0 ? rate : backlog > 0 && inFlight === 0 && !this.hooks.paused() ? this.settings.replayRate : 0;
      meter.at = now;
      meter.replayed = replayed;
    }
    if (inFlight === 0) this.lastCompletionAt = now;
    this.store.forceSpill = this.settings.spillAfterMs > 0 && now - this.lastCompletionAt > this.settings.spillAfterMs;
    if (backlog > 0) this.hooks.pump();
  }

  private guarded(operation: () => void): void {
    try {
      operation();
    } catch (err) {
      this.hooks.error((err as Error).message);
    }
  }
}
