import type { CompleteEvent, RedAPI } from './red';

/**
 * Node-RED's only backward signal: a node calling done() fires the runtime's onComplete hook.
 * One hook for the whole package dispatches completions to the nodes watching the node that
 * completed, so the per-message cost stays one Map lookup however many pipelines run.
 */
export type Completion = 'ok' | 'failed' | 'returned' | 'unacknowledged';
type Listener = (msgId: string, completion: Completion) => void;

const HOOK_NAME = 'onComplete.telemetryPipeline';
const listenersByNode = new Map<string, Set<Listener>>();
let installed: RedAPI['hooks'] | undefined;
const marked = new WeakMap<object, Completion>();
const releasedByBuffer = new WeakSet<object>();

const recordGroupLimits = new Map<string, { maxEvents: number }>();

/**
 * A node that takes record groups (telemetry-batcher) announces how many events one group may
 * carry. Returns the function that withdraws the offer (on close).
 */
export function acceptRecordGroups(nodeId: string, maxEvents: number): () => void {
  const offer = { maxEvents };
  recordGroupLimits.set(nodeId, offer);
  return () => {
    // A redeployed node with the same id may have made its own offer already.
    if (recordGroupLimits.get(nodeId) === offer) recordGroupLimits.delete(nodeId);
  };
}

/**
 * Events one record group to all of `nodeIds` may carry (at least 1), or 0 unless every one of them
 * takes record groups: they then get the messages as they came.
 */
export function recordGroupLimit(nodeIds: readonly string[]): number {
  if (nodeIds.length === 0) return 0;
  let limit = Infinity;
  for (const id of nodeIds) {
    const offer = recordGroupLimits.get(id);
    if (offer === undefined) return 0;
    if (offer.maxEvents < limit) limit = offer.maxEvents;
  }
  return limit;
}

/** A telemetry-buffer released this message and will take it back if it is handed back. */
export function markReleased(msg: object): void {
  releasedByBuffer.add(msg);
}

/** Whether handing `msg` back (completion 'returned') reaches a buffer that keeps it, rather than nobody. */
export function canHandBack(msg: object): boolean {
  return releasedByBuffer.has(msg);
}

/**
 * Says how the coming done() for `msg` should be read upstream. 'returned' hands the message back
 * unprocessed (a node closing before its work was confirmed): the buffer then redelivers or spools
 * it instead of counting it delivered. 'failed' reports a final failure without done(err), which
 * would log one error per message. 'unacknowledged': the node gave up waiting for the node after
 * it (its ack timeout), so nobody knows whether the events were written.
 */
export function markCompletion(msg: object, completion: Exclude<Completion, 'ok'>): void {
  marked.set(msg, completion);
}

function dispatch(event: CompleteEvent): void {
  const listeners = listenersByNode.get(event.node.id);
  if (listeners === undefined) return;
  const id = event.msg?._msgid;
  if (typeof id !== 'string') return;
  const hasError = event.error !== undefined && event.error !== null;
  let completion: Completion = hasError ? 'failed' : 'ok';
  const mark = marked.get(event.msg as object);
  if (mark !== undefined) {
    // A mark speaks for one done() only: the same message may be redelivered and succeed later.
    marked.delete(event.msg as object);
    completion = mark;
  }
  for (const listener of listeners) listener(id, completion);
}

/**
 * Calls `listener` whenever one of `nodeIds` completes a message. Returns the function that stops
 * watching; the hook is removed when nobody watches, so an idle package costs nothing.
 */
export function watchCompletions(RED: RedAPI, nodeIds: readonly string[], listener: Listener): () => void {
  if (installed === undefined) {
    RED.hooks.add(HOOK_NAME, dispatch);
    installed = RED.hooks;
  }
  for (const id of nodeIds) {
    let set = listenersByNode.get(id);
    if (set === undefined) listenersByNode.set(id, (set = new Set()));
    set.add(listener);
  }
  return () => {
    for (const id of nodeIds) {
      const set = listenersByNode.get(id);
      if (set === undefined) continue;
      set.delete(listener);
      if (set.size === 0) listenersByNode.delete(id);
    }
    if (listenersByNode.size === 0 && installed !== undefined) {
      installed.remove(HOOK_NAME);
      installed = undefined;
    }
  };
}

const custodians = new Map<string, { held(): Iterable<string> }>();

/**
 * A node of ours announces that it answers for the messages it holds (queued, batching, being
 * written), however long that takes: an outage of any length must not run out the ack timeout of
 * the node in front, which would count those events unacknowledged while they are still on their
 * way. `held` lists the ids of the messages it holds now. Returns the function that withdraws it.
 */
export function declareCustody(nodeId: string, held: () => Iterable<string>): () => void {
  const custodian = { held };
  custodians.set(nodeId, custodian);
  return () => {
    if (custodians.get(nodeId) === custodian) custodians.delete(nodeId);
  };
}

/**
 * The ids of the messages that the nodes `nodeIds` hold now, for an ack timeout to spare them;
 * undefined when none of them answers for what it holds (a node from another package).
 */
export function heldBy(nodeIds: readonly string[]): Set<string> | undefined {
  let out: Set<string> | undefined;
  for (const id of nodeIds) {
    const custodian = custodians.get(id);
    if (custodian === undefined) continue;
    out ??= new Set();
    for (const msgId of custodian.held()) out.add(msgId);
  }
  return out;
}
