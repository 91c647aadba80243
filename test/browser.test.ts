/**
 * The editor in a real browser, the way an integrator meets the package: headless Debian chromium
 * (driven by playwright-core, which never downloads a browser of its own) against a real Node-RED
 * child process with the package installed. The palette shows the nodes, an example comes in
 * through the Import dialog's Examples tab, the connection is set in its edit dialog, the flow
 * deploys, and the badges show live counts while the database is frozen and when it is back.
 * A screenshot of the running flow goes to test-artifacts/ (docs/screenshot.png is a copy of it).
 */
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { startNodeRed, NodeRedProcess } from './support/node-red-process';
import { createTestDatabase, getTestServer, TestServer } from './support/postgres';
import { nodeStats } from './support/pipeline';
import { waitUntil } from './support/wait';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const root = path.join(__dirname, '..');
const artifacts = path.join(root, 'test-artifacts');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const EXAMPLE = '01 - Simulated line into TimescaleDB';

describe('the editor in headless chromium', function () {
  this.timeout(180_000);
  let red: NodeRedProcess | undefined;
  let context: import('playwright-core').BrowserContext | undefined;
  let profile: string | undefined;
  let server: TestServer | undefined;
  let frozen = false;

  before(function () {
    if (!fs.existsSync(CHROMIUM)) {
      // .ci/run installs Debian's chromium; only a machine where that is impossible gets here.
      console.log(`      browser test skipped: no chromium at ${CHROMIUM} (apt-get install -y chromium, or set CHROMIUM_PATH)`);
      this.skip();
    }
  });

  after(async function () {
    if (frozen) server?.thaw();
    await context?.close().catch(() => undefined);
    if (profile) fs.rmSync(profile, { recursive: true, force: true });
    await red?.stop();
    if (red) fs.rmSync(red.userDir, { recursive: true, force: true });
  });

  it('shows the nodes in the palette, imports an example, deploys it and shows live counts', async function () {
    server = await getTestServer();
    const db = new URL(await createTestDatabase('browser_example'));
    red = await startNodeRed({ flows: [] });
    const { chromium } = await import('playwright-core');
    profile = fs.mkdtempSync(path.join(os.tmpdir(), 'telemetry-chromium-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1400, height: 800 },
      locale: 'en-US',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    const page = context.pages()[0] ?? (await context.newPage());
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    await page.goto(red.url);
    await page.waitForSelector('#red-ui-palette .red-ui-palette-node', { timeout: 60_000 });

    // The palette: the four flow nodes of the package in the "telemetry" category.
    for (const type of Object.keys(pkg['node-red'].nodes).filter((t) => t !== 'timescale-connection')) {
      const node = page.locator(`#red-ui-palette-telemetry .red-ui-palette-node[data-palette-type="${type}"]`);
      assert.equal(await node.count(), 1, `${type} in the telemetry palette`);
    }

    // Import > Examples: the menu, the Examples tab, our module, the example, Import into a new flow.
    await page.click('#red-ui-header-button-sidemenu');
    await page.click('#menu-item-import');
    await page.click('#red-ui-tab-red-ui-clipboard-dialog-import-tab-examples a');
    const library = page.locator('#red-ui-clipboard-dialog-import-tab-examples');
    await library.getByText(pkg.name, { exact: true }).click();
    await library.getByText(EXAMPLE, { exact: true }).click();
    await page.click('#red-ui-clipboard-dialog-import-opt-new');
    await page.click('#red-ui-clipboard-dialog-ok');
    // Imported nodes follow the mouse until a click drops them.
    await page.mouse.move(260, 150);
    await page.mouse.click(260, 150);

    const ids = await page.evaluate(() => {
      const RED = (globalThis as any).RED;
      const first = (type: string): string => RED.nodes.filterNodes({ type })[0]?.id;
      let connection = '';
      RED.nodes.eachConfig((n: any) => {
        if (n.type === 'timescale-connection') connection = n.id;
      });
      return { sim: first('telemetry-simulator'), buffer: first('telemetry-buffer'), batcher: first('telemetry-batcher'), sink: first('timescale-sink'), connection };
    });
    for (const [name, id] of Object.entries(ids)) assert.ok(id, `the example brought a ${name}`);

    // Point the connection at the test database in its own edit dialog, credentials included.
    await page.evaluate((id) => (globalThis as any).RED.editor.editConfig('', 'timescale-connection', id), ids.connection);
    await page.waitForSelector('#node-config-input-host', { state: 'visible' });
    await page.fill('#node-config-input-host', db.hostname);
    // Port is a typed input: the user types into its own text box.
    await page.fill('#node-config-input-port + .red-ui-typedInput-container input.red-ui-typedInput-input', db.port);
    await page.fill('#node-config-input-database', decodeURIComponent(db.pathname.slice(1)));
    await page.fill('#node-config-input-user', decodeURIComponent(db.username));
    await page.fill('#node-config-input-password', decodeURIComponent(db.password));
    await page.click('#node-config-dialog-ok');
    await page.waitForSelector('#node-config-input-port', { state: 'detached' });

    // No node of the example may be marked invalid with its defaults.
    const invalid = await page.evaluate(() => (globalThis as any).RED.nodes.filterNodes({}).filter((n: any) => n.valid === false).map((n: any) => n.type));
    assert.deepEqual(invalid, []);

    await page.click('#red-ui-header-button-deploy');
    await page.waitForSelector('.red-ui-notification:has-text("Successfully deployed")', { timeout: 30_000 });
    const deployed = JSON.parse((await red.request('GET', '/flows')).body) as { type: string }[];
    assert.ok(deployed.some((n) => n.type === 'telemetry-buffer'), 'the flow is deployed');
    assert.doesNotMatch(JSON.stringify(deployed), new RegExp(decodeURIComponent(db.password)), 'the password is not in the flow');

    // For the screenshot: nothing selected, the sidebar closed, the palette showing the package's nodes.
    await page.evaluate(() => {
      const RED = (globalThis as any).RED;
      RED.view.select('');
      RED.menu.setSelected('menu-item-sidebar', false);
    });
    await page.locator('#red-ui-palette-search input').pressSequentially('telemetry');

    const badge = (id: string): Promise<string> =>
      page.evaluate((nodeId) => (globalThis as any).document.getElementById(nodeId)?.querySelector('.red-ui-flow-node-status-label')?.textContent ?? '', id);
    const waitForBadge = async (id: string, what: string, check: (text: string) => boolean): Promise<string> => {
      let text = '';
      try {
        await waitUntil(what, async () => check((text = await badge(id))), 90_000);
      } catch (e) {
        fs.mkdirSync(artifacts, { recursive: true });
        await page.screenshot({ path: path.join(artifacts, 'browser-failure.png') });
        throw new Error(`${(e as Error).message}; badge "${text}"; counters ${JSON.stringify(await nodeStats(proc))}\n${proc.output().slice(-3000)}`);
      }
      return text;
    };
    const proc = red;

    // Running: the sink writes, the simulator's count moves.
    await waitForBadge(ids.sink, 'the sink badge shows rows written', (t) => /^[1-9][\d.]*k? rows\/s/.test(t));
    const first = await waitForBadge(ids.sim, 'the simulator badge shows a count', (t) => /\d/.test(t));
    await waitForBadge(ids.sim, 'the simulator badge moves', (t) => t !== first);
    assert.match(await badge(ids.buffer), /^(<1|\d+)% dropped 0$/);

    // With the database frozen the buffer holds the line: its badge climbs and equals its counters.
    if (!server.external) {
      server.freeze();
      frozen = true;
      await waitForBadge(ids.buffer, 'the buffer badge shows a fill level', (t) => /^([1-9]\d*)% dropped \d+$/.test(t));
      const stats = (await nodeStats(proc))[ids.buffer];
      assert.ok(stats.depth > 0, 'the buffer holds events');
      fs.mkdirSync(artifacts, { recursive: true });
      await page.screenshot({ path: path.join(artifacts, 'running-flow.png') });
      server.thaw();
      frozen = false;
      await waitForBadge(ids.buffer, 'the buffer drains once the database is back', (t) => /^(0|<1)% dropped 0$/.test(t));
    } else {
      fs.mkdirSync(artifacts, { recursive: true });
      await page.screenshot({ path: path.join(artifacts, 'running-flow.png') });
    }
    const stats = (await nodeStats(proc))[ids.buffer];
    assert.equal(stats.dropped, 0);
    assert.ok(stats.delivered > 0, 'the buffer delivered events');
    assert.deepEqual(pageErrors, [], 'no script error in the editor');
  });
});
