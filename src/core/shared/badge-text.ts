/**
 * Numbers as a node's status badge shows them: short, because a badge is read at a glance beside
 * the node and takes at most BADGE_MAX_LENGTH characters in every language.
 */

/** The longest badge text, in characters: longer ones overlap the next node on the canvas. */
export const BADGE_MAX_LENGTH = 20;

/** Compact counts, at most 4 characters: 999, 9.9k, 12k, 4.5M, 123M, 1.2G. */
export function compactCount(n: number): string {
  if (n < 1000) return String(n);
  for (const [size, suffix] of [[1e3, 'k'], [1e6, 'M']] as const) {
    const x = n / size;
    // 9.96k rounds to 10k (not "10.0k"), 999.6k to 1.0M (not "1000k").
    if (x < 9.95) return `${x.toFixed(1)}${suffix}`;
    if (x < 999.5) return `${Math.round(x)}${suffix}`;
  }
  const g = n / 1e9;
  return g < 9.95 ? `${g.toFixed(1)}G` : `${Math.round(g)}G`;
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
