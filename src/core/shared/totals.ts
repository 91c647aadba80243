import * as fs from 'fs';
import * as path from 'path';

/**
 * Counters that continue across redeploys and restarts, so totals in the stats and in Prometheus
 * are totals. A node's counters start at 0 with each instance; what the previous instances counted
 * is kept in a small file (written every few seconds and on close) and added when presented. The
 * node saves what it holds at that moment as handed over (its gauges folded into a counter such
 * as closed or drained), so the counting rule holds on the totals as on each instance. After a
 * crash the totals continue from the last save.
 */
export class Totals<K extends string> {
  private readonly base: Record<K, number>;
  private readonly heldBase: Record<string, number> = {};

  constructor(
    readonly file: string,
    private readonly keys: readonly K[]
  ) {
    this.base = Object.fromEntries(keys.map((key) => [key, 0])) as Record<K, number>;
    let saved: unknown;
    let held: unknown;
    try {
      ({ counters: saved, held } = JSON.parse(fs.readFileSync(file, 'utf8')) as { counters?: unknown; held?: unknown });
    } catch {
      saved = undefined; // none yet, or unreadable: start from 0
    }
    if (typeof held === 'object' && held !== null) {
      for (const [key, value] of Object.entries(held)) if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) this.heldBase[key] = value;
    }
    if (typeof saved === 'object' && saved !== null) {
      for (const key of keys) {
        const value = (saved as Record<string, unknown>)[key];
        if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) this.base[key] = value;
      }
    }
  }

  /** What the previous instances counted, per key. */
  before(key: K): number {
    return this.base[key];
  }

  /** A gauge saved with the last totals (see save()), undefined when that save had none. */
  heldAtSave(key: string): number | undefined {
    return this.heldBase[key];
  }

  /** `current` plus what the previous instances counted, for every key of this total. */
  add<T extends Record<K, number>>(current: T): T {
    const out = { ...current };
    for (const key of this.keys) (out as Record<K, number>)[key] = this.base[key] + current[key];
    return out;
  }

  /**
   * Saves the totals (`current` already added, see add()), and gauges of that moment (`held`) the
   * next instance needs to read what it finds against them; a failure is left to the caller to log.
   */
  save(totals: Record<K, number>, held: Record<string, number> = {}): void {
    const counters: Record<string, number> = {};
    for (const key of this.keys) counters[key] = totals[key];
    fs.mkdirSync(path.dirname(this.file), { recursive: true });
    const tmp = `${this.file}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify({ savedAt: Date.now(), counters, held }));
    fs.renameSync(tmp, this.file);
  }

  /** Forgets the totals (the node was deleted). */
  remove(): void {
    fs.rmSync(this.file, { force: true });
  }
}
