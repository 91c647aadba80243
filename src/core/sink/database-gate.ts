import { AbortedError, type ErrorClassification } from './error-classes';

export type GateState = 'up' | 'down' | 'misconfigured';

/**
 * The database as the writes see it. While it is down or misconfigured, one write (the probe) keeps
 * retrying its own statement with a capped backoff and every other write waits here instead of
 * spending its attempts; when the probe gets through they all go at once. So an outage of any length
 * costs no batch anything, and a returning database is written to within one probe interval.
 * docs/architecture.md, "Outage versus failure".
 */
export class DatabaseGate {
  private current: GateState = 'up';
  private reason: ErrorClassification | undefined;
  private probe: object | undefined;
  private waiters: Array<() => void> = [];
  /** Epoch ms at which the present state began (for a closed gate: the first failure). */
  since: number;

  constructor(now: number) {
    this.since = now;
  }

  get state(): GateState {
    return this.current;
  }

  /** Why the gate is closed (undefined while up). */
  get cause(): ErrorClassification | undefined {
    return this.reason;
  }

  /** Writes waiting for the probe. */
  get waiting(): number {
    return this.waiters.length;
  }

  /**
   * Resolves when `who` may send a statement: the database is up, or `who` is (or now becomes) the
   * probe. Rejects with AbortedError when `signal` aborts first.
   */
  async pass(who: object, signal?: AbortSignal): Promise<void> {
    while (this.current !== 'up' && this.probe !== who) {
      if (this.probe === undefined) {
        this.probe = who;
        return;
      }
      await this.change(signal);
    }
  }

  /**
   * `who` found the database down or misconfigured: the gate closes and `who` probes unless another
   * write already does. Returns whether the state or its reason changed (worth one log line).
   */
  close(who: object, state: Exclude<GateState, 'up'>, cause: ErrorClassification, now: number): boolean {
    if (this.probe === undefined) this.probe = who;
    const changed = state !== this.current || cause.code !== this.reason?.code;
    if (this.current === 'up') this.since = now;
    this.current = state;
    this.reason = cause;
    return changed;
  }

  /** A statement went through: the database is up. Returns whether it was not before. */
  open(now: number): boolean {
    this.probe = undefined;
    if (this.current === 'up') return false;
    this.current = 'up';
    this.reason = undefined;
    this.since = now;
    this.wake();
    return true;
  }

  /** Whether `who` is the write that probes for everyone. */
  probing(who: object): boolean {
    return this.probe === who;
  }

  /** `who` is finished (written, failed for good, or aborted): if it was the probe, a waiting write takes over. */
  leave(who: object): void {
    if (this.probe !== who) return;
    this.probe = undefined;
    this.wake();
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  private change(signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) {
        reject(new AbortedError());
        return;
      }
      const onAbort = (): void => {
        this.waiters = this.waiters.filter((w) => w !== wake);
        reject(new AbortedError());
      };
      const wake = (): void => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      this.waiters.push(wake);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}
