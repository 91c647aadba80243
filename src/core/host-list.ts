/**
 * The Host field of a connection: one host or a comma-separated list, as libpq takes it
 * (`db1:5432,db2:5433`). Each entry is a host name, an IPv4 address, an IPv6 address (in brackets
 * when it carries a port: `[fd00::1]:5433`) or a Unix socket directory (`/var/run/postgresql`),
 * with an optional `:port`; an entry without a port uses the Port field.
 */

export interface HostAddress {
  host: string;
  port: number;
}

function portOf(text: string, entry: string): number {
  const port = /^\d{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(port >= 1 && port <= 65535)) throw new Error(`Host: the port of ${JSON.stringify(entry)} must be a whole number from 1 to 65535`);
  return port;
}

/** Parses the Host field; throws an Error that names the bad entry. */
export function parseHostList(text: string, defaultPort: number): HostAddress[] {
  const entries = text.split(',').map((entry) => entry.trim());
  return entries.map((entry) => {
    if (entry === '') throw new Error(`Host: an empty entry in ${JSON.stringify(text)}`);
    if (entry.startsWith('/')) return { host: entry, port: defaultPort };
    if (entry.startsWith('[')) {
      const match = /^\[([^\]]+)\](?::(.*))?$/.exec(entry);
      if (!match) throw new Error(`Host: ${JSON.stringify(entry)} is not an address in brackets ([fd00::1]:5432)`);
      return { host: match[1], port: match[2] === undefined ? defaultPort : portOf(match[2], entry) };
    }
    const colon = entry.indexOf(':');
    // More than one colon without brackets: an IPv6 address, which then takes the Port field.
    if (colon < 0 || entry.indexOf(':', colon + 1) >= 0) return { host: entry, port: defaultPort };
    if (colon === 0) throw new Error(`Host: ${JSON.stringify(entry)} has a port but no host`);
    return { host: entry.slice(0, colon), port: portOf(entry.slice(colon + 1), entry) };
  });
}

/** `db1:5432`, `[fd00::1]:5432`, `/var/run/postgresql:5432` (the socket file's number). */
export function hostLabel(address: HostAddress): string {
  const host = address.host.includes(':') && !address.host.startsWith('/') ? `[${address.host}]` : address.host;
  return `${host}:${address.port}`;
}
