/** The contract between timescale-connection and the nodes that use its pool. */
import type { Queryable } from '../core/sink/table-spec';

/** What a sink writes through: a pg.Pool, or a FailoverPool for a host list. */
export type DatabasePool = Queryable;

/** What timescale-connection offers to the nodes that use it. */
export interface TimescaleConnectionApi {
  /** Registers `userId` as a user of the pool and returns it; throws when the configuration is unusable. */
  acquire(userId: string): DatabasePool;
  /** The user has finished with the pool (its writes are over); the pool ends after the last release. */
  release(userId: string): void;
  /** Pool size (max connections). */
  readonly poolSize: number;
  /** `host:port/database` (hosts comma-separated) for messages: never the user's password. */
  readonly label: string;
  /** `host:port` written to now: with a host list the one that accepts writes ('' before the first connection). */
  readonly host: string;
  /** Replaces any occurrence of the password in `text` (defence in depth for log lines and errors). */
  redact(text: string): string;
}

/** Node-RED's close timeout in ms (15 s unless settings.nodeCloseTimeout changes it). */
export function nodeCloseTimeout(settings: Record<string, unknown> | undefined): number {
  const value = settings?.nodeCloseTimeout;
  return typeof value === 'number' && value > 0 ? value : 15000;
}
