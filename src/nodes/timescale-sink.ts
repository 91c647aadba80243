/**
 * timescale-sink: writes telemetry records to PostgreSQL/TimescaleDB. The node reads its options,
 * builds a TimescaleWriter and a WriteScheduler (src/core), and turns what they report into
 * done() (once a message's rows are committed: the backpressure signal the buffer waits for),
 * dead-letter and stats messages, log lines and a throttled badge.
 */
import * as os from 'os';
import * as path from 'path';
import { flag, oneOf, positiveNumber, wholeNumber } from '../core/shared/options';
import { stampMissing, type TelemetryRecord } from '../core/readings/records';
import { readShapeOptions, recordsOf, shapeMessage, type ResolvedShapeOptions } from '../core/readings/shapes';
import { resolveBackoffOptions } from '../core/sink/retry';
import { SequenceJournal, SequenceStamper } from '../core/readings/sequence';
import { misconfiguredFix, shortDuration, sinkBadge } from '../core/sink/sink-status';
import type { SinkCounters, SinkState, SinkStats } from '../core/sink/sink-types';
import { TimescaleWriter, type ColumnMap, type TimescaleWriterOptions, type WriterRetryEvent, type WriterStateChange } from '../core/sink/timescale-writer';
import { Totals } from '../core/shared/totals';
import { WriteScheduler, type JobResult, type SinkJob } from '../core/sink/write-scheduler';
import { installAdminEndpoints, publishStats } from './admin';
import { declareCustody, markCompletion } from './completions';
import type { DoneFn, Node, NodeDef, NodeMessage, RedAPI, SendFn } from './red';
import { ThrottledStatus } from './status';
import { nodeCloseTimeout, type TimescaleConnectionApi } from './timescale-red';

interface Owner {
  msg: NodeMessage;
  send: SendFn;
  done: DoneFn;
}

/** Counters that add up across instances (the gauges inFlight and queued are folded into closed on save). */
const CUMULATIVE = ['receivedMessages', 'receivedEvents', 'written', 'duplicates', 'rejected', 'deadLetteredBatches', 'deadLetteredEvents', 'refusedMessages', 'refusedEvents', 'closedMessages', 'closedEvents', 'retries', 'writes', 'ignored'] as const;

export = function (RED: RedAPI): void {
  installAdminEndpoints(RED);

  function TimescaleSink(this: Node, def: NodeDef): void {
    RED.nodes.createNode(this, def);
    const node = this;

    // ---- configuration -------------------------------------------------------------------
    let connection: TimescaleConnectionApi | undefined;
    let writer: TimescaleWriter;
    let scheduler: WriteScheduler<Owner>;
    let statsIntervalMs: number;
    let drainTimeoutMs: number;
    let seqProperty: string;
    let shapeOptions: ResolvedShapeOptions;
    try {
      const conn = RED.nodes.getNode(String(def.connection ?? '')) as TimescaleConnectionApi | null;
      if (!conn || typeof conn.acquire !== 'function') throw new Error('no connection configured');
      const backoff = resolveBackoffOptions({
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
      seqProperty = text(def.seqProperty, 'seq');
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
          seqProperty
        }
      };
      // A plain message is read with the mapping's own property names, so both agree on what is a reading;
      // `timestamp` stays a time field of named values, as it is by default.
      const mapping = options.mapping ?? {};
      shapeOptions = readShapeOptions(def, {
        valueProperty: mapping.valueProperty,
        sourceProperty: mapping.sourceProperty,
        kindProperty: mapping.kindProperty,
        seqProperty: mapping.seqProperty,
        timeProperty: [...new Set([...timeProperties, 'timestamp'])],
      });
      const concurrency = wholeNumber(def.maxConcurrent, 'Max concurrent', 0, 0, 1000);
      const schedulerOptions = {
        maxConcurrent: concurrency > 0 ? concurrency : conn.poolSize,
        maxQueuedEvents: wholeNumber(def.maxQueued, 'Queue', 100_000, 1, 50_000_000),
        maxRowsPerWrite: wholeNumber(def.maxRows, 'Merge', 5000, 1, 10_000_000),
        redact: (t: string) => conn.redact(t)
      };
      statsIntervalMs = positiveNumber(def.statsInterval, 'Stats interval', 10, 0, 86_400) * 1000;
      const closeLimit = nodeCloseTimeout(RED.settings) - 3000;
      drainTimeoutMs = Math.max(0, Math.min(positiveNumber(def.drainTimeout, 'On close', 10, 0, 3600) * 1000, closeLimit));
      // Last: from here on the connection counts this node as a user until close releases it.
      const pool = conn.acquire(node.id);
      connection = conn;
      writer = new TimescaleWriter(pool, options);
      scheduler = new WriteScheduler<Owner>(writer, schedulerOptions, finish);
    } catch (err) {
      connection?.release(node.id);
      const reason = `timescale-sink not started: ${(err as Error).message}`;
      node.error(reason);
      node.status({ fill: 'red', shape: 'ring', text: 'bad config' });
      node.on('input', (_msg, _send, done) => done(new Error(reason)));
      return;
    }
    const db = connection as TimescaleConnectionApi;

    // ---- state that outlives this instance: totals and sequence numbers --------------------
    const stateDir = typeof def.spoolDir === 'string' && def.spoolDir !== '' ? def.spoolDir : path.join(RED.settings.userDir ?? os.tmpdir(), 'telemetry-spool');
    const fileBase = path.join(stateDir, node.id.replace(/[^A-Za-z0-9_.-]/g, '_'));
    const totals = new Totals<(typeof CUMULATIVE)[number]>(`${fileBase}.totals.json`, CUMULATIVE);
    const sequences = new SequenceStamper();
    const journal = new SequenceJournal(`${fileBase}.sequences`);
    try {
      journal.open(sequences);
    } catch (err) {
      node.warn(`sequence numbers of ${fileBase}.sequences could not be read (${(err as Error).message}): numbering starts again`);
    }

    // ---- state and status ----------------------------------------------------------------
    let state: SinkState = 'starting';
    let since = Date.now();
    let code = '';
    let retry = { attempt: 0, maxAttempts: 0 };
    let warning = '';
    let closing = false;
    let downLogged = false;
    const samples: Array<[number, number]> = [];

    let table = { idempotent: true, distinctRows: true, tableNotices: 0 };
    /** Plain messages that are not readings (a subscription id, a status, an empty poll): completed, never stored. */
    let ignored = 0;
    let ignoredReason = '';
    function stats(): SinkStats {
      const current: SinkCounters = scheduler.counters;
      return { state, code, since, host: db.host, ...table, ignoredReason, ...totals.add({ ...current, ignored }) };
    }
    function saveTotals(): void {
      const s = totals.add({ ...scheduler.counters, ignored });
      // What is held now counts as handed back, so the saved totals add up without the gauges.
      s.closedMessages += s.inFlight + s.queued;
      s.closedEvents += s.inFlightEvents + s.queuedEvents;
      try {
        totals.save(s);
        journal.save(sequences, (err) => node.warn(`could not save the sequence numbers to ${journal.file}: ${err.message}`));
      } catch (err) {
        node.warn(`could not save the totals and sequence numbers to ${fileBase}: ${(err as Error).message}`);
      }
    }
    node.telemetryStats = stats;
    const unpublish = publishStats(node, stats);
    const withdrawCustody = declareCustody(node.id, () => scheduler.held());

    // With a host list the badge names the host for a while after the writes moved to it.
    let host = db.host;
    let hostChangedAt = 0;
    const status = new ThrottledStatus(node, () => {
      const now = Date.now();
      if (db.host !== host) {
        if (host !== '') hostChangedAt = now;
        host = db.host;
      }
      samples.push([now, scheduler.counters.written]);
      while (samples.length > 2 && now - samples[0][0] > 5000) samples.shift();
      const [t0, w0] = samples[0];
      const rate = now > t0 ? ((scheduler.counters.written - w0) * 1000) / (now - t0) : 0;
      return sinkBadge({ state, now, rate, code, since, attempt: retry.attempt, maxAttempts: retry.maxAttempts, warning, host, hostChangedAt });
    });
    status.refresh();

    writer.on('retry', (event: WriterRetryEvent) => {
      scheduler.counters.retries++;
      retry = { attempt: event.attempt, maxAttempts: event.maxAttempts };
    });
    // One log line per change of state, not per retry; a misconfiguration also reaches a Catch node once.
    writer.on('state', (event: WriterStateChange) => {
      if (closing) return;
      const previous = state;
      const blockedSince = since;
      state = event.state;
      since = event.since;
      code = event.code ?? '';
      if (event.state === 'retrying') retry = { attempt: event.attempt, maxAttempts: event.maxAttempts };
      const held = `${scheduler.counters.inFlightEvents + scheduler.counters.queuedEvents} events held`;
      if (event.state === 'down') {
        node.warn(db.redact(`database ${db.label} unavailable (${code}: ${event.message ?? ''}); ${held}, retrying until it is back`));
        downLogged = true;
      } else if (event.state === 'misconfigured') {
        const text = db.redact(`database ${db.label} refuses this configuration (${code}: ${event.message ?? ''}): ${misconfiguredFix(code)}. Nothing is thrown away meanwhile; ${held}`);
        node.error(text, { _msgid: RED.util.generateId(), topic: 'misconfigured', payload: { state: 'misconfigured', code, message: text } });
        downLogged = true;
      } else if (event.state === 'up' && downLogged) {
        downLogged = false;
        node.log(`database ${db.label} ${previous === 'misconfigured' ? 'accepts the configuration again' : 'is back'} after ${shortDuration(Date.now() - blockedSince)}`);
      }
      status.refresh();
    });

    writer
      .start(scheduler.signal)
      .then((result) => {
        for (const text of result.warnings) node.warn(db.redact(text));
        table = { idempotent: result.idempotent, distinctRows: result.idempotent && !result.mergesReadings, tableNotices: result.notices.length };
        // The badge keeps saying what the table lacks: a refused policy, or a key that cannot keep rows apart.
        if (result.notices.some((notice) => notice.code.endsWith('_REFUSED'))) warning = '!policy';
        else if (!table.distinctRows) warning = '!key';
        status.refresh();
      })
      .catch(() => undefined); // aborted by close

    // ---- stats -----------------------------------------------------------------------------
    const statsMessage = (): NodeMessage => ({ topic: 'stats', payload: stats() });
    const statsTimer = setInterval(() => {
      saveTotals();
      if (statsIntervalMs > 0 && Date.now() - lastStatsAt >= statsIntervalMs) {
        lastStatsAt = Date.now();
        node.send([null, statsMessage()]);
      }
    }, Math.min(1000, statsIntervalMs || 1000));
    let lastStatsAt = Date.now();
    statsTimer.unref();

    // ---- finishing a message -----------------------------------------------------------------
    function finish(job: SinkJob<Owner>, result: JobResult): void {
      const { msg, send, done } = job.owner;
      if (result.kind === 'returned') {
        // Handed back, not failed: a buffer or batcher in front sends it again or spools it.
        markCompletion(msg, 'returned');
        done();
        return;
      }
      if (result.deadLetters.length > 0) {
        const out: NodeMessage = {
          topic: 'dead-letter',
          payload: result.deadLetters,
          deadLetter: { reason: result.kind === 'failed' ? 'failed' : 'rejected', count: result.deadLetters.length, ...(result.kind === 'failed' ? { error: result.error, code: result.code, written: result.written } : {}) }
        };
        if (msg.batch !== undefined) out.batch = msg.batch;
        send([out, null]);
      }
      if (result.kind === 'failed') {
        markCompletion(msg, 'failed');
        done(new Error(`not written: ${result.error}`));
      } else if (job.mergeable && result.deadLetters.length === job.records.length) {
        // A plain message none of whose rows could be stored is a bad message: done(err) with the
        // reason, so a Catch node sees it. A batch completes: its good rows are in.
        done(new Error(`not written: rejected: ${result.deadLetters[0].reason}`));
      } else {
        done();
      }
    }

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
        const shaped = shapeMessage(msg, shapeOptions);
        if (shaped.outcome === 'not-a-reading') {
          ignored++;
          ignoredReason = shaped.reason;
          done();
          return;
        }
        records = recordsOf(shaped);
        // The time of receipt is the last choice of the row mapping (after payload.time/ts and
        // msg.timestamp): stamping it here keeps it exact when several messages share one write.
        for (const record of records) if (record.timestamp === undefined || record.timestamp === null) record.timestamp = receivedAt;
      }
      // Readings that no node before numbered are numbered here, so none merges with another.
      stampMissing(records, sequences, seqProperty);
      const job: SinkJob<Owner> = { owner: { msg, send, done }, id: typeof msg._msgid === 'string' ? msg._msgid : undefined, records, receivedAt, mergeable, finished: false };
      if (scheduler.offer(job) === 'refused') {
        markCompletion(msg, 'failed');
        done(new Error(`not written: queue full (${scheduler.counters.queuedEvents} events waiting)`));
      }
    });

    // ---- close -----------------------------------------------------------------------------
    node.on('close', (removed: boolean, closed: () => void) => {
      closing = true;
      state = 'closing';
      status.refresh();
      clearInterval(statsTimer);
      scheduler
        .close(drainTimeoutMs)
        .then(() => {
          const handed = scheduler.counters.closedMessages;
          if (handed > 0) node.warn(`not written: node closed: handed ${handed} messages (${scheduler.counters.closedEvents} events) back upstream; a telemetry-buffer or telemetry-batcher in front sends them again or spools them`);
        })
        .finally(() => {
          withdrawCustody();
          unpublish();
          try {
            if (removed) {
              totals.remove();
              journal.remove();
            } else {
              saveTotals();
              journal.close(sequences);
            }
          } catch (err) {
            node.warn(`could not save the totals and sequence numbers to ${fileBase}: ${(err as Error).message}`);
          }
          status.stop();
          db.release(node.id);
          node.status({});
          closed();
        });
    });
  }

  RED.nodes.registerType('timescale-sink', TimescaleSink as (this: Node, def: NodeDef) => void);
};
