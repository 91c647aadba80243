/**
 * What a telemetry-simulator does, without Node-RED: the generator (simulator.ts) paced in time,
 * started, stopped and reset on request, sending through a port. It owns the tick timer, the
 * measured rate and the pause for a deploy; the node file reads the options, builds it and forwards
 * the control messages.
 */
import { Pacer, type PacerOptions } from './pacer';
import { TelemetryGenerator, type KindMix, type SimMessage, type SimulatorOptions } from './simulator';

/** Ticks this often; each tick sends everything due since the last one. */
const TICK_MS = 10;
/**
 * At most this many events per event-loop turn (and at least one message); the rest of what is due
 * follows in the next turns. Sending a high rate's whole backlog at once (100,000 messages in one
 * tick at 10M/s) blocked the event loop for a second at a time: database replies, the buffer's
 * pump, timers and the editor all waited, and 100,000 messages were alive at once for the garbage
 * collector. Counted in events, not messages: 1,000 messages of 100 events each held the sink's
 * replies back for tens of milliseconds while PostgreSQL waited (npm run bench, items d and td).
 */
const MAX_EVENTS_PER_TURN = 1000;

export interface SimulatorStats {
  running: boolean;
  /** Configured events per second. */
  rate: number;
  /** Measured events per second over the last second or so. */
  measuredRate: number;
  sentMessages: number;
  sentEvents: number;
  /** Events by kind. */
  sentByKind: KindMix;
  /** Events not generated because Node-RED fell behind by more than a second. */
  skippedEvents: number;
  /** Stop after this many messages (0: never). */
  count: number;
  sources: number;
}

export interface SimulationSettings {
  generator: SimulatorOptions;
  pacer: PacerOptions;
  /** Stop after this many messages (0: never). */
  count: number;
  /** Message ids are this prefix and a counter (each message needs its own: the buffer keys on it). */
  idPrefix: string;
}

export interface SimulationPorts {
  /** Sends one message (one send() per message on purpose, see tick()). */
  send(msg: SimMessage): void;
  /** Running or stopped changed: a badge should show it at once. */
  changed(): void;
}

export class Simulation {
  private readonly generator: TelemetryGenerator;
  private readonly pacer: Pacer;
  private timer: NodeJS.Timeout | undefined;
  private nextId = 0;
  private measuredRate = 0;
  private rateSince = 0;
  private rateEvents = 0;
  /** A turn's backlog is still being sent: the interval leaves it to the next turn. */
  private continuing = false;
  /** While a deploy replaces nodes nothing is sent (it could vanish on the way); the line catches up afterwards, at most the pacer's maxCatchUpMs of it. */
  private deploying = false;

  constructor(
    private readonly settings: SimulationSettings,
    private readonly ports: SimulationPorts
  ) {
    this.generator = new TelemetryGenerator(settings.generator);
    this.pacer = new Pacer(settings.pacer);
  }

  get running(): boolean {
    return this.timer !== undefined;
  }

  /** Events sent since the start or the last reset. */
  get sentEvents(): number {
    return this.generator.stats().events;
  }

  get rate(): number {
    return Math.round(this.measuredRate);
  }

  /** Starts sending; false when it already sent its count (a reset starts the count again). */
  start(): boolean {
    if (this.timer !== undefined) return true;
    if (this.settings.count > 0 && this.generator.stats().messages >= this.settings.count) return false;
    const t = performance.now();
    this.pacer.start(t);
    this.rateSince = t;
    this.rateEvents = this.generator.stats().events;
    this.measuredRate = 0;
    this.timer = setInterval(() => this.onTimer(), TICK_MS);
    this.ports.changed();
    return true;
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    this.pacer.clear();
    this.measuredRate = 0;
    this.ports.changed();
  }

  /** Back to the seed's first event and zero counters; a running simulation keeps running. */
  reset(): void {
    this.generator.reset();
    this.pacer.skipped = 0;
    this.pacer.clear();
    if (this.timer !== undefined) this.pacer.start(performance.now());
    this.rateEvents = 0;
    this.ports.changed();
  }

  // The deploy handlers (contract followDeploys).
  pause(): void {
    this.deploying = true;
  }

  resume(): void {
    this.deploying = false;
  }

  stats(): SimulatorStats {
    const g = this.generator.stats();
    return {
      running: this.timer !== undefined,
      rate: this.settings.pacer.rate,
      measuredRate: Math.round(this.measuredRate),
      sentMessages: g.messages,
      sentEvents: g.events,
      sentByKind: g.byKind,
      skippedEvents: Math.floor(this.pacer.skipped),
      count: this.settings.count,
      sources: this.generator.sources.length,
    };
  }

  /** Stops for good (the node closes). */
  close(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  private onTimer(): void {
    if (!this.continuing && !this.deploying) this.tick();
  }

  private continueTick(): void {
    this.continuing = false;
    if (this.timer !== undefined && !this.deploying) this.tick();
  }

  private tick(): void {
    const t = performance.now();
    const perMessage = this.generator.eventsPerMessage;
    const count = this.settings.count;
    const due = Math.floor(this.pacer.advance(t) / perMessage);
    let messages = Math.min(due, Math.max(1, Math.floor(MAX_EVENTS_PER_TURN / perMessage)));
    const sent = this.generator.stats().messages;
    if (count > 0) messages = Math.min(messages, count - sent);
    if (messages > 0) {
      const out: SimMessage[] = this.generator.generate(messages, Date.now(), new Array<SimMessage>());
      this.pacer.consume(messages * perMessage);
      // One send() per message on purpose: Node-RED deep-clones every message after the first in a
      // multi-message send([[m1, m2, ...]]), which costs 2-4x the throughput with array payloads;
      // a single message on a single wire is passed on without a clone.
      for (let i = 0; i < out.length; i++) {
        out[i]._msgid = this.settings.idPrefix + (this.nextId++).toString(36);
        this.ports.send(out[i]);
      }
    }
    if (t - this.rateSince >= 1000) {
      const events = this.generator.stats().events;
      this.measuredRate = ((events - this.rateEvents) * 1000) / (t - this.rateSince);
      this.rateSince = t;
      this.rateEvents = events;
    }
    if (count > 0 && sent + messages >= count) this.stop();
    else if (due > messages && !this.continuing) {
      this.continuing = true;
      setImmediate(() => this.continueTick());
    }
  }
}

/**
 * Names a bad control value for the error message without ever throwing: String() throws for an
 * object without a prototype or with a throwing toString, and a throw inside the input handler
 * would leave the message without its done().
 */
export function describeControl(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value);
  if (value === null || value === undefined || typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}
