/**
 * Node-RED 4 as a real child process (what an integrator runs), with this package installed in its
 * user directory the way `npm install` from the palette would put it: under node_modules/.
 */
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as http from 'http';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';

const projectRoot = path.resolve(__dirname, '..', '..');
const packageName: string = JSON.parse(fs.readFileSync(path.join(projectRoot, 'package.json'), 'utf8')).name;

export interface NodeRedProcess {
  url: string;
  port: number;
  userDir: string;
  pid: number;
  /** Everything Node-RED logged so far. */
  output(): string;
  /** Sends a signal and waits for the process to exit. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  request(method: string, urlPath: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: string }>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address() as net.AddressInfo;
      server.close(() => resolve(address.port));
    });
  });
}

/** A fresh user directory with this package linked in as an installed module. */
export function makeUserDir(prefix = 'telemetry-nr-'): string {
  const userDir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const modules = path.join(userDir, 'node_modules');
  fs.mkdirSync(modules);
  fs.symlinkSync(projectRoot, path.join(modules, packageName), 'dir');
  fs.writeFileSync(path.join(userDir, 'package.json'), JSON.stringify({ name: 'node-red-project', private: true, dependencies: { [packageName]: '*' } }));
  return userDir;
}

/**
 * The packages examples 04, 05 (input nodes) and 06 (dashboard) are made with (devDependencies). Node-RED loads every node
 * module in the node_modules folders above its own installation, so this project's too: each
 * Node-RED started here would load them (2 s more per start, and node-opcua's memory in every
 * benchmark), unless excluded. Only the tests of the examples ask for them (`inputPackages`); they
 * are then linked into the user directory, for a Node-RED installed elsewhere (scripts/compat.sh).
 */
export const EXAMPLE_INPUT_PACKAGES = ['node-red-contrib-modbus', 'node-red-contrib-opcua', '@flowfuse/node-red-dashboard'];

function linkInputPackages(userDir: string): void {
  const modules = path.join(userDir, 'node_modules');
  fs.mkdirSync(modules, { recursive: true });
  for (const name of EXAMPLE_INPUT_PACKAGES) {
    const link = path.join(modules, name);
    fs.mkdirSync(path.dirname(link), { recursive: true });
    if (!fs.existsSync(link)) fs.symlinkSync(path.dirname(require.resolve(`${name}/package.json`, { paths: [projectRoot] })), link, 'dir');
  }
}

export interface StartOptions {
  userDir?: string;
  flows?: unknown[];
  /** Extra lines inside module.exports = { ... } of settings.js. */
  settings?: string;
  env?: Record<string, string>;
  /** Options for node itself, before red.js (e.g. --cpu-prof, which NODE_OPTIONS refuses). */
  nodeArgs?: string[];
  /** Load EXAMPLE_INPUT_PACKAGES (their OPC UA certificates then go to the user directory). Default false. */
  inputPackages?: boolean;
}

export async function startNodeRed(options: StartOptions = {}): Promise<NodeRedProcess> {
  const userDir = options.userDir ?? makeUserDir();
  const port = await freePort();
  if (options.flows !== undefined) fs.writeFileSync(path.join(userDir, 'flows.json'), JSON.stringify(options.flows));
  if (options.inputPackages === true) linkInputPackages(userDir);
  fs.writeFileSync(
    path.join(userDir, 'settings.js'),
    `module.exports = {
  uiHost: '127.0.0.1',
  uiPort: ${port},
  flowFile: 'flows.json',
  credentialSecret: 'test-secret-not-for-production',
  logging: { console: { level: 'info', metrics: false, audit: false } },
  telemetry: { enabled: false },
  diagnostics: { enabled: false },
  externalModules: { autoInstall: false, palette: { allowInstall: false } },
  editorTheme: { tours: false, projects: { enabled: false } },
  ${options.inputPackages === true ? '' : `nodesExcludes: ${JSON.stringify(EXAMPLE_INPUT_PACKAGES.map((name) => path.basename(name)))},`}
  ${options.settings ?? ''}
};
`,
  );
  const red = require.resolve('node-red/red.js');
  // The sink sets NODE_RED_USER_DIR in the process it runs in when it is unset, the tests' own
  // process included (in-process tests): a child has a user directory of its own.
  const { NODE_RED_USER_DIR: _parentUserDir, ...parentEnv } = process.env;
  const child: ChildProcess = spawn(process.execPath, [...(options.nodeArgs ?? []), red, '--userDir', userDir, '--settings', path.join(userDir, 'settings.js')], {
    env: { ...parentEnv, ...(options.inputPackages === true ? { XDG_CONFIG_HOME: userDir } : {}), ...options.env, NODE_RED_ENABLE_TOURS: 'false' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve((exitCode = code))));
  const url = `http://127.0.0.1:${port}`;

  const request: NodeRedProcess['request'] = (method, urlPath, body, headers = {}) =>
    new Promise((resolve, reject) => {
      const data = body === undefined ? undefined : JSON.stringify(body);
      const req = http.request(`${url}${urlPath}`, { method, headers: { ...(data ? { 'content-type': 'application/json' } : {}), ...headers } }, (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      });
      req.on('error', reject);
      if (data) req.write(data);
      req.end();
    });

  const deadline = Date.now() + 60_000;
  for (;;) {
    if (exitCode !== undefined) throw new Error(`Node-RED exited (${exitCode}) while starting:\n${output}`);
    // English or German (a test starts Node-RED in German: settings.lang).
    if (/Started flows|Flows sind gestartet/.test(output) || /Flows file.*not found|Creating new flow file/.test(output)) {
      try {
        const res = await request('GET', '/settings');
        // 401: listening, with adminAuth on (the admin API wants a token).
        if (res.status === 200 || res.status === 401) break;
      } catch {
        /* not listening yet */
      }
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`Node-RED did not start within 60 s:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }

  return {
    url,
    port,
    userDir,
    pid: child.pid as number,
    output: () => output,
    request,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (exitCode === undefined) child.kill(signal);
      return exited;
    },
  };
}
