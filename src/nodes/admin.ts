import { PipelineNodeStats, toPrometheus } from '../core/shared/prometheus';
import type { Node, RedAPI } from './red';

/**
 * One admin endpoint for every pipeline node in the runtime, behind Node-RED's admin
 * authentication (permission `telemetry.read`, which `read` and `*` include):
 *   GET <httpAdminRoot>/telemetry/stats    JSON counters of every pipeline node
 *   GET <httpAdminRoot>/telemetry/metrics  the same in Prometheus text format
 */
export const STATS_PATH = '/telemetry/stats';
export const METRICS_PATH = '/telemetry/metrics';

const live = new Map<string, { node: Node & { z?: string }; stats: () => object }>();
const installedOn = new WeakSet<object>();

interface HttpAdmin {
  get(path: string, ...handlers: unknown[]): void;
}
interface Response {
  json(body: unknown): void;
  type(t: string): Response;
  send(body: string): void;
}

function snapshot(): PipelineNodeStats[] {
  return [...live.values()].map(({ node, stats }) => ({
    id: node.id,
    type: node.type,
    name: node.name ?? '',
    flow: node.z,
    stats: stats() as Record<string, unknown>,
  }));
}

export function installAdminEndpoints(RED: RedAPI): void {
  const httpAdmin = RED.httpAdmin as HttpAdmin | undefined;
  if (httpAdmin === undefined || installedOn.has(httpAdmin)) return;
  installedOn.add(httpAdmin);
  const permission = RED.auth?.needsPermission('telemetry.read') ?? ((_req: unknown, _res: unknown, next: () => void) => next());
  httpAdmin.get(STATS_PATH, permission, (_req: unknown, res: Response) => {
    res.json({ time: new Date().toISOString(), nodes: snapshot() });
  });
  httpAdmin.get(METRICS_PATH, permission, (_req: unknown, res: Response) => {
    res.type('text/plain; version=0.0.4; charset=utf-8').send(toPrometheus(snapshot()));
  });
}

/** Lists the node on the endpoints until the returned function is called (on close). */
export function publishStats(node: Node, stats: () => object): () => void {
  live.set(node.id, { node, stats });
  return () => {
    if (live.get(node.id)?.node === node) live.delete(node.id);
  };
}
