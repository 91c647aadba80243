/**
 * Recognises what an MQTT broker sends a second time after a deploy. With QoS 1 and a persistent
 * session a deploy loses nothing, but the readings the old connection had taken and not yet
 * acknowledged when it closed come again when the new one connects (npm test, test/mqtt-deploy:
 * hundreds per deploy at 2,000 messages/s). Readings that carry a sequence number of their own are
 * skipped by the table's key; these would be stored twice.
 *
 * So for `windowMs` after a deploy, a QoS 1/2 message identical (topic, payload, timestamp) to one
 * taken in during the `lookbackMs` before the deploy or since it is a re-send: counted and not
 * stored. Outside that window nothing is compared, so identical readings sent on purpose (an event
 * counter) stay readings; only one sent again within that window could be taken for a re-send.
 */
export class ResendGuard {
  /** Fingerprints taken in lately, oldest first, with when (epoch ms). */
  private recent = new Map<string, number>();
  private armed: Set<string> | undefined;
  private armedUntil = 0;

  constructor(
    private readonly lookbackMs = 5_000,
    private readonly windowMs = 30_000,
    private readonly limit = 50_000
  ) {}

  /** The identity of a message an MQTT broker may send again (QoS 1 or 2), else undefined. */
  static fingerprint(msg: { topic?: unknown; payload?: unknown; timestamp?: unknown; qos?: unknown }): string | undefined {
    if (msg.qos !== 1 && msg.qos !== 2) return undefined;
    try {
      return `${String(msg.topic)}\u0000${String(msg.timestamp ?? '')}\u0000${typeof msg.payload === 'string' ? msg.payload : JSON.stringify(msg.payload)}`;
    } catch {
      return undefined; // a payload JSON cannot write: never a duplicate
    }
  }

  /** True when `fingerprint` is a re-send of something taken in before the deploy; otherwise remembers it. */
  check(fingerprint: string, now: number): boolean {
    if (this.armed !== undefined) {
      if (now > this.armedUntil) this.armed = undefined;
      else {
        // A broker may send the same message more than once (each session takeover while the old
        // and the new connection trade places sends again what it had not seen acknowledged):
        // every copy within the window is a re-send, of what came before the deploy or since.
        if (this.armed.has(fingerprint)) return true;
        this.armed.add(fingerprint);
      }
    }
    this.recent.delete(fingerprint);
    this.recent.set(fingerprint, now);
    if (this.recent.size > this.limit) this.recent.delete(this.recent.keys().next().value as string);
    return false;
  }

  /** What was taken in during the lookback before `now`, to carry over a restart. */
  lately(now: number): string[] {
    const out: string[] = [];
    for (const [fingerprint, at] of this.recent) if (now - at <= this.lookbackMs) out.push(fingerprint);
    return out;
  }

  /** A deploy just finished: compare what comes for a while with what came just before it (`lately`). */
  arm(lately: readonly string[], now: number): void {
    if (lately.length === 0) return;
    this.armed = new Set(lately);
    this.armedUntil = now + this.windowMs;
    this.recent.clear();
  }
}
