/**
 * The editor in a real browser, the way an integrator meets the package: headless Debian chromium
 * (driven by playwright-core, which never downloads a browser of its own) against a real Node-RED
 * child process with the package installed. The palette shows the nodes, an example comes in
 * through the Import dialog's Examples tab, the connection is set in its edit dialog, the flow
 * deploys, and the badges show live counts while the database is frozen and when it is back.
 * A screenshot of the running flow goes to test-artifacts/ (docs/screenshot.png is a copy of it).
 * Then the dashboard example (06, @flowfuse/node-red-dashboard): its page in a second tab shows the
 * sink up and writing, down with 0 rows/s while the database is frozen, and up again
 * (test-artifacts/dashboard.png, copied to docs/dashboard.png).
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
const DASHBOARD_EXAMPLE = '06 - Pipeline health on a dashboard';

type Page = import('playwright-core').Page;

/** Import > Examples: the menu, the Examples tab, our module, the example, Import into a new flow. */
async function importExample(page: Page, name: string): Promise<void> {
  const before = await page.evaluate(() => (globalThis as any).RED.workspaces.active() as string);
  await page.click('#red-ui-header-button-sidemenu');
  await page.click('#menu-item-import');
  await page.click('#red-ui-tab-red-ui-clipboard-dialog-import-tab-examples a');
  const library = page.locator('#red-ui-clipboard-dialog-import-tab-examples');
  await library.getByText(pkg.name, { exact: true }).click();
  await library.getByText(name, { exact: true }).click();
  await page.click('#red-ui-clipboard-dialog-import-opt-new');
  await page.click('#red-ui-clipboard-dialog-ok');
  // The import opens a flow of its own: what the test reads next is on it, so wait until it is there.
  await page.waitForFunction((tab) => {
    const RED = (globalThis as any).RED;
    const active = RED.workspaces.active();
    return active !== tab && RED.nodes.filterNodes({ z: active }).length > 0;
  }, before);
  // Imported nodes follow the mouse until a click drops them.
  await page.mouse.move(260, 150);
  await page.mouse.click(260, 150);
}

/** At 100 % zoom with the sidebar open the whole imported example is in view (20 px to spare each side). */
async function assertFitsCanvas(page: Page, name: string): Promise<void> {
  const fit = await page.evaluate(() => {
    const RED = (globalThis as any).RED;
    const nodes = RED.nodes.filterNodes({ z: RED.workspaces.active() }) as { x: number; w: number }[];
    return {
      sidebar: RED.menu.isSelected('menu-item-sidebar') as boolean,
      zoom: RED.view.scale() as number,
      flowWidth: Math.max(...nodes.map((n) => n.x + n.w / 2)) - Math.min(...nodes.map((n) => n.x - n.w / 2)),
      canvasWidth: (globalThis as any).document.getElementById('red-ui-workspace-chart').clientWidth as number,
    };
  });
  assert.ok(fit.sidebar && fit.zoom === 1, 'the sidebar is open, the zoom 100 %');
  assert.ok(fit.flowWidth + 40 <= fit.canvasWidth, `${name} (${Math.round(fit.flowWidth)} px wide) fits the canvas (${fit.canvasWidth} px)`);
}

/** The connection node's edit dialog, pointed at the test database, credentials included. */
async function setConnection(page: Page, id: string, db: URL): Promise<void> {
  await page.evaluate((nodeId) => (globalThis as any).RED.editor.editConfig('', 'timescale-connection', nodeId), id);
  await page.waitForSelector('#node-config-input-host', { state: 'visible' });
  await page.fill('#node-config-input-host', db.hostname);
  // Port is a typed input: the user types into its own text box.
  await page.fill('#node-config-input-port + .red-ui-typedInput-container input.red-ui-typedInput-input', db.port);
  await page.fill('#node-config-input-database', decodeURIComponent(db.pathname.slice(1)));
  await page.fill('#node-config-input-user', decodeURIComponent(db.username));
  await page.fill('#node-config-input-password', decodeURIComponent(db.password));
  await page.click('#node-config-dialog-ok');
  await page.waitForSelector('#node-config-input-port', { state: 'detached' });
}

/** Deploy, and wait for the editor to say so. */
async function deploy(page: Page): Promise<void> {
  await page.click('#red-ui-header-button-deploy');
  await page.waitForSelector('.red-ui-notification:has-text("Successfully deployed")', { timeout: 30_000 });
}

describe('the editor in headless chromium', function () {
  this.timeout(180_000);
  let red: NodeRedProcess | undefined;
  let context: import('playwright-core').BrowserContext | undefined;
  let profile: string | undefined;
  let server: TestServer | undefined;
  let frozen = false;
  let editor: { page: Page; db: URL } | undefined;

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
    // With the packages the examples are made with (the dashboard of example 06 among them).
    red = await startNodeRed({ flows: [], inputPackages: true });
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
    editor = { page, db };
    await page.goto(red.url);
    await page.waitForSelector('#red-ui-palette .red-ui-palette-node', { timeout: 60_000 });

    // The palette: the sink among the storage nodes, the rest in "telemetry", each label on one line.
    const flowTypes = Object.keys(pkg['node-red'].nodes).filter((t) => t !== 'timescale-connection');
    for (const type of flowTypes) {
      const category = type === 'timescale-sink' ? 'storage' : 'telemetry';
      const node = page.locator(`#red-ui-palette-${category} .red-ui-palette-node[data-palette-type="${type}"]`);
      assert.equal(await node.count(), 1, `${type} in the ${category} palette`);
      assert.doesNotMatch(await node.locator('.red-ui-palette-label').innerHTML(), /<br/, `${type}: its palette label fits one line`);
    }
    // What users type into the palette search to find them.
    const found = async (term: string): Promise<string[]> => {
      await page.fill('#red-ui-palette-search input', term);
      await page.waitForTimeout(500);
      return page.evaluate(() =>
        Array.from((globalThis as any).document.querySelectorAll('#red-ui-palette-container .red-ui-palette-node') as any[])
          .filter((el) => el.offsetParent !== null)
          .map((el) => el.getAttribute('data-palette-type') as string),
      );
    };
    for (const term of ['postgres', 'database', 'timescale']) assert.ok((await found(term)).includes('timescale-sink'), `"${term}" finds the sink`);
    assert.deepEqual((await found('telemetry')).filter((t) => flowTypes.includes(t)).sort(), [...flowTypes].sort(), '"telemetry" finds every node of the package');
    await page.fill('#red-ui-palette-search input', '');

    // A node fresh from the palette: labels that say what it is, not the category's name.
    const fresh = await page.evaluate((types) => {
      const RED = (globalThis as any).RED;
      return types.map((type: string) => {
        const def = RED.nodes.getType(type);
        const node: Record<string, unknown> = { type, _: def._ };
        for (const [key, property] of Object.entries(def.defaults as Record<string, { value: unknown }>)) node[key] = property.value;
        return def.label.call(node) as string;
      });
    }, flowTypes);
    assert.deepEqual(Object.fromEntries(flowTypes.map((t, i) => [t, fresh[i]])), {
      'telemetry-buffer': 'buffer',
      'telemetry-batcher': 'batch 1000 / 1 s',
      'timescale-sink': 'telemetry table',
      'telemetry-simulator': 'simulator 100/s',
    });

    await importExample(page, EXAMPLE);

    await assertFitsCanvas(page, EXAMPLE);

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
    await setConnection(page, ids.connection, db);

    // No node of the example may be marked invalid with its defaults.
    const invalid = await page.evaluate(() => (globalThis as any).RED.nodes.filterNodes({}).filter((n: any) => n.valid === false).map((n: any) => n.type));
    assert.deepEqual(invalid, []);

    await deploy(page);
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

  it('deploys the dashboard example; its page shows the fill level, drops, rows/s and the sink state, and they move', async function () {
    assert.ok(editor && red && server, 'the editor of the test before is open');
    const { page, db } = editor;
    const proc = red;
    await page.evaluate(() => (globalThis as any).RED.menu.setSelected('menu-item-sidebar', true));
    await importExample(page, DASHBOARD_EXAMPLE);
    await assertFitsCanvas(page, DASHBOARD_EXAMPLE);
    const flow = await page.evaluate(() => {
      const RED = (globalThis as any).RED;
      const here = (type: string): any[] => RED.nodes.filterNodes({ type, z: RED.workspaces.active() });
      const texts: Record<string, string> = {};
      for (const t of here('ui-text')) texts[t.label] = t.id;
      return { connection: here('timescale-sink')[0]?.connection as string, buffer: here('telemetry-buffer')[0]?.id as string, gauge: here('ui-gauge')[0]?.id as string, charts: here('ui-chart').length, functions: here('function').length, texts };
    });
    assert.equal(flow.functions, 0, 'the figures come from the stats as they are (the sink carries its rows/s): no function node');
    assert.ok(flow.connection && flow.gauge, `the example brought a sink and a gauge: ${JSON.stringify(flow)}`);
    assert.equal(flow.charts, 2, 'rows/s and fill level over time');
    assert.deepEqual(Object.keys(flow.texts).sort(), ['dropped', 'rows/s', 'sink state']);
    await setConnection(page, flow.connection, db);
    const invalid = await page.evaluate(() => (globalThis as any).RED.nodes.filterNodes({}).filter((n: any) => n.valid === false).map((n: any) => n.type));
    assert.deepEqual(invalid, [], 'no node of the example is invalid');
    await deploy(page);
    fs.mkdirSync(artifacts, { recursive: true });
    await page.screenshot({ path: path.join(artifacts, 'dashboard-flow.png') });

    const dashboard = await page.context().newPage();
    const dashboardErrors: string[] = [];
    dashboard.on('pageerror', (e) => dashboardErrors.push(String(e)));
    await dashboard.setViewportSize({ width: 1200, height: 800 });
    await dashboard.goto(`${proc.url}/dashboard/pipeline`);
    const text = async (label: string): Promise<string> =>
      ((await dashboard.locator(`#nrdb-ui-widget-${flow.texts[label]} .nrdb-ui-text-value`).textContent({ timeout: 1000 }).catch(() => '')) ?? '').trim();
    const waitFor = async (what: string, check: () => Promise<boolean>): Promise<void> => {
      try {
        await waitUntil(what, check, 90_000);
      } catch (e) {
        fs.mkdirSync(artifacts, { recursive: true });
        await dashboard.screenshot({ path: path.join(artifacts, 'dashboard-failure.png') });
        const shown = { state: await text('sink state'), rate: await text('rows/s'), dropped: await text('dropped') };
        throw new Error(`${(e as Error).message}; dashboard ${JSON.stringify(shown)}; counters ${JSON.stringify(await nodeStats(proc))}`);
      }
    };
    await waitFor('the dashboard shows the sink up and writing', async () => (await text('sink state')) === 'up' && Number(await text('rows/s')) > 0);
    assert.equal(await text('dropped'), '0');
    assert.match(await dashboard.locator(`#nrdb-ui-widget-${flow.gauge}`).innerText(), /\d/, 'the gauge shows the fill level');

    if (!server.external) {
      // The database frozen: the sink goes down, nothing is written, the buffer fills; back: it drains.
      server.freeze();
      frozen = true;
      await waitFor('the dashboard shows the sink down and 0 rows/s', async () => /^down\b/.test(await text('sink state')) && (await text('rows/s')) === '0');
      await waitFor('the buffer fills', async () => (await nodeStats(proc))[flow.buffer]?.depth > 1000);
      fs.mkdirSync(artifacts, { recursive: true });
      await dashboard.screenshot({ path: path.join(artifacts, 'dashboard.png') });
      server.thaw();
      frozen = false;
      await waitFor('the dashboard shows the sink up and writing again', async () => (await text('sink state')) === 'up' && Number(await text('rows/s')) > 0);
    } else {
      fs.mkdirSync(artifacts, { recursive: true });
      await dashboard.screenshot({ path: path.join(artifacts, 'dashboard.png') });
    }
    assert.equal(await text('dropped'), '0');
    assert.deepEqual(dashboardErrors, [], 'no script error on the dashboard');
    await dashboard.close();
  });
});
