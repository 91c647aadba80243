/** telemetry-buffer's options: the one place their defaults and ranges are written (see option-table.ts). */
import type { OptionTable } from '../core/shared/option-table';
import { DROP_POLICIES } from '../core/buffer/event-store';
import { SHAPE_OPTIONS } from '../core/readings/shape-options';

/** The disk tier's options count only while it is on: off, a value out of range does not stop the node. */
const WITH_DISK = { option: 'diskSpill', is: [true] } as const;

export const OPTIONS = {
  capacity: { kind: 'integer', name: 'Capacity', doc: 'A message of N readings counts N.', default: 100_000, min: 1, max: 50_000_000, unit: 'events' },
  // 128 MB: about six times what the default capacity needs for telemetry events (about 0.2 kB
  // each), so it acts only on large payloads, well before a small gateway's heap limit.
  memoryLimit: { kind: 'number', name: 'Memory limit', doc: 'Besides its events (approximate size of each message); the drop policy acts at whichever bound is reached first.', default: 128, min: 0, max: 1_048_576, unit: 'MB', zero: 'no limit' },
  dropPolicy: { kind: 'choice', name: 'Drop policy', doc: '`drop-oldest` keeps the newest, `drop-newest` keeps the oldest.', default: 'drop-oldest', choices: DROP_POLICIES },
  window: { kind: 'integer', name: 'Window', doc: 'Released and not yet confirmed downstream.', default: 10_000, min: 1, max: 50_000_000, unit: 'events' },
  ackTimeout: { kind: 'number', name: 'Ack timeout', doc: 'A message downstream has not confirmed after this long counts as unacknowledged and no longer holds the window, so a node that never completes cannot stop the buffer.', default: 60, min: 0.001, max: 86_400, unit: 's' },
  statsInterval: { kind: 'number', name: 'Stats interval', default: 10, min: 0, max: 86_400, unit: 's', zero: 'only on request' },
  stampSequence: { kind: 'flag', name: 'Stamp sequence', doc: 'In `msg.seq` of a message passed on as it came; into telemetry-batchers, in each reading\'s record. Off: a producer\'s own number is kept (`msg.seq`, or the payload field the sink after it reads, its Seq from), only readings without one are numbered.', default: true },
  ...SHAPE_OPTIONS,
  diskSpill: { kind: 'flag', name: 'Overflow to disk', doc: 'Events that do not fit the ring go to an append-only log of segments on disk (docs/guide.md, overflow to disk).', default: false },
  // 0.0625 MiB = 64 KiB: the least a disk tier takes (DiskTier reads its minimum from here).
  diskMaxMB: { kind: 'number', name: 'Disk size', doc: 'Bytes the segments may take together; at the cap the drop policy acts.', default: 1024, min: 0.0625, max: 16_777_216, unit: 'MiB', when: WITH_DISK },
  fsyncInterval: { kind: 'number', name: 'Fsync interval', doc: 'How often the segments are forced to the disk.', default: 1, min: 0, max: 3600, unit: 's', zero: 'after every write', when: WITH_DISK },
  replayRate: { kind: 'number', name: 'Replay rate', doc: 'Interleaved with live events.', default: 20_000, min: 1, max: 100_000_000, unit: 'events/s', when: WITH_DISK },
  spillAfter: { kind: 'number', name: 'Spill after', doc: 'New events also go to disk once downstream has confirmed nothing for this long.', default: 0, min: 0, max: 86_400, unit: 's', zero: 'only when the ring is full', when: WITH_DISK },
} as const satisfies OptionTable;
