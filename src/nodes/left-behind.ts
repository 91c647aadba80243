import { leftBehind } from '../core/buffer/left-behind';
import { diskDirFor } from '../core/buffer/disk-tier-settings';
import { spoolFileFor } from '../core/buffer/spool';
import { formatBytes } from '../core/shared/badge-text';
import type { Translate } from '../core/shared/text';
import type { RedAPI } from './red';
import { stateDir } from './state-dir';

/** The files a buffer keeps its readings in, which no other buffer must be warned about. */
function filesOf(dir: string, nodeId: string): string[] {
  return [diskDirFor(dir, nodeId), spoolFileFor(dir, nodeId)];
}

interface Watcher {
  started(nodeId: string, dir: string): void;
  closed(nodeId: string, removed: boolean): void;
}

/** The listener of the last load of the node file: Node-RED loads it once, a test harness with every flow. */
let listening: { events: RedAPI['events']; listener: () => void } | undefined;

/**
 * Warns once per file and process, after every start of the flows, about readings that a
 * telemetry-buffer left on disk and no deployed buffer will read: a deleted buffer's backlog, or a
 * buffer pasted back as a copy, with a new id. The log line at deletion says the same, but it is
 * long gone by the next restart. Returns what the buffer node calls as its nodes start and close.
 */
export function watchLeftBehind(RED: RedAPI, t: Translate): Watcher {
  const running = new Map<string, string>();
  const told = new Set<string>();
  const listener = (): void => {
    const owned = new Set<string>();
    const dirs = new Set<string>([stateDir(RED)]);
    for (const [nodeId, dir] of running) {
      dirs.add(dir);
      for (const file of filesOf(dir, nodeId)) owned.add(file);
    }
    RED.nodes.eachNode((def) => {
      if (def.type === 'telemetry-buffer') for (const file of filesOf(stateDir(RED, def), def.id)) owned.add(file);
    });
    for (const dir of dirs) {
      for (const found of leftBehind(dir, owned)) {
        if (told.has(found.path)) continue;
        told.add(found.path);
        const params = { path: found.path, id: found.nodeId, bytes: formatBytes(found.bytes) };
        RED.log.warn(found.events === undefined ? t('log.spoolLeftBehind', params) : t('log.diskLeftBehind', { ...params, events: found.events }));
      }
    }
  };
  listening?.events.removeListener('flows:started', listening.listener);
  listening = { events: RED.events, listener };
  RED.events.on('flows:started', listener);
  return {
    started: (nodeId, dir) => {
      running.set(nodeId, dir);
    },
    closed: (nodeId, removed) => {
      const dir = running.get(nodeId);
      running.delete(nodeId);
      // A deleted buffer's own log line has just said where its readings are.
      if (removed && dir !== undefined) for (const file of filesOf(dir, nodeId)) told.add(file);
    },
  };
}
