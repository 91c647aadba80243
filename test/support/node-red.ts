/** A real Node-RED runtime (node-red-node-test-helper) plus small test-only nodes. */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import helper from 'node-red-node-test-helper';

helper.init(require.resolve('node-red'));

/** Node-RED's user directory for this test run: buffers spool here on close. */
export const userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'telemetry-test-userdir-'));
helper.settings({ userDir });
export const spoolDir = path.join(userDir, 'telemetry-spool');

/** Each test starts without spools left by an earlier test's nodes of the same id. */
export function clearSpools(): void {
  fs.rmSync(spoolDir, { recursive: true, force: true });
}

export { helper };

// The same module instance the built nodes use, so a mark set here is read by their hook.
const { markCompletion } = require('../../nodes/lib/contract/index.js') as { markCompletion(msg: object, completion: 'returned' | 'failed'): void };

// The hooks module the runtime uses; tests count completions through it like the nodes do.
export const runtimeHooks: { add(name: string, fn: (evt: any) => void): void; remove(name: string): void } = require('@node-red/util').hooks;

/**
 * node-red-node-test-helper builds the node API from a mock runtime without `hooks`, while the
 * real runtime (Node-RED >= 2) always has it. Give our node modules the runtime's real hooks, the
 * same object that fires onComplete when a node calls done().
 */
export function withHooks(nodeModule: (RED: any) => void): (RED: any) => void {
  return (RED: any) => {
    if (RED.hooks === undefined) RED.hooks = runtimeHooks;
    return nodeModule(RED);
  };
}

export interface Held {
  msg: Record<string, unknown>;
  done: (err?: Error) => void;
}

/**
 * `test-hold`: a downstream node that completes nothing until the test says so, standing in for a
 * slow database. Each instance's held messages are in `held[nodeId]`.
 */
export const held: Record<string, Held[]> = {};
export const received: Record<string, Record<string, unknown>[]> = {};

export function testNodes(RED: any): void {
  RED.nodes.registerType('test-hold', function (this: any, config: any) {
    RED.nodes.createNode(this, config);
    const list: Held[] = (held[config.id] = []);
    const all: Record<string, unknown>[] = (received[config.id] = []);
    const mode: string = config.mode ?? 'hold';
    this.on('input', (msg: Record<string, unknown>, _send: unknown, done: (err?: Error) => void) => {
      all.push(msg);
      if (mode === 'fast') done();
      else list.push({ msg, done });
    });
    // mode 'return': on close, hands back what it holds unprocessed, as timescale-sink does.
    if (mode === 'return') {
      this.on('close', () => {
        for (const h of list.splice(0)) {
          markCompletion(h.msg, 'returned');
          h.done();
        }
      });
    }
  });
}

/**
 * `test-producer`: stands in for an input node (MQTT in, a PLC poller). On input, sends every
 * message of `producerQueue[nodeId]` with node.send, `perTurn` per event-loop turn (all in one turn
 * when 0), as an input node emits what arrives.
 */
export const producerQueue: Record<string, Record<string, unknown>[]> = {};

export function producerNodes(RED: any): void {
  RED.nodes.registerType('test-producer', function (this: any, config: any) {
    RED.nodes.createNode(this, config);
    const perTurn: number = config.perTurn ?? 0;
    this.on('input', (_msg: unknown, _send: unknown, done: () => void) => {
      const list = producerQueue[config.id] ?? [];
      const step = (from: number): void => {
        const to = perTurn > 0 ? Math.min(list.length, from + perTurn) : list.length;
        for (let i = from; i < to; i++) this.send(list[i]);
        if (to < list.length) setImmediate(() => step(to));
      };
      step(0);
      done();
    });
  });
}

/** Completes up to `n` held messages of a test-hold node (all when n is omitted), oldest first. */
export function release(nodeId: string, n = Infinity): number {
  const list = held[nodeId];
  const take = list.splice(0, Math.min(n, list.length));
  for (const h of take) h.done();
  return take.length;
}

/** Lets queued setImmediate/Node-RED deliveries run. */
export function settle(ms = 20): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Counts done() calls per node id and per message id (to prove exactly one done per message). */
export class CompletionCounter {
  readonly byNode = new Map<string, Map<string, number>>();
  private readonly name = `onComplete.testCounter${Math.random().toString(36).slice(2)}`;

  constructor() {
    runtimeHooks.add(this.name, (evt: { node: { id: string }; msg?: { _msgid?: string } }) => {
      let m = this.byNode.get(evt.node.id);
      if (m === undefined) this.byNode.set(evt.node.id, (m = new Map()));
      const id = evt.msg?._msgid ?? '?';
      m.set(id, (m.get(id) ?? 0) + 1);
    });
  }

  total(nodeId: string): number {
    let sum = 0;
    for (const n of this.byNode.get(nodeId)?.values() ?? []) sum += n;
    return sum;
  }

  /** Message ids completed more than once by this node. */
  repeats(nodeId: string): string[] {
    return [...(this.byNode.get(nodeId) ?? new Map<string, number>()).entries()].filter(([, n]) => n > 1).map(([id]) => id);
  }

  stop(): void {
    runtimeHooks.remove(this.name);
  }
}

/** Every badge node `id` has shown since the flow was loaded, oldest first. */
export function badgesOf(id: string): Array<{ fill: string; shape: string; text: string }> {
  return (helper as any)._NodePrototype.status.getCalls().filter((call: any) => call.thisValue.id === id).map((call: any) => call.args[0]);
}
