/**
 * Badges and log lines in the user's language (issue 19 item 4): every key the code names exists in
 * en-US and de with the same parameters, and a real Node-RED started in German shows a badge and
 * logs a line in German.
 */
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { diskBadgeText } from '../src/core/buffer/disk-tier-settings';
import { sinkBadge } from '../src/core/sink/sink-status';
import type { SinkState } from '../src/core/sink/sink-types';
import type { Translate } from '../src/core/shared/text';
import { catalog, lookUp } from '../src/nodes/i18n';
import { NodeRedProcess, startNodeRed } from './support/node-red-process';
import { waitUntil } from './support/wait';

const root = path.join(__dirname, '..');
const TYPES = ['telemetry-buffer', 'telemetry-batcher', 'timescale-sink', 'timescale-connection', 'telemetry-simulator'];
const LANGS = ['en-US', 'de'];

/** Which node's catalog the keys of a source file are looked up in (the node that runs the code). */
const SOURCES: Array<[dir: string, type: string]> = [
  ['src/core/buffer', 'telemetry-buffer'],
  ['src/core/shared/drop-log.ts', 'telemetry-buffer'],
  ['src/core/batching', 'telemetry-batcher'],
  ['src/core/sink', 'timescale-sink'],
  ...TYPES.map((type): [string, string] => [`src/nodes/${type}.ts`, type]),
];

function filesUnder(p: string): string[] {
  const full = path.join(root, p);
  if (fs.statSync(full).isFile()) return [full];
  return fs.readdirSync(full).flatMap((name) => filesUnder(path.join(p, name)));
}

/** Every "status.x" / "log.x" key a message catalog holds, with its parameters. */
function keysOf(messages: Record<string, unknown>): Map<string, string[]> {
  const keys = new Map<string, string[]>();
  const walk = (at: unknown, prefix: string): void => {
    if (typeof at === 'string') keys.set(prefix, [...at.matchAll(/__([A-Za-z0-9_]+)__/g)].map((m) => m[1]).sort());
    else if (at !== null && typeof at === 'object') for (const [k, v] of Object.entries(at)) walk(v, prefix === '' ? k : `${prefix}.${k}`);
  };
  walk({ status: messages.status, log: messages.log }, '');
  return keys;
}

/** A translator that fails on a key its catalog lacks (RED._ would show the bare key). */
function strict(type: string, lang: string): Translate {
  return (key, params) => {
    const text = lookUp(catalog(type, lang), key, params);
    assert.ok(text !== undefined, `${lang}/${type}.json has no ${key}`);
    assert.doesNotMatch(text, /__[A-Za-z0-9_]+__/, `${lang}/${type}.json ${key}: a parameter is not filled in`);
    return text;
  };
}

describe('badges and log lines in the user\'s language', function () {
  it('en-US and de hold the same status and log keys, with the same parameters', function () {
    for (const type of TYPES) {
      const en = keysOf(catalog(type, 'en-US'));
      const de = keysOf(catalog(type, 'de'));
      assert.ok(en.size > 0, `${type}: no status or log keys`);
      assert.deepEqual([...de.keys()].sort(), [...en.keys()].sort(), type);
      for (const [key, params] of en) assert.deepEqual(de.get(key), params, `${type} ${key}: parameters`);
    }
  });

  it('every key the code names exists in its node\'s catalog in both languages', function () {
    let named = 0;
    for (const [source, type] of SOURCES) {
      for (const file of filesUnder(source)) {
        const text = fs.readFileSync(file, 'utf8');
        for (const [, key] of text.matchAll(/['`]((?:status|log)\.[A-Za-z0-9.]+)['`]/g)) {
          named++;
          for (const lang of LANGS) assert.ok(lookUp(catalog(type, lang), key) !== undefined, `${path.relative(root, file)} names ${key}, missing in ${lang}/${type}.json`);
        }
      }
    }
    assert.ok(named > 60, `found ${named} keys in the code`);
  });

  it('the sink names every state and code it knows in both languages (keys made at runtime)', function () {
    const states: SinkState[] = ['starting', 'up', 'retrying', 'down', 'misconfigured', 'closing'];
    const codes = ['ECONNREFUSED', '57014', 'QUERY_TIMEOUT', '25006', '53100', '28P01', '28000', '28XXX', 'NO_PASSWORD', '3D000', '3F000', '42501', '42P01', '42703', '42XXX', 'NO_TABLE', 'NO_COLUMN', 'ENOTFOUND', 'NO_TLS', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'XX000'];
    for (const lang of LANGS) {
      const t = strict('timescale-sink', lang);
      for (const state of states) for (const code of codes) sinkBadge({ state, now: 200_000, rate: 12, code, since: 8000, attempt: 2, maxAttempts: 10, warning: '', waitingMs: 0 }, t);
      sinkBadge({ state: 'up', now: 200_000, rate: 12, code: '', since: 0, attempt: 0, maxAttempts: 10, warning: '!key', waitingMs: 5000 }, t);
    }
  });

  it('the buffer\'s disk badges stay under 20 characters in both languages', function () {
    for (const lang of LANGS) {
      const t = strict('telemetry-buffer', lang);
      for (let phase = 0; phase < 3; phase++) {
        const text = diskBadgeText(phase, 123_456_789, 999 * 1024 * 1024, 86400 * 400, 9_999_999_999, t);
        assert.ok(text.length < 20, `${lang}: "${text}" is ${text.length} characters`);
      }
    }
  });

  describe('in a Node-RED runtime started in German (settings.lang)', function () {
    this.timeout(90_000);
    let red: NodeRedProcess;

    before(async function () {
      // A reading into a batcher (its badge goes to a status node, and from there to the log
      // through a debug node), and a sink without a connection (its error line).
      const flows = [
        { id: 'f1', type: 'tab', label: 'i18n' },
        { id: 'n1', z: 'f1', type: 'inject', props: [{ p: 'payload' }, { p: 'topic', vt: 'str' }], payload: '21.5', payloadType: 'num', topic: 'line1/temp', once: true, onceDelay: 0.5, repeat: '', wires: [['n2']] },
        { id: 'n2', z: 'f1', type: 'telemetry-batcher', maxSize: '100', maxAge: '600000', wires: [[], []] },
        { id: 'n3', z: 'f1', type: 'status', scope: ['n2'], wires: [['n4']] },
        { id: 'n4', z: 'f1', type: 'debug', active: true, tosidebar: false, console: true, complete: 'status.text', targetType: 'msg', wires: [] },
        { id: 'n5', z: 'f1', type: 'timescale-sink', table: 'telemetry', wires: [[], []] },
      ];
      // LANG=C: the settings decide, not the machine's locale (which the runtime reads otherwise).
      red = await startNodeRed({ flows, settings: "lang: 'de',", env: { LANG: 'C', LC_ALL: '', LC_MESSAGES: '' } });
    });

    after(async function () {
      await red?.stop();
      if (red) fs.rmSync(red.userDir, { recursive: true, force: true });
    });

    it('shows the batcher\'s badge and logs the sink\'s error in German', async function () {
      await waitUntil('the batcher\'s badge in the log', () => /\[debug:n4\][^\n]*0 offen, 1 gehalten/.test(red.output()), 30_000);
      assert.match(red.output(), /\[error\] \[timescale-sink:n5\] timescale-sink nicht gestartet: keine Verbindung konfiguriert/);
      assert.doesNotMatch(red.output(), /\b(status|log)\.[a-z][A-Za-z.]+/, 'no bare key reaches the log');
    });
  });
});
