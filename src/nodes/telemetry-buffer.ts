import { BufferCore, BufferStats, Outcome } from '../core/buffer-core';
import { flag, oneOf, positiveNumber, wholeNumber } from '../core/options';
import { eventCount } from '../core/records';
import { DROP_POLICIES, DropReason } from '../core/ring-buffer';
import { SequenceStamper } from '../core/sequence';
import { spoolFileFor, takeSpool, writeSpool } from '../core/spool';
import * as os from 'os';
import * as path from 'path';
import { installAdminEndpoints, publishStats } from './admin';
import { markReleased, watchCompletions } from './completions';
import type { DoneFn, Node, NodeDef, NodeMessage, RedAPI } from './red';
import { ThrottledStatus } from './status';

interface Held {
  msg: NodeMessage;
  done: DoneFn;
}

export = function (RED: RedAPI): void {
  installAdminEndpoints(RED);

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
    let closing = false;
    const noUpstream = (): void => undefined;
    let lastDropped = 0;
    let dropping = false;

    function release(items: Held[]): void {
      // One send per message: Node-RED deep-copies every message after the first in a single send().
      for (let i = 0; i < items.length; i++) {
        markReleased(items[i].msg);
        node.send([items[i].msg, null]);
      }
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

    const spoolDir = typeof def.spoolDir === 'string' && def.spoolDir !== '' ? def.spoolDir : path.join(RED.settings.userDir ?? os.tmpdir(), 'telemetry-spool');
    const spoolFile = spoolFileFor(spoolDir, node.id);
    const spoolCounters = { restored: 0, spooled: 0, spoolErrors: 0, spoolBadLines: 0 };
    const telemetryStats = (): BufferStats & typeof spoolCounters & { sources: number } => ({ ...core.stats(), ...spoolCounters, sources: sequences.sources });
    node.telemetryStats = telemetryStats;
    const unpublish = publishStats(node, telemetryStats);

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

    // Nothing is released until the flow has started: a message sent while the flow is still
    // starting, or while a deploy replaces the nodes downstream, can find no receiver and vanish.
    core.paused = true;
    const resumeAfterDeploy = (): void => {
      clearTimeout(startTimer);
      core.paused = false;
      if (!closing) schedulePump();
    };
    const pauseForDeploy = (): void => {
      core.paused = true;
    };
    RED.events.on('flows:stopping', pauseForDeploy);
    RED.events.on('flows:started', resumeAfterDeploy);
    // Fallback for a runtime that never announces flows:started to this node.
    const startTimer = setTimeout(resumeAfterDeploy, 2000);

    // What the previous instance spooled on close goes first, and its sequence numbers continue
    // before the first new message is stamped.
    try {
      const spooled = takeSpool<NodeMessage>(spoolFile);
      if (spooled.header !== undefined) sequences.restore(spooled.header.sequences);
      spoolCounters.spoolBadLines += spooled.badLines;
      for (const msg of spooled.messages) {
        msg._msgid = RED.util.generateId();
        const weight = eventCount(msg);
        spoolCounters.restored += weight;
        core.offer({ msg, done: noUpstream }, weight);
      }
      if (spooled.messages.length > 0 || spooled.badLines > 0) {
        node.log(`restored ${spooled.messages.length} messages (${spoolCounters.restored} events) spooled at the last shutdown${spooled.badLines > 0 ? `, ${spooled.badLines} unreadable lines skipped` : ''}`);
      }
    } catch (err) {
      spoolCounters.spoolErrors++;
      node.error(`could not restore the spool ${spoolFile}: ${(err as Error).message}`);
    }

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

    node.on('close', (removed, closed) => {
      closing = true;
      RED.events.removeListener('flows:stopping', pauseForDeploy);
      RED.events.removeListener('flows:started', resumeAfterDeploy);
      clearTimeout(startTimer);
      stopWatching();
      unpublish();
      clearInterval(expiryTimer);
      if (statsTimer !== undefined) clearInterval(statsTimer);
      status.stop();
      // Released-but-unconfirmed first: they are older than what still waits in the ring.
      const { queued, inFlight } = core.drain();
      const all = inFlight.concat(queued);
      try {
        const { skipped } = writeSpool(spoolFile, sequences.snapshot(), all.map((held) => held.msg));
        for (const held of all) spoolCounters.spooled += eventCount(held.msg);
        if (all.length > 0) {
          node.log(`spooled ${all.length - skipped} unconfirmed messages to ${spoolFile}${removed ? ' (this node was deleted: import the file or restore the node to replay them)' : ''}`);
        }
        if (skipped > 0) {
          spoolCounters.spoolErrors++;
          node.error(`could not spool ${skipped} unconfirmed messages that cannot be written as JSON (nested too deep?)`);
        }
      } catch (err) {
        spoolCounters.spoolErrors++;
        node.error(`could not spool ${all.length} unconfirmed messages to ${spoolFile}: ${(err as Error).message}`);
      }
      for (const held of all) held.done();
      closed();
    });
  }

  RED.nodes.registerType('telemetry-buffer', TelemetryBuffer);
};
