/**
 * What timescale-sink shows: its badge (at most BADGE_MAX_LENGTH characters) and the
 * words its log lines use for a state, so that a badge always names the present state and why.
 */
import { BADGE_MAX_LENGTH, compactCount } from '../shared/badge-text';
import type { Translate } from '../shared/text';
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

/** Why the database is not there, as a badge key: a frozen or locked server is not a dead one. */
function downKey(code: string): string {
  if (code === '57014' || code === 'QUERY_TIMEOUT') return 'stalled';
  if (code === '25006') return 'readOnly';
  if (code.startsWith('53')) return 'full';
  return 'down';
}

/** The misconfigurations with a word of their own (status.misconfigured.<key>) and a fix (log.fix.<key>). */
const MISCONFIGURED: Record<string, string> = {
  '28P01': 'authFailed',
  '28000': 'authRefused',
  NO_PASSWORD: 'noPassword',
  '3D000': 'noDatabase',
  '3F000': 'noSchema',
  '42501': 'noPrivilege',
  '42P01': 'noTable',
  '42703': 'noColumn',
  NO_TABLE: 'noTable',
  NO_COLUMN: 'noColumn',
  ENOTFOUND: 'hostUnknown',
  NO_TLS: 'noTls',
};

/** "auth failed", "no table", ... for the badge: the key of the word for a misconfiguration's code. */
function misconfiguredKey(code: string): string {
  if (MISCONFIGURED[code]) return MISCONFIGURED[code];
  if (code.startsWith('28')) return 'authFailed';
  if (code.startsWith('42')) return 'badTable';
  return /CERT|TLS/.test(code) ? 'tlsFailed' : 'config';
}

/** What a person has to do about a misconfiguration, for the log and the Catch node. */
export function misconfiguredFix(code: string, t: Translate): string {
  if (MISCONFIGURED[code]) return t(`log.fix.${MISCONFIGURED[code]}`);
  if (/CERT|TLS/.test(code)) return t('log.fix.tlsFailed');
  return t('log.fix.config');
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
  /** Up, but the oldest write has not finished for this long (a lock, a slow server); 0: none waits. */
  waitingMs?: number;
  /** Messages refused lately because the queue was full (0: none). */
  refused?: number;
  /** Rows rejected lately, and the last one's code (a SQLSTATE, or MAPPING for a reading that could not be read as a row). */
  rejected?: { count: number; code: string };
}

/** How long the badge stays red after the last message refused for a full queue: long enough to be seen. */
export const REFUSAL_SHOWN_MS = 5000;

/** How long the badge names rows sent to the dead-letter output, after the last one, instead of the rate. */
export const REJECTION_SHOWN_MS = 10_000;

/** A write that has not finished for this long is shown as waiting instead of the rate. */
export const WRITE_WAIT_SHOWN_MS = 2000;

/** How long the badge names the new host after the writes moved (a failover), instead of the rate. */
export const HOST_CHANGE_SHOWN_MS = 10_000;

export function sinkBadge(f: SinkBadgeFacts, t: Translate): Badge {
  const fit = (text: string): string => (text.length <= BADGE_MAX_LENGTH ? text : text.slice(0, BADGE_MAX_LENGTH));
  // A code too long for the badge (ENOTFOUND, DEPTH_ZERO_SELF_SIGNED_CERT) is left out rather than
  // cut: the word names the reason, the log line carries the whole code.
  const withCode = (key: string, params: Record<string, string | number>): string => {
    const full = t(key, params).trim();
    return full.length <= BADGE_MAX_LENGTH ? full : fit(t(key, { ...params, code: '' }).trim());
  };
  switch (f.state) {
    case 'closing':
      return { fill: 'grey', shape: 'ring', text: fit(t('status.closing')) };
    case 'starting':
      return { fill: 'grey', shape: 'ring', text: fit(t('status.connecting')) };
    case 'retrying':
      return { fill: 'yellow', shape: 'ring', text: withCode('status.retry', { attempt: f.attempt, max: f.maxAttempts, code: f.code }) };
    case 'down':
      return { fill: 'red', shape: 'ring', text: fit(t(`status.down.${downKey(f.code)}`, { duration: shortDuration(f.now - f.since) })) };
    case 'misconfigured':
      return { fill: 'red', shape: 'ring', text: withCode(`status.misconfigured.${misconfiguredKey(f.code)}`, { code: f.code }) };
    default: {
      if (f.refused !== undefined && f.refused > 0) return { fill: 'red', shape: 'dot', text: fit(t('status.queueFull', { refused: compactCount(f.refused) })) };
      // Rows that do not arrive are not a rate of 0: the write waits, and the badge says so.
      if (f.waitingMs !== undefined && f.waitingMs >= WRITE_WAIT_SHOWN_MS) return { fill: 'yellow', shape: 'ring', text: fit(t('status.writeWaits', { duration: shortDuration(f.waitingMs) })) };
      if (f.rejected !== undefined) return { fill: 'yellow', shape: 'dot', text: withCode('status.rejected', { rejected: compactCount(f.rejected.count), code: f.rejected.code }) };
      if (f.host && f.hostChangedAt && f.now - f.hostChangedAt < HOST_CHANGE_SHOWN_MS) return { fill: 'green', shape: 'dot', text: fit(t('status.onHost', { host: f.host })) };
      const rate = compactCount(Math.round(f.rate));
      return f.warning ? { fill: 'yellow', shape: 'dot', text: fit(t('status.rateWarning', { rate, warning: f.warning })) } : { fill: 'green', shape: 'dot', text: fit(t('status.rate', { rate })) };
    }
  }
}
