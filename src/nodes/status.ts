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

/** Compact counts for badges (one definition for every node's badge). */
export { compactCount } from '../core/shared/badge-text';
