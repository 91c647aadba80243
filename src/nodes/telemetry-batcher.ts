import { Batcher } from '../core/batching/batcher';
import { resolveShapeOptions } from '../core/readings/shapes';
import { readOptions } from '../core/shared/option-table';
import { OPTIONS } from '../options/telemetry-batcher';
import { installAdminEndpoints, publishStats } from './admin';
import { acceptRecordGroups, canHandBack, declareCustody, declareRowFields, followDeploys, heldBy, markCompletion, reportCompletions, rowFieldsOf, watchCompletions } from '../contract';
import type { Node, NodeDef, RedAPI } from './red';
import { translator } from './i18n';
import { errorText } from '../core/shared/text';
import { ThrottledStatus } from './status';
import { stateFile } from '../core/shared/state-files';
import { stateDir } from './state-dir';

export = function (RED: RedAPI): void {
  installAdminEndpoints(RED);

  function TelemetryBatcher(this: Node, def: NodeDef): void {
    RED.nodes.createNode(this, def);
    const node = this;
    // Every instance tells its completions itself, one whose configuration failed too (src/contract).
    const report = reportCompletions(node);
    node.on('close', () => report.withdraw());
    const t = translator(RED, 'telemetry-batcher');
    const downstream = (def.wires?.[0] ?? []).slice();
    let batcher: Batcher;
    try {
      const o = readOptions(OPTIONS, def);
      batcher = new Batcher(
        {
          maxSize: o.maxSize,
          maxAgeMs: o.maxAge,
          maxOpenBatches: o.maxOpenBatches,
          maxHeldEvents: o.maxHeld,
          ackTimeoutMs: o.ackTimeout * 1000,
          shape: resolveShapeOptions({ shape: o.shape, quality: o.quality }),
          downstreamCount: downstream.length,
          // Totals and sequence numbers outlive this instance (a redeploy, a restart).
          fileBase: stateFile(stateDir(RED, def), node.id),
        },
        {
          sendBatch: (msg) => node.send([msg, null]),
          newId: () => RED.util.generateId(),
          markCompletion,
          canHandBack,
          heldDownstream: () => heldBy(downstream),
          rowFields: () => rowFieldsOf(downstream),
          log: (text) => node.log(text),
          warn: (text) => node.warn(text),
          t,
        }
      );
    } catch (err) {
      const message = t('log.notStarted', { error: errorText(err, t) });
      node.error(message);
      node.status({ fill: 'red', shape: 'ring', text: t('status.badConfig') });
      node.on('input', (msg, _send, done) => report.wrap(msg, done)(new Error(message)));
      return;
    }

    // The contract with the buffer in front and the nodes after (src/contract).
    const withdrawGroups = acceptRecordGroups(node.id, batcher.recordGroupLimit);
    const withdrawCustody = declareCustody(node.id, () => batcher.heldIds());
    const withdrawRowFields = declareRowFields(node.id, () => rowFieldsOf(downstream));
    const stopWatching = watchCompletions(RED, downstream, (msgId, completion) => batcher.completed(msgId, completion));
    // Nothing goes out before the flows have started: a node after may be disabled, and what is
    // sent to it vanishes.
    batcher.pause();
    const stopFollowingDeploys = followDeploys(RED, downstream, batcher, true);

    const telemetryStats = (): object => batcher.stats();
    node.telemetryStats = telemetryStats;
    const unpublish = publishStats(node, telemetryStats);
    const status = new ThrottledStatus(node, () => batcher.badge(Date.now()));
    status.refresh();

    node.on('input', (msg, _send, nodeDone) => {
      const done = report.wrap(msg, nodeDone);
      if (msg.control === 'flush') {
        batcher.flush();
        done();
      } else if (msg.control === 'stats') {
        node.send([null, { topic: 'stats', payload: batcher.stats() }]);
        done();
      } else {
        batcher.receive(msg, done);
      }
    });

    node.on('close', (removed, closed) => {
      withdrawGroups();
      withdrawCustody();
      if (removed) withdrawRowFields();
      stopWatching();
      stopFollowingDeploys();
      unpublish();
      status.stop();
      batcher.close(removed);
      closed();
    });
  }

  RED.nodes.registerType('telemetry-batcher', TelemetryBatcher);
};
