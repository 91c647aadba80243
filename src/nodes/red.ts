/**
 * The small part of the Node-RED runtime API these nodes use. Typed here rather than through
 * @types/node-red, which lags the runtime (it has no hooks) and pulls in express typings.
 */
export interface NodeMessage {
  _msgid?: string;
  topic?: unknown;
  payload?: unknown;
  [key: string]: unknown;
}

export type SendFn = (msg: NodeMessage | null | (NodeMessage | NodeMessage[] | null)[]) => void;
export type DoneFn = (err?: Error) => void;

export interface NodeStatus {
  fill?: 'red' | 'green' | 'yellow' | 'blue' | 'grey';
  shape?: 'ring' | 'dot';
  text?: string;
}

export interface Node {
  id: string;
  type: string;
  name?: string;
  credentials?: Record<string, string | undefined>;
  on(event: 'input', listener: (msg: NodeMessage, send: SendFn, done: DoneFn) => void): void;
  on(event: 'close', listener: (removed: boolean, done: () => void) => void): void;
  send: SendFn;
  status(status: NodeStatus | Record<string, never>): void;
  log(msg: string): void;
  warn(msg: string): void;
  error(err: string | Error, msg?: NodeMessage): void;
  /** Our pipeline nodes publish their exact counters here (admin endpoint, tests). */
  telemetryStats?: () => object;
}

export interface NodeDef {
  id: string;
  type: string;
  name?: string;
  wires?: string[][];
  [key: string]: unknown;
}

export interface CompleteEvent {
  msg?: NodeMessage;
  error?: unknown;
  /** `node` is the instance that called done() (Node-RED >= 1.3). */
  node: { id: string; node?: object };
}

export interface Hooks {
  add(name: string, hook: (event: CompleteEvent) => void): void;
  remove(name: string): void;
}

export interface RedAPI {
  /** The runtime's i18n, bound to the calling node file's message catalog. */
  _?: (key: string, params?: Record<string, string | number>) => string;
  nodes: {
    createNode(node: object, def: NodeDef): void;
    registerType(type: string, ctor: (this: Node, def: NodeDef) => void, opts?: { credentials?: Record<string, { type: 'text' | 'password' }>; settings?: Record<string, unknown> }): void;
    getNode(id: string): unknown;
    /** Every node of the deployed flows, as defined (disabled ones too; not the copies inside subflow instances). */
    eachNode(visit: (def: NodeDef) => void): void;
  };
  hooks: Hooks;
  events: { on(event: string, listener: (...args: unknown[]) => void): void; removeListener(event: string, listener: (...args: unknown[]) => void): void };
  settings: Record<string, unknown> & { userDir?: string };
  httpAdmin?: unknown;
  auth?: { needsPermission(permission: string): unknown };
  log: { info(msg: string): void; warn(msg: string): void; error(msg: string): void };
  util: { cloneMessage<T>(msg: T): T; generateId(): string; evaluateNodeProperty(value: unknown, type: string, node: Node, msg: NodeMessage): unknown };
}
