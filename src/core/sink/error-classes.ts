/**
 * What kind of failure a failed database call is, which decides what the retry loop (retry.ts)
 * does about it. The classes are the sink's states (docs/architecture.md, "Outage versus failure"):
 *
 * - unavailable: the database is not there for us now: the path or the server is down, shutting
 *   down, out of connections or disk, read-only (a replica after a failover), or too slow to answer
 *   (a statement timeout, a frozen server). A state of the connection, not a failure of a batch:
 *   batches wait, one probe retries with a short capped backoff, and nothing is spent of a batch's
 *   attempts however long it lasts. SQLSTATE class 08, 57P01-57P03, class 53, 57014, 25006, socket
 *   errors and node-postgres' connection and read timeouts.
 * - config: retrying as it is cannot help, a person must act: wrong password (class 28), unknown
 *   database (3D000) or schema (3F000), missing privilege, table or column (class 42), a TLS
 *   certificate that does not verify, an unknown host. Batches wait too (nothing is thrown away
 *   while the user fixes it), and the probe retries slowly, so a fix on the server is picked up.
 * - transient: a failure on a reachable database that the next attempt may not meet: deadlock
 *   (40P01), serialization (40001), a commit of unknown outcome (40003), a lock not available
 *   (55P03). Bounded attempts with backoff; then the batch goes to the dead-letter output.
 * - data: something in the rows themselves: class 22 (data exception), class 23 (integrity
 *   constraint), 54000 (an index row too large), 53400 (too many rows to decompress for one
 *   statement), class P0 (a trigger's RAISE), class 44 (a view's check option), and a row-level
 *   security policy's WITH CHECK (42501 like a missing privilege, told apart by the server's
 *   routine; when it refuses every row of a batch, the writer holds the batch as misconfigured).
 *   The batch is bisected so the good rows go in.
 * - permanent: anything else (an internal error, an ended pool): the batch fails at once.
 */
import { wordsOf, type Words } from '../shared/text';

export type ErrorKind = 'unavailable' | 'config' | 'transient' | 'data' | 'permanent';

export interface ErrorClassification {
  kind: ErrorKind;
  /** SQLSTATE, socket error code, or a short made-up code such as 'CONN_TERMINATED'. */
  code: string;
  /** The error's message with any connection password blanked out. */
  message: string;
  /** The message's words in the sink's catalog, where the sink made the error (WriterConfigError). */
  words?: Words;
}

const UNAVAILABLE_SQLSTATES = new Set(['57P01', '57P02', '57P03', '57014', '25006']);
const TRANSIENT_SQLSTATES = new Set(['40001', '40P01', '40003', '55P03']);
const CONFIG_SQLSTATES = new Set(['3D000', '3F000']);
const UNAVAILABLE_SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENETDOWN', 'EHOSTDOWN', 'ECONNABORTED', 'EAI_AGAIN', 'ESOCKETTIMEDOUT']);
const CONFIG_SOCKET_CODES = new Set([
  'ENOTFOUND',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_SIGNATURE_FAILURE',
  'ERR_TLS_CERT_ALTNAME_INVALID'
]);
const UNAVAILABLE_MESSAGES: Array<[RegExp, string]> = [
  [/connection terminated unexpectedly/i, 'CONN_TERMINATED'],
  [/connection terminated due to connection timeout/i, 'CONN_TIMEOUT'],
  [/timeout exceeded when trying to connect/i, 'CONN_TIMEOUT'],
  [/connection timeout/i, 'CONN_TIMEOUT'],
  [/query read timeout/i, 'QUERY_TIMEOUT'],
  [/client has encountered a connection error and is not queryable/i, 'CONN_ERROR'],
  [/server closed the connection unexpectedly/i, 'CONN_TERMINATED']
];
const CONFIG_MESSAGES: Array<[RegExp, string]> = [
  // node-postgres, when the server asks for a password and none is configured.
  [/client password must be a string/i, 'NO_PASSWORD'],
  [/does not support SSL connections/i, 'NO_TLS']
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

/**
 * A row refused by a row-level security policy: SQLSTATE 42501, as a missing privilege, but raised
 * by the check of each new row (the server's routine; its message in English as a fallback).
 */
function refusedByPolicy(err: unknown, code: string): boolean {
  if (code !== '42501' || err === null || typeof err !== 'object') return false;
  const { routine } = err as { routine?: unknown };
  return routine === 'ExecWithCheckOptions' || /violates row-level security policy/.test(errorMessage(err));
}

/** What kind of failure an error is (see the file's comment), with the words it names, if any. */
export function classifyError(err: unknown): ErrorClassification {
  const classification = classifyKind(err);
  const words = wordsOf(err);
  return words ? { ...classification, words } : classification;
}

function classifyKind(err: unknown): ErrorClassification {
  // Node's happy-eyeballs connect reports an AggregateError whose parts carry the socket codes.
  if (err instanceof AggregateError && !errorCode(err) && err.errors.length > 0) {
    const inner = classifyKind(err.errors[0]);
    return { ...inner, message: redactSecrets(errorMessage(err) || inner.message) };
  }
  const code = errorCode(err);
  const message = redactSecrets(errorMessage(err));
  // Checked first: EPIPE has the shape of a SQLSTATE.
  if (code && UNAVAILABLE_SOCKET_CODES.has(code)) return { kind: 'unavailable', code, message };
  if (code && CONFIG_SOCKET_CODES.has(code)) return { kind: 'config', code, message };
  if (code && SQLSTATE.test(code)) {
    const errorClass = code.slice(0, 2);
    // 53400: TimescaleDB refuses to decompress more rows per statement than its limit (late rows into
    // compressed chunks): a smaller batch gets through, so it is bisected like a data error.
    if (code === '53400') return { kind: 'data', code, message };
    if (errorClass === '08' || errorClass === '53' || UNAVAILABLE_SQLSTATES.has(code)) return { kind: 'unavailable', code, message };
    if (TRANSIENT_SQLSTATES.has(code)) return { kind: 'transient', code, message };
    if (errorClass === '22' || errorClass === '23' || errorClass === 'P0' || errorClass === '44' || code === '54000' || refusedByPolicy(err, code)) return { kind: 'data', code, message };
    if (errorClass === '28' || errorClass === '42' || CONFIG_SQLSTATES.has(code)) return { kind: 'config', code, message };
    return { kind: 'permanent', code, message };
  }
  for (const [pattern, madeUpCode] of UNAVAILABLE_MESSAGES) {
    if (pattern.test(message)) return { kind: 'unavailable', code: code ?? madeUpCode, message };
  }
  for (const [pattern, madeUpCode] of CONFIG_MESSAGES) {
    if (pattern.test(message)) return { kind: 'config', code: code ?? madeUpCode, message };
  }
  return { kind: 'permanent', code: code ?? 'UNKNOWN', message };
}

/** Raised when a wait or a write is abandoned through its AbortSignal. */
export class AbortedError extends Error {
  constructor(message = 'aborted') {
    super(message);
    this.name = 'AbortedError';
  }
}
