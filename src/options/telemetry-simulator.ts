/** telemetry-simulator's options: the one place their defaults and ranges are written (see option-table.ts). */
import type { OptionTable } from '../core/shared/option-table';

export const OPTIONS = {
  sources: { kind: 'integer', name: 'Sources', doc: 'Shared out over the kinds by the weights.', default: 10, min: 1, max: 1_000_000, unit: 'sources' },
  rate: { kind: 'number', name: 'Rate', default: 100, min: 0.001, max: 10_000_000, unit: 'events/s' },
  mixSample: { kind: 'number', name: 'Sample weight', doc: 'A relative weight; at least one weight above 0.', default: 80, min: 0, max: 1_000_000, unit: '' },
  mixDetection: { kind: 'number', name: 'Detection weight', doc: 'A relative weight.', default: 10, min: 0, max: 1_000_000, unit: '' },
  mixCounter: { kind: 'number', name: 'Counter weight', doc: 'A relative weight.', default: 10, min: 0, max: 1_000_000, unit: '' },
  eventsPerMessage: { kind: 'integer', name: 'Events per message', doc: '1: each message carries one event.', default: 1, min: 1, max: 100_000, unit: 'events' },
  burstEvery: { kind: 'number', name: 'Burst every', default: 0, min: 0, max: 86_400, unit: 's', zero: 'no bursts' },
  burstSize: { kind: 'integer', name: 'Burst size', default: 0, min: 0, max: 10_000_000, unit: 'events' },
  count: { kind: 'integer', name: 'Stop after', default: 0, min: 0, max: 1_000_000_000_000, unit: 'messages', zero: 'never stop' },
  topicPrefix: { kind: 'text', name: 'Topic prefix', default: 'sim/line1', optional: true },
  seed: { kind: 'integer', name: 'Seed', default: 1, min: 0, max: 0xffffffff, unit: '' },
  autoStart: { kind: 'flag', name: 'Start on deploy', doc: 'Else on `msg.control = "start"`.', default: true },
} as const satisfies OptionTable;
