/**
 * The contract between telemetry-buffer, telemetry-batcher and timescale-sink: what they tell each
 * other beside the messages. Node-RED gives nodes no channel but messages and done(), so these are
 * registries shared by the package's nodes in one runtime; nothing else touches them. Why and how
 * it behaves under load, outage and deploy: docs/architecture.md ("How pressure travels upstream",
 * "Record groups", "Shutdown and redeploy").
 *
 * 1. Completion: a node calls done() for a message only when it is finished with it (the sink:
 *    committed or dead-lettered); watchCompletions() hands each completion to the node that sent
 *    the message. A completion mark set just before done() (markCompletion) says how it ended, when
 *    not 'ok': 'returned' (given back unprocessed), 'failed', 'unacknowledged'. The batcher and the
 *    sink report their completions themselves (reportCompletions); Node-RED's onComplete hook, which
 *    runs for every done() in the runtime, is installed only while a watched node does not.
 * 2. Release mark: the buffer marks what it releases (markReleased). A node that cannot take a
 *    message hands it back ('returned') only when canHandBack() says a buffer keeps it; else done(err).
 * 3. Record groups ({payload: TelemetryRecord[], telemetryRecords: true}, RecordGroup in
 *    src/core/readings/records.ts): a batcher offers to take them (acceptRecordGroups); the buffer
 *    sends them only when every node wired to it made an offer (recordGroupLimit), each of at most
 *    the smallest offer's events, and completes a group as the messages it came from.
 * 4. Custody: the batcher and the sink declare what they hold (declareCustody); an ack timeout asks
 *    heldBy() first and gives a held message a new deadline instead of counting it unacknowledged.
 * 5. Deploys: followDeploys() stops sending from flows:stopping to flows:started and reports a
 *    downstream node that was replaced, so what it never completed is sent again.
 * 6. Row fields: the sink names the payload fields its rows take seq and source from (its Seq
 *    from and Source from options), and a batcher passes on its own downstream's
 *    (declareRowFields); the buffer and the batcher number each reading in the source its row
 *    will have, and only one that carries no number under that name (rowFieldsOf).
 *
 * Who uses what:
 *   telemetry-buffer:    watchCompletions, markReleased, recordGroupLimit, heldBy, followDeploys,
 *                        rowFieldsOf
 *   telemetry-batcher:   watchCompletions, reportCompletions, markCompletion, canHandBack,
 *                        acceptRecordGroups, declareCustody, heldBy, followDeploys, declareRowFields,
 *                        rowFieldsOf
 *   timescale-sink:      reportCompletions, markCompletion, declareCustody, declareRowFields
 *   telemetry-simulator: followDeploys
 */
import type { Completion } from '../core/shared/completion';
import type { CompleteEvent, RedAPI } from '../nodes/red';
import { DEFAULT_ROW_FIELDS, type RowFields } from '../core/readings/records';

export type { RowFields };

type Listener = (msgId: string, completion: Completion) => void;

// ---- 1. Completion --------------------------------------------------------------------------

// One onComplete hook for the whole package, and only while some watched node does not report its
// completions itself: once installed, Node-RED runs it for every done() of every node in the
// runtime, the buffer's own for each reading included (bench/README.md, "Last full run").
const HOOK_NAME = 'onComplete.telemetryPipeline';
const listenersByNode = new Map<string, Set<Listener>>();
/** Node ids with a registered instance that reports itself, and how many: whether the hook is needed. */
const reportingIds = new Map<string, number>();
/** Instances that report themselves, for good: the hook never tells their done(), whenever it runs. */
const reportingNodes = new WeakSet<object>();
let hooks: RedAPI['hooks'] | undefined;
let installed: RedAPI['hooks'] | undefined;
const marked = new WeakMap<object, Completion>();

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

function deliver(nodeId: string, msg: { _msgid?: unknown } | undefined, error: unknown): void {
  const listeners = listenersByNode.get(nodeId);
  if (listeners === undefined) return;
  const id = msg?._msgid;
  if (typeof id !== 'string') return;
  let completion: Completion = error !== undefined && error !== null ? 'failed' : 'ok';
  const mark = marked.get(msg as object);
  if (mark !== undefined) {
    // A mark speaks for one done() only: the same message may be redelivered and succeed later.
    marked.delete(msg as object);
    completion = mark;
  }
  for (const listener of listeners) listener(id, completion);
}

function dispatch(event: CompleteEvent): void {
  // An instance that reports itself has told this done() already (other hooks may run before this one).
  if (event.node.node !== undefined && reportingNodes.has(event.node.node)) return;
  deliver(event.node.id, event.msg, event.error);
}

/** Installs the hook while some watched node does not report itself, and removes it after. */
function refreshHook(): void {
  let needed = false;
  for (const id of listenersByNode.keys()) {
    if (!reportingIds.has(id)) {
      needed = true;
      break;
    }
  }
  if (needed && installed === undefined && hooks !== undefined) {
    hooks.add(HOOK_NAME, dispatch);
    installed = hooks;
  } else if (!needed && installed !== undefined) {
    installed.remove(HOOK_NAME);
    installed = undefined;
  }
}

/**
 * Calls `listener` whenever one of `nodeIds` completes a message. Returns the function that stops
 * watching; the hook is removed when nobody watches, so an idle package costs nothing.
 */
export function watchCompletions(RED: RedAPI, nodeIds: readonly string[], listener: Listener): () => void {
  hooks = RED.hooks;
  for (const id of nodeIds) {
    let set = listenersByNode.get(id);
    if (set === undefined) listenersByNode.set(id, (set = new Set()));
    set.add(listener);
  }
  refreshHook();
  return () => {
    for (const id of nodeIds) {
      const set = listenersByNode.get(id);
      if (set === undefined) continue;
      set.delete(listener);
      if (set.size === 0) listenersByNode.delete(id);
    }
    refreshHook();
  };
}

/**
 * A node of this package (telemetry-batcher, timescale-sink) reports its completions itself, every
 * instance, also one whose configuration failed: `wrap(msg, done)` is the done() to use for `msg`,
 * which calls Node-RED's and tells the watchers. `withdraw` once the node has closed: the hook is
 * then installed again while nobody reports for its id (a done() after close is still told once).
 */
export function reportCompletions(node: { id: string }): { wrap(msg: object, done: (err?: Error) => void): (err?: Error) => void; withdraw(): void } {
  const nodeId = node.id;
  reportingNodes.add(node);
  reportingIds.set(nodeId, (reportingIds.get(nodeId) ?? 0) + 1);
  refreshHook();
  let withdrawn = false;
  return {
    wrap: (msg, done) => (err) => {
      done(err);
      deliver(nodeId, msg as { _msgid?: unknown }, err);
    },
    withdraw() {
      if (withdrawn) return;
      withdrawn = true;
      const count = (reportingIds.get(nodeId) ?? 1) - 1;
      if (count > 0) reportingIds.set(nodeId, count);
      else reportingIds.delete(nodeId);
      refreshHook();
    },
  };
}

// ---- 2. Release mark ------------------------------------------------------------------------

const releasedByBuffer = new WeakSet<object>();

/** A telemetry-buffer released this message and will take it back if it is handed back. */
export function markReleased(msg: object): void {
  releasedByBuffer.add(msg);
}

/** Whether handing `msg` back (completion 'returned') reaches a buffer that keeps it, rather than nobody. */
export function canHandBack(msg: object): boolean {
  return releasedByBuffer.has(msg);
}

// ---- 3. Record groups ------------------------------------------------------------------------

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

// ---- 4. Custody ------------------------------------------------------------------------------

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

// ---- 5. Deploys ------------------------------------------------------------------------------

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
  /**
   * The flows have started without a node wired after this one (disabled). What is sent to it
   * vanishes without a completion, so send nothing until a deploy brings it back. Without this
   * handler, such a start resumes.
   */
  absent?(): void;
}

/** How long a node that waits for the flows' first start waits at most (followDeploys). */
const START_FALLBACK_MS = 2000;

/** Whether a node wired after this one is not running (disabled): what is sent to it vanishes. */
function missingDownstream(RED: RedAPI, downstream: readonly string[]): boolean {
  return downstream.some((id) => !RED.nodes.getNode(id));
}

/**
 * Keeps a node that is not itself restarted by a deploy from losing what it sends downstream.
 *
 * A modified-nodes deploy stops only the changed nodes (and every node using a changed config
 * node: one whose credentials were sent always counts as changed), then starts their
 * replacements. Node-RED routes a message to the node registered under the wired id when it is
 * sent, and delivers it a turn later; sent to a stopped node, or to an id with no node yet, it
 * vanishes without a completion. So: send nothing from flows:stopping to flows:started, and once
 * the stopped nodes are gone (flows:stopped), treat what they still had as lost; and while a node
 * wired after is not running (disabled), keep sending nothing. A node that `waitsForStart`
 * (paused until the flows have started) is told they have after START_FALLBACK_MS if the runtime
 * never says so. Returns the function that stops listening (on close).
 */
export function followDeploys(RED: RedAPI, downstream: readonly string[], handlers: DeployHandlers, waitsForStart = false): () => void {
  let before: unknown[] = [];
  let fallback: NodeJS.Timeout | undefined;
  const stopping = (): void => {
    before = downstream.map((id) => RED.nodes.getNode(id));
    handlers.pause();
  };
  const stopped = (): void => {
    const replaced = downstream.some((id, i) => before[i] !== undefined && before[i] !== null && RED.nodes.getNode(id) !== before[i]);
    before = [];
    if (replaced) handlers.lost?.();
  };
  const started = (): void => {
    clearTimeout(fallback);
    fallback = undefined;
    if (handlers.absent !== undefined && missingDownstream(RED, downstream)) handlers.absent();
    else handlers.resume();
  };
  RED.events.on('flows:stopping', stopping);
  RED.events.on('flows:stopped', stopped);
  RED.events.on('flows:started', started);
  // A node that waits for the flows' first start: in case the runtime never announces it.
  if (waitsForStart) fallback = setTimeout(started, START_FALLBACK_MS);
  return () => {
    clearTimeout(fallback);
    RED.events.removeListener('flows:stopping', stopping);
    RED.events.removeListener('flows:stopped', stopped);
    RED.events.removeListener('flows:started', started);
  };
}

// ---- 6. Row fields ---------------------------------------------------------------------------

const rowFields = new Map<string, () => RowFields>();
/** Counts declarations and withdrawals: an answer of rowFieldsOf is kept until it moves. */
let rowFieldsVersion = 0;
const rowFieldsAnswers = new WeakMap<readonly string[], { version: number; fields: RowFields }>();
/** The nodes whose fields are being asked for: a batcher wired in a loop must not ask itself again. */
const asking = new Set<string>();

/**
 * A node of ours names the payload fields a reading's own sequence number and source are read
 * from after it: the sink its Seq from and Source from options, a batcher what its own downstream
 * reads. Returns the function that withdraws them: call it when the node is deleted, not on every
 * close, so that a redeployed node keeps its fields until its new instance declares its own.
 */
export function declareRowFields(nodeId: string, fields: () => RowFields): () => void {
  rowFields.set(nodeId, fields);
  rowFieldsVersion++;
  return () => {
    if (rowFields.get(nodeId) !== fields) return;
    rowFields.delete(nodeId);
    rowFieldsVersion++;
  };
}

/**
 * The payload fields the nodes `nodeIds` read a reading's sequence number and source from: the
 * ones those of ours declared (a debug or an MQTT out beside them reads none), else the defaults
 * (none of ours, or two that differ). Kept per `nodeIds` array until a declaration changes: a
 * batcher asks for every message.
 */
export function rowFieldsOf(nodeIds: readonly string[]): RowFields {
  const kept = rowFieldsAnswers.get(nodeIds);
  if (kept !== undefined && kept.version === rowFieldsVersion) return kept.fields;
  let found: RowFields | undefined;
  for (const id of nodeIds) {
    const declared = rowFields.get(id);
    if (declared === undefined || asking.has(id)) continue;
    asking.add(id);
    let fields: RowFields;
    try {
      fields = declared();
    } finally {
      asking.delete(id);
    }
    if (found !== undefined && (fields.seq !== found.seq || fields.source !== found.source)) {
      found = DEFAULT_ROW_FIELDS;
      break;
    }
    found = fields;
  }
  const answer = found ?? DEFAULT_ROW_FIELDS;
  rowFieldsAnswers.set(nodeIds, { version: rowFieldsVersion, fields: answer });
  return answer;
}
