import * as fs from 'fs';
import * as path from 'path';
import { diskDirFor, DISK_SUFFIX } from './disk-tier-settings';
import { backlogIn } from './segment-files';
import { SPOOL_SUFFIX, spoolFileFor } from './spool';
import { formatBytes } from '../shared/badge-text';
import type { Translate } from '../shared/text';

/** Readings a telemetry-buffer left in its state directory that no deployed buffer will read. */
export interface LeftBehind {
  /** The disk tier's directory (`<id>.disk`) or the shutdown spool (`<id>.jsonl`). */
  path: string;
  /** The id of the buffer that wrote it (the file name, as stateFile made it safe). */
  nodeId: string;
  /** About how many readings wait on disk; undefined for a spool, counted only when it is read. */
  events?: number;
  bytes: number;
}

/** A node of the deployed flows as Node-RED defines it (RED.nodes.eachNode). */
export interface FlowNode {
  id: string;
  type: string;
  z?: string;
  [key: string]: unknown;
}

/** Whether a spool has a line after its header: one that closed holding nothing writes the header alone. */
function holdsMessages(file: string): boolean {
  const head = Buffer.alloc(64 * 1024);
  const fd = fs.openSync(file, 'r');
  try {
    const got = fs.readSync(fd, head, 0, head.length, 0);
    const end = head.subarray(0, got).indexOf(0x0a);
    // A header longer than what was read: say so rather than miss readings.
    if (end < 0) return got === head.length;
    return head.subarray(end + 1, got).toString('utf8').trim() !== '';
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * What lies in `dir` with readings in it and is none of `skip` (the paths the deployed buffers
 * use, and those already reported): the backlog of a deleted buffer, or of one pasted back as a
 * copy with a new id. Only read, never changed. Unreadable entries are passed over: this is a
 * warning, not a check.
 */
export function leftBehind(dir: string, skip: ReadonlySet<string>): LeftBehind[] {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  const found: LeftBehind[] = [];
  for (const entry of entries) {
    const file = path.join(dir, entry.name);
    if (skip.has(file)) continue;
    try {
      if (entry.isDirectory() && entry.name.endsWith(DISK_SUFFIX)) {
        const { events, bytes } = backlogIn(file);
        if (events > 0) found.push({ path: file, nodeId: entry.name.slice(0, -DISK_SUFFIX.length), events, bytes });
      } else if (entry.isFile() && entry.name.endsWith(SPOOL_SUFFIX) && holdsMessages(file)) {
        found.push({ path: file, nodeId: entry.name.slice(0, -SPOOL_SUFFIX.length), bytes: fs.statSync(file).size });
      }
    } catch {
      /* gone or unreadable since the listing */
    }
  }
  return found;
}

/**
 * The ids the deployed buffers run under, with their definitions: a buffer inside a subflow runs
 * as `<instance id>-<its id>` (Node-RED >= 3.1), nested instances chaining their ids. Disabled
 * nodes count too: their files are theirs.
 */
export function bufferIds(nodes: readonly FlowNode[], type: string): Array<{ id: string; node: FlowNode }> {
  const subflows = new Set(nodes.filter((n) => n.type === 'subflow').map((n) => n.id));
  const inside = new Map<string, FlowNode[]>();
  for (const n of nodes) if (n.z !== undefined && subflows.has(n.z)) inside.set(n.z, [...(inside.get(n.z) ?? []), n]);
  const found: Array<{ id: string; node: FlowNode }> = [];
  const visit = (n: FlowNode, id: string, depth: number): void => {
    if (n.type === type) found.push({ id, node: n });
    // A subflow that contains an instance of itself is refused by the editor; the depth is a guard.
    else if (n.type.startsWith('subflow:') && depth < 16) for (const inner of inside.get(n.type.slice('subflow:'.length)) ?? []) visit(inner, `${id}-${inner.id}`, depth + 1);
  };
  for (const n of nodes) if (n.z === undefined || !subflows.has(n.z)) visit(n, n.id, 0);
  return found;
}

/**
 * Warns once per file and process, after every start of the flows, about readings a
 * telemetry-buffer left on disk that no deployed buffer will read. The log line at deletion says
 * the same, but it is long gone by the next restart.
 */
export class LeftBehindWatch {
  private readonly running = new Map<string, string>();
  private readonly told = new Set<string>();

  constructor(
    private readonly t: Translate,
    private readonly warn: (line: string) => void,
  ) {}

  /** A buffer started, keeping its files in `dir`. */
  started(nodeId: string, dir: string): void {
    this.running.set(nodeId, dir);
  }

  /** A buffer closed; deleted (`removed`), its own log line has just said where its readings are. */
  closed(nodeId: string, removed: boolean): void {
    const dir = this.running.get(nodeId);
    this.running.delete(nodeId);
    if (removed && dir !== undefined) for (const file of filesOf(dir, nodeId)) this.told.add(file);
  }

  /** The flows started: `buffers`, every deployed buffer's id and directory; `dirs`, where else to look. */
  check(buffers: Iterable<{ id: string; dir: string }>, dirs: Iterable<string>): void {
    const skip = new Set(this.told);
    const where = new Set(dirs);
    for (const [nodeId, dir] of this.running) {
      where.add(dir);
      for (const file of filesOf(dir, nodeId)) skip.add(file);
    }
    for (const { id, dir } of buffers) for (const file of filesOf(dir, id)) skip.add(file);
    for (const dir of where) {
      for (const found of leftBehind(dir, skip)) {
        this.told.add(found.path);
        const params = { path: found.path, id: found.nodeId, bytes: formatBytes(found.bytes) };
        this.warn(found.events === undefined ? this.t('log.spoolLeftBehind', params) : this.t('log.diskLeftBehind', { ...params, events: found.events }));
      }
    }
  }
}

/** The files a buffer keeps its readings in. */
function filesOf(dir: string, nodeId: string): string[] {
  return [diskDirFor(dir, nodeId), spoolFileFor(dir, nodeId)];
}
