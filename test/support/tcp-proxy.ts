/**
 * A small TCP proxy for network faults between a client and PostgreSQL: it forwards bytes both
 * ways until told to cut the connections, either with a reset (what a crashing router or a
 * firewall reject looks like) or by going silent while keeping the sockets open (a half-open
 * connection: a cable pulled, a NAT entry expired, the peer never answers and never closes).
 */
import * as net from 'net';

export interface TcpProxy {
  port: number;
  /** Connections currently open through the proxy. */
  readonly open: number;
  /** Connections accepted so far. */
  readonly accepted: number;
  /** Resets every open connection (RST on both sides). New connections are still accepted. */
  resetAll(): void;
  /**
   * Blackhole mode: open connections stop forwarding and new ones are accepted but never
   * forwarded, with no FIN and no RST; until heal() the client sees only silence.
   */
  blackhole(): void;
  /** Back to forwarding for new connections; the connections silenced by blackhole() are reset. */
  heal(): void;
  close(): Promise<void>;
}

interface Pair {
  client: net.Socket;
  server: net.Socket | undefined;
  silenced: boolean;
}

export async function startTcpProxy(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpProxy> {
  const pairs = new Set<Pair>();
  let silent = false;
  let accepted = 0;

  function destroyPair(pair: Pair): void {
    pairs.delete(pair);
    // resetAndDestroy sends an RST instead of a FIN (Node >= 16.17).
    if (!pair.client.destroyed) pair.client.resetAndDestroy();
    if (pair.server && !pair.server.destroyed) pair.server.resetAndDestroy();
  }

  const server = net.createServer((client) => {
    accepted++;
    const pair: Pair = { client, server: undefined, silenced: silent };
    pairs.add(pair);
    client.on('error', () => destroyPair(pair));
    client.on('close', () => destroyPair(pair));
    if (silent) {
      // Accept, read and discard: the client's connect succeeds and then nothing ever answers.
      client.on('data', () => undefined);
      return;
    }
    const upstream = net.connect(targetPort, targetHost);
    pair.server = upstream;
    upstream.on('error', () => destroyPair(pair));
    upstream.on('close', () => destroyPair(pair));
    client.on('data', (d) => {
      if (!pair.silenced) upstream.write(d);
    });
    upstream.on('data', (d) => {
      if (!pair.silenced) client.write(d);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;

  return {
    port,
    get open() {
      return pairs.size;
    },
    get accepted() {
      return accepted;
    },
    resetAll() {
      for (const pair of [...pairs]) destroyPair(pair);
    },
    blackhole() {
      silent = true;
      for (const pair of pairs) pair.silenced = true;
    },
    heal() {
      silent = false;
      for (const pair of [...pairs]) if (pair.silenced) destroyPair(pair);
    },
    async close() {
      for (const pair of [...pairs]) destroyPair(pair);
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
