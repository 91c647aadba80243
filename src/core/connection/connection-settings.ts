/**
 * Settings of a PostgreSQL/TimescaleDB connection and the pg.Pool configuration built from them
 * (TLS modes named after libpq's sslmode). No Node-RED import: usable from any Node.js program.
 */
import fs from 'fs';
import type { PoolConfig } from 'pg';
import type { ConnectionOptions } from 'tls';
import { OPTIONS, TLS_MODES } from '../../options/timescale-connection';
import { redactSecrets } from '../sink/error-classes';
import { withWords } from '../shared/text';

export { TLS_MODES };
export type TlsMode = (typeof TLS_MODES)[number];

export interface ConnectionSettings {
  host: string;
  port: number;
  database: string;
  user?: string;
  password?: string;
  tls: TlsMode;
  /** Path of a PEM file with the CA certificate(s) that sign the server's certificate. */
  caFile: string;
  poolSize: number;
  applicationName: string;
  connectTimeout: number;
  statementTimeout: number;
}

/** The settings of a connection left at its defaults (the option table's), for programs and tests. */
export const CONNECTION_DEFAULTS = {
  host: OPTIONS.host.default,
  port: OPTIONS.port.default,
  database: OPTIONS.database.default,
  tls: OPTIONS.tls.default as TlsMode,
  poolSize: OPTIONS.poolSize.default,
  applicationName: OPTIONS.applicationName.default,
  connectTimeout: OPTIONS.connectTimeout.default,
  statementTimeout: OPTIONS.statementTimeout.default
};

/** Builds the pg.Pool configuration. Throws (with no secret in the message) when it is unusable. */
export function poolConfig(s: ConnectionSettings): PoolConfig {
  let ssl: PoolConfig['ssl'] = false;
  if (s.tls === 'require') {
    // Encrypted, but the server's certificate is not checked (libpq sslmode=require).
    ssl = { rejectUnauthorized: false };
  } else if (s.tls === 'verify-ca' || s.tls === 'verify-full') {
    const opts: ConnectionOptions = { rejectUnauthorized: true };
    if (s.caFile) {
      try {
        opts.ca = fs.readFileSync(s.caFile, 'utf8');
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? 'error';
        throw withWords(new Error(`cannot read CA file ${s.caFile}: ${code}`), { key: 'log.caUnreadable', params: { file: s.caFile, code } });
      }
    } else if (s.tls === 'verify-ca') {
      throw withWords(new Error('TLS mode verify-ca needs a CA file'), { key: '.validation.requiredWhen.ca' });
    }
    // verify-ca checks the certificate chain only; verify-full also checks the host name.
    if (s.tls === 'verify-ca') opts.checkServerIdentity = () => undefined;
    ssl = opts;
  }
  return {
    host: s.host,
    port: s.port,
    database: s.database,
    user: s.user,
    password: s.password,
    ssl,
    max: s.poolSize,
    application_name: s.applicationName,
    connectionTimeoutMillis: s.connectTimeout,
    statement_timeout: s.statementTimeout > 0 ? s.statementTimeout : undefined,
    // statement_timeout is enforced by the server; a server that is frozen or behind a half-open
    // connection never answers, and the write would wait for ever. The client gives up a little
    // later than the server would (so a live server still answers with its own 57014); pg-pool then
    // throws the connection away and the write is retried on a fresh one.
    query_timeout: s.statementTimeout > 0 ? s.statementTimeout + Math.min(5000, Math.max(1000, s.statementTimeout / 10)) : undefined,
    idleTimeoutMillis: 30000,
    keepAlive: true
  };
}

/** Passwords this long are removed wherever they appear; shorter ones only where they stand alone. */
const REDACT_ANYWHERE_LENGTH = 8;

/**
 * Returns the function every log line, status and error of a connection goes through before it
 * is shown. It removes any password from connection strings and key=value settings, and this
 * connection's password (as written and URL-encoded) wherever it appears. A short password is
 * removed only where it is not part of a longer word: a password "a" or "pass" then leaves
 * "password authentication failed" readable, and still never shows on its own.
 */
export function passwordRedactor(password: string | undefined): (text: string) => string {
  const escape = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const forms = password ? [...new Set([password, encodeURIComponent(password)])] : [];
  const patterns = forms.map((form) => new RegExp(form.length >= REDACT_ANYWHERE_LENGTH ? escape(form) : `(?<![A-Za-z0-9])${escape(form)}(?![A-Za-z0-9])`, 'g'));
  return (text: string): string => {
    let out = redactSecrets(String(text));
    for (const pattern of patterns) out = out.replace(pattern, '***');
    return out;
  };
}
