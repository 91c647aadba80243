import assert from 'node:assert/strict';

/**
 * The counting identity (docs/architecture.md, "Counting"), for the buffer's stats (telemetry-buffer,
 * BufferCore, the stats endpoint) and for a store's own counters (RingBuffer, TieredStore: `released`
 * where the buffer has inFlight and the outcomes):
 *
 *   received = depth + inFlight + delivered + failed + unacknowledged + released + dropped + drained
 *
 * with dropped = droppedOverflow + droppedOversize + droppedDiskError (a buffer also reports the sum).
 */
export interface Counts {
  received: number;
  depth: number;
  inFlight?: number;
  delivered?: number;
  failed?: number;
  unacknowledged?: number;
  released?: number;
  dropped?: number;
  droppedOverflow: number;
  droppedOversize: number;
  droppedDiskError?: number;
  drained: number;
}

const PARTS = ['depth', 'inFlight', 'delivered', 'failed', 'unacknowledged', 'released', 'droppedOverflow', 'droppedOversize', 'droppedDiskError', 'drained'] as const;

export interface CountsCheck {
  /** Where the counts were taken, for the message. */
  at?: string;
  /** The pipeline has drained: nothing held or in flight, nothing given up (failed or unacknowledged). */
  drained?: boolean;
}

/**
 * Asserts the counting identity; a failure prints every counter and the sum of the parts. Takes any
 * stats object with the counters (the stats endpoint's `Record<string, number>` too).
 */
export function assertCountsAddUp(counts: Counts | Record<string, number>, { at = '', drained = false }: CountsCheck = {}): void {
  const s = counts as Counts;
  const value = (key: (typeof PARTS)[number]): number => s[key] ?? 0;
  const dropped = value('droppedOverflow') + value('droppedOversize') + value('droppedDiskError');
  const parts = PARTS.reduce((sum, key) => sum + value(key), 0);
  const shown = [`received ${s.received}`, ...PARTS.filter((key) => s[key] !== undefined).map((key) => `${key} ${s[key]}`), ...(s.dropped === undefined ? [] : [`dropped ${s.dropped}`])].join(', ');
  const where = at === '' ? '' : `${at}: `;
  assert.ok(Number.isFinite(s.received) && Number.isFinite(parts), `${where}a counter is missing or not a number (${shown})`);
  assert.ok(s.received === parts, `${where}counting identity: received ${s.received} != ${parts}, the sum of the parts (${shown})`);
  assert.ok(s.dropped === undefined || s.dropped === dropped, `${where}dropped ${s.dropped} != ${dropped}, the sum of its reasons (${shown})`);
  if (drained) {
    assert.ok(value('depth') + value('inFlight') === 0, `${where}drained, yet events held or in flight (${shown})`);
    assert.ok(value('failed') + value('unacknowledged') === 0, `${where}drained, yet events given up (${shown})`);
  }
}
