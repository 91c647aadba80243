/**
 * What timescale-sink shows: its badge (under 20 characters, the editor cuts longer ones) and the
 * words its log lines use for a state, so that a badge always names the present state and why.
 */
import type { SinkState } from './sink-types';

export interface Badge {
  fill: 'red' | 'green' | 'yellow' | 'grey' | 'blue';
  shape: 'ring' | 'dot';
  text: string;
}

/** 42 -> "42s", 192 -> "3m12s", 7500 -> "2h5m", 100000 -> "1d3h". */
export function shortDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60 > 0 ? `${s % 60}s` : ''}`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60) > 0 ? `${Math.floor((s % 3600) / 60)}m` : ''}`;
  return `${Math.floor(s / 86400)}d${Math.floor((s % 86400) / 3600) > 0 ? `${Math.floor((s % 86400) / 3600)}h` : ''}`;
}

/** The word for why the database is not there: a frozen or locked server is not a dead one. */
function downWord(code: string): string {
  if (code === '57014' || code === 'QUERY_TIMEOUT') return 'stalled';
  if (code === '25006') return 'read-only';
  if (code.startsWith('53')) return 'db full';
  return 'down';
}

const MISCONFIGURED: Record<string, [badge: string, fix: string]> = {
  '28P01': ['auth failed', 'the password (or user) of the connection is wrong: fix it in the timescale-connection node and deploy'],
  '28000': ['auth refused', 'the server refuses this user from this host (pg_hba.conf): ask its administrator'],
  NO_PASSWORD: ['no password', 'the server wants a password and the connection has none: set it in the timescale-connection node'],
  '3D000': ['no database', 'the database does not exist: create it, or fix the database name of the connection'],
  '3F000': ['no schema', 'the schema does not exist: create it, or fix the schema of the sink'],
  '42501': ['no privilege', 'the user lacks a privilege on the table or schema: GRANT INSERT, SELECT (and CREATE for auto mode) or use the owner'],
  '42P01': ['no table', 'the table does not exist: create it, or use auto mode'],
  '42703': ['no column', 'a column the sink writes does not exist: fix the column names (existing mode) or the table'],
  NO_TABLE: ['no table', 'the table does not exist: create it, or use auto mode'],
  NO_COLUMN: ['no column', 'a column the sink writes does not exist: fix the column names (existing mode) or the table'],
  ENOTFOUND: ['host unknown', 'the host name of the connection does not resolve: fix it'],
  NO_TLS: ['no TLS', 'the server does not accept TLS: set TLS to off, or enable ssl on the server'],
};

/** "auth failed", "no table", ... for the badge; the code itself when there is no word for it. */
function misconfiguredWord(code: string): string {
  if (MISCONFIGURED[code]) return MISCONFIGURED[code][0];
  if (code.startsWith('28')) return 'auth failed';
  if (code.startsWith('42')) return 'bad table';
  return /CERT|TLS/.test(code) ? 'TLS failed' : 'config';
}

/** What a person has to do about a misconfiguration, for the log and the Catch node. */
export function misconfiguredFix(code: string): string {
  if (MISCONFIGURED[code]) return MISCONFIGURED[code][1];
  if (/CERT|TLS/.test(code)) return "the server's TLS certificate does not verify: check the CA file and TLS mode of the connection";
  return 'fix the connection or the table, then deploy';
}

/** "1.2k" above 999. */
function shortRate(perSecond: number): string {
  const n = Math.round(perSecond);
  if (n < 1000) return String(n);
  if (n < 1e6) return `${(n / 1e3).toFixed(n < 1e4 ? 1 : 0)}k`;
  return `${(n / 1e6).toFixed(1)}M`;
}

export interface SinkBadgeFacts {
  state: SinkState;
  now: number;
  /** Rows per second written lately. */
  rate: number;
  /** Down or misconfigured: the error code, and since when. */
  code: string;
  since: number;
  /** Retrying a transient failure: which attempt of how many. */
  attempt: number;
  maxAttempts: number;
  /** The table was set up with something refused or missing (a policy, the key): shown while up. */
  warning: string;
  /** The host written to, and when the writes moved to it from another host (0: never). */
  host?: string;
  hostChangedAt?: number;
}

/** How long the badge names the new host after the writes moved (a failover), instead of the rate. */
export const HOST_CHANGE_SHOWN_MS = 10_000;

export function sinkBadge(f: SinkBadgeFacts): Badge {
  const fit = (text: string): string => (text.length < 20 ? text : text.slice(0, 19));
  switch (f.state) {
    case 'closing':
      return { fill: 'grey', shape: 'ring', text: 'closing' };
    case 'starting':
      return { fill: 'grey', shape: 'ring', text: 'connecting' };
    case 'retrying':
      return { fill: 'yellow', shape: 'ring', text: fit(`retry ${f.attempt}/${f.maxAttempts} ${f.code}`) };
    case 'down':
      return { fill: 'red', shape: 'ring', text: fit(`${downWord(f.code)} ${shortDuration(f.now - f.since)}`) };
    case 'misconfigured':
      return { fill: 'red', shape: 'ring', text: fit(`${misconfiguredWord(f.code)} ${f.code}`) };
    default:
      if (f.host && f.hostChangedAt && f.now - f.hostChangedAt < HOST_CHANGE_SHOWN_MS) return { fill: 'green', shape: 'dot', text: fit(`on ${f.host}`) };
      return f.warning ? { fill: 'yellow', shape: 'dot', text: fit(`${shortRate(f.rate)} rows/s ${f.warning}`) } : { fill: 'green', shape: 'dot', text: `${shortRate(f.rate)} rows/s` };
  }
}
