/**
 * What setting up the table reports: one TableNotice per thing an operator should know (a refused
 * policy, a key that merges readings, a column that rounds), and the state of each policy. The
 * rows are written regardless: only a table they cannot go into stops them (WriterConfigError).
 */
import { classifyError } from './error-classes';
import { say, type Translate, type Words } from '../shared/text';
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
  /** `${subject}: ${reason}. ${action}`, one line for the log, in English. */
  message: string;
  /** The same line as words of the sink's catalog (notice.*), for the node to log in the user's language. */
  words: Words;
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

/**
 * The English of every notice, as the "notice" section of the sink's en-US catalog holds it word for
 * word (test/i18n.test.ts compares them): the English message of the stats and the API is made
 * here, without Node-RED; the node logs the catalog's text in the user's language. A field is named
 * by its label (.label.<key>).
 */
export const NOTICE_ENGLISH = {
  line: '__subject__: __reason__. __action__',
  refused: 'refused (__sqlstate__: __error__)',
  advice: {
    '0A000': 'The Apache-2 edition of TimescaleDB has no compression or retention policies (they need the Timescale License edition); clear "__field__" to silence this',
    '42501': "Only the table's owner may set it: connect as the owner once, or have it set by an administrator; clear \"__field__\" to silence this",
    other: 'Check "__field__", or clear it'
  },
  HYPERTABLE_REFUSED: {
    subject: '__table__ stays a plain PostgreSQL table',
    reason: 'create_hypertable was __refusal__',
    action: "The rows are written to the plain table, without chunks, compression or retention. To make it a hypertable, have the table's owner run: __sql__"
  },
  CHUNK_INTERVAL_REFUSED: {
    subject: 'chunk interval __interval__ of __table__',
    action: "The hypertable was made with TimescaleDB's default chunk interval; set one the server accepts, e.g. \"1 day\""
  },
  CHUNK_INTERVAL_DIFFERS: {
    subject: '__table__ has a chunk interval of __actual__, configured __configured__',
    reason: 'an existing hypertable keeps its own chunk interval',
    action: 'To use the configured one for new chunks, run: __sql__; or set "__field__" to __actual__'
  },
  COMPRESSION_REFUSED: {
    subject: 'compression after __interval__ of __table__',
    action: 'The rows are written uncompressed. __advice__'
  },
  COMPRESSION_DIFFERS: {
    subject: '__table__ compresses chunks after __actual__, configured __configured__',
    reason: 'an existing policy is kept as it is',
    action: 'To use the configured one, run: __sql__; or set "__field__" to __actual__'
  },
  RETENTION_REFUSED: {
    subject: 'retention (drop after __interval__) of __table__',
    action: 'The rows are written and kept. __advice__'
  },
  RETENTION_DIFFERS: {
    subject: '__table__ drops chunks after __actual__, configured __configured__',
    reason: 'an existing policy is kept as it is (changing it could delete data at once)',
    action: 'To use the configured one, run: __sql__; or set "__field__" to __actual__'
  },
  NO_TIMESCALEDB: {
    subject: 'compression and retention of __table__',
    reason: 'this database has no timescaledb extension',
    action: 'The rows are written to a plain table and nothing is compressed or dropped; install TimescaleDB (CREATE EXTENSION timescaledb) or clear "__compressField__" and "__dropField__"'
  },
  NO_UNIQUE_KEY: {
    subject: 'table __table__ has no unique index on written columns only',
    reason: 'a batch retried after an ambiguous failure (committed, but the answer lost) can be stored twice',
    reasonRefused: 'creating one was __refusal__; a batch retried after an ambiguous failure (committed, but the answer lost) can be stored twice',
    action: "Have the table's owner run: CREATE UNIQUE INDEX ON __table__ (__columns__)"
  },
  KEY_MERGES_READINGS: {
    subject: 'the unique index __index__ on __table__ (__columns__)',
    reasonNoSeq: 'the table has no sequence column, so two different readings of a source that share __columns__ are stored as one row and the second is counted as a duplicate',
    reasonLeavesOut: 'it leaves out __missing__, so two different readings of a source that share __columns__ are stored as one row and the second is counted as a duplicate',
    actionNoSeq: 'Add a bigint sequence column, map it, and include it in the key',
    action: 'Make the key (__key__)'
  },
  SEQ_INTEGER: {
    subject: 'column __column__ of __table__ is integer',
    reason: 'sequence numbers count every reading of a source and pass 2,147,483,647 after 68 years at one reading a second but 25 days at 1,000; from then on every row of that source is refused as out of range',
    action: 'Run __sql__'
  },
  VALUE_ROUNDED: {
    subject: 'column __column__ of __table__ is __type__',
    reason: 'readings are rounded to whole numbers (21.5 is stored as 22)',
    action: 'If readings have decimals, run __sql__'
  },
  TIME_WITHOUT_ZONE: {
    subject: 'column __column__ of __table__ is timestamp without time zone',
    reason: "times are stored in the session's time zone and lose their offset",
    action: 'Prefer timestamptz: __sql__'
  }
} as const;

/** The English of notice words (NOTICE_ENGLISH; a field's label falls back to its English name). */
export const noticeEnglish: Translate = (key, params = {}) => {
  let at: unknown = { notice: NOTICE_ENGLISH };
  for (const part of key.split('.')) at = at !== null && typeof at === 'object' ? (at as Record<string, unknown>)[part] : undefined;
  if (typeof at !== 'string') return key;
  return at.replace(/__([A-Za-z0-9_]+)__/g, (whole, name: string) => (name in params ? String(params[name]) : whole));
};

/** A refusal by the server: its SQLSTATE, and the reason as words ("refused (0A000: ...)"). */
export interface Refusal {
  sqlstate: string;
  words: Words;
}

/** The notices of one prepare(), each with its one-line message for the log. */
export class TableNotices {
  readonly list: TableNotice[] = [];

  /** One notice: its subject, reason and action as words of the "notice" section (notice.<code>.<part>). */
  add(code: TableNoticeCode, parts: { subject: Words; reason: Words; action: Words }, sqlstate?: string): void {
    const [subject, reason, action] = [parts.subject, parts.reason, parts.action].map((words) => say(words, noticeEnglish));
    const words: Words = { key: 'notice.line', params: parts };
    this.list.push({ code, subject, reason, action, ...(sqlstate ? { sqlstate } : {}), message: say(words, noticeEnglish), words });
  }

  /** A refusal becomes a notice; an unreachable server still fails prepare() so the sink tries again. */
  refusal(err: unknown): Refusal {
    const info = classifyError(err);
    if (info.kind === 'unavailable' || info.kind === 'transient') throw err;
    return { sqlstate: info.code, words: { key: 'notice.refused', params: { sqlstate: info.code, error: info.message } } };
  }
}
