/** timescale-connection's options: the one place their defaults and ranges are written (see option-table.ts). */
import type { OptionTable } from '../core/shared/option-table';

export const TLS_MODES = ['off', 'require', 'verify-ca', 'verify-full'] as const;

export const OPTIONS = {
  host: { kind: 'text', name: 'Host', doc: 'A comma-separated list of hosts for failover, each with an optional `:port` (`db1:5432,db2:5433`; an IPv6 address in brackets before a port: `[fd00::1]:5432`).', default: 'localhost', required: true, check: 'hostList' },
  port: { kind: 'integer', name: 'Port', default: 5432, min: 1, max: 65535, unit: '' },
  database: { kind: 'text', name: 'Database', default: 'postgres', required: true },
  tls: { kind: 'choice', name: 'TLS', doc: '`off`: plain TCP. `require`: encrypted, the server\'s certificate is not checked. `verify-ca`: the certificate must be signed by the CA file (host name not checked). `verify-full`: signed by the CA file, or by a system CA when the CA file is empty, and issued for the host name.', default: 'off', choices: TLS_MODES },
  ca: { kind: 'text', name: 'CA file', doc: 'Path of a PEM file with the CA certificate(s), read at deploy.', default: '', optional: true, requiredWhen: { option: 'tls', is: ['verify-ca'], reason: 'TLS mode verify-ca needs a CA file' } },
  poolSize: { kind: 'integer', name: 'Pool size', doc: 'Shared by all sinks using this connection.', default: 4, min: 1, max: 1000, unit: 'connections' },
  applicationName: { kind: 'text', name: 'App name', default: 'node-red-telemetry' },
  connectTimeout: { kind: 'number', name: 'Connect timeout', default: 10_000, min: 0, max: 3_600_000, unit: 'ms', zero: 'no limit' },
  statementTimeout: { kind: 'number', name: 'Statement timeout', doc: 'Of every connection.', default: 30_000, min: 0, max: 86_400_000, unit: 'ms', zero: 'no limit' },
} as const satisfies OptionTable;
