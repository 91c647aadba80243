import { compactCount, formatBytes, formatDuration } from '../shared/badge-text';
import type { Translate } from '../shared/text';
import { DiskTier } from './disk-tier';
import type { DropPolicy } from './event-store';
import { messageCodec } from './message-codec';
import { stateFile } from '../shared/state-files';

/** The disk tier's settings, in the units the code uses. */
export interface DiskTierSettings {
  enabled: boolean;
  maxBytes: number;
  /** 0: fsync after every write. */
  fsyncIntervalMs: number;
  replayRate: number;
  /** 0: spill only when the ring is full. */
  spillAfterMs: number;
}

/** The disk tier's settings from the node's options as read (readOptions of src/options/telemetry-buffer.ts). */
export function diskTierSettings(o: { diskSpill: boolean; diskMaxMB: number; fsyncInterval: number; replayRate: number; spillAfter: number }): DiskTierSettings {
  return {
    enabled: o.diskSpill,
    maxBytes: Math.round(o.diskMaxMB * 1024 * 1024),
    fsyncIntervalMs: o.fsyncInterval * 1000,
    replayRate: o.replayRate,
    spillAfterMs: o.spillAfter * 1000,
  };
}

/** What a disk tier's directory is named after its node's id. */
export const DISK_SUFFIX = '.disk';

/** The directory of one node's disk tier, in the directory of its spool file. */
export function diskDirFor(filesDir: string, nodeId: string): string {
  return stateFile(filesDir, nodeId, DISK_SUFFIX);
}

/** Opens (and recovers) the disk tier of Node-RED messages in `dir`. */
export function openDiskTier<H>(
  dir: string,
  settings: DiskTierSettings,
  policy: DropPolicy,
  wrap: (msg: Record<string, unknown>) => H,
  messageOf: (held: H) => Record<string, unknown>,
  onStateChange?: (error: Error | undefined) => void,
): DiskTier<H> {
  return new DiskTier<H>({ dir, maxBytes: settings.maxBytes, policy, codec: messageCodec(wrap, messageOf), onStateChange });
}

/**
 * Badge text while a backlog is on disk: three facts in turn, each under 20 characters (the editor
 * cuts longer ones): "disk 1.2M 340MB" (events, bytes), "drain ~12m" (estimate), "dropped 0".
 */
export function diskBadgeText(phase: number, diskEvents: number, backlogBytes: number, drainSeconds: number, dropped: number, t: Translate): string {
  const p = phase % 3;
  if (p === 0) return t('status.disk', { events: compactCount(diskEvents), bytes: formatBytes(backlogBytes) });
  if (p === 1) return t('status.drain', { duration: formatDuration(drainSeconds) });
  return t('status.dropped', { dropped: compactCount(dropped) });
}
