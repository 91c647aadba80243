import { BufferCore, BufferStats, Outcome } from '../core/buffer-core';
import { flag, oneOf, positiveNumber, wholeNumber } from '../core/options';
import { eventCount } from '../core/records';
import { DROP_POLICIES, DropReason } from '../core/ring-buffer';
import { SequenceStamper } from '../core/sequence';
import { watchCompletions } from './completions';
import type { DoneFn, Node, NodeDef, NodeMessage, RedAPI } from './red';
import { ThrottledStatus } from './status';

interface Held {
  msg: NodeMessage;
  done: DoneFn;
}

export = function (RED: RedAPI): void {
  function TelemetryBuffer(this: Node, def: NodeDef): void {
    RED.nodes.createNode(this, def);
    const node = this;
    let core: BufferCore<Held>;
    let ackTimeoutMs: number;
    let statsIntervalMs: number;
    let stampSequence: boolean;
    try {
      const capacity = wholeNumber(def.capacity, 'Capacity', 100_000, 1, 50_000_000);
      ackTimeoutMs = positiveNumber(def.ackTimeout, 'Ack timeout', 60, 0.001, 86_400) * 1000;
      core = new BufferCore<Held>(
        {
          capacity,
          policy: oneOf(def.dropPolicy, 'Drop policy', DROP_POLICIES, 'drop-oldest'),
          window: wholeNumber(def.window, 'Window', 10_000, 1, 50_000_000),
          ackTimeoutMs,
        },
        {
          keyOf: (held) => held.msg._msgid as string,
          release,
          settled,
          expectedCompletions: () => downstream.length,
          now: Date.now,
        },
      );
      statsIntervalMs = positiveNumber(def.statsInterval, 'Stats interval', 10, 0, 86_400) * 1000;
      stampSequence = flag(def.stampSequence, true);
    } catch (err) {
      node.error(`telemetry-buffer not started: ${(err as Error).message}`);
      node.status({ fill: 'red', shape: 'ring', text: 'bad config' });
      node.on('input', (_msg, _send, done) => done(new Error(`telemetry-buffer not started: ${(err as Error).message}`)));
      return;
    }

    const downstream = (def.wires?.[0] ?? []).slice();
    const sequences = new SequenceStamper();
    let pumpScheduled = false;
    let lastDropped = 0;
    let dropping = false;

    function release(items: Held[]): void {
      const out: NodeMessage[] = new Array(items.length);
      for (let i = 0; i < items.length; i++) out[i] = items[i].msg;
      node.send([out, null]);
      // With nothing wired, nobody will ever complete these: they are delivered as sent.
      if (downstream.length === 0) for (const held of items) core.completed(held.msg._msgid as string, 'ok');
    }

    function settled(held: Held, _outcome: Outcome | DropReason): void {
      held.done();
    }

    function schedulePump(): void {
      if (pumpScheduled) return;
      pumpScheduled = true;
      setImmediate(() => {
        pumpScheduled = false;
        core.pump();
      });
    }

    const stopWatching = watchCompletions(RED, downstream, (msgId, completion) => {
      if (core.completed(msgId, completion)) schedulePump();
    });

    const expiryTimer = setInterval(() => {
      if (core.expire() > 0) schedulePump();
    }, Math.min(1000, Math.max(10, ackTimeoutMs / 4)));
    expiryTimer.unref();

    const telemetryStats = (): BufferStats & { sources: number } => ({ ...core.stats(), sources: sequences.sources });
    node.telemetryStats = telemetryStats;

    function sendStats(): void {
      node.send([null, { topic: 'stats', payload: telemetryStats() }]);
    }
    const statsTimer = statsIntervalMs > 0 ? setInterval(sendStats, statsIntervalMs) : undefined;
    statsTimer?.unref();

    const status = new ThrottledStatus(node, () => {
      const s = core.stats();
      dropping = s.dropped > lastDropped;
      lastDropped = s.dropped;
      const fill = s.depth / s.capacity;
      const pct = s.depth > 0 && fill < 0.01 ? '<1' : String(Math.round(fill * 100));
      return {
        fill: dropping || fill >= 0.9 ? 'red' : fill >= 0.5 ? 'yellow' : 'green',
        shape: s.depth > 0 || s.inFlight > 0 ? 'dot' : 'ring',
        text: `${pct}% dropped ${s.dropped}`,
      };
    });
    status.refresh();

    node.on('input', (msg, _send, done) => {
      if (msg.control === 'stats') {
        sendStats();
        done();
        return;
      }
      const weight = eventCount(msg);
      if (stampSequence) {
        msg.seq = sequences.reserve(typeof msg.topic === 'string' ? msg.topic : '', weight);
      }
      // Fixing the time at ingest makes a retried or replayed event map to the same row.
      if (msg.timestamp === undefined) msg.timestamp = Date.now();
      if (typeof msg._msgid !== 'string') msg._msgid = RED.util.generateId();
      core.offer({ msg, done }, weight);
    });

    node.on('close', (_removed, closed) => {
      stopWatching();
      clearInterval(expiryTimer);
      if (statsTimer !== undefined) clearInterval(statsTimer);
      status.stop();
      const { queued, inFlight } = core.drain();
      for (const held of inFlight) held.done();
      for (const held of queued) held.done();
      closed();
    });
  }

  RED.nodes.registerType('telemetry-buffer', TelemetryBuffer);
};
