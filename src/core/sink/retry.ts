/**
 * The sink's one retry loop, and the one place its waits are computed. Every statement (creating or
 * checking the table, each INSERT) goes through RetryLoop.run(), which decides by the class of the
 * error (error-classes.ts; docs/architecture.md, "Outage versus failure"):
 * - unavailable or misconfigured: the database gate (database-gate.ts) closes; one write probes
 *   for everyone with probeDelay(), the others wait; nothing is spent of a batch's attempts.
 * - transient: bounded attempts with backoffDelay(), then WriteFailedError (dead letter).
 * - data: DataRowsError, for the writer to bisect the batch.
 * - anything else: WriteFailedError at once.
 * The loop reports the writer's state ('up', 'retrying', 'down', 'misconfigured') once per change.
 */
import { DatabaseGate } from './database-gate';
import { AbortedError, classifyError, type ErrorClassification, type ErrorKind } from './error-classes';
import { WriterConfigError } from './table-spec';
import type { Words } from '../shared/text';
import { OPTIONS } from '../../options/timescale-sink';
import type { RejectedRecord } from './timescale-writer';

/**
 * up: statements go through. retrying: a batch retries a transient failure on a reachable database
 * (deadlock, serialization), with bounded attempts. down: the database is not there (refused, reset,
 * timed out, shutting down, read-only, full); misconfigured: a person must act (password, database,
 * privilege, table). While down or misconfigured every batch waits and one probe retries.
 */
export type WriterStateName = 'up' | 'retrying' | 'down' | 'misconfigured';

/** Emitted as 'state' once per change (and per change of reason), so a node logs one line per outage, not one per retry. */
export interface WriterState {
  state: WriterStateName;
  previous: WriterStateName | 'unknown';
  /** The failed attempt that caused the change (0 for 'up'). */
  attempt: number;
  maxAttempts: number;
  code?: string;
  message?: string;
  /** The message's words in the sink's catalog, when the sink made the error (a table that does not fit). */
  words?: Words;
  /** Epoch ms at which this state began: for down and misconfigured, the first failure. */
  since: number;
}

export type WriterStateChange = WriterState;

/**
 * Emitted as 'retry' before each wait: for a status badge ("retry 3/10 40P01") and the retries
 * counter, not for logs. While the database is down or misconfigured, the probe's attempts have no
 * bound (maxAttempts Infinity).
 */
export interface WriterRetryEvent {
  attempt: number;
  maxAttempts: number;
  delayMs: number;
  code: string;
  message: string;
}

/** A batch that could not be written: retries exhausted, a permanent or schema error, or aborted. */
export class WriteFailedError extends Error {
  readonly code: string;
  readonly kind: ErrorKind | 'aborted';
  readonly attempts: number;
  readonly causeMessage: string;
  /** The message as words of the sink's catalog (log.writeFailed...), for done(err) in the user's language. */
  readonly words: Words;
  /** Rows of this batch already inserted before the failure (they are safe to send again). */
  readonly written: number;
  /** Rows already rejected before the failure. */
  readonly rejected: RejectedRecord[];

  constructor(classification: Omit<ErrorClassification, 'kind'> & { kind: ErrorKind | 'aborted' }, attempts: number, written = 0, rejected: RejectedRecord[] = []) {
    const after = classification.kind === 'transient' ? ` after ${attempts} attempt${attempts === 1 ? '' : 's'}` : '';
    super(`write failed${after}: ${classification.code}: ${classification.message}`);
    const cause = classification.words ?? classification.message;
    this.words = { key: classification.kind !== 'transient' ? 'log.writeFailed' : attempts === 1 ? 'log.writeFailedAfterOne' : 'log.writeFailedAfter', params: { attempts, code: classification.code, error: cause } };
    this.name = 'WriteFailedError';
    this.code = classification.code;
    this.kind = classification.kind;
    this.attempts = attempts;
    this.causeMessage = classification.message;
    this.written = written;
    this.rejected = rejected;
  }
}

/** The database refused these rows (class 22/23...): the writer bisects the batch. */
export class DataRowsError extends Error {
  constructor(readonly classification: ErrorClassification) {
    super(classification.message);
  }
}

/** One run() of the loop: the statement's attempts so far and what the rows met. */
export interface WriteContext {
  signal?: AbortSignal;
  retries: number;
  statements: number;
  written: number;
  rejected: RejectedRecord[];
  reprepared: boolean;
  /** Send the ON CONFLICT DO NOTHING form: the rows may already be in the table. */
  mayConflict: boolean;
  /**
   * A row-level security policy refused every row of this batch: the table takes none from this
   * role, which a person must fix. Such a refusal then holds the batch (misconfigured) instead of
   * rejecting its rows.
   */
  policyRefusesAll?: boolean;
}

/** What a row-level security policy refuses a row with (as a missing privilege): see error-classes.ts. */
export const POLICY_REFUSAL = '42501';

/** SQLSTATEs a plain INSERT fails with where ON CONFLICT DO NOTHING would skip the row instead. */
const CONFLICT_CODES = new Set(['23505', '23P01']);

/** Defaults: DEFAULT_BACKOFF. */
export interface BackoffOptions {
  /** Attempts in total, the first one included. */
  maxAttempts?: number;
  /** Upper bound of the first wait. */
  initialDelayMs?: number;
  /** No wait is longer than this. */
  maxDelayMs?: number;
}

export type ResolvedBackoffOptions = Required<BackoffOptions>;

/** The sink's defaults (src/options/timescale-sink.ts). */
export const DEFAULT_BACKOFF: ResolvedBackoffOptions = { maxAttempts: OPTIONS.maxAttempts.default, initialDelayMs: OPTIONS.initialDelay.default, maxDelayMs: OPTIONS.maxDelay.default };

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

/**
 * The wait before the probe's next attempt while the database is unavailable (doubling from 200 ms
 * up to 1 s, so a returning database is written to within a second) or misconfigured (from 1 s up
 * to 30 s: a wrong password retried every second fills the server's log). Jitter in the upper half
 * keeps many gateways that lost the same server from reconnecting in step.
 */
export function probeDelay(failures: number, kind: 'unavailable' | 'config', random: () => number = Math.random): number {
  const [first, cap] = kind === 'unavailable' ? [200, 1000] : [1000, 30000];
  const ceiling = Math.min(cap, first * 2 ** Math.min(Math.max(failures - 1, 0), 20));
  const r = random();
  const unit = Number.isFinite(r) ? Math.min(Math.max(r, 0), 1) : 0;
  return Math.floor(ceiling / 2 + (unit * ceiling) / 2);
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

/** What the loop needs of the writer. */
export interface RetryLoopOptions {
  backoff: ResolvedBackoffOptions;
  /** Creates or checks the table (once; later calls give the same result until one fails). */
  prepare(): Promise<unknown>;
  /** Auto mode: a table or column that went away after prepare() is created again, once per statement. */
  recreateTable?: () => void;
  /** Emits the writer's 'state' and 'retry' events. */
  emit(event: 'state', change: WriterState): void;
  emit(event: 'retry', retry: WriterRetryEvent): void;
  random: () => number;
  sleep: Sleep;
  now: () => number;
}

export class RetryLoop {
  private currentState: WriterStateName | 'unknown' = 'unknown';
  private readonly gate: DatabaseGate;

  constructor(private readonly o: RetryLoopOptions) {
    this.gate = new DatabaseGate(o.now());
  }

  get state(): WriterStateName | 'unknown' {
    return this.currentState;
  }

  /** Prepares the table, then runs `statement` (when given) until it goes through: see the file's comment. */
  run(context: WriteContext, statement: undefined): Promise<undefined>;
  run<T>(context: WriteContext, statement: () => Promise<T>): Promise<T>;
  async run<T>(context: WriteContext, statement: (() => Promise<T>) | undefined): Promise<T | undefined> {
    let transient = 0;
    let blocked = 0;
    try {
      for (;;) {
        if (context.signal?.aborted) throw this.aborted(context);
        try {
          await this.gate.pass(context, context.signal);
        } catch {
          throw this.aborted(context);
        }
        let classification: ErrorClassification;
        let preparing = true;
        try {
          await this.o.prepare();
          preparing = false;
          let result: T | undefined;
          if (statement !== undefined) {
            context.statements++;
            result = await statement();
          }
          if (this.gate.open(this.o.now()) || this.currentState !== 'up') this.setState('up', 0);
          return result;
        } catch (err) {
          if (!preparing && !context.mayConflict && CONFLICT_CODES.has((err as { code?: unknown }).code as string)) {
            // The plain INSERT was refused whole: nothing of it is in the table. Again, skipping what is.
            context.mayConflict = true;
            continue;
          }
          classification = err instanceof WriterConfigError ? { kind: 'config', code: err.code, message: err.message, ...(err.words ? { words: err.words } : {}) } : classifyError(err);
          // Creating or checking the table fails only for reasons a person must fix (an option, a
          // grant), unless the database is not there: its rows are not the problem.
          if (preparing && classification.kind !== 'unavailable') classification = { ...classification, kind: 'config' };
          if (context.policyRefusesAll === true && classification.code === POLICY_REFUSAL) classification = { ...classification, kind: 'config' };
        }
        const kind = classification.kind;
        if (kind === 'data') {
          // The server answered: it is up, and only these rows are the problem.
          if (this.gate.open(this.o.now()) || this.currentState !== 'up') this.setState('up', 0);
          throw new DataRowsError(classification);
        }
        if (kind === 'config' && this.o.recreateTable && !context.reprepared && (classification.code === '42P01' || classification.code === '42703')) {
          // The table (or a column) went away after prepare(): create it again, once.
          context.reprepared = true;
          this.o.recreateTable();
          continue;
        }
        let delayMs: number;
        let attempt: number;
        let maxAttempts: number;
        if (kind === 'unavailable' || kind === 'config') {
          // The statement may have committed although the client saw an error: the retry must skip those rows.
          if (kind === 'unavailable' && !preparing) context.mayConflict = true;
          attempt = ++blocked;
          maxAttempts = Infinity;
          const state = kind === 'unavailable' ? 'down' : 'misconfigured';
          if (this.gate.close(context, state, classification, this.o.now()) || this.currentState !== state) this.setState(state, attempt, classification);
          // Another write probes: this one waits at the gate.
          if (!this.gate.probing(context)) continue;
          delayMs = probeDelay(attempt, kind, this.o.random);
        } else if (kind === 'transient') {
          if (!preparing) context.mayConflict = true;
          attempt = ++transient;
          maxAttempts = this.o.backoff.maxAttempts;
          if (attempt >= maxAttempts) {
            // The database answered; this batch goes to the dead-letter output and the others go on.
            if (this.currentState === 'retrying') this.setState('up', 0);
            throw new WriteFailedError(classification, attempt, context.written, context.rejected);
          }
          if (this.currentState === 'up' || this.currentState === 'unknown') this.setState('retrying', attempt, classification);
          delayMs = backoffDelay(attempt, this.o.backoff, this.o.random);
        } else {
          throw new WriteFailedError(classification, 1, context.written, context.rejected);
        }
        const retryEvent: WriterRetryEvent = { attempt, maxAttempts, delayMs, code: classification.code, message: classification.message };
        this.o.emit('retry', retryEvent);
        context.retries++;
        try {
          await this.o.sleep(delayMs, context.signal);
        } catch (err) {
          if (err instanceof AbortedError || context.signal?.aborted) throw this.aborted(context);
          throw err;
        }
      }
    } finally {
      this.gate.leave(context);
    }
  }

  private aborted(context: WriteContext): WriteFailedError {
    return new WriteFailedError({ kind: 'aborted', code: 'ABORTED', message: 'write aborted before the batch was confirmed' }, context.retries + 1, context.written, context.rejected);
  }

  private setState(state: WriterStateName, attempt: number, cause?: ErrorClassification): void {
    const previous = this.currentState;
    this.currentState = state;
    // A closed gate keeps the start of the outage, so "down for 5 min" is true across its reasons.
    const since = state === 'down' || state === 'misconfigured' ? this.gate.since : this.o.now();
    const change: WriterState = { state, previous, attempt, maxAttempts: state === 'retrying' ? this.o.backoff.maxAttempts : Infinity, code: cause?.code, message: cause?.message, ...(cause?.words ? { words: cause.words } : {}), since };
    this.o.emit('state', change);
  }
}
