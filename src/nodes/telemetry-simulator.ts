import { readOptions } from '../core/shared/option-table';
import { OPTIONS } from '../options/telemetry-simulator';
import { KindMix, Pacer, SimMessage, TelemetryGenerator } from '../core/simulator/simulator';
import type { Node, NodeDef, NodeMessage, RedAPI } from './red';
import { installAdminEndpoints, publishStats } from './admin';
import { followDeploys } from './contract';
import { ThrottledStatus, compactCount } from './status';

/** Ticks this often; each tick sends everything due since the last one. */
const TICK_MS = 10;
/**
 * At most this many messages per event-loop turn; the rest of what is due follows in the next
 * turns. Sending a high rate's whole backlog at once (100,000 messages in one tick at 10M/s)
 * blocked the event loop for a second at a time: database replies, the buffer's pump, timers and
 * the editor all waited, and 100,000 messages were alive at once for the garbage collector.
 */
const MAX_MESSAGES_PER_TURN = 1000;
const CONTROLS = ['start', 'stop', 'reset', 'stats'];

interface SimulatorStats {
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

/**
 * Names a bad control value for the error message without ever throwing: String() throws for an
 * object without a prototype or with a throwing toString, and a throw inside the input handler
 * would leave the message without its done().
 */
function describeControl(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value);
  if (value === null || value === undefined || typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

export = function (RED: RedAPI): void {
  installAdminEndpoints(RED);

  function TelemetrySimulator(this: Node, def: NodeDef): void {
    RED.nodes.createNode(this, def);
    const node = this;
    let generator: TelemetryGenerator;
    let pacer: Pacer;
    let rate: number;
    let count: number;
    let autoStart: boolean;
    try {
      const o = readOptions(OPTIONS, def);
      rate = o.rate;
      count = o.count;
      autoStart = o.autoStart;
      generator = new TelemetryGenerator({
        sources: o.sources,
        eventsPerMessage: o.eventsPerMessage,
        topicPrefix: o.topicPrefix,
        seed: o.seed,
        mix: { sample: o.mixSample, detection: o.mixDetection, counter: o.mixCounter },
      });
      pacer = new Pacer({ rate, burstEveryMs: o.burstEvery * 1000, burstSize: o.burstSize });
    } catch (err) {
      node.error(`telemetry-simulator not started: ${(err as Error).message}`);
      node.status({ fill: 'red', shape: 'ring', text: 'bad config' });
      node.on('input', (_msg, _send, done) => done(new Error(`telemetry-simulator not started: ${(err as Error).message}`)));
      return;
    }

    const perMessage = generator.eventsPerMessage;
    // Node-RED gives every message without an id in one send() the same _msgid; the buffer keys on
    // it, so each message gets its own (cheaper than RED.util.generateId per message).
    const idBase = `${RED.util.generateId()}.`;
    let nextId = 0;
    let timer: NodeJS.Timeout | undefined;
    let measuredRate = 0;
    let rateSince = 0;
    let rateEvents = 0;

    const now = (): number => performance.now();

    /** A turn's backlog is still being sent: the interval leaves it to the next turn. */
    let continuing = false;
    // While a deploy replaces nodes, nothing is sent (it could vanish on the way); the line catches
    // up afterwards, at most maxCatchUpMs of it, the rest counted as skipped.
    let deploying = false;
    const stopFollowingDeploys = followDeploys(RED, (def.wires?.[0] ?? []).slice(), {
      pause: () => {
        deploying = true;
      },
      resume: () => {
        deploying = false;
      },
    });
    function continueTick(): void {
      continuing = false;
      if (timer !== undefined && !deploying) tick();
    }
    function onTimer(): void {
      if (!continuing && !deploying) tick();
    }

    function tick(): void {
      const t = now();
      const due = Math.floor(pacer.advance(t) / perMessage);
      let messages = Math.min(due, MAX_MESSAGES_PER_TURN);
      const sent = generator.stats().messages;
      if (count > 0) messages = Math.min(messages, count - sent);
      if (messages > 0) {
        const out: SimMessage[] = generator.generate(messages, Date.now(), new Array<SimMessage>());
        pacer.consume(messages * perMessage);
        // One send() per message on purpose: Node-RED deep-clones every message after the first in a
        // multi-message send([[m1, m2, ...]]), which costs 2-4x the throughput with array payloads;
        // a single message on a single wire is passed on without a clone.
        for (let i = 0; i < out.length; i++) {
          out[i]._msgid = idBase + (nextId++).toString(36);
          node.send(out[i] as unknown as NodeMessage);
        }
      }
      if (t - rateSince >= 1000) {
        const events = generator.stats().events;
        measuredRate = ((events - rateEvents) * 1000) / (t - rateSince);
        rateSince = t;
        rateEvents = events;
      }
      if (count > 0 && sent + messages >= count) stop();
      else if (due > messages && !continuing) {
        continuing = true;
        setImmediate(continueTick);
      }
    }

    function start(): boolean {
      if (timer !== undefined) return true;
      if (count > 0 && generator.stats().messages >= count) return false;
      const t = now();
      pacer.start(t);
      rateSince = t;
      rateEvents = generator.stats().events;
      measuredRate = 0;
      timer = setInterval(onTimer, TICK_MS);
      status.refresh();
      return true;
    }

    function stop(): void {
      if (timer !== undefined) clearInterval(timer);
      timer = undefined;
      pacer.clear();
      measuredRate = 0;
      status.refresh();
    }

    const telemetryStats = (): SimulatorStats => {
      const g = generator.stats();
      return {
        running: timer !== undefined,
        rate,
        measuredRate: Math.round(measuredRate),
        sentMessages: g.messages,
        sentEvents: g.events,
        sentByKind: g.byKind,
        skippedEvents: Math.floor(pacer.skipped),
        count,
        sources: generator.sources.length,
      };
    };
    node.telemetryStats = telemetryStats;
    const unpublish = publishStats(node, telemetryStats);

    const status = new ThrottledStatus(node, () => {
      const sent = compactCount(generator.stats().events);
      if (timer === undefined) return { fill: 'grey', shape: 'ring', text: `stopped, sent ${sent}` };
      return { fill: 'green', shape: 'dot', text: `${compactCount(Math.round(measuredRate))} ev/s, sent ${sent}` };
    });

    if (autoStart) start();
    else status.refresh();

    node.on('input', (msg, _send, done) => {
      switch (msg.control) {
        case 'start':
          if (!start()) node.warn(`telemetry-simulator: already sent its count of ${count} messages; send "reset" first`);
          break;
        case 'stop':
          stop();
          break;
        case 'reset': {
          generator.reset();
          pacer.skipped = 0;
          pacer.clear();
          if (timer !== undefined) pacer.start(now());
          rateEvents = 0;
          status.refresh();
          break;
        }
        case 'stats':
          // Pipeline nodes answer a control "stats" message with their own counters and never store it.
          node.send({ topic: 'stats', control: 'stats', payload: telemetryStats() });
          break;
        default:
          done(new Error(`msg.control must be one of ${CONTROLS.join(', ')}, got ${describeControl(msg.control)}`));
          return;
      }
      done();
    });

    node.on('close', (_removed, closed) => {
      stopFollowingDeploys();
      unpublish();
      if (timer !== undefined) clearInterval(timer);
      timer = undefined;
      status.stop();
      closed();
    });
  }

  RED.nodes.registerType('telemetry-simulator', TelemetrySimulator);
};
