/**
 * The edit dialogs in a real browser (headless Debian chromium through playwright-core, against a
 * Node-RED child process with the package installed), in English and German: every number field is
 * a typed input with its unit and range from the option table, durations are shown in seconds and
 * saved in the unit the flow keeps, the disk options appear only with Overflow to disk ticked, and
 * what the runtime refuses is marked before deploy.
 */
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { startNodeRed, NodeRedProcess } from './support/node-red-process';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** One node of each type, on a tab the editor opens; the batcher's Max age is 1500 ms in the flow. */
const FLOWS = [
  { id: 'tab', type: 'tab', label: 'dialogs' },
  { id: 'conn', type: 'timescale-connection', host: 'localhost', port: 5432, database: 'postgres', tls: 'off', connectTimeout: 10000, statementTimeout: '${PG_STATEMENT_MS}' },
  { id: 'sim', type: 'telemetry-simulator', z: 'tab', x: 100, y: 60, wires: [[]] },
  { id: 'buf', type: 'telemetry-buffer', z: 'tab', x: 300, y: 60, diskSpill: false, wires: [[], []] },
  { id: 'bat', type: 'telemetry-batcher', z: 'tab', x: 500, y: 60, maxAge: 1500, wires: [[], []] },
  { id: 'sink', type: 'timescale-sink', z: 'tab', x: 700, y: 60, connection: 'conn', maxRows: '${SINK_ROWS}', wires: [[], []] },
];

type Page = import('playwright-core').Page;

async function open(page: Page, id: string): Promise<void> {
  await page.evaluate((nodeId) => {
    const RED = (globalThis as any).RED;
    const node = RED.nodes.node(nodeId);
    if (node.type === 'timescale-connection') RED.editor.editConfig('', node.type, nodeId);
    else RED.editor.edit(node);
  }, id);
  await page.waitForSelector('.red-ui-tray .telemetry-unit', { state: 'attached', timeout: 20_000 });
}

async function close(page: Page, button: 'done' | 'cancel'): Promise<void> {
  const trays = await page.locator('.red-ui-tray').count();
  await page.locator(`.red-ui-tray:last-child #node-${button === 'done' ? 'dialog-ok' : 'dialog-cancel'}, .red-ui-tray:last-child #node-config-dialog-${button === 'done' ? 'ok' : 'cancel'}`).first().click();
  await page.waitForFunction((n) => (globalThis as any).$('.red-ui-tray').length < n, trays);
}

/** The unit after a field, and whether the field is marked invalid. */
async function fieldState(page: Page, id: string): Promise<{ unit: string; title: string; invalid: boolean; visible: boolean }> {
  return page.evaluate((fieldId) => {
    const $ = (globalThis as any).$;
    const input = $('#' + fieldId);
    const container = input.next('.red-ui-typedInput-container');
    return {
      unit: String(container.nextAll('.telemetry-unit').first().text()),
      title: String(container.attr('title') ?? ''),
      invalid: input.hasClass('input-error') || container.hasClass('input-error'),
      visible: container.is(':visible'),
    };
  }, id);
}

/** Types into a field as a user does: into the typed input's own text box, then leaves it. */
async function type(page: Page, id: string, value: string): Promise<void> {
  const box = page.locator(`#${id} + .red-ui-typedInput-container input.red-ui-typedInput-input`);
  await box.fill(value);
  await box.press('Tab');
}

describe('the edit dialogs in headless chromium, English and German', function () {
  this.timeout(180_000);
  let red: NodeRedProcess | undefined;
  let browser: import('playwright-core').Browser | undefined;

  before(async function () {
    if (!fs.existsSync(CHROMIUM)) {
      console.log(`      browser test skipped: no chromium at ${CHROMIUM}`);
      this.skip();
    }
    red = await startNodeRed({ flows: FLOWS });
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
  });

  after(async function () {
    await browser?.close().catch(() => undefined);
    await red?.stop();
    if (red) fs.rmSync(red.userDir, { recursive: true, force: true });
  });

  for (const [locale, words] of [
    ['en-US', { events: 'events', weight: 'share = weight / sum of the three weights', noLimit: 'no limit', maxAge: 'a number from 0 to 86400 s', batcher: 'batch 1000 / 0.25 s', headings: ['Inputs', 'Outputs', 'Details', 'References'] }],
    ['de', { events: 'Ereignisse', weight: 'Anteil = Gewicht / Summe der drei Gewichte', noLimit: 'keine Grenze', maxAge: 'eine Zahl von 0 bis 86400 s', batcher: 'Batch 1000 / 0.25 s', headings: ['Eingaben', 'Ausgaben', 'Details', 'Referenzen'] }],
  ] as const) {
    it(`${locale}: units and ranges from the option tables, seconds throughout, disk options only with Overflow to disk`, async function () {
      const context = await browser!.newContext({ locale, viewport: { width: 1400, height: 900 } });
      const page = await context.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(String(e)));
      await page.goto(red!.url);
      await page.waitForSelector('#red-ui-palette .red-ui-palette-node', { timeout: 60_000 });

      // The buffer: a typed input per number, its unit and range; the disk options hidden until ticked.
      await open(page, 'buf');
      const capacity = await fieldState(page, 'node-input-capacity');
      assert.equal(capacity.unit, words.events);
      assert.match(capacity.title, /^1 – 50[,.]000[,.]000 /, 'the range as a tooltip');
      assert.match((await fieldState(page, 'node-input-memoryLimit')).unit, new RegExp(`\\(0 = ${words.noLimit}\\)`));
      // The flow's buffer has none of these: the dialog shows what the runtime reads, the defaults.
      assert.equal(await page.isChecked('#node-input-stampSequence'), true);
      assert.equal(await page.inputValue('#node-input-dropPolicy'), 'drop-oldest');
      assert.equal(await page.inputValue('#node-input-shape'), 'auto');
      assert.equal((await fieldState(page, 'node-input-diskMaxMB')).visible, false, 'disk size hidden with Overflow to disk off');
      await page.click('#node-input-diskSpill');
      assert.equal((await fieldState(page, 'node-input-diskMaxMB')).visible, true, 'shown once ticked');
      assert.equal((await fieldState(page, 'node-input-fsyncInterval')).unit.startsWith('s '), true);
      await page.screenshot({ path: path.join(os.tmpdir(), `dialog-buffer-${locale}.png`) });
      await close(page, 'cancel');

      // The batcher: Max age, 1500 ms in the flow, is shown as 1.5 s; 0.25 s is saved as 250 ms.
      await open(page, 'bat');
      assert.equal(await page.inputValue('#node-input-maxAge'), '1.5');
      assert.match((await fieldState(page, 'node-input-maxAge')).unit, /^s /);
      assert.match((await fieldState(page, 'node-input-ackTimeout')).unit, /^s$/);
      await type(page, 'node-input-maxAge', '86401');
      assert.equal((await fieldState(page, 'node-input-maxAge')).invalid, true, 'more than a day is refused, in seconds');
      const reason = await page.evaluate(() => { const RED = (globalThis as any).RED; return RED.nodes.getType('telemetry-batcher').defaults.maxAge.validate.call(RED.nodes.node('bat'), '86401', {}); });
      assert.equal(reason, words.maxAge, 'the reason, in the editor\'s language and the unit shown');
      await type(page, 'node-input-maxAge', '0.25');
      assert.equal((await fieldState(page, 'node-input-maxAge')).invalid, false);
      await close(page, 'done');
      assert.equal(await page.evaluate(() => String((globalThis as any).RED.nodes.node('bat').maxAge)), '250', 'stored in ms, as before');
      assert.equal(await page.evaluate(() => (globalThis as any).RED.utils.getNodeLabel((globalThis as any).RED.nodes.node('bat'))), words.batcher, 'its label in the unit its dialog shows');
      assert.equal(await page.evaluate(() => (globalThis as any).RED.nodes.node('bat').valid), true);

      // The simulator's mix says it is made of weights.
      await open(page, 'sim');
      assert.equal((await fieldState(page, 'node-input-mixSample')).unit, words.weight);
      for (const key of ['mixSample', 'mixDetection', 'mixCounter']) await type(page, `node-input-${key}`, '0');
      assert.equal((await fieldState(page, 'node-input-mixSample')).invalid, true, 'a mix of all zero weights generates nothing');
      await close(page, 'cancel');

      // The sink: a table name with a hyphen is fine; retry delays and On close all in seconds.
      await open(page, 'sink');
      assert.equal(await page.inputValue('#node-input-schema'), 'public', 'not in the flow: the default the runtime reads');
      assert.equal(await page.locator('#node-input-schema.input-error').count(), 0);
      await page.fill('#node-input-table', 'line-1');
      await page.dispatchEvent('#node-input-table', 'change');
      assert.equal(await page.locator('#node-input-table.input-error').count(), 0, 'line-1 is accepted');
      for (const key of ['initialDelay', 'maxDelay', 'drainTimeout', 'statsInterval']) assert.match((await fieldState(page, `node-input-${key}`)).unit, /^s\b/, key);
      await page.fill('#node-input-chunkInterval', '1 fortnight');
      await page.dispatchEvent('#node-input-chunkInterval', 'change');
      assert.equal(await page.locator('#node-input-chunkInterval.input-error').count(), 1, '"1 fortnight" is refused by the runtime, so marked here');
      assert.equal(await page.getAttribute('#node-input-initialDelay + .red-ui-typedInput-container input.red-ui-typedInput-input', 'placeholder'), '0.5', 'not in the flow: the default, 500 ms, in seconds');
      // ${SINK_ROWS} in the flow: an env typed input holding the name, valid, and saved back as it was.
      assert.deepEqual(await page.evaluate(() => { const i = (globalThis as any).$('#node-input-maxRows'); return [i.typedInput('type'), i.typedInput('value')]; }), ['env', 'SINK_ROWS']);
      assert.equal((await fieldState(page, 'node-input-maxRows')).invalid, false);
      await page.screenshot({ path: path.join(os.tmpdir(), `dialog-sink-${locale}.png`) });
      await page.fill('#node-input-chunkInterval', '1 day');
      await close(page, 'done');
      const sink = await page.evaluate(() => { const n = (globalThis as any).RED.nodes.node('sink'); return { maxRows: n.maxRows, initialDelay: n.initialDelay, table: n.table }; });
      assert.deepEqual(sink, { maxRows: '${SINK_ROWS}', initialDelay: '', table: 'line-1' }, 'an empty delay stays empty (the default), the variable stays a variable');
      assert.equal(await page.evaluate(() => (globalThis as any).RED.nodes.node('sink').schema), 'public');

      // The connection: verify-ca without a CA file is marked; timeouts in seconds.
      await open(page, 'conn');
      assert.equal(await page.inputValue('#node-config-input-connectTimeout'), '10');
      assert.match((await fieldState(page, 'node-config-input-statementTimeout')).unit, /^ms\b/, 'a variable is read in the unit the flow keeps');
      await page.selectOption('#node-config-input-tls', 'verify-ca');
      await page.fill('#node-config-input-ca', '');
      await page.dispatchEvent('#node-config-input-ca', 'change');
      assert.equal(await page.locator('#node-config-input-ca.input-error').count(), 1, 'verify-ca needs a CA file');
      await page.screenshot({ path: path.join(os.tmpdir(), `dialog-connection-${locale}.png`) });
      await close(page, 'cancel');

      // Each node's help in the sidebar: in this language, linking the option reference, and no code
      // sample (a path, a connection string) wider than the sidebar.
      for (const type of ['telemetry-simulator', 'telemetry-buffer', 'telemetry-batcher', 'timescale-sink', 'timescale-connection']) {
        // Emptied first, so that the wait below sees this type's help, not the one before.
        await page.evaluate((t) => { (globalThis as any).$('.red-ui-panel > .red-ui-help').empty(); (globalThis as any).RED.sidebar.help.show(t); }, type);
        await page.waitForFunction(() => ((globalThis as any).document.querySelector('.red-ui-panel > .red-ui-help')?.textContent ?? '').includes('docs/options.md'), undefined, { timeout: 10_000 });
        const help = await page.evaluate(() => {
          const section = (globalThis as any).document.querySelector('.red-ui-panel > .red-ui-help');
          const wide = Array.from(section.querySelectorAll('code, pre, dd, p, li') as any[]).filter((el) => el.getBoundingClientRect().right > section.getBoundingClientRect().right + 1).map((el) => el.textContent as string);
          return { wide, headings: Array.from(section.querySelectorAll('h3') as any[]).map((h) => h.textContent as string) };
        });
        assert.deepEqual(help.wide, [], `${type}: nothing wider than the sidebar`);
        assert.deepEqual(help.headings, words.headings, `${type}: the help in the editor's language`);
      }
      await page.screenshot({ path: path.join(os.tmpdir(), `help-connection-${locale}.png`) });

      assert.deepEqual(errors, [], 'no script error in the editor');
      await context.close();
    });
  }
});
