import type { Node, NodeStatus } from './red';

/**
 * Status badges go to every open editor over a websocket; at 100k messages/s one update per
 * message would make the editor the bottleneck. This renders at most once per interval and only
 * sends when the badge actually changed.
 */
export class ThrottledStatus {
  private timer: NodeJS.Timeout | undefined;
  private last = '';

  constructor(private readonly node: Node, private readonly render: () => NodeStatus, intervalMs = 500) {
    this.timer = setInterval(() => this.refresh(), intervalMs);
    this.timer.unref();
  }

  /** Renders now (use for changes of state a user must see at once, such as going down). */
  refresh(): void {
    const status = this.render();
    const key = `${status.fill}|${status.shape}|${status.text}`;
    if (key === this.last) return;
    this.last = key;
    this.node.status(status);
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }
}

/** Compact counts for badges: 999, 12.3k, 4.5M. */
export function compactCount(n: number): string {
  if (n < 1000) return String(n);
  if (n < 1e6) return `${(n / 1e3).toFixed(n < 1e4 ? 1 : 0)}k`;
  return `${(n / 1e6).toFixed(n < 1e7 ? 1 : 0)}M`;
}
