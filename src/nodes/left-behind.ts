import { bufferIds, LeftBehindWatch, type FlowNode } from '../core/buffer/left-behind';
import type { Translate } from '../core/shared/text';
import type { NodeDef, RedAPI } from './red';
import { stateDir } from './state-dir';

/** The listener of the last load of the node file: Node-RED loads it once, a test harness with every flow. */
let listening: { events: RedAPI['events']; listener: () => void } | undefined;

/** Watches for readings deleted buffers left on disk (LeftBehindWatch), after every start of the flows. */
export function watchLeftBehind(RED: RedAPI, t: Translate): LeftBehindWatch {
  const watch = new LeftBehindWatch(t, (line) => RED.log.warn(line));
  const listener = (): void => {
    const nodes: FlowNode[] = [];
    RED.nodes.eachNode((def) => nodes.push(def as FlowNode));
    const buffers = bufferIds(nodes, 'telemetry-buffer').map(({ id, node }) => ({ id, dir: stateDir(RED, node as NodeDef) }));
    watch.check(buffers, [stateDir(RED)]);
  };
  listening?.events.removeListener('flows:started', listening.listener);
  listening = { events: RED.events, listener };
  RED.events.on('flows:started', listener);
  return watch;
}
