/**
 * timescale-sink: writes telemetry records to PostgreSQL/TimescaleDB. The node reads its options,
 * builds a SinkController (src/core/sink/sink-controller.ts) on the connection's pool, and wires
 * it to Node-RED: input and close, done() once a message's rows are committed (the backpressure
 * signal the buffer waits for), dead-letter and stats messages, log lines and a throttled badge.
 */
import { readOptions } from '../core/shared/option-table';
import { SinkController, type SinkInput } from '../core/sink/sink-controller';
import { OPTIONS } from '../options/timescale-sink';
import { installAdminEndpoints, publishStats } from './admin';
import { declareCustody, declareRowFields, markCompletion, reportCompletions } from '../contract';
import type { DoneFn, Node, NodeDef, NodeMessage, RedAPI, SendFn } from './red';
import { translator } from './i18n';
import { errorText } from '../core/shared/text';
import { ThrottledStatus } from './status';
import { nodeCloseTimeout, type TimescaleConnectionApi } from './timescale-red';
import { stateFile } from '../core/shared/state-files';
import { stateDir } from './state-dir';

interface Port {
  msg: NodeMessage;
  send: SendFn;
  done: DoneFn;
}

export = function (RED: RedAPI): void {
  installAdminEndpoints(RED);
  // Node-RED names no variable for its user directory; the examples' dead-letter file node writes to
  // `${NODE_RED_USER_DIR}/...` (a relative path would land in the process's working directory).
  if (process.env.NODE_RED_USER_DIR === undefined && RED.settings.userDir) process.env.NODE_RED_USER_DIR = RED.settings.userDir;

  function TimescaleSink(this: Node, def: NodeDef): void {
    RED.nodes.createNode(this, def);
    const node = this;
    // Every instance tells its completions itself, one whose configuration failed too (src/contract).
    const report = reportCompletions(node);
    node.on('close', () => report.withdraw());
    const t = translator(RED, 'timescale-sink');
    let db: TimescaleConnectionApi | undefined;
    let controller: SinkController<Port>;
    try {
      const conn = RED.nodes.getNode(String(def.connection ?? '')) as TimescaleConnectionApi | null;
      if (!conn || typeof conn.acquire !== 'function') throw new Error(t('log.noConnection'));
      const options = readOptions(OPTIONS, def);
      // Totals and sequence numbers outlive this instance, beside the buffer's spool files.
      const fileBase = stateFile(stateDir(RED, def), node.id);
      // Last: from here on the connection counts this node as a user until close releases it.
      const pool = conn.acquire(node.id);
      db = conn;
      controller = new SinkController<Port>(pool, options, conn, { fileBase, closeLimitMs: nodeCloseTimeout(RED.settings) - 3000 }, {
        finish({ msg, send, done }, how) {
          if (how.deadLetter) send([how.deadLetter, null]);
          if (how.completion) markCompletion(msg, how.completion);
          done(how.error === undefined ? undefined : new Error(how.error));
        },
        stats: (payload) => node.send([null, { topic: 'stats', payload }]),
        log(level, text, payload) {
          if (level === 'error') node.error(text, { _msgid: RED.util.generateId(), ...payload });
          else if (level === 'warn') node.warn(text);
          else node.log(text);
        },
        // Called only once the controller runs (never while it is built), when status exists.
        changed: () => status.refresh(),
        t,
      });
    } catch (err) {
      db?.release(node.id);
      const reason = t('log.notStarted', { error: errorText(err, t) });
      node.error(reason);
      node.status({ fill: 'red', shape: 'ring', text: t('status.badConfig') });
      node.on('input', (msg, _send, done) => report.wrap(msg, done)(new Error(reason)));
      return;
    }
    const connection = db;
    const stats = () => controller.stats();
    node.telemetryStats = stats;
    const unpublish = publishStats(node, stats);
    const withdrawCustody = declareCustody(node.id, () => controller.held());
    const withdrawRowFields = declareRowFields(node.id, () => controller.rowFields);
    const status = new ThrottledStatus(node, () => controller.badge(Date.now()));
    status.refresh();

    node.on('input', (msg, send, nodeDone) => {
      const done = report.wrap(msg, nodeDone);
      if (msg.control === 'stats') {
        send([null, { topic: 'stats', payload: controller.stats() }]);
        done();
        return;
      }
      controller.receive(msg as SinkInput, { msg, send, done });
    });

    node.on('close', (removed: boolean, closed: () => void) => {
      controller.close(removed).finally(() => {
        withdrawCustody();
        if (removed) withdrawRowFields();
        unpublish();
        status.stop();
        connection.release(node.id);
        node.status({});
        closed();
      });
    });
  }

  RED.nodes.registerType('timescale-sink', TimescaleSink as (this: Node, def: NodeDef) => void);
};
