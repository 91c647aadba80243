/**
 * The editor side of every node, checked without a browser: the registration script runs against a
 * stand-in RED so its defaults and validators can be exercised, and the locale files are compared
 * key by key so a German editor never shows a raw message key.
 */
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import * as vm from 'vm';
import { resolveTimescaleOptions } from '../src/core/sink/hypertable-setup';
import { readOption, readOptions, type Option, type OptionTable } from '../src/core/shared/option-table';

/** The option table of a node type (src/options/<type>.ts), or undefined while it has none. */
function tableOf(type: string): OptionTable | undefined {
  const file = path.join(root, 'src', 'options', `${type}.ts`);
  return fs.existsSync(file) ? (require(file) as { OPTIONS: OptionTable }).OPTIONS : undefined;
}

/** Values around each edge of an option's range, and the kinds of mistakes users make. */
function probes(option: Option): unknown[] {
  switch (option.kind) {
    case 'integer':
    case 'number': {
      const step = option.kind === 'integer' ? 1 : Math.min(0.001, option.min || 0.001);
      return [option.min, option.max, option.min - step, option.max + step, String(option.min), ` ${option.max} `, (option.min + option.max) / 2 + 0.5, '1e3', '12abc', 'soon', '-0', option.default];
    }
    case 'choice':
      return [...option.choices, 'other', option.choices[0].toUpperCase()];
    case 'text':
      return ['1 day', '30', 'day', 'a_table', 'line-1', 'x'.repeat(64), 'ä'.repeat(32), 'a\u0000b', 'say "hi"', '__proto__', 'time, ts', 'a,b', 'db1:5432,db2', 'db1:70000', ':1', 'sim/line2', option.default];
    default:
      return [true, false];
  }
}

/** Words of a help page as the sidebar shows it: markup and entities dropped; a dash or a lone sign is no word. */
function wordsOf(html: string): number {
  return html
    .replace(/<[^>]+>/g, ' ')
    .replace(/&[a-z]+;/g, ' ')
    .split(/\s+/)
    .filter((w) => /[\p{L}\p{N}]/u.test(w)).length;
}

const root = path.join(__dirname, '..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const types = Object.keys(pkg['node-red'].nodes) as string[];
const LANGS = ['en-US', 'de'];
const HEADINGS: Record<string, string[]> = { 'en-US': ['Inputs', 'Outputs', 'Details', 'References'], de: ['Eingaben', 'Ausgaben', 'Details', 'Referenzen'] };

interface Property { value: unknown; required?: boolean; validate?: (this: unknown, v: unknown, opt?: unknown) => unknown; type?: string }
interface Definition {
  category: string;
  defaults: Record<string, Property>;
  credentials?: Record<string, { type: string }>;
  icon?: string;
  paletteLabel?: unknown;
  label?: unknown;
  _: (key: string, words?: Record<string, unknown>) => string;
}

/** The editor file as Node-RED gets it: built (its option defaults and validators generated). */
function editorFile(type: string): string {
  return fs.readFileSync(path.join(root, 'nodes', `${type}.html`), 'utf8');
}

/** Runs the registerType script of an editor file with a stand-in RED and an empty jQuery. */
function definition(type: string, lang = 'en-US'): Definition {
  const script = /<script type="text\/javascript">([\s\S]*?)<\/script>/.exec(editorFile(type));
  assert.ok(script, `${type}.html has a registration script`);
  let registered: Definition | undefined;
  const catalog = messages(lang, type);
  // As i18next does: __name__ in a message is the named value.
  const translate = (key: string, words: Record<string, unknown> = {}): string => (lookup(catalog, key) ?? key).replace(/__(\w+)__/g, (_, name: string) => String(words[name]));
  const RED = {
    nodes: { registerType: (name: string, def: Definition) => { if (name === type) registered = { ...def, _: translate }; } },
    _: translate,
  };
  const jquery = Object.assign((): { length: number } => ({ length: 0 }), { extend: Object.assign });
  vm.runInNewContext(script[1], { RED, $: jquery });
  assert.ok(registered, `${type} registers itself`);
  return registered;
}

function messages(lang: string, type: string): Record<string, unknown> {
  return JSON.parse(fs.readFileSync(path.join(root, 'src', 'locales', lang, `${type}.json`), 'utf8'));
}

function lookup(catalog: Record<string, unknown>, key: string): string | undefined {
  let at: unknown = catalog;
  for (const part of key.split('.')) at = at && typeof at === 'object' ? (at as Record<string, unknown>)[part] : undefined;
  return typeof at === 'string' ? at : undefined;
}

function keys(catalog: unknown, prefix = ''): string[] {
  if (typeof catalog !== 'object' || catalog === null) return [prefix];
  return Object.entries(catalog).flatMap(([k, v]) => keys(v, prefix ? `${prefix}.${k}` : k)).sort();
}

/** A node (this) carrying every default, as the editor validates a node in the workspace. */
function nodeWithDefaults(def: Definition): Record<string, unknown> {
  const node: Record<string, unknown> = { _: def._ };
  for (const [name, p] of Object.entries(def.defaults)) node[name] = p.value;
  return node;
}

function valid(def: Definition, field: string, value: unknown, overrides: Record<string, unknown> = {}): boolean {
  const p = def.defaults[field];
  assert.ok(p, `field ${field}`);
  if (p.required && (value === '' || value === undefined)) return false;
  if (!p.validate) return true;
  const result = p.validate.call({ ...nodeWithDefaults(def), ...overrides, [field]: value }, value, { label: field });
  return result === true;
}

describe('editor: help, labels, defaults and validation of every node', function () {
  for (const type of types) {
    describe(type, function () {
      it('has help in English and German with a summary, Inputs, Outputs, Details and References', function () {
        for (const lang of LANGS) {
          const file = path.join(root, 'src', 'locales', lang, `${type}.html`);
          const help = fs.readFileSync(file, 'utf8');
          assert.match(help, new RegExp(`^<script type="text/html" data-help-name="${type}">`), `${lang}: a help script for ${type}`);
          assert.match(help, /data-help-name="[^"]+">\s*<p>[^<]{20,}/, `${lang}: starts with a one-line summary`);
          const headings = [...help.matchAll(/<h3>([^<]+)<\/h3>/g)].map((m) => m[1]);
          assert.deepEqual(headings, HEADINGS[lang], `${lang}: the Node-RED help sections in order`);
          assert.match(help, /<h3>[^<]+<\/h3>\s*<ul>\s*<li>/, `${lang}: references listed`);
        }
        assert.doesNotMatch(editorFile(type), /data-help-name/, 'help lives in the locale files, not in the editor file');
      });

      it('has the same message keys in English and German, and every key the editor uses exists', function () {
        const en = messages('en-US', type);
        const de = messages('de', type);
        assert.deepEqual(keys(de), keys(en));
        const html = editorFile(type);
        const used = [
          ...[...html.matchAll(/data-i18n="(?:\[[a-z]+\])?([^"]+)"/g)].map((m) => m[1]),
          ...[...html.matchAll(/\._\('([^']+)'/g)].map((m) => m[1]),
        ].filter((k) => !k.startsWith('node-red:'));
        assert.ok(used.length > 0, 'the editor is translated');
        for (const key of used) {
          assert.ok(lookup(en, key), `en-US has ${key}`);
          assert.ok(lookup(de, key), `de has ${key}`);
        }
        assert.doesNotMatch(html.replace(/<script type="text\/javascript">[\s\S]*?<\/script>/, ''), /<label[^>]*>\s*(<i[^>]*><\/i>)?\s*[A-Za-z]/, 'no untranslated label text in the form');
      });

      it('gives every validator two parameters and no required: false, so that Node-RED asks it and shows its reason', function () {
        const def = definition(type);
        const validators = Object.entries(def.defaults).filter(([, p]) => p.validate);
        assert.ok(validators.length > 0);
        for (const [field, p] of validators) {
          assert.equal(p.validate?.length, 2, `${type}.${field}`);
          assert.notEqual(p.required, false, `${type}.${field}: required false makes Node-RED skip the validator for an empty value`);
        }
      });

      it('accepts every default and names its own SVG icon', function () {
        const def = definition(type);
        for (const [field, p] of Object.entries(def.defaults)) {
          if (p.type) continue; // a config node reference: checked by Node-RED itself
          assert.ok(valid(def, field, p.value), `${type}.${field} default ${JSON.stringify(p.value)} is valid`);
        }
        assert.equal(def.icon, `${type}.svg`);
        assert.ok(fs.existsSync(path.join(root, 'icons', `${type}.svg`)));
      });
    });
  }

  it('labels a node in the units its dialog shows, in English and German', function () {
    const label = (type: string, lang: string, overrides: Record<string, unknown> = {}): string => {
      const def = definition(type, lang);
      return (def.label as (this: unknown) => string).call({ ...nodeWithDefaults(def), ...overrides });
    };
    // The batcher's dialog shows Max age in seconds (the flow keeps ms): so does its label.
    assert.equal(label('telemetry-batcher', 'en-US'), 'batch 1000 / 1 s');
    assert.equal(label('telemetry-batcher', 'de'), 'Batch 1000 / 1 s');
    assert.equal(label('telemetry-batcher', 'en-US', { maxSize: '250', maxAge: 250 }), 'batch 250 / 0.25 s');
    assert.equal(label('telemetry-batcher', 'en-US', { maxSize: '', maxAge: '' }), 'batch 1000 / 1 s', 'empty: the defaults the runtime reads');
    assert.equal(label('telemetry-batcher', 'en-US', { maxAge: '${BATCH_AGE}' }), 'batch 1000 / ${BATCH_AGE} ms', 'a variable in the unit the flow keeps');
    assert.equal(label('telemetry-simulator', 'en-US'), 'simulator 100/s');
    assert.equal(label('telemetry-simulator', 'en-US', { rate: '' }), 'simulator 100/s');
    assert.equal(label('timescale-sink', 'en-US'), 'telemetry table');
    assert.equal(label('timescale-sink', 'de'), 'Tabelle telemetry');
    assert.equal(label('telemetry-batcher', 'en-US', { name: 'line 1' }), 'line 1');
  });

  it('offers in the editor exactly what the runtime accepts, for every option of every table', function () {
    let compared = 0;
    for (const type of types) {
      const table = tableOf(type);
      if (table === undefined) continue;
      const def = definition(type);
      for (const [key, option] of Object.entries(table)) {
        assert.ok(def.defaults[key], `${type}.${key} is among the editor's defaults`);
        assert.deepEqual(def.defaults[key].value, option.default, `${type}.${key}: the editor's default is the runtime's`);
        for (const value of probes(option)) {
          let accepted = true;
          try {
            readOption(option, value);
          } catch {
            accepted = false;
          }
          // The editor keeps a flow's value as text; a flag has no validator.
          // An option with `when` is compared where it counts (columns in existing mode).
          const where = option.when === undefined ? {} : { [option.when.option]: option.when.is[0] };
          const editorSays = option.kind === 'flag' ? true : valid(def, key, value, where);
          assert.equal(editorSays, accepted, `${type}.${key} = ${JSON.stringify(value)}: the runtime ${accepted ? 'accepts' : 'refuses'} it`);
          compared++;
        }
        if (option.when !== undefined) {
          // Where it does not count, both take anything and the runtime keeps the default.
          const condition = option.when;
          const other: Option = table[condition.option];
          const elsewhere: string | boolean | undefined = other.kind === 'choice' ? other.choices.find((choice: string) => !condition.is.includes(choice)) : !condition.is[0];
          for (const value of probes(option)) {
            assert.equal(valid(def, key, value, { [condition.option]: elsewhere }), true, `${type}.${key} = ${JSON.stringify(value)} with ${condition.option} ${String(elsewhere)}`);
            assert.deepEqual(readOptions(table, { [condition.option]: elsewhere, [key]: value })[key], option.default);
          }
        }
      }
    }
    assert.ok(compared > 0);
  });

  it('lists every option of every table in the built help of each language, with its label and help line', function () {
    let listed = 0;
    for (const type of types) {
      const table = tableOf(type);
      if (table === undefined) continue;
      for (const lang of LANGS) {
        const help = fs.readFileSync(path.join(root, 'nodes', 'locales', lang, `${type}.html`), 'utf8');
        assert.doesNotMatch(help, /@options/, `${lang}/${type}: the option list is generated`);
        const catalog = messages(lang, type);
        for (const key of Object.keys(table)) {
          const label = lookup(catalog, `${type}.label.${key}`);
          assert.ok(label, `${lang}: ${type}.label.${key}`);
          // An empty help line is allowed where the label and default say it all (a column name).
          const line = lookup(catalog, `${type}.help.${key}`);
          assert.equal(typeof line, 'string', `${lang}: ${type}.help.${key}`);
          assert.ok(help.includes(`<dt>${label.replace(/&/g, '&amp;')} <span class="property-type">`), `${lang}/${type}: ${key} listed as "${label}"`);
          if (line !== '') assert.ok(help.replace(/<code style="[^"]*">/g, '<code>').includes(`<dd>${line}</dd>`), `${lang}/${type}: ${key} with its help line`);
          assert.ok(wordsOf(line ?? '') <= 8, `${lang}: ${type}.help.${key} is one short line (${wordsOf(line ?? '')} words); the rest goes in the table's doc (docs/options.md)`);
          listed++;
        }
      }
    }
    assert.ok(listed > 0);
  });

  it('has a field for every option of its table in each dialog, number fields generated from the table', function () {
    for (const type of types) {
      const table = tableOf(type);
      if (table === undefined) continue;
      const html = editorFile(type);
      assert.doesNotMatch(html, /@field/, `${type}: every @field is generated`);
      const prefix = type === 'timescale-connection' ? 'node-config-input' : 'node-input';
      for (const key of Object.keys(table)) assert.match(html, new RegExp(`id="${prefix}-${key}"`), `${type}: a field for ${key}`);
    }
  });

  it('every example carries every option of its nodes, so an imported example shows each field filled in', function () {
    let checked = 0;
    for (const file of fs.readdirSync(path.join(root, 'examples')).filter((f) => f.endsWith('.json'))) {
      const flow = JSON.parse(fs.readFileSync(path.join(root, 'examples', file), 'utf8')) as Array<Record<string, unknown>>;
      for (const node of flow) {
        const table = typeof node.type === 'string' && types.includes(node.type) ? tableOf(node.type) : undefined;
        if (table === undefined) continue;
        const missing = Object.keys(table).filter((key) => !(key in node));
        assert.deepEqual(missing, [], `${file}: ${String(node.type)} ${String(node.id)}`);
        checked++;
      }
    }
    assert.ok(checked >= 15, `${checked} nodes checked`);
  });

  it('keeps each built help page short, option list included, and lets code samples wrap in the sidebar', function () {
    // Node-RED's core delay node has about 400 words of help, batch 170: a page of ours, with the
    // generated option list and the included parts, stays at 500 (ranges and details: docs/options.md).
    const counted: string[] = [];
    for (const lang of LANGS) {
      for (const type of types) {
        const built = fs.readFileSync(path.join(root, 'nodes', 'locales', lang, `${type}.html`), 'utf8');
        assert.doesNotMatch(built, /<(code|pre)>/, `${lang}/${type}: every code sample wraps`);
        assert.match(built, /<code style="white-space:pre-wrap;overflow-wrap:anywhere">/, `${lang}/${type}`);
        assert.doesNotMatch(built, /@(options|include)/, `${lang}/${type}: built`);
        const words = wordsOf(built);
        assert.ok(words <= 500, `${lang}/${type}: ${words} words of help, more than 500`);
        assert.match(built, /docs\/options\.md/, `${lang}/${type}: links the option reference`);
        counted.push(`${lang}/${type} ${words}`);
      }
    }
    assert.equal(counted.length, types.length * LANGS.length);
  });

  it('counts the words of a help page as a reader sees them', function () {
    assert.equal(wordsOf('<dt>Capacity <span class="property-type">100,000 events</span></dt>\n<dd>events the ring holds; <code>a/b</code> &amp; more – so</dd>'), 10);
  });

  it('docs/options.md is what the option tables say (npm run docs writes it)', function () {
    const { optionsMarkdown } = require('../scripts/options.js') as { optionsMarkdown(types: string[]): string };
    assert.equal(fs.readFileSync(path.join(root, 'docs', 'options.md'), 'utf8'), optionsMarkdown(types), 'docs/options.md is stale: run npm run docs');
  });

  it('gives every node a different icon', function () {
    const icons = types.map((t) => fs.readFileSync(path.join(root, 'icons', `${t}.svg`), 'utf8'));
    assert.equal(new Set(icons).size, types.length);
  });

  it('marks values the runtime would refuse before deploy', function () {
    const buffer = definition('telemetry-buffer');
    assert.equal(valid(buffer, 'capacity', '0'), false);
    assert.equal(valid(buffer, 'capacity', '1.5'), false);
    assert.equal(valid(buffer, 'capacity', '50000001'), false);
    assert.equal(valid(buffer, 'capacity', '500'), true);
    assert.equal(valid(buffer, 'dropPolicy', 'drop-random'), false);
    assert.equal(valid(buffer, 'window', '0'), false);
    assert.equal(valid(buffer, 'fsyncInterval', '3601', { diskSpill: true }), false, 'the runtime refuses more than an hour');
    assert.equal(valid(buffer, 'diskMaxMB', '16777216', { diskSpill: true }), true, 'the runtime takes up to 16 TiB');
    assert.equal(valid(buffer, 'diskMaxMB', 'lots', { diskSpill: false }), true, 'the disk options count only with Overflow to disk on');
    assert.equal(valid(buffer, 'ackTimeout', '0'), false);
    assert.equal(valid(buffer, 'statsInterval', '-1'), false);

    const batcher = definition('telemetry-batcher');
    assert.equal(valid(batcher, 'maxSize', '0'), false);
    assert.equal(valid(batcher, 'maxAge', 'soon'), false);
    assert.equal(valid(batcher, 'maxOpenBatches', '1001'), false);
    assert.equal(valid(batcher, 'maxHeld', '0'), false);
    assert.equal(valid(batcher, 'ackTimeout', '0'), false);
    assert.equal(valid(batcher, 'maxAge', '0'), true, '0 ms: a batch goes out at the next turn');

    const simulator = definition('telemetry-simulator');
    assert.equal(valid(simulator, 'rate', '0'), false);
    assert.equal(valid(simulator, 'sources', '0'), false);
    assert.equal(valid(simulator, 'seed', '4294967296'), false);
    assert.equal(valid(simulator, 'mixSample', '0', { mixDetection: 0, mixCounter: 0 }), false, 'a mix of all zeros');
    assert.equal(valid(simulator, 'mixSample', '0', { mixDetection: 5, mixCounter: 0 }), true);

    const connection = definition('timescale-connection');
    assert.equal(valid(connection, 'port', '70000'), false);
    assert.equal(valid(connection, 'port', '${PGPORT}'), true, 'an environment variable');
    assert.equal(valid(connection, 'poolSize', '0'), false);
    assert.equal(valid(connection, 'ca', '', { tls: 'verify-ca' }), false, 'verify-ca needs a CA file');
    assert.equal(valid(connection, 'ca', '', { tls: 'verify-full' }), true, 'verify-full may use the system CAs');
    assert.equal(valid(connection, 'host', ''), false);
    for (const host of ['db1', 'db1:5432,db2:5433', ' db1 , db2:6000 ', '[fd00::1]:5432,::1', '/var/run/postgresql', '${PGHOST}']) assert.equal(valid(connection, 'host', host), true, host);
    for (const host of ['db1,,db2', 'db1:70000', 'db1:x', ':5432', '[fd00::1', 'db1,']) assert.equal(valid(connection, 'host', host), false, host);
    const label = (over: Record<string, unknown>): unknown => (connection.label as (this: unknown) => unknown).call({ ...nodeWithDefaults(connection), ...over });
    assert.equal(label({ host: 'db1:5433,db2,::1', port: '6000', database: 'plant' }), 'db1:5433,db2:6000,[::1]:6000/plant', 'each host with its port');
    assert.equal(label({}), 'localhost:5432/postgres');

    const sink = definition('timescale-sink');
    assert.equal(valid(sink, 'table', 'line-1'), true, 'always quoted: a hyphen is safe');
    assert.equal(valid(sink, 'table', 'x'.repeat(64)), false, 'over 63 bytes');
    assert.equal(valid(sink, 'table', 'ä'.repeat(32)), false, '64 bytes in 32 characters');
    assert.equal(valid(sink, 'table', 'a\u0000b'), false, 'a NUL');
    assert.equal(valid(sink, 'schema', ''), false);
    assert.equal(valid(sink, 'timeColumn', '', { mode: 'existing' }), false, 'existing mode needs a time column');
    assert.equal(valid(sink, 'timeColumn', '', { mode: 'auto' }), true);
    assert.equal(valid(sink, 'sourceProperty', '__proto__'), false);
    assert.equal(valid(sink, 'timeProperty', 'time, constructor'), false);
    assert.equal(valid(sink, 'chunkInterval', 'day'), false);
    assert.equal(valid(sink, 'retention', '90 days'), true);
    assert.equal(valid(sink, 'maxAttempts', '0'), false);

    // The input shape and OPC UA quality, the same on the three nodes that read messages (src/core/readings/shapes.ts).
    for (const def of [buffer, batcher, sink]) {
      assert.equal(valid(def, 'shape', 'csv'), false);
      assert.equal(valid(def, 'quality', 'all'), false);
      for (const shape of ['auto', 'single', 'named-values', 'registers', 'opcua', '']) assert.equal(valid(def, 'shape', shape), true, shape);
      for (const quality of ['good-only', 'keep-uncertain', 'keep-all', undefined]) assert.equal(valid(def, 'quality', quality), true, String(quality));
    }
  });

  it('checks the sink\'s intervals as the runtime does: a number needs its unit ("30" is 30 seconds to PostgreSQL)', function () {
    const sink = definition('timescale-sink');
    const cases = ['1 day', ' 7 days ', '12 hours', '1.5h', '2 weeks 3d', '1 day 06:00', '06:00', '10:00:00.5', '1 mon', '1 yr', '1m', '500 ms',
      '30', '1 day 30', '0 days', '-1 day', '1 fortnight', '1 constructor', 'day', '1000000000 days', '1 day ago', '1 day 06:00 07:00', '1,5 h'];
    const runtime: Record<string, (v: string) => object> = {
      chunkInterval: (v) => ({ chunkInterval: v }),
      compressAfter: (v) => ({ compressAfter: v }),
      retention: (v) => ({ retention: v })
    };
    for (const [field, options] of Object.entries(runtime)) {
      for (const value of cases) {
        let accepted = true;
        try {
          resolveTimescaleOptions(options(value));
        } catch {
          accepted = false;
        }
        assert.equal(valid(sink, field, value), accepted, `${field} ${JSON.stringify(value)}: the runtime ${accepted ? 'accepts' : 'refuses'} it`);
      }
    }
    assert.equal(valid(sink, 'retention', '30'), false);
    assert.equal(valid(sink, 'chunkInterval', '500 ms'), false, 'below 1 s');
    assert.equal(valid(sink, 'compressAfter', ''), true, 'empty: off');
  });

  it('keeps the password a credential of the connection node, not a flow property', function () {
    const def = definition('timescale-connection');
    assert.deepEqual(JSON.parse(JSON.stringify(def.credentials)), { user: { type: 'text' }, password: { type: 'password' } });
    assert.equal(def.defaults.password, undefined);
    assert.match(editorFile('timescale-connection'), /<input type="password" id="node-config-input-password"/);
  });
  it('gives a check\'s reason in the editor\'s language, the way the runtime says it', function () {
    // node._ as the editor binds it: the node's catalog in the browser's language, __name__ filled in.
    const reason = (type: string, lang: string, field: string, value: unknown, over: Record<string, unknown> = {}): unknown => {
      const def = definition(type);
      const catalog = messages(lang, type);
      const _ = (key: string, params: Record<string, unknown> = {}): string => (lookup(catalog, key) ?? key).replace(/__([A-Za-z0-9_]+)__/g, (whole, name: string) => (name in params ? String(params[name]) : whole));
      return def.defaults[field].validate?.call({ ...nodeWithDefaults(def), ...over, type, _ }, value, { label: field });
    };
    assert.equal(reason('timescale-sink', 'de', 'chunkInterval', '1 fortnight'), '„1 fortnight“ hat die unbekannte Einheit „fortnight“: seconds, minutes, hours, days, weeks, months oder years verwenden');
    assert.equal(reason('timescale-sink', 'en-US', 'chunkInterval', '1 fortnight'), '"1 fortnight" has an unknown unit "fortnight": use seconds, minutes, hours, days, weeks, months or years');
    assert.equal(reason('timescale-sink', 'de', 'table', 'x'.repeat(64)), `„${'x'.repeat(64)}“ ist 64 Bytes lang: PostgreSQL behält nur die ersten 63 Bytes eines Namens`);
    assert.equal(reason('timescale-connection', 'de', 'host', 'db1:70000'), 'der Port von „db1:70000“ muss eine ganze Zahl von 1 bis 65535 sein');
    assert.equal(reason('timescale-connection', 'de', 'ca', '', { tls: 'verify-ca' }), 'TLS-Modus verify-ca braucht eine CA-Datei');
  });
});
