/**
 * A pool over a list of hosts that writes to the one accepting writes, like libpq's
 * `target_session_attrs=read-write`: the hosts are tried in order and a read-only one (a replica,
 * a demoted primary, `default_transaction_read_only = on`) is skipped. node-postgres does the
 * connecting, one pg.Pool per host; only the chosen host's pool carries statements.
 *
 * The choice is made when the first statement comes and again after a statement failed because the
 * database was not there (a connection lost, a server shutting down, 25006 read-only: retry.ts
 * "unavailable"). The writer already waits out such a failure and retries the statement (with ON
 * CONFLICT DO NOTHING, so a commit whose answer was lost is not doubled), so a failover to a
 * promoted replica costs nothing but the time until the promotion. Every new connection is checked
 * too (one `SHOW transaction_read_only` per connection), so a pool never grows onto a host that went
 * read-only meanwhile. A single host needs none of this: the connection node gives it a plain pg.Pool.
 */
import { EventEmitter } from 'events';
import { Pool, type ClientBase, type PoolClient, type PoolConfig, type QueryResult } from 'pg';
import { hostLabel, type HostAddress } from './host-list';
import { classifyError } from '../sink/error-classes';
import { withWords, type Words } from '../shared/text';

/** Emitted as 'switch' when statements go to another host than before (or to the first one). */
export interface HostSwitch {
  /** The host now written to, e.g. `db2:5433`. */
  to: string;
  /** The host written to before (undefined for the first choice). */
  from: string | undefined;
  /** Why each host before `to` in the list was passed over: `db1:5432 is read-only`. */
  skipped: string[];
  /** The same reasons as words of the catalogs (log.hostReadOnly, log.hostFailed), for the log in the user's language. */
  skippedWords: Words[];
}

const READ_ONLY = '25006';

function readOnlyError(label: string): Error & { code: string } {
  return Object.assign(new Error(`${label} is read-only (transaction_read_only = on)`), { code: READ_ONLY });
}

async function checkWritable(client: ClientBase, label: string): Promise<void> {
  const result = await client.query('SHOW transaction_read_only');
  if (result.rows[0]?.transaction_read_only !== 'off') throw readOnlyError(label);
}

export class FailoverPool extends EventEmitter {
  readonly labels: readonly string[];
  private readonly pools: Pool[];
  /** The host statements go to; undefined until chosen, and again after it failed. */
  private current: number | undefined;
  private lastChosen: number | undefined;
  private choosing: Promise<number> | undefined;

  constructor(hosts: readonly HostAddress[], config: PoolConfig, createPool: (config: PoolConfig) => Pool = (c) => new Pool(c)) {
    super();
    if (hosts.length === 0) throw new Error('FailoverPool needs at least one host');
    this.labels = hosts.map(hostLabel);
    this.pools = hosts.map((address, i) => {
      const pool = createPool({ ...config, host: address.host, port: address.port, onConnect: (client: ClientBase) => checkWritable(client, this.labels[i]) });
      // Without a listener an idle connection's error would be thrown (and end the process).
      pool.on('error', (err, client) => {
        if (this.listenerCount('error') > 0) this.emit('error', err, client);
      });
      pool.on('connect', (client) => this.emit('connect', client));
      return pool;
    });
  }

  /** The host written to now (or last, while choosing again); undefined before the first choice. */
  get host(): string | undefined {
    return this.lastChosen === undefined ? undefined : this.labels[this.lastChosen];
  }

  async query(text: string, values?: unknown[]): Promise<QueryResult> {
    const index = this.current ?? (await this.chooseOnce());
    try {
      return await this.pools[index].query(text, values);
    } catch (err) {
      // The host went away or refuses writes: the next statement chooses again.
      if (this.current === index && classifyError(err).kind === 'unavailable') this.current = undefined;
      throw err;
    }
  }

  async end(): Promise<void> {
    await Promise.all(this.pools.map((pool) => pool.end().catch(() => undefined)));
  }

  private chooseOnce(): Promise<number> {
    if (!this.choosing) {
      this.choosing = this.choose().finally(() => {
        this.choosing = undefined;
      });
    }
    return this.choosing;
  }

  private async choose(): Promise<number> {
    const skipped: string[] = [];
    const skippedWords: Words[] = [];
    const failures: Array<{ code: string; kind: string }> = [];
    for (let i = 0; i < this.pools.length; i++) {
      const label = this.labels[i];
      let client: PoolClient | undefined;
      try {
        client = await this.pools[i].connect();
        // A new connection was checked as it opened; an idle one may be older than a demotion.
        await checkWritable(client, label);
        client.release();
        client = undefined;
        this.current = i;
        if (this.lastChosen !== i) {
          const from = this.lastChosen === undefined ? undefined : this.labels[this.lastChosen];
          this.lastChosen = i;
          const change: HostSwitch = { to: label, from, skipped, skippedWords };
          this.emit('switch', change);
        }
        return i;
      } catch (err) {
        // A connection that failed its check is not given back for reuse.
        client?.release(err instanceof Error ? err : true);
        const classification = classifyError(err);
        failures.push(classification);
        if (classification.code === READ_ONLY) {
          skipped.push(`${label} is read-only`);
          skippedWords.push({ key: 'log.hostReadOnly', params: { host: label } });
        } else {
          const error = `${classification.message}${classification.message.includes(classification.code) ? '' : ` (${classification.code})`}`;
          skipped.push(`${label}: ${error}`);
          skippedWords.push({ key: 'log.hostFailed', params: { host: label, error } });
        }
      }
    }
    // The code decides the sink's state: read-only (a failover under way) before "down", before
    // whatever the first host said (a misconfiguration when every host refuses the password).
    const code = failures.some((f) => f.code === READ_ONLY) ? READ_ONLY : (failures.find((f) => f.kind === 'unavailable') ?? failures[0]).code;
    throw withWords(Object.assign(new Error(`no host accepts writes: ${skipped.join('; ')}`), { code }), { key: 'log.noHostWritable', params: { hosts: skippedWords } });
  }
}
