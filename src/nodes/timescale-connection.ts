/**
 * timescale-connection: the config node that owns the pool for a PostgreSQL/TimescaleDB server: a
 * pg.Pool for one host, a FailoverPool for a host list (it writes to the host that accepts writes).
 * Sinks acquire() it when they start and release() it when their close has finished; the pool is
 * ended only after the last release (bounded by Node-RED's close timeout), so a redeploy never
 * cuts off a sink that is still finishing a write.
 */
import type { EventEmitter } from 'events';
import { Pool } from 'pg';
import { passwordRedactor, poolConfig, type ConnectionSettings } from '../core/connection/connection-settings';
import { FailoverPool, type HostSwitch } from '../core/connection/failover-pool';
import { hostLabel, parseHostList, type HostAddress } from '../core/connection/host-list';
import { readOptions } from '../core/shared/option-table';
import { OPTIONS } from '../options/timescale-connection';
import { translator } from './i18n';
import { errorText, say } from '../core/shared/text';
import type { Node, NodeDef, RedAPI } from './red';
import { nodeCloseTimeout, type DatabasePool, type TimescaleConnectionApi } from './timescale-red';

interface ConnectionNode extends Node, TimescaleConnectionApi {}

export = function (RED: RedAPI): void {
  function TimescaleConnection(this: ConnectionNode, def: NodeDef): void {
    RED.nodes.createNode(this, def);
    const node = this;
    const t = translator(RED, 'timescale-connection');
    const creds = node.credentials ?? {};
    const password = creds.password || undefined;
    let settings: ConnectionSettings | undefined;
    let hosts: HostAddress[] = [];
    let configError: string | undefined;
    try {
      const o = readOptions(OPTIONS, def);
      hosts = parseHostList(o.host, o.port);
      settings = {
        host: hosts[0].host,
        port: hosts[0].port,
        database: o.database,
        user: creds.user ? creds.user.trim() : undefined,
        password,
        tls: o.tls,
        caFile: o.ca,
        poolSize: o.poolSize,
        applicationName: o.applicationName,
        connectTimeout: o.connectTimeout,
        statementTimeout: o.statementTimeout
      };
    } catch (err) {
      configError = errorText(err, t);
    }
    const shownAs = (value: unknown, fallback: string): string => (typeof value === 'string' && value.trim() !== '' ? value.trim() : fallback);
    const label = settings ? `${hosts.map(hostLabel).join(',')}/${settings.database}` : `${shownAs(def.host, OPTIONS.host.default)}/${shownAs(def.database, OPTIONS.database.default)}`;
    const redact = passwordRedactor(password);

    let pool: Pool | FailoverPool | undefined;
    try {
      if (settings) pool = hosts.length === 1 ? new Pool(poolConfig(settings)) : new FailoverPool(hosts, poolConfig(settings));
    } catch (err) {
      configError = redact(errorText(err, t));
    }
    if (configError) node.error(t('log.badConfig', { connection: label, error: configError }));
    // One line per switch, however many sinks share the connection.
    if (pool instanceof FailoverPool) {
      pool.on('switch', (change: HostSwitch) => {
        const why = change.skippedWords.map((words) => say(words, t));
        if (change.from !== undefined && !change.skipped.some((reason) => reason.startsWith(`${change.from} `) || reason.startsWith(`${change.from}:`))) why.push(t('log.previousHost', { host: change.from }));
        node.log(redact(why.length > 0 ? t('log.switchedBecause', { host: change.to, why: why.join('; ') }) : t('log.switched', { host: change.to })));
      });
    }

    // An idle connection that dies (server restart, network cut) is reported here; without a
    // listener the pool's 'error' event would crash Node-RED. Logged once until a connection
    // succeeds again: the sinks report their own state changes.
    let idleErrorLogged = false;
    if (pool) {
      const events: EventEmitter = pool;
      events.on('error', (err: Error & { code?: string }) => {
        if (idleErrorLogged) return;
        idleErrorLogged = true;
        node.warn(t('log.idleLost', { connection: label, error: `${redact(err.message)}${err.code ? ` (${err.code})` : ''}` }));
      });
      events.on('connect', () => {
        idleErrorLogged = false;
      });
    }

    const users = new Set<string>();
    let closing = false;
    let releasedAll: (() => void) | undefined;

    Object.defineProperty(node, 'poolSize', { value: settings?.poolSize ?? OPTIONS.poolSize.default, enumerable: true });
    Object.defineProperty(node, 'label', { value: label, enumerable: true });
    const singleHost = hosts.length === 1 ? hostLabel(hosts[0]) : undefined;
    Object.defineProperty(node, 'host', { get: () => singleHost ?? (pool instanceof FailoverPool ? (pool.host ?? '') : ''), enumerable: true });
    node.redact = redact;
    node.acquire = (userId: string): DatabasePool => {
      if (configError || !pool) throw new Error(t('log.notUsable', { connection: label, error: configError ?? t('log.noPool') }));
      if (closing) throw new Error(t('log.closing', { connection: label }));
      users.add(userId);
      return pool;
    };
    node.release = (userId: string): void => {
      users.delete(userId);
      if (users.size === 0 && releasedAll) releasedAll();
    };

    node.on('close', (_removed: boolean, done: () => void) => {
      closing = true;
      const timers: NodeJS.Timeout[] = [];
      const bounded = (promise: Promise<unknown>, ms: number): Promise<unknown> =>
        Promise.race([promise, new Promise((resolve) => timers.push(setTimeout(resolve, ms)))]);
      const limit = nodeCloseTimeout(RED.settings);
      // Sinks finish within limit - 3 s; wait for them a little longer, then end the pool.
      const waitForUsers = users.size === 0 ? Promise.resolve() : new Promise<void>((resolve) => (releasedAll = resolve));
      bounded(waitForUsers, Math.max(0, limit - 2500))
        .then(() => {
          if (users.size > 0) node.warn(t('log.endingInUse', { connection: label, users: users.size }));
          return pool ? bounded(pool.end().catch(() => undefined), 1500) : undefined;
        })
        .finally(() => {
          timers.forEach(clearTimeout);
          done();
        });
    });
  }

  RED.nodes.registerType('timescale-connection', TimescaleConnection as (this: Node, def: NodeDef) => void, {
    credentials: { user: { type: 'text' }, password: { type: 'password' } }
  });
};
