import { BufferController } from '../core/buffer/buffer-controller';
import { readOptions } from '../core/shared/option-table';
import { OPTIONS } from '../options/telemetry-buffer';
import { installAdminEndpoints, publishStats } from './admin';
import { followDeploys, heldBy, markReleased, recordGroupLimit, rowFieldsOf, watchCompletions } from '../contract';
import type { Node, NodeDef, NodeMessage, RedAPI } from './red';
import { translator } from './i18n';
import { errorText } from '../core/shared/text';
import { ThrottledStatus } from './status';
import { stateDir } from './state-dir';
import { watchLeftBehind } from './left-behind';

/** telemetry-buffer: the node around a BufferController (src/core/buffer/buffer-controller.ts). */
export = function (RED: RedAPI): void {
  installAdminEndpoints(RED);
  const leftBehind = watchLeftBehind(RED, translator(RED, 'telemetry-buffer'));

  function TelemetryBuffer(this: Node, def: NodeDef): void {
    RED.nodes.createNode(this, def);
    const node = this;
    const t = translator(RED, 'telemetry-buffer');
    const downstream = (def.wires?.[0] ?? []).slice();
    const filesDir = stateDir(RED, def);
    let buffer: BufferController;
    try {
      buffer = new BufferController(
        readOptions(OPTIONS, def),
        {
          send: (msg) => node.send([msg as NodeMessage, null]),
          sendStats: (stats) => node.send([null, { topic: 'stats', payload: stats }]),
          log: { info: (m) => node.log(m), warn: (m) => node.warn(m), error: (m) => node.error(m) },
          t,
          newId: () => RED.util.generateId(),
          now: Date.now,
          downstream: {
            count: downstream.length,
            groupLimit: () => recordGroupLimit(downstream),
            held: () => heldBy(downstream),
            markReleased,
            rowFields: () => rowFieldsOf(downstream),
          },
        },
        { filesDir, nodeId: node.id },
      );
    } catch (err) {
      const message = t('log.notStarted', { error: errorText(err, t) });
      node.error(message);
      node.status({ fill: 'red', shape: 'ring', text: t('status.badConfig') });
      node.on('input', (_msg, _send, done) => done(new Error(message)));
      return;
    }

    const stopWatching = watchCompletions(RED, downstream, (msgId, completion) => buffer.completed(msgId, completion));
    node.telemetryStats = () => buffer.stats();
    const unpublish = publishStats(node, () => buffer.stats());
    const status = new ThrottledStatus(node, () => buffer.badge());
    // Nothing is released until the flow has started, nor while a deploy replaces nodes downstream.
    const stopFollowingDeploys = followDeploys(RED, downstream, {
      pause: () => buffer.pause(),
      lost: () => buffer.resendLost(),
      resume: () => buffer.resume(),
      absent: () => buffer.absent(),
    }, true);
    buffer.start();
    leftBehind.started(node.id, filesDir);
    status.refresh();

    node.on('input', (msg, _send, done) => buffer.input(msg, done));
    // Messages a producer sent just before the deploy are still arriving: take them in first.
    node.on('close', (removed, closed) =>
      buffer.whenQuiet(() => {
        stopFollowingDeploys();
        stopWatching();
        unpublish();
        status.stop();
        buffer.close(removed);
        leftBehind.closed(node.id, removed);
        closed();
      }),
    );
  }

  RED.nodes.registerType('telemetry-buffer', TelemetryBuffer);
};
