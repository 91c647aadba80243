import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { startNodeRed, NodeRedProcess } from './support/node-red-process';
import { waitUntil } from './support/wait';

const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8'));

describe('installed in a real Node-RED runtime (the version under test)', function () {
  this.timeout(90_000);
  let red: NodeRedProcess;

  before(async function () {
    // With the input packages the examples are made with (node-red-contrib-modbus, -opcua).
    red = await startNodeRed({ inputPackages: true });
  });

  after(async function () {
    await red?.stop();
    if (red) fs.rmSync(red.userDir, { recursive: true, force: true });
  });

  it('loads every node of the package without errors', async function () {
    const res = await red.request('GET', '/nodes', undefined, { accept: 'application/json' });
    assert.equal(res.status, 200);
    const sets: { module: string; types: string[]; enabled: boolean; err?: string }[] = JSON.parse(res.body);
    const ours = sets.filter((s) => s.module === pkg.name);
    const types = ours.flatMap((s) => s.types).sort();
    assert.deepEqual(types, Object.keys(pkg['node-red'].nodes).sort());
    for (const set of ours) {
      assert.equal(set.err, undefined, `${set.types.join(',')}: ${set.err}`);
      assert.ok(set.enabled, `${set.types.join(',')} enabled`);
    }
    assert.doesNotMatch(red.output(), /\[(error|warn)\].*(telemetry|timescale)/i);
  });

  it('puts the sink in "storage" beside the other database nodes and the rest of the pipeline in "telemetry"', async function () {
    const res = await red.request('GET', '/nodes', undefined, { accept: 'text/html' });
    assert.equal(res.status, 200);
    for (const type of Object.keys(pkg['node-red'].nodes)) {
      const registration = new RegExp(`registerType\\('${type}',\\s*\\{\\s*category:\\s*'(\\w+)'`);
      const match = registration.exec(res.body);
      assert.ok(match, `${type} is registered in the editor`);
      const expected: Record<string, string> = { 'timescale-connection': 'config', 'timescale-sink': 'storage' };
      assert.equal(match[1], expected[type] ?? 'telemetry', type);
    }
  });

  it('serves the help and labels from locales/, in German for a German browser', async function () {
    for (const [lang, heading] of [['en-US', 'Inputs'], ['de', 'Eingaben']]) {
      const res = await red.request('GET', '/nodes', undefined, { accept: 'text/html', 'accept-language': lang });
      assert.equal(res.status, 200);
      for (const type of Object.keys(pkg['node-red'].nodes)) {
        const help = new RegExp(`data-help-name="${type}">[\\s\\S]*?<h3>${heading}</h3>`);
        assert.match(res.body, help, `${lang} help of ${type}`);
      }
    }
    const de = await red.request('GET', `/locales/${pkg.name}/telemetry-buffer?lng=de`);
    assert.equal(de.status, 200);
    assert.equal(JSON.parse(de.body)['telemetry-buffer'].label.capacity, 'Kapazität');
    const en = await red.request('GET', `/locales/${pkg.name}/telemetry-buffer?lng=en-US`);
    assert.equal(JSON.parse(en.body)['telemetry-buffer'].label.capacity, 'Capacity');
  });

  it('serves each node icon', async function () {
    for (const type of Object.keys(pkg['node-red'].nodes)) {
      if (type === 'timescale-connection') continue;
      const res = await red.request('GET', `/icons/${pkg.name}/${type}.svg`);
      assert.equal(res.status, 200, `${type}.svg`);
      assert.match(res.body, /<svg/);
    }
  });

  it('offers every example in Import > Examples, and each deploys with known node types only', async function () {
    const listing = await red.request('GET', `/library/examples/flows/${pkg.name}`);
    assert.equal(listing.status, 200);
    const names: string[] = JSON.parse(listing.body).map((e: { fn: string }) => e.fn);
    const files = fs.readdirSync(path.join(__dirname, '..', 'examples')).filter((f) => f.endsWith('.json')).map((f) => f.replace(/\.json$/, ''));
    assert.deepEqual(names.sort(), files.sort());
    const typesUsed = new Set<string>();
    for (const name of names) {
      const res = await red.request('GET', `/library/examples/flows/${pkg.name}/${encodeURIComponent(name)}`);
      assert.equal(res.status, 200, name);
      const flow: { id: string; type: string; z?: string; wires?: string[][] }[] = JSON.parse(res.body);
      const ids = new Set(flow.map((n) => n.id));
      for (const n of flow) {
        typesUsed.add(n.type);
        for (const target of (n.wires ?? []).flat()) assert.ok(ids.has(target), `${name}: ${n.id} is wired to a node in the example`);
      }
      assert.ok(flow.some((n) => n.type === 'comment'), `${name} explains itself in a comment node`);
      const tab = { id: 'examplet4b000001', type: 'tab', label: name };
      const deploy = await red.request('POST', '/flows', [tab, ...flow.map((n) => (n.z ? { ...n, z: tab.id } : n))], { 'Node-RED-Deployment-Type': 'full' });
      assert.equal(deploy.status, 204, `${name}: ${deploy.body}`);
      const state = await red.request('GET', '/flows/state');
      assert.equal(JSON.parse(state.body).state, 'start', `${name} runs`);
      assert.doesNotMatch(red.output(), /Waiting for missing types/);
    }
    for (const type of Object.keys(pkg['node-red'].nodes)) assert.ok(typesUsed.has(type), `an example uses ${type}`);
  });

  it("writes example 01's dead letters into the user directory, not the process's working directory", async function () {
    const res = await red.request('GET', `/library/examples/flows/${pkg.name}/${encodeURIComponent('01 - Simulated line into TimescaleDB')}`);
    const file = (JSON.parse(res.body) as { id: string; type: string }[]).find((n) => n.type === 'file');
    assert.ok(file, 'example 01 has its dead-letter file node');
    const tab = { id: 'deadl3773rtab001', type: 'tab', label: 'dead letters' };
    const inject = { id: 'deadl3773rinj001', type: 'inject', z: tab.id, payload: '{"reason":"test"}', payloadType: 'json', wires: [[file.id]] };
    const deploy = await red.request('POST', '/flows', [tab, inject, { ...file, z: tab.id }], { 'Node-RED-Deployment-Type': 'full' });
    assert.equal(deploy.status, 204, deploy.body);
    // The flow starts just after the deploy answers.
    await waitUntil('the inject node takes a trigger', async () => (await red.request('POST', `/inject/${inject.id}`)).status === 200, 10_000);
    const written = path.join(red.userDir, 'telemetry-dead-letters.jsonl');
    await waitUntil('the dead letter is written', () => fs.existsSync(written) && fs.readFileSync(written, 'utf8') === '{"reason":"test"}\n', 10_000);
    assert.equal(fs.existsSync(path.join(process.cwd(), 'telemetry-dead-letters.jsonl')), false, 'nothing in the working directory');
    await red.request('POST', '/flows', [], { 'Node-RED-Deployment-Type': 'full' });
  });
});

