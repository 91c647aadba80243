/**
 * Numbers as a node's status badge shows them: short, because the editor cuts a badge longer than
 * about 20 characters.
 */

/** Compact counts: 999, 12.3k, 4.5M, 123M, 1.2G. */
export function compactCount(n: number): string {
  if (n < 1000) return String(n);
  if (n < 1e6) return `${(n / 1e3).toFixed(n < 1e4 ? 1 : 0)}k`;
  if (n < 1e9) return `${(n / 1e6).toFixed(n < 1e7 ? 1 : 0)}M`;
  return `${(n / 1e9).toFixed(1)}G`;
}

/** Bytes: 512B, 12kB, 340MB, 1.5GB. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n}B`;
  if (n < 1024 * 1024) return `${Math.round(n / 1024)}kB`;
  if (n < 1024 * 1024 * 1024) return `${Math.round(n / 1024 / 1024)}MB`;
  return `${(n / 1024 / 1024 / 1024).toFixed(1)}GB`;
}

/** A duration in seconds: 45s, 12m, 3.5h, 12d; '?' when unknown (Infinity). */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  if (seconds < 60) return `${Math.ceil(seconds)}s`;
  if (seconds < 3600) return `${Math.round(seconds / 60)}m`;
  if (seconds < 86400 * 10) return `${(seconds / 3600).toFixed(1)}h`;
  return `${Math.round(seconds / 86400)}d`;
}
