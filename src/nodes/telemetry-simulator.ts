import { readOptions, type OptionValues } from '../core/shared/option-table';
import { describeControl, Simulation } from '../core/simulator/simulation';
import { OPTIONS } from '../options/telemetry-simulator';
import { installAdminEndpoints, publishStats } from './admin';
import { followDeploys } from '../contract';
import type { Node, NodeDef, NodeMessage, RedAPI } from './red';
import { translator } from './i18n';
import { errorText } from '../core/shared/text';
import { compactCount, ThrottledStatus } from './status';

const CONTROLS = ['start', 'stop', 'reset', 'stats'];

export = function (RED: RedAPI): void {
  installAdminEndpoints(RED);

  function TelemetrySimulator(this: Node, def: NodeDef): void {
    RED.nodes.createNode(this, def);
    const node = this;
    const t = translator(RED, 'telemetry-simulator');
    let sim: Simulation;
    let o: OptionValues<typeof OPTIONS>;
    try {
      o = readOptions(OPTIONS, def);
      sim = new Simulation(
        {
          generator: { sources: o.sources, eventsPerMessage: o.eventsPerMessage, topicPrefix: o.topicPrefix, seed: o.seed, mix: { sample: o.mixSample, detection: o.mixDetection, counter: o.mixCounter } },
          pacer: { rate: o.rate, burstEveryMs: o.burstEvery * 1000, burstSize: o.burstSize },
          count: o.count,
          // Node-RED gives every message without an id in one send() the same _msgid; the buffer keys
          // on it, so each message gets its own (cheaper than RED.util.generateId per message).
          idPrefix: `${RED.util.generateId()}.`,
        },
        {
          send: (msg) => node.send(msg as unknown as NodeMessage),
          changed: () => status.refresh(),
        }
      );
    } catch (err) {
      const message = t('log.notStarted', { error: errorText(err, t) });
      node.error(message);
      node.status({ fill: 'red', shape: 'ring', text: t('status.badConfig') });
      node.on('input', (_msg, _send, done) => done(new Error(message)));
      return;
    }

    const stopFollowingDeploys = followDeploys(RED, (def.wires?.[0] ?? []).slice(), sim);
    const telemetryStats = (): object => sim.stats();
    node.telemetryStats = telemetryStats;
    const unpublish = publishStats(node, telemetryStats);
    const status = new ThrottledStatus(node, () => {
      const sent = compactCount(sim.sentEvents);
      if (!sim.running) return { fill: 'grey', shape: 'ring', text: t('status.stopped', { sent }) };
      return { fill: 'green', shape: 'dot', text: t('status.running', { rate: compactCount(sim.rate), sent }) };
    });
    if (o.autoStart) sim.start();
    else status.refresh();

    node.on('input', (msg, _send, done) => {
      switch (msg.control) {
        case 'start':
          if (!sim.start()) node.warn(t('log.countReached', { count: o.count }));
          break;
        case 'stop':
          sim.stop();
          break;
        case 'reset':
          sim.reset();
          break;
        case 'stats':
          // Pipeline nodes answer a control "stats" message with their own counters and never store it.
          node.send({ topic: 'stats', control: 'stats', payload: sim.stats() });
          break;
        default:
          done(new Error(t('log.badControl', { controls: CONTROLS.join(', '), got: describeControl(msg.control) })));
          return;
      }
      done();
    });

    node.on('close', (_removed, closed) => {
      stopFollowingDeploys();
      unpublish();
      sim.close();
      status.stop();
      closed();
    });
  }

  RED.nodes.registerType('telemetry-simulator', TelemetrySimulator);
};
