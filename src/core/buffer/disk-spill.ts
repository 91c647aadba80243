import * as path from 'path';
import { DiskCodec, DiskTier, DiskState } from './disk-tier';
import type { DropPolicy } from './ring-buffer';
import { mayNameRiskyKeys, packMessage, unpackMessage } from './message-codec';

/** The disk tier's settings, in the units the code uses. */
export interface DiskSpillOptions {
  enabled: boolean;
  maxBytes: number;
  /** 0: fsync after every write. */
  fsyncIntervalMs: number;
  replayRate: number;
  /** 0: spill only when the ring is full. */
  spillAfterMs: number;
}

/** The disk tier's settings from the node's options as read (readOptions of src/options/telemetry-buffer.ts). */
export function diskTierSettings(o: { diskSpill: boolean; diskMaxMB: number; fsyncInterval: number; replayRate: number; spillAfter: number }): DiskSpillOptions {
  return {
    enabled: o.diskSpill,
    maxBytes: Math.round(o.diskMaxMB * 1024 * 1024),
    fsyncIntervalMs: o.fsyncInterval * 1000,
    replayRate: o.replayRate,
    spillAfterMs: o.spillAfter * 1000,
  };
}

/** The directory of one node's disk tier, beside its shutdown spool file. */
export function diskDirFor(spoolDir: string, nodeId: string): string {
  return path.join(spoolDir, `${nodeId.replace(/[^A-Za-z0-9_.-]/g, '_')}.disk`);
}

/**
 * Node-RED messages as disk records (MessagePack, see message-codec.ts). Each chunk read back is
 * screened once for the keys a decoder must strip, so a record pays for that only when its chunk
 * names one.
 */
export function messageCodec<H extends { msg: Record<string, unknown> }>(wrap: (msg: Record<string, unknown>) => H, messageOf: (held: H) => Record<string, unknown> = (held) => held.msg): DiskCodec<H> {
  return {
    encode: (held) => packMessage(messageOf(held)),
    decode: (payload, _weight, screened) => wrap(unpackMessage(payload, screened)),
    decodeRange: (chunk, start, end, _weight, screened) => wrap(unpackMessage(chunk, screened, start, end)),
    screen: (chunk) => !mayNameRiskyKeys(chunk),
  };
}

export function openDiskTier<H extends { msg: Record<string, unknown> }>(
  dir: string,
  o: DiskSpillOptions,
  policy: DropPolicy,
  wrap: (msg: Record<string, unknown>) => H,
  onStateChange?: (error: Error | undefined) => void,
  messageOf?: (held: H) => Record<string, unknown>,
): DiskTier<H> {
  return new DiskTier<H>({ dir, maxBytes: o.maxBytes, policy, codec: messageCodec(wrap, messageOf), onStateChange });
}

/**
 * Sequence numbers to continue from after the previous run. After a clean close the saved numbers
 * are exact. After a crash (SIGKILL, power loss) they are as of the last sync, and events stamped
 * since may have reached the database: skip ahead by four sync intervals' worth per source, so a
 * number is never used twice and what the crash lost shows as a gap.
 */
export function sequencesAfter(state: DiskState | undefined): Record<string, number> {
  if (state?.sequences === undefined) return {};
  const out: Record<string, number> = {};
  for (const [source, next] of Object.entries(state.sequences)) {
    out[source] = state.clean === true ? next : next + 4 * (state.sequenceStep?.[source] ?? 0) + 1000;
  }
  return out;
}

/**
 * Badge text while a backlog is on disk: three facts in turn, each under 20 characters (the editor
 * cuts longer ones): "disk 1.2M 340MB" (events, bytes), "drain ~12m" (estimate), "dropped 0".
 */
export function diskBadgeText(phase: number, diskEvents: number, backlogBytes: number, drainSeconds: number, dropped: number): string {
  const p = phase % 3;
  if (p === 0) return `disk ${compactCount(diskEvents)} ${formatBytes(backlogBytes)}`;
  if (p === 1) return `drain ~${formatDuration(drainSeconds)}`;
  return `dropped ${compactCount(dropped)}`;
}

/** Compact counts: 999, 12.3k, 4.5M, 123M, 1.2G. */
export function compactCount(n: number): string {
  if (n < 1000) return String(n);
  if (n < 1e6) return `${(n / 1e3).toFixed(n < 1e4 ? 1 : 0)}k`;
  if (n < 1e9) return `${(n / 1e6).toFixed(n < 1e7 ? 1 : 0)}M`;
  return `${(n / 1e9).toFixed(1)}G`;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n}B`;
  if (n < 1024 * 1024) return `${Math.round(n / 1024)}kB`;
  if (n < 1024 * 1024 * 1024) return `${Math.round(n / 1024 / 1024)}MB`;
  return `${(n / 1024 / 1024 / 1024).toFixed(1)}GB`;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  if (seconds < 60) return `${Math.ceil(seconds)}s`;
  if (seconds < 3600) return `${Math.round(seconds / 60)}m`;
  if (seconds < 86400 * 10) return `${(seconds / 3600).toFixed(1)}h`;
  return `${Math.round(seconds / 86400)}d`;
}
