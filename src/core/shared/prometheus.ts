/**
 * Prometheus text exposition (format 0.0.4) of pipeline counters. Every numeric field of a node's
 * stats becomes `telemetry_<node type>_<field>`, labelled with the node's id and name; fields that
 * can go down are gauges, the rest are counters (suffixed _total).
 */
export interface PipelineNodeStats {
  id: string;
  type: string;
  name: string;
  flow?: string;
  stats: Record<string, unknown>;
}

const GAUGES = new Set([
  'depth', 'capacity', 'highWater', 'inFlight', 'inFlightEvents', 'window', 'heldEvents', 'openBatches', 'waitingBatches',
  'queued', 'queuedEvents', 'sources', 'rate', 'rowsPerSecond', 'running', 'up', 'since', 'idempotent', 'distinctRows', 'tableNotices',
  'heldAsText', 'heldAsTextBytes', 'ringBytes', 'maxBytes', 'spillPending', 'diskDepth', 'diskBacklogBytes', 'diskBytes', 'diskMaxBytes', 'segments', 'diskDrainSeconds',
]);

function snake(name: string): string {
  return name.replace(/([a-z0-9])([A-Z])/g, '$1_$2').replace(/[^A-Za-z0-9_]/g, '_').toLowerCase();
}

function labelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

export function toPrometheus(nodes: readonly PipelineNodeStats[]): string {
  // Group samples by metric so each metric has one HELP/TYPE header, as the format requires.
  const metrics = new Map<string, { type: 'gauge' | 'counter'; lines: string[] }>();
  for (const node of nodes) {
    const labels = `node_id="${labelValue(node.id)}",node_name="${labelValue(node.name)}"${node.flow ? `,flow="${labelValue(node.flow)}"` : ''}`;
    for (const [field, value] of Object.entries(node.stats)) {
      let numeric: number;
      if (typeof value === 'number' && Number.isFinite(value)) numeric = value;
      else if (typeof value === 'boolean') numeric = value ? 1 : 0;
      else continue;
      const gauge = GAUGES.has(field);
      const name = `telemetry_${snake(node.type)}_${snake(field)}${gauge ? '' : '_total'}`;
      let metric = metrics.get(name);
      if (metric === undefined) metrics.set(name, (metric = { type: gauge ? 'gauge' : 'counter', lines: [] }));
      metric.lines.push(`${name}{${labels}} ${numeric}`);
    }
  }
  let out = '';
  for (const [name, metric] of metrics) {
    out += `# TYPE ${name} ${metric.type}\n${metric.lines.join('\n')}\n`;
  }
  return out;
}
