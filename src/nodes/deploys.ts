import type { RedAPI } from './red';

export interface DeployHandlers {
  /** A deploy is stopping nodes: send nothing until resume(). */
  pause(): void;
  /**
   * Some downstream node was stopped and has not been replaced yet: whatever was sent to it and not
   * completed by now never will be, so it must be sent again (to the new node, after resume()).
   * Optional for a node that does not track completions.
   */
  lost?(): void;
  /** The deploy has started its nodes (the new downstream nodes exist). */
  resume(): void;
}

/**
 * Keeps a node that is not itself restarted by a deploy from losing what it sends downstream.
 *
 * A modified-nodes deploy stops only the changed nodes (and every node using a changed config
 * node: one whose credentials were sent always counts as changed), then starts their
 * replacements. Node-RED routes a message to the node registered under the wired id when it is
 * sent, and delivers it a turn later; sent to a stopped node, or to an id with no node yet, it
 * vanishes without a completion. So: send nothing from flows:stopping to flows:started, and once
 * the stopped nodes are gone (flows:stopped), treat what they still had as lost. Returns the
 * function that stops listening (on close).
 */
export function followDeploys(RED: RedAPI, downstream: readonly string[], handlers: DeployHandlers): () => void {
  let before: unknown[] = [];
  const stopping = (): void => {
    before = downstream.map((id) => RED.nodes.getNode(id));
    handlers.pause();
  };
  const stopped = (): void => {
    const replaced = downstream.some((id, i) => before[i] !== undefined && before[i] !== null && RED.nodes.getNode(id) !== before[i]);
    before = [];
    if (replaced) handlers.lost?.();
  };
  const started = (): void => handlers.resume();
  RED.events.on('flows:stopping', stopping);
  RED.events.on('flows:stopped', stopped);
  RED.events.on('flows:started', started);
  return () => {
    RED.events.removeListener('flows:stopping', stopping);
    RED.events.removeListener('flows:stopped', stopped);
    RED.events.removeListener('flows:started', started);
  };
}
