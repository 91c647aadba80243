/**
 * What setting up the table reports: one TableNotice per thing an operator should know (a refused
 * policy, a key that merges readings, a column that rounds), and the state of each policy. The
 * rows are written regardless: only a table they cannot go into stops them (WriterConfigError).
 */
import { classifyError } from './error-classes';
import type { SchemaMode } from './table-spec';

export type TableNoticeCode =
  | 'HYPERTABLE_REFUSED'
  | 'CHUNK_INTERVAL_REFUSED'
  | 'CHUNK_INTERVAL_DIFFERS'
  | 'COMPRESSION_REFUSED'
  | 'COMPRESSION_DIFFERS'
  | 'RETENTION_REFUSED'
  | 'RETENTION_DIFFERS'
  | 'NO_TIMESCALEDB'
  | 'NO_UNIQUE_KEY'
  | 'KEY_MERGES_READINGS'
  | 'SEQ_INTEGER'
  | 'VALUE_ROUNDED'
  | 'TIME_WITHOUT_ZONE';

/** One thing about the table an operator should know; the rows are written regardless. */
export interface TableNotice {
  code: TableNoticeCode;
  /** What was refused or found, e.g. 'compression (compress after 7 days) of "public"."telemetry"'. */
  subject: string;
  /** Why: the server's answer with its SQLSTATE, or what the catalog shows. */
  reason: string;
  /** What to do about it (often the exact statement to run). */
  action: string;
  /** The SQLSTATE of a refusal. */
  sqlstate?: string;
  /** `${subject}: ${reason}. ${action}`, one line for the log. */
  message: string;
}

/**
 * off: the sink does not manage it (empty field, or existing mode). applied: set by this prepare().
 * present: the table already had it as configured. differs: the table has another value, which is
 * kept and reported. refused: the server refused to set it. unavailable: no TimescaleDB or no hypertable.
 */
export type PolicyStatus = 'off' | 'applied' | 'present' | 'differs' | 'refused' | 'unavailable';

export interface PolicyReport {
  /** The configured interval (null: none). */
  configured: string | null;
  /** What the table has after prepare() (null: none or unknown). */
  actual: string | null;
  status: PolicyStatus;
}

export interface PrepareResult {
  mode: SchemaMode;
  /** Installed timescaledb version, or null on plain PostgreSQL. */
  timescaledb: string | null;
  hypertable: boolean;
  /** A unique index on written columns only exists: a resent row conflicts instead of being stored twice. */
  idempotent: boolean;
  /**
   * Some unique index leaves out the source, time or sequence column, so two different readings
   * that share what it covers are stored as one row (the second counted as a duplicate).
   */
  mergesReadings: boolean;
  /** The unique indexes that make writes idempotent (names and key columns). */
  keys: Array<{ name: string; columns: string[] }>;
  policies: { chunkInterval: PolicyReport; compressAfter: PolicyReport; retention: PolicyReport };
  notices: TableNotice[];
  /** notices[i].message: one line each, for the node to log once. */
  warnings: string[];
}

/** The notices of one prepare(), each with its one-line message for the log. */
export class TableNotices {
  readonly list: TableNotice[] = [];

  add(code: TableNoticeCode, subject: string, reason: string, action: string, sqlstate?: string): void {
    this.list.push({ code, subject, reason, action, ...(sqlstate ? { sqlstate } : {}), message: `${subject}: ${reason}. ${action}` });
  }

  /** A refusal becomes a notice; an unreachable server still fails prepare() so the sink tries again. */
  refusal(err: unknown): { sqlstate: string; reason: string } {
    const info = classifyError(err);
    if (info.kind === 'unavailable' || info.kind === 'transient') throw err;
    return { sqlstate: info.code, reason: `refused (${info.code}: ${info.message})` };
  }
}
