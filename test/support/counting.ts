import assert from 'node:assert/strict';

/**
 * The counting identity, for the buffer's stats (telemetry-buffer, BufferCore) and for a store's
 * own counters (RingBuffer, TieredStore: `released` where the buffer has inFlight + outcomes):
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

export function countingParts(s: Counts): number {
  const dropped = s.droppedOverflow + s.droppedOversize + (s.droppedDiskError ?? 0);
  return s.depth + (s.inFlight ?? 0) + (s.delivered ?? 0) + (s.failed ?? 0) + (s.unacknowledged ?? 0) + (s.released ?? 0) + dropped + s.drained;
}

export function countsAddUp(s: Counts): boolean {
  const dropped = s.droppedOverflow + s.droppedOversize + (s.droppedDiskError ?? 0);
  return (s.dropped === undefined || s.dropped === dropped) && s.received === countingParts(s);
}

export function assertCountsAddUp(s: Counts, context = ''): void {
  assert.ok(countsAddUp(s), `${context}${context === '' ? '' : ': '}received ${s.received} != ${countingParts(s)} (the sum of the parts): ${JSON.stringify(s)}`);
}
