/**
 * timescale-sink: writes telemetry records to PostgreSQL/TimescaleDB through TimescaleWriter.
 * The shell only schedules: a bounded number of writes in flight, a bounded queue behind them,
 * done() once a message's rows are committed (the backpressure signal the buffer waits for),
 * dead-letter and stats outputs, a throttled status badge, and a bounded drain on close.
 */
import { Fifo } from '../core/fifo';
import { flag, oneOf, positiveNumber, wholeNumber } from '../core/options';
import { appendRecords, type TelemetryRecord } from '../core/records';
import { backoffDelay, classifyError, resolveBackoffOptions, sleep } from '../core/retry';
import { TimescaleWriter, WriteFailedError, type ColumnMap, type TimescaleWriterOptions, type WriterRetryEvent, type WriterStateChange } from '../core/timescale-writer';
import type { DeadLetterEntry, SinkState, SinkStats } from '../core/sink-types';
import { installAdminEndpoints, publishStats } from './admin';
import { markCompletion } from './completions';
import type { DoneFn, Node, NodeDef, NodeMessage, NodeStatus, RedAPI, SendFn } from './red';
import { compactCount, ThrottledStatus } from './status';
import { nodeCloseTimeout, type TimescaleConnectionApi } from './timescale-red';

/** The error given to done() for every message a closing sink could not confirm written. */
const NOT_WRITTEN_CLOSED = 'not written: node closed';

interface Job {
  msg: NodeMessage;
  send: SendFn;
  done: DoneFn;
  records: TelemetryRecord[];
  receivedAt: number;
  /** Plain messages may share one write; a batch from telemetry-batcher is written on its own. */
  mergeable: boolean;
  finished: boolean;
}


/** 42 -> "42s", 300 -> "5m", 7200 -> "2h". */
function shortDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

const SHORT_CODES: Record<string, string> = {
  ECONNREFUSED: 'refused',
  ECONNRESET: 'reset',
  ETIMEDOUT: 'timeout',
  EHOSTUNREACH: 'unreach',
  ENETUNREACH: 'unreach',
  CONN_TERMINATED: 'conn lost',
  CONN_TIMEOUT: 'timeout',
  CONN_ERROR: 'conn err',
  QUERY_TIMEOUT: 'timeout'
};

/** "retry 3/10 08006", kept within 20 characters. */
function retryText(attempt: number, maxAttempts: number, code: string): string {
  const head = `retry ${attempt}/${maxAttempts}`;
  const short = SHORT_CODES[code] ?? code;
  return short ? `${head} ${short}`.slice(0, Math.max(20, head.length)) : head;
}

function shortRate(perSecond: number): string {
  return perSecond < 1000 ? String(Math.round(perSecond)) : compactCount(Math.round(perSecond));
}

export = function (RED: RedAPI): void {
  installAdminEndpoints(RED);

  function TimescaleSink(this: Node, def: NodeDef): void {
    RED.nodes.createNode(this, def);
    const node = this;

    const stats: SinkStats = {
      state: 'starting',
      receivedMessages: 0,
      receivedEvents: 0,
      written: 0,
      duplicates: 0,
      rejected: 0,
      deadLetteredBatches: 0,
      deadLetteredEvents: 0,
      refusedMessages: 0,
      refusedEvents: 0,
      closedMessages: 0,
      closedEvents: 0,
      retries: 0,
      writes: 0,
      inFlight: 0,
      inFlightEvents: 0,
      queued: 0,
      queuedEvents: 0
    };
    const telemetryStats = (): SinkStats => ({ ...stats });
    node.telemetryStats = telemetryStats;
    const unpublish = publishStats(node, telemetryStats);

    // ---- configuration -------------------------------------------------------------------
    let connection: TimescaleConnectionApi | undefined;
    let writer: TimescaleWriter;
    let maxConcurrent: number;
    let maxQueued: number;
    let maxRowsPerWrite: number;
    let statsIntervalMs: number;
    let drainTimeoutMs: number;
    let backoff: ReturnType<typeof resolveBackoffOptions>;
    try {
      const conn = RED.nodes.getNode(String(def.connection ?? '')) as TimescaleConnectionApi | null;
      if (!conn || typeof conn.acquire !== 'function') throw new Error('no connection configured');
      backoff = resolveBackoffOptions({
        maxAttempts: wholeNumber(def.maxAttempts, 'Max attempts', 10, 1, 1000),
        initialDelayMs: positiveNumber(def.initialDelay, 'Initial delay', 500, 0, 3_600_000),
        maxDelayMs: positiveNumber(def.maxDelay, 'Max delay', 30000, 0, 3_600_000)
      });
      const text = (value: unknown, fallback: string): string => (typeof value === 'string' && value.trim() !== '' ? value.trim() : fallback);
      const mode = oneOf(def.mode, 'Mode', ['auto', 'existing'] as const, 'auto');
      const extra = flag(def.extra, false);
      let columns: ColumnMap | undefined;
      if (mode === 'existing') {
        // An empty field means the table has no such column (time and source are required).
        const column = (value: unknown, fallback: string | null): string | null => (typeof value === 'string' ? (value.trim() === '' ? null : value.trim()) : fallback);
        columns = {
          time: column(def.timeColumn, 'time'),
          source: column(def.sourceColumn, 'source'),
          kind: column(def.kindColumn, 'kind'),
          value: column(def.valueColumn, 'value'),
          seq: column(def.seqColumn, 'seq'),
          extra: extra ? column(def.extraColumn, 'extra') : null
        };
      }
      const timeProperties = text(def.timeProperty, 'time,ts').split(',').map((name) => name.trim()).filter((name) => name !== '');
      const options: TimescaleWriterOptions = {
        schema: text(def.schema, 'public'),
        table: text(def.table, 'telemetry'),
        mode,
        columns,
        extra,
        timescale: {
          chunkInterval: text(def.chunkInterval, '1 day'),
          compressAfter: text(def.compressAfter, '') || null,
          retention: text(def.retention, '') || null
        },
        retry: backoff,
        mapping: {
          timeProperty: timeProperties,
          sourceProperty: text(def.sourceProperty, 'source'),
          valueProperty: text(def.valueProperty, 'value'),
          kindProperty: text(def.kindProperty, 'kind'),
          seqProperty: text(def.seqProperty, 'seq')
        }
      };
      const concurrency = wholeNumber(def.maxConcurrent, 'Max concurrent', 0, 0, 1000);
      maxConcurrent = concurrency > 0 ? concurrency : conn.poolSize;
      maxQueued = wholeNumber(def.maxQueued, 'Max queued', 10_000, 0, 10_000_000);
      maxRowsPerWrite = wholeNumber(def.maxRows, 'Max rows per write', 5000, 1, 10_000_000);
      statsIntervalMs = positiveNumber(def.statsInterval, 'Stats interval', 10, 0, 86_400) * 1000;
      const closeLimit = nodeCloseTimeout(RED.settings) - 3000;
      drainTimeoutMs = Math.max(0, Math.min(positiveNumber(def.drainTimeout, 'Drain timeout', 10, 0, 3600) * 1000, closeLimit));
      // Last: from here on the connection counts this node as a user until close releases it.
      const pool = conn.acquire(node.id);
      connection = conn;
      writer = new TimescaleWriter(pool, options);
    } catch (err) {
      connection?.release(node.id);
      const reason = `timescale-sink not started: ${(err as Error).message}`;
      node.error(reason);
      node.status({ fill: 'red', shape: 'ring', text: 'bad config' });
      node.on('input', (_msg, _send, done) => done(new Error(reason)));
      return;
    }

    const db: TimescaleConnectionApi = connection as TimescaleConnectionApi;

    // ---- state and status ----------------------------------------------------------------
    const abort = new AbortController();
    let closing = false;
    let prepared = false;
    let retryInfo = { attempt: 0, maxAttempts: backoff.maxAttempts, code: '' };
    let downSince = 0;
    let stateLogged: 'up' | 'down' = 'up';
    const samples: Array<[number, number]> = [];

    function setState(state: SinkState, since?: number): void {
      if (state === stats.state || closing) return;
      const previous = stats.state;
      stats.state = state;
      if (state === 'retrying' || state === 'down') {
        if (since !== undefined) downSince = since;
        else if (previous === 'up' || previous === 'starting') downSince = Date.now();
      }
      if (state === 'up' && stateLogged === 'down') {
        stateLogged = 'up';
        node.log(`database ${db.label} recovered after ${shortDuration(Date.now() - downSince)}`);
      }
      status.refresh();
    }

    function logDown(detail: string): void {
      if (stateLogged === 'down') return;
      stateLogged = 'down';
      node.warn(db.redact(`database ${db.label} unavailable: ${detail}`));
    }

    function render(): NodeStatus {
      const now = Date.now();
      samples.push([now, stats.written]);
      while (samples.length > 2 && now - samples[0][0] > 5000) samples.shift();
      switch (stats.state) {
        case 'closing':
          return { fill: 'grey', shape: 'ring', text: 'closing' };
        case 'starting':
          return { fill: 'grey', shape: 'ring', text: 'connecting' };
        case 'retrying':
          return { fill: 'yellow', shape: 'ring', text: retryText(retryInfo.attempt, retryInfo.maxAttempts, retryInfo.code) };
        case 'down':
          return { fill: 'red', shape: 'ring', text: `down ${shortDuration(now - downSince)}` };
        default: {
          const [t0, w0] = samples[0];
          const rate = now > t0 ? ((stats.written - w0) * 1000) / (now - t0) : 0;
          return { fill: 'green', shape: 'dot', text: `${shortRate(rate)} rows/s` };
        }
      }
    }
    const status = new ThrottledStatus(node, render, 500);
    status.refresh();

    writer.on('retry', (event: WriterRetryEvent) => {
      stats.retries++;
      retryInfo = { attempt: event.attempt, maxAttempts: event.maxAttempts, code: event.code };
    });
    // The writer reports changes only (not every retry): one log line when the database goes away,
    // one when it is back.
    writer.on('state', (event: WriterStateChange) => {
      if (closing) return;
      if (event.state === 'retrying') {
        retryInfo = { attempt: event.attempt, maxAttempts: event.maxAttempts, code: event.code ?? '' };
        logDown(`${event.code ?? 'error'} ${event.message ?? ''}, retrying`);
        setState('retrying', event.since);
      } else if (event.state === 'down') {
        logDown(`${event.code ?? 'error'} ${event.message ?? ''}, retries exhausted`);
        setState('down', event.since);
      } else {
        setState('up');
      }
    });

    // ---- queue ---------------------------------------------------------------------------
    const queue = new Fifo<Job>();
    const running = new Set<Job[]>();
    let idle: (() => void) | undefined;

    function takeGroup(): Job[] {
      const first = queue.shift() as Job;
      const group = [first];
      if (first.mergeable) {
        let rows = first.records.length;
        for (let next = queue.peek(); next !== undefined && next.mergeable && rows + next.records.length <= maxRowsPerWrite; next = queue.peek()) {
          rows += next.records.length;
          group.push(queue.shift() as Job);
        }
      }
      return group;
    }

    function pump(): void {
      while (prepared && !abort.signal.aborted && running.size < maxConcurrent && queue.length > 0) {
        const group = takeGroup();
        for (const job of group) {
          stats.queued--;
          stats.queuedEvents -= job.records.length;
          stats.inFlight++;
          stats.inFlightEvents += job.records.length;
        }
        startWrite(group);
      }
      if (idle && running.size === 0 && queue.length === 0) idle();
    }

    function leaveFlight(job: Job): boolean {
      if (job.finished) return false;
      job.finished = true;
      stats.inFlight--;
      stats.inFlightEvents -= job.records.length;
      return true;
    }

    function deadLetter(job: Job, entries: DeadLetterEntry[], reason: 'rejected' | 'failed', error?: string, code?: string, written?: number): void {
      const out: NodeMessage = {
        topic: 'dead-letter',
        payload: entries,
        deadLetter: { reason, count: entries.length, ...(error !== undefined ? { error, code, written } : {}) }
      };
      if (job.msg.batch !== undefined) out.batch = job.msg.batch;
      job.send([out, null]);
    }

    function returnUnwritten(job: Job): void {
      stats.closedMessages++;
      stats.closedEvents += job.records.length;
      // Handed back, not failed: done(err) would log one error per message on every redeploy, and a
      // telemetry-buffer in front sends 'returned' messages again or spools them.
      markCompletion(job.msg, 'returned');
      job.done();
    }

    function startWrite(group: Job[]): void {
      running.add(group);
      stats.writes++;
      const records = group.length === 1 ? group[0].records : group.flatMap((job) => job.records);
      writer
        .write(records, { receivedAt: group[0].receivedAt, signal: abort.signal })
        .then(
          (result) => {
            // Already handed back at the close deadline: the rows count as returned, not written
            // (a replay will find them and count them as duplicates).
            if (group.every((job) => job.finished)) return;
            stats.written += result.written;
            stats.duplicates += result.duplicates;
            stats.rejected += result.rejected.length;
            let byJob: Map<Job, DeadLetterEntry[]> | undefined;
            if (result.rejected.length > 0) {
              byJob = new Map();
              const owner = new Map<TelemetryRecord, Job>();
              if (group.length > 1) for (const job of group) for (const record of job.records) owner.set(record, job);
              for (const rejected of result.rejected) {
                const job = group.length === 1 ? group[0] : (owner.get(rejected.record) ?? group[0]);
                let list = byJob.get(job);
                if (!list) byJob.set(job, (list = []));
                list.push({ record: rejected.record, reason: rejected.reason, code: rejected.code ?? '' });
              }
            }
            for (const job of group) {
              if (!leaveFlight(job)) continue;
              const entries = byJob?.get(job);
              if (entries) deadLetter(job, entries, 'rejected');
              // A plain message none of whose rows could be stored is a bad message: done(err) with
              // the reason, so a Catch node sees it and the buffer counts it failed, not delivered.
              // A batch completes normally: its good rows are written, its bad ones dead-lettered.
              if (entries && job.mergeable && entries.length === job.records.length) job.done(new Error(`not written: rejected: ${entries[0].reason}`));
              else job.done();
            }
          },
          (err: unknown) => {
            const failure = err instanceof WriteFailedError ? err : undefined;
            const closed = abort.signal.aborted || failure?.kind === 'aborted';
            const open = group.filter((job) => !job.finished);
            if (closed) {
              // Handed back upstream at the close deadline (or now): nothing more to count here.
              for (const job of open) if (leaveFlight(job)) returnUnwritten(job);
              return;
            }
            // Rows written or rejected before the batch failed as a whole are counted as such; the
            // dead-letter message still carries every record of the message (resending the written
            // ones is harmless: the unique key skips them).
            const info = failure ? { code: failure.code, message: failure.causeMessage } : classifyError(err);
            const message = db.redact(failure ? failure.message : `${info.code}: ${info.message}`);
            const written = failure?.written ?? 0;
            const rejectedBefore = new Map<TelemetryRecord, { reason: string; code?: string }>();
            for (const r of failure?.rejected ?? []) rejectedBefore.set(r.record, r);
            stats.written += written;
            stats.rejected += rejectedBefore.size;
            stats.deadLetteredEvents += records.length - written - rejectedBefore.size;
            for (const job of open) {
              if (!leaveFlight(job)) continue;
              stats.deadLetteredBatches++;
              const entries = job.records.map((record) => {
                const own = rejectedBefore.get(record);
                return own ? { record, reason: own.reason, code: own.code ?? '' } : { record, reason: db.redact(info.message), code: info.code };
              });
              deadLetter(job, entries, 'failed', message, info.code, written);
              markCompletion(job.msg, 'failed');
              job.done(new Error(`not written: ${message}`));
            }
          }
        )
        .finally(() => {
          running.delete(group);
          pump();
        });
    }

    // ---- start: prepare the table, retrying while the database is unavailable ------------
    (async () => {
      for (let attempt = 1; !abort.signal.aborted; attempt++) {
        try {
          const result = await writer.prepare();
          for (const warning of result.warnings) node.warn(db.redact(warning));
          prepared = true;
          setState('up');
          pump();
          return;
        } catch (err) {
          if (abort.signal.aborted) return;
          const info = classifyError(err);
          logDown(`cannot prepare the table: ${info.code} ${info.message}`);
          setState('down');
          try {
            await sleep(Math.max(backoffDelay(Math.min(attempt, 30), backoff), 100), abort.signal);
          } catch {
            return;
          }
        }
      }
    })();

    // ---- stats -----------------------------------------------------------------------------
    const statsMessage = (): NodeMessage => ({ topic: 'stats', payload: { ...stats } });
    const statsTimer = statsIntervalMs > 0 ? setInterval(() => node.send([null, statsMessage()]), statsIntervalMs) : undefined;
    statsTimer?.unref();

    // ---- input -----------------------------------------------------------------------------
    node.on('input', (msg, send, done) => {
      if (msg.control === 'stats') {
        send([null, statsMessage()]);
        done();
        return;
      }
      const receivedAt = Date.now();
      let records: TelemetryRecord[];
      const mergeable = !(msg.batch !== undefined && Array.isArray(msg.payload));
      if (!mergeable) {
        records = msg.payload as TelemetryRecord[];
      } else {
        records = [];
        appendRecords(msg, records);
        // The time of receipt is the last choice of the row mapping (after payload.time/ts and
        // msg.timestamp): stamping it here keeps it exact when several messages share one write.
        for (const record of records) if (record.timestamp === undefined || record.timestamp === null) record.timestamp = receivedAt;
      }
      stats.receivedMessages++;
      stats.receivedEvents += records.length;
      const job: Job = { msg, send, done, records, receivedAt, mergeable, finished: false };
      if (closing) {
        returnUnwritten(job);
        return;
      }
      if (queue.length >= maxQueued && !(prepared && running.size < maxConcurrent)) {
        stats.refusedMessages++;
        stats.refusedEvents += records.length;
        markCompletion(msg, 'failed');
        done(new Error(`not written: queue full (${maxQueued} messages waiting)`));
        return;
      }
      queue.push(job);
      stats.queued++;
      stats.queuedEvents += records.length;
      pump();
    });

    // ---- close -----------------------------------------------------------------------------
    node.on('close', (_removed: boolean, closed: () => void) => {
      closing = true;
      unpublish();
      if (statsTimer !== undefined) clearInterval(statsTimer);
      stats.state = 'closing';
      status.refresh();
      const timers: NodeJS.Timeout[] = [];
      const within = (promise: Promise<unknown>, ms: number): Promise<unknown> =>
        Promise.race([promise, new Promise((resolve) => timers.push(setTimeout(resolve, ms)))]);
      const drained = running.size === 0 && (queue.length === 0 || !prepared) ? Promise.resolve() : new Promise<void>((resolve) => (idle = resolve));
      within(drained, drainTimeoutMs)
        .then(() => {
          // Whatever is still open now is abandoned: retries stop, and each message is handed back
          // upstream unwritten.
          abort.abort();
          while (queue.length > 0) {
            const job = queue.shift() as Job;
            stats.queued--;
            stats.queuedEvents -= job.records.length;
            stats.inFlight++;
            stats.inFlightEvents += job.records.length;
            leaveFlight(job);
            returnUnwritten(job);
          }
          const pending = [...running];
          for (const group of pending) for (const job of group) if (leaveFlight(job)) returnUnwritten(job);
          if (stats.closedMessages > 0) {
            node.warn(`${NOT_WRITTEN_CLOSED}: handed ${stats.closedMessages} messages (${stats.closedEvents} events) back upstream; a telemetry-buffer in front sends them again or spools them`);
          }
          // Give aborted writes a moment to give their connections back before the pool may end.
          const settledAll = new Promise<void>((resolve) => {
            if (running.size === 0) resolve();
            else idle = resolve;
          });
          return within(settledAll, 1000);
        })
        .finally(() => {
          timers.forEach(clearTimeout);
          status.stop();
          db.release(node.id);
          node.status({});
          closed();
        });
    });
  }

  RED.nodes.registerType('timescale-sink', TimescaleSink as (this: Node, def: NodeDef) => void);
};
