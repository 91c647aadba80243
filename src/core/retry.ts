/**
 * What to do about a failed database call, and how long to wait before trying again.
 *
 * Classes:
 * - retryable: the server or the path to it is (probably) only temporarily unavailable or busy:
 *   SQLSTATE class 08 (connection exception), 57P01/57P02/57P03 (admin/crash shutdown, cannot
 *   connect now), class 53 (insufficient resources: too many connections, disk full, out of
 *   memory), 40001 (serialization failure), 40P01 (deadlock), 57014 (statement timeout or cancel),
 *   and socket-level failures (ECONNREFUSED, ECONNRESET, EPIPE, ETIMEDOUT, EHOSTUNREACH, ...,
 *   "Connection terminated unexpectedly", connection and query read timeouts). The same rows are
 *   sent again; the unique (source, time, seq) key makes that safe even when the first attempt
 *   did commit.
 * - data: something in the rows themselves: class 22 (data exception: out of range, invalid
 *   text, NUL characters) and class 23 (integrity constraint: NOT NULL, CHECK, foreign key), plus
 *   54000 (an index row too large, caused by one oversized value). The batch is bisected so
 *   the good rows are written and each bad row is rejected with the database's message.
 * - schema: class 42 (syntax error or access rule violation: missing table or column, type
 *   mismatch, no privilege). These are properties of the statement and the table, never of a row:
 *   every row of every batch fails the same way, so bisecting would cost about 2N statements to
 *   reject all N rows one by one. The whole batch fails at once, without retries, and the error
 *   goes to the operator (a Catch node), because only a change to the table or grants fixes it.
 * - permanent: everything else (authentication failure, unknown database, internal errors, a
 *   pool that was ended). Retrying cannot help, so the batch fails at once.
 */

export type ErrorKind = 'retryable' | 'data' | 'schema' | 'permanent';

export interface ErrorClassification {
  kind: ErrorKind;
  /** SQLSTATE, socket error code, or a short made-up code such as 'CONN_TERMINATED'. */
  code: string;
  /** The error's message with any connection password blanked out. */
  message: string;
}

const RETRYABLE_SQLSTATES = new Set(['57P01', '57P02', '57P03', '40001', '40P01', '57014']);
const RETRYABLE_SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENETDOWN', 'ECONNABORTED', 'EAI_AGAIN', 'ESOCKETTIMEDOUT']);
const RETRYABLE_MESSAGES: Array<[RegExp, string]> = [
  [/connection terminated unexpectedly/i, 'CONN_TERMINATED'],
  [/connection terminated due to connection timeout/i, 'CONN_TIMEOUT'],
  [/timeout exceeded when trying to connect/i, 'CONN_TIMEOUT'],
  [/connection timeout/i, 'CONN_TIMEOUT'],
  [/query read timeout/i, 'QUERY_TIMEOUT'],
  [/client has encountered a connection error and is not queryable/i, 'CONN_ERROR'],
  [/server closed the connection unexpectedly/i, 'CONN_TERMINATED']
];
const SQLSTATE = /^[0-9A-Z]{5}$/;

/**
 * Blanks out passwords that a connection string or key/value DSN might carry into a message.
 */
export function redactSecrets(text: string): string {
  return text
    .replace(/(\b[a-z][a-z0-9+.-]*:\/\/[^:/?#@\s]*:)[^@\s]*@/gi, '$1***@')
    .replace(/(password\s*[=:]\s*)("[^"]*"|'[^']*'|\S+)/gi, '$1***');
}

function errorCode(err: unknown): string | undefined {
  if (err && typeof err === 'object' && 'code' in err) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string' && code) return code;
  }
  return undefined;
}

function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message || err.name;
  if (err && typeof err === 'object' && 'message' in err) return String((err as { message?: unknown }).message);
  return String(err);
}

export function classifyError(err: unknown): ErrorClassification {
  // Node's happy-eyeballs connect reports an AggregateError whose parts carry the socket codes.
  if (err instanceof AggregateError && !errorCode(err) && err.errors.length > 0) {
    const inner = classifyError(err.errors[0]);
    return { ...inner, message: redactSecrets(errorMessage(err) || inner.message) };
  }
  const code = errorCode(err);
  const message = redactSecrets(errorMessage(err));
  // Checked first: EPIPE has the shape of a SQLSTATE.
  if (code && RETRYABLE_SOCKET_CODES.has(code)) return { kind: 'retryable', code, message };
  if (code && SQLSTATE.test(code)) {
    const errorClass = code.slice(0, 2);
    if (errorClass === '08' || errorClass === '53' || RETRYABLE_SQLSTATES.has(code)) return { kind: 'retryable', code, message };
    if (errorClass === '22' || errorClass === '23' || code === '54000') return { kind: 'data', code, message };
    if (errorClass === '42') return { kind: 'schema', code, message };
    return { kind: 'permanent', code, message };
  }
  for (const [pattern, madeUpCode] of RETRYABLE_MESSAGES) {
    if (pattern.test(message)) return { kind: 'retryable', code: code ?? madeUpCode, message };
  }
  return { kind: 'permanent', code: code ?? 'UNKNOWN', message };
}

export interface BackoffOptions {
  /** Attempts in total, the first one included. Default 10. */
  maxAttempts?: number;
  /** Upper bound of the first wait. Default 500 ms. */
  initialDelayMs?: number;
  /** No wait is longer than this. Default 30 s. */
  maxDelayMs?: number;
}

export type ResolvedBackoffOptions = Required<BackoffOptions>;

export const DEFAULT_BACKOFF: ResolvedBackoffOptions = { maxAttempts: 10, initialDelayMs: 500, maxDelayMs: 30000 };

export function resolveBackoffOptions(options: BackoffOptions = {}): ResolvedBackoffOptions {
  const resolved = { ...DEFAULT_BACKOFF };
  for (const key of Object.keys(DEFAULT_BACKOFF) as Array<keyof BackoffOptions>) {
    const value = options[key];
    if (value === undefined) continue;
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) throw new Error(`retry option ${key} must be a non-negative number`);
    resolved[key] = value;
  }
  resolved.maxAttempts = Math.max(1, Math.floor(resolved.maxAttempts));
  if (resolved.maxDelayMs < resolved.initialDelayMs) resolved.maxDelayMs = resolved.initialDelayMs;
  return resolved;
}

/**
 * The wait before retry number `retry` (1 = the wait after the first failed attempt): full jitter,
 * i.e. uniform in [0, min(maxDelayMs, initialDelayMs * 2^(retry-1))). Full jitter spreads the
 * retries of many gateways that lost the same server, so they do not all reconnect at once.
 */
export function backoffDelay(retry: number, options: ResolvedBackoffOptions, random: () => number = Math.random): number {
  const exponent = Math.min(Math.max(retry - 1, 0), 52);
  const ceiling = Math.min(options.maxDelayMs, options.initialDelayMs * 2 ** exponent);
  const r = random();
  const unit = Number.isFinite(r) ? Math.min(Math.max(r, 0), 1) : 0;
  return Math.floor(unit * ceiling);
}

/** Raised when a wait or a write is abandoned through its AbortSignal. */
export class AbortedError extends Error {
  constructor(message = 'aborted') {
    super(message);
    this.name = 'AbortedError';
  }
}

export type Sleep = (ms: number, signal?: AbortSignal) => Promise<void>;

/** setTimeout as a promise that an AbortSignal cuts short (rejecting with AbortedError). */
export const sleep: Sleep = (ms, signal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) {
      reject(new AbortedError());
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(new AbortedError());
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
