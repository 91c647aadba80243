/**
 * Checks of text options that the runtime and the editor must agree on. Each is self-contained
 * (no imports, no module-level helpers): the build copies its source into the editor's page
 * (scripts/build.js), so there is one implementation of each rule. Each answers true, or the reason
 * in a sentence a user can act on: its English and its key in the node's catalog
 * (<type>.validation.<key>, with __value__ and the other parameters), so that the editor and the
 * runtime say it in the user's language.
 */

export interface CheckReason {
  /** Under <type>.validation in the node's catalog. */
  key: string;
  params: Record<string, string | number>;
  /** The English. */
  text: string;
}

/**
 * A PostgreSQL interval with its unit ("1 day", "12 hours", "1 day 06:00"), in seconds; throws
 * with the reason. A bare number is refused: PostgreSQL reads "30" as 30 seconds, which nobody
 * means in a chunk interval or a retention.
 */
export function intervalSeconds(text: string): number {
  const units: Record<string, number> = {};
  const table: Array<[number, string]> = [
    [1e-6, 'us usec usecs microsecond microseconds'],
    [1e-3, 'ms msec msecs millisecond milliseconds'],
    [1, 's sec secs second seconds'],
    [60, 'm min mins minute minutes'],
    [3600, 'h hr hrs hour hours'],
    [86400, 'd day days'],
    [604800, 'w week weeks'],
    [2592000, 'mon mons month months'],
    [31557600, 'y yr yrs year years']
  ];
  for (const [seconds, names] of table) for (const name of names.split(' ')) units[name] = seconds;
  // The error names its key under <type>.validation (interval.<reason>) for interval() to word.
  const fail = (key: string, message: string, params: Record<string, string | number> = {}): Error => Object.assign(new Error(message), { key, params });
  const input = String(text).trim().toLowerCase();
  if (input === '') throw fail('interval.empty', 'is empty');
  // A time of day (hh:mm[:ss]) or a number with its unit, each with the spaces around it.
  const part = /\s*(?:(\d+):(\d\d)(?::(\d\d(?:\.\d+)?))?(?![\d:])|(\d+(?:\.\d+)?)\s*([a-z]*))\s*/y;
  let total = 0;
  let clock = false;
  for (part.lastIndex = 0; part.lastIndex < input.length; ) {
    const at = part.lastIndex;
    const match = part.exec(input);
    if (!match || part.lastIndex === at) throw fail('interval.unreadable', `cannot be read at "${input.slice(at)}": write a number and a unit, e.g. "1 day" or "12 hours"`, { rest: input.slice(at) });
    if (match[1] !== undefined) {
      if (clock) throw fail('interval.twoClocks', 'has two times of day');
      clock = true;
      total += Number(match[1]) * 3600 + Number(match[2]) * 60 + Number(match[3] ?? 0);
      continue;
    }
    const amount = match[4];
    const unitName = match[5];
    if (unitName === '') throw fail('interval.noUnit', `has no unit: PostgreSQL would read ${amount} as ${amount} seconds; write the unit, e.g. "${amount} days", "${amount} hours" or "${amount} minutes"`, { amount });
    if (!Object.prototype.hasOwnProperty.call(units, unitName)) throw fail('interval.unknownUnit', `has an unknown unit "${unitName}": use seconds, minutes, hours, days, weeks, months or years`, { unit: unitName });
    total += Number(amount) * units[unitName];
  }
  if (!(total > 0)) throw fail('interval.zero', 'is zero');
  if (total > 100 * 31557600) throw fail('interval.tooLong', 'is longer than 100 years');
  return total;
}

/** An interval option (empty = off): true, or why not. */
export function interval(value: unknown): true | CheckReason {
  const text = value === undefined || value === null ? '' : String(value).trim();
  if (text === '') return true;
  try {
    intervalSeconds(text);
    return true;
  } catch (err) {
    const { message, key, params } = err as Error & { key: string; params: Record<string, string | number> };
    return { key, params: { ...params, value: text }, text: `"${text}" ${message}` };
  }
}

/**
 * A chunk interval: an interval of at least 1 s (TimescaleDB warns below that: such chunks are far
 * too many tables). Empty means the default.
 */
export function chunkInterval(value: unknown): true | CheckReason {
  const text = value === undefined || value === null ? '' : String(value).trim();
  if (text === '') return true;
  try {
    if (intervalSeconds(text) < 1) return { key: 'interval.underSecond', params: { value: text }, text: `"${text}" is shorter than 1 second` };
    return true;
  } catch (err) {
    const { message, key, params } = err as Error & { key: string; params: Record<string, string | number> };
    return { key, params: { ...params, value: text }, text: `"${text}" ${message}` };
  }
}

/**
 * A table, schema or column name. Always written double-quoted (a quote doubled), so any character
 * is safe: only what PostgreSQL cannot take is refused. An empty name, a NUL, and more than 63 bytes
 * (PostgreSQL would cut the name short and write to another table than the one named).
 */
export function identifier(value: unknown): true | CheckReason {
  const text = value === undefined || value === null ? '' : String(value).trim();
  if (text === '') return { key: 'identifier.needed', params: {}, text: 'a name is needed' };
  if (text.includes('\u0000')) {
    const shown = text.split('\u0000').join('\\0');
    return { key: 'identifier.nul', params: { value: shown }, text: `"${shown}" contains a NUL character, which PostgreSQL cannot store in a name` };
  }
  let bytes = 0;
  for (const char of text) {
    const code = char.codePointAt(0) as number;
    bytes += code < 0x80 ? 1 : code < 0x800 ? 2 : code < 0x10000 ? 3 : 4;
  }
  if (bytes > 63) return { key: 'identifier.tooLong', params: { value: text, bytes }, text: `"${text}" is ${bytes} bytes long: PostgreSQL keeps only the first 63 bytes of a name` };
  return true;
}

/** One payload property name (not a prototype key, no comma). */
export function property(value: unknown): true | CheckReason {
  const text = value === undefined || value === null ? '' : String(value).trim();
  if (text === '__proto__' || text === 'constructor' || text === 'prototype') return { key: 'property.reserved', params: { value: text }, text: `"${text}" cannot be a property name` };
  if (text.includes(',')) return { key: 'property.comma', params: {}, text: 'one property name, without a comma' };
  return true;
}

/** A comma-separated list of payload property names. */
export function properties(value: unknown): true | CheckReason {
  const names = (value === undefined || value === null ? '' : String(value)).split(',').map((name) => name.trim()).filter((name) => name !== '');
  const bad = names.find((name) => name === '__proto__' || name === 'constructor' || name === 'prototype');
  return bad === undefined ? true : { key: 'property.reserved', params: { value: bad }, text: `"${bad}" cannot be a property name` };
}

/**
 * The Host field of a connection, as libpq takes it: one host or a comma-separated list
 * (`db1:5432,db2:5433`). Each entry is a host name, an IPv4 address, an IPv6 address (in brackets
 * when it carries a port: `[fd00::1]:5433`) or a Unix socket directory (`/var/run/postgresql`),
 * with an optional `:port`; an entry without a port uses `defaultPort`. Throws with the reason
 * (its key under <type>.validation: host.<reason>).
 */
export function parseHostList(text: string, defaultPort: number): Array<{ host: string; port: number }> {
  const fail = (key: string, message: string, params: Record<string, string | number>): Error => Object.assign(new Error(message), { key, params });
  const portOf = (value: string, entry: string): number => {
    const port = /^\d{1,5}$/.test(value) ? Number(value) : NaN;
    if (!(port >= 1 && port <= 65535)) throw fail('host.port', `the port of "${entry}" must be a whole number from 1 to 65535`, { entry });
    return port;
  };
  return String(text)
    .split(',')
    .map((entry) => entry.trim())
    .map((entry) => {
      if (entry === '') throw fail('host.emptyEntry', `an empty entry in "${text}"`, { value: String(text) });
      if (entry.startsWith('/')) return { host: entry, port: defaultPort };
      if (entry.startsWith('[')) {
        const match = /^\[([^\]]+)\](?::(.*))?$/.exec(entry);
        if (!match) throw fail('host.brackets', `"${entry}" is not an address in brackets ([fd00::1]:5432)`, { entry });
        return { host: match[1], port: match[2] === undefined ? defaultPort : portOf(match[2], entry) };
      }
      const colon = entry.indexOf(':');
      // More than one colon without brackets: an IPv6 address, which then takes the default port.
      if (colon < 0 || entry.indexOf(':', colon + 1) >= 0) return { host: entry, port: defaultPort };
      if (colon === 0) throw fail('host.noHost', `"${entry}" has a port but no host`, { entry });
      return { host: entry.slice(0, colon), port: portOf(entry.slice(colon + 1), entry) };
    });
}

/** `db1:5432`, `[fd00::1]:5432`, `/var/run/postgresql:5432` (the socket file's number). */
export function hostLabel(address: { host: string; port: number }): string {
  const host = address.host.includes(':') && !address.host.startsWith('/') ? `[${address.host}]` : address.host;
  return `${host}:${address.port}`;
}

/** The Host field (a host, a list as parseHostList reads it, or a ${VARIABLE}): true, or why not. */
export function hostList(value: unknown): true | CheckReason {
  const text = value === undefined || value === null ? '' : String(value).trim();
  if (/^\$\{[^}]+\}$/.test(text)) return true;
  if (text === '') return { key: 'host.needed', params: {}, text: 'a host is needed' };
  try {
    parseHostList(text, 5432);
    return true;
  } catch (err) {
    const { message, key, params } = err as Error & { key: string; params: Record<string, string | number> };
    return { key, params, text: message };
  }
}

/** Every check by name, for the option tables and the build. */
export const CHECKS = { interval, chunkInterval, identifier, property, properties, hostList } as const;
export type CheckName = keyof typeof CHECKS;
