/** timescale-connection's options: the one place their defaults and ranges are written (see option-table.ts). */
import type { OptionTable } from '../core/shared/option-table';

export const TLS_MODES = ['off', 'require', 'verify-ca', 'verify-full'] as const;

export const OPTIONS = {
  host: { kind: 'text', name: 'Host', default: 'localhost', required: true, check: 'hostList' },
  port: { kind: 'integer', name: 'Port', default: 5432, min: 1, max: 65535, unit: '' },
  database: { kind: 'text', name: 'Database', default: 'postgres', required: true },
  tls: { kind: 'choice', name: 'TLS', default: 'off', choices: TLS_MODES },
  ca: { kind: 'text', name: 'CA file', default: '', optional: true, requiredWhen: { option: 'tls', is: ['verify-ca'], reason: 'TLS mode verify-ca needs a CA file' } },
  poolSize: { kind: 'integer', name: 'Pool size', default: 4, min: 1, max: 1000, unit: 'connections' },
  applicationName: { kind: 'text', name: 'App name', default: 'node-red-telemetry' },
  connectTimeout: { kind: 'number', name: 'Connect timeout', default: 10_000, min: 0, max: 3_600_000, unit: 'ms', zero: 'no limit' },
  statementTimeout: { kind: 'number', name: 'Statement timeout', default: 30_000, min: 0, max: 86_400_000, unit: 'ms', zero: 'no limit' },
} as const satisfies OptionTable;
