import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { startNodeRed, NodeRedProcess } from './support/node-red-process';

const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8'));

describe('installed in a real Node-RED 4 runtime', function () {
  this.timeout(90_000);
  let red: NodeRedProcess;

  before(async function () {
    red = await startNodeRed();
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

  it('puts the pipeline nodes in the telemetry palette category', async function () {
    const res = await red.request('GET', '/nodes', undefined, { accept: 'text/html' });
    assert.equal(res.status, 200);
    for (const type of Object.keys(pkg['node-red'].nodes)) {
      const registration = new RegExp(`registerType\\('${type}',\\s*\\{\\s*category:\\s*'(\\w+)'`);
      const match = registration.exec(res.body);
      assert.ok(match, `${type} is registered in the editor`);
      assert.equal(match[1], type === 'timescale-connection' ? 'config' : 'telemetry');
    }
  });

  it('serves each node icon', async function () {
    for (const type of Object.keys(pkg['node-red'].nodes)) {
      if (type === 'timescale-connection') continue;
      const res = await red.request('GET', `/icons/${pkg.name}/${type}.svg`);
      assert.equal(res.status, 200, `${type}.svg`);
      assert.match(res.body, /<svg/);
    }
  });
});
