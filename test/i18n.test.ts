/**
 * Badges and log lines in the user's language (issue 19 item 4): every key the code names exists in
 * en-US and de with the same parameters, and a real Node-RED started in German shows a badge and
 * logs a line in German.
 */
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { diskBadgeText } from '../src/core/buffer/disk-tier-settings';
import { BADGE_MAX_LENGTH, compactCount, formatBytes, formatDuration } from '../src/core/shared/badge-text';
import { shortDuration, sinkBadge } from '../src/core/sink/sink-status';
import type { SinkState } from '../src/core/sink/sink-types';
import type { TextParams, Translate } from '../src/core/shared/text';
import { OPTIONS as OPTIONS_BATCHER } from '../src/options/telemetry-batcher';
import { OPTIONS as OPTIONS_SINK } from '../src/options/timescale-sink';
import { catalog, lookUp } from '../src/nodes/i18n';
import { readOptions } from '../src/core/shared/option-table';
import { errorText, say } from '../src/core/shared/text';
import { WriteFailedError } from '../src/core/sink/retry';
import { NOTICE_ENGLISH } from '../src/core/sink/table-report';
import { Client } from 'pg';
import { NodeRedProcess, startNodeRed } from './support/node-red-process';
import { deploy } from './support/pipeline';
import { createTestDatabase } from './support/postgres';
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
  ['src/core/simulator', 'telemetry-simulator'],
  ['src/core/connection', 'timescale-connection'],
  ['src/core/connection/failover-pool.ts', 'timescale-sink'],
  ...TYPES.map((type): [string, string] => [`src/nodes/${type}.ts`, type]),
];

function filesUnder(p: string): string[] {
  const full = path.join(root, p);
  if (fs.statSync(full).isFile()) return [full];
  return fs.readdirSync(full).flatMap((name) => filesUnder(path.join(p, name)));
}

/**
 * Every key of the runtime's sections a message catalog holds, with its parameters: status, log,
 * notice and config, and the node's own validation texts (<type>.validation, the editor's too).
 */
function keysOf(messages: Record<string, unknown>, type?: string): Map<string, string[]> {
  const keys = new Map<string, string[]>();
  const walk = (at: unknown, prefix: string): void => {
    if (typeof at === 'string') keys.set(prefix, [...at.matchAll(/__([A-Za-z0-9_]+)__/g)].map((m) => m[1]).sort());
    else if (at !== null && typeof at === 'object') for (const [k, v] of Object.entries(at)) walk(v, prefix === '' ? k : `${prefix}.${k}`);
  };
  const own = type === undefined ? undefined : (messages[type] as Record<string, unknown> | undefined)?.validation;
  walk({ status: messages.status, log: messages.log, notice: messages.notice, config: messages.config, ...(type === undefined ? {} : { [type]: { validation: own } }) }, '');
  return keys;
}

/** A translator that fails on a key its catalog lacks (RED._ would show the bare key). */
function strict(type: string, lang: string): Translate {
  return (key, params) => {
    const text = lookUp(catalog(type, lang), key.startsWith('.') ? `${type}${key}` : key, params);
    assert.ok(text !== undefined, `${lang}/${type}.json has no ${key}`);
    assert.doesNotMatch(text, /__[A-Za-z0-9_]+__/, `${lang}/${type}.json ${key}: a parameter is not filled in`);
    return text;
  };
}

describe('badges and log lines in the user\'s language', function () {
  it('en-US and de hold the same status and log keys, with the same parameters', function () {
    for (const type of TYPES) {
      const en = keysOf(catalog(type, 'en-US'), type);
      const de = keysOf(catalog(type, 'de'), type);
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
        for (const [, key] of text.matchAll(/['`]((?:status|log|notice|config)\.[A-Za-z0-9.]+|\.(?:validation|label)\.[A-Za-z0-9.]+)['`]/g)) {
          named++;
          const full = key.startsWith('.') ? `${type}${key}` : key;
          for (const lang of LANGS) assert.ok(lookUp(catalog(type, lang), full) !== undefined, `${path.relative(root, file)} names ${key}, missing in ${lang}/${type}.json`);
        }
      }
    }
    assert.ok(named > 60, `found ${named} keys in the code`);
  });

  it('the option checks name reasons that the nodes using them hold in both languages, and the option errors too', function () {
    const checks = fs.readFileSync(path.join(root, 'src/core/shared/checks.ts'), 'utf8');
    const users: Record<string, string> = { interval: 'timescale-sink', identifier: 'timescale-sink', property: 'timescale-sink', host: 'timescale-connection' };
    const named = [...checks.matchAll(/['`]((interval|identifier|property|host)\.[A-Za-z]+)['`]/g)];
    assert.ok(named.length >= 17, `${named.length} reasons`);
    for (const [, key, family] of named) {
      for (const lang of LANGS) assert.ok(lookUp(catalog(users[family], lang), `${users[family]}.validation.${key}`) !== undefined, `${lang}/${users[family]}.json has no validation.${key}`);
    }
    for (const type of TYPES) for (const lang of LANGS) for (const key of ['mustBe', 'isNeeded', 'checked', 'whole', 'number', 'choice']) assert.ok(lookUp(catalog(type, lang), `${type}.validation.${key}`), `${lang}/${type}.json validation.${key}`);
  });

  it('the en-US catalog holds the table notices word for word as the sink makes their English', function () {
    assert.deepEqual(catalog('timescale-sink', 'en-US').notice, JSON.parse(JSON.stringify(NOTICE_ENGLISH)));
  });

  it('says an option error and a check\'s reason in the node\'s language, the English staying the message', function () {
    const err = (() => {
      try {
        readOptions(OPTIONS_SINK, { chunkInterval: '1 fortnight' });
      } catch (e) {
        return e as Error;
      }
      assert.fail('1 fortnight is refused');
    })();
    assert.match(err.message, /^Chunk interval: "1 fortnight" has an unknown unit "fortnight"/);
    assert.equal(errorText(err, strict('timescale-sink', 'de')), 'Chunk-Intervall: „1 fortnight“ hat die unbekannte Einheit „fortnight“: seconds, minutes, hours, days, weeks, months oder years verwenden');
    assert.equal(errorText(err, strict('timescale-sink', 'en-US')), err.message);
    const range = (() => {
      try {
        readOptions(OPTIONS_BATCHER, { maxSize: '0' });
      } catch (e) {
        return e as Error;
      }
      assert.fail('0 is refused');
    })();
    assert.equal(errorText(range, strict('telemetry-batcher', 'de')), 'Batchgröße muss eine ganze Zahl von 1 bis 1000000 Ereignisse sein, nicht „0“');
  });

  it('says a failed write in the node\'s language, the English staying the message (and the dead letter\'s error)', function () {
    const failures = [new WriteFailedError({ kind: 'transient', code: '40P01', message: 'deadlock detected' }, 3), new WriteFailedError({ kind: 'transient', code: '40P01', message: 'deadlock detected' }, 1), new WriteFailedError({ kind: 'permanent', code: 'XX000', message: 'internal error' }, 1)];
    for (const failure of failures) assert.equal(say(failure.words, strict('timescale-sink', 'en-US')), failure.message);
    assert.deepEqual(failures.map((failure) => say(failure.words, strict('timescale-sink', 'de'))), ['Schreiben nach 3 Versuchen fehlgeschlagen: 40P01: deadlock detected', 'Schreiben nach 1 Versuch fehlgeschlagen: 40P01: deadlock detected', 'Schreiben fehlgeschlagen: XX000: internal error']);
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

  it('every badge of every node fits BADGE_MAX_LENGTH characters in both languages, with its widest parameters', function () {
    // Counts and rates as compactCount shows them (at most 4 characters), durations as their
    // formatter's longest, codes as SQLSTATEs (the sink leaves out a longer code), the limits (open
    // batches, attempts) at their defaults; a host name is the user's own and is cut by the sink.
    const count = '999k';
    const wide: Record<string, TextParams> = {
      'telemetry-buffer': { percent: '100', dropped: count, events: count, bytes: formatBytes(1023 * 1024 * 1024 - 1), duration: formatDuration(86400 * 10 - 60) },
      'telemetry-batcher': { open: OPTIONS_BATCHER.maxOpenBatches.default, max: OPTIONS_BATCHER.maxOpenBatches.default, held: count, refused: count },
      'timescale-sink': { attempt: OPTIONS_SINK.maxAttempts.default, max: OPTIONS_SINK.maxAttempts.default, code: '40P01', duration: shortDuration((86400 - 1) * 1000), refused: count, rejected: count, host: 'db2.plant:5432', rate: count, warning: '!policy' },
      'telemetry-simulator': { rate: count, sent: count },
    };
    assert.equal(compactCount(9_960), '10k');
    assert.equal(compactCount(999_600), '1.0M');
    let checked = 0;
    for (const [type, params] of Object.entries(wide)) {
      for (const lang of LANGS) {
        for (const key of keysOf(catalog(type, lang)).keys()) {
          if (!key.startsWith('status.')) continue;
          const text = lookUp(catalog(type, lang), key, params) as string;
          assert.doesNotMatch(text, /__[A-Za-z0-9_]+__/, `${lang}/${type}.json ${key}: a parameter is not filled in`);
          assert.ok(text.length <= BADGE_MAX_LENGTH, `${lang}/${type}.json ${key}: "${text}" is ${text.length} characters`);
          checked++;
        }
      }
    }
    assert.ok(checked > 70, `checked ${checked} badge texts`);
    // What the sink makes of a code too long for its badge: the word alone, never a cut code.
    for (const lang of LANGS) {
      const t = strict('timescale-sink', lang);
      for (const code of ['ENOTFOUND', 'NO_PASSWORD', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'ERR_TLS_CERT_ALTNAME_INVALID']) {
        const text = sinkBadge({ state: 'misconfigured', now: 0, rate: 0, code, since: 0, attempt: 0, maxAttempts: 10, warning: '' }, t).text;
        assert.ok(text.length <= BADGE_MAX_LENGTH && !text.includes(code.slice(0, 3)) && text === text.trim(), `${lang} ${code}: "${text}"`);
      }
      assert.match(sinkBadge({ state: 'retrying', now: 0, rate: 0, code: 'ECONNRESET_LONG_CODE', since: 0, attempt: 10, maxAttempts: 10, warning: '' }, t).text, /^\S+ 10\/10$/);
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
      // through a debug node), and a sink without a connection (its error line). On a real
      // PostgreSQL: a sink whose table rounds readings (a table notice), one in existing mode on a
      // table that is not there (a config error), one with an interval PostgreSQL cannot read.
      const db = new URL(await createTestDatabase('i18n_de'));
      const admin = new Client({ connectionString: db.href });
      await admin.connect();
      await admin.query('CREATE TABLE rounded ("time" timestamptz NOT NULL, "source" text NOT NULL, "kind" text, "value" integer, "seq" bigint NOT NULL DEFAULT 0)');
      await admin.query('CREATE UNIQUE INDEX ON rounded ("time", "source", "seq")');
      await admin.end();
      const connection = {
        id: 'c1', type: 'timescale-connection', host: db.hostname, port: db.port, database: decodeURIComponent(db.pathname.slice(1)), tls: 'off',
        credentials: { user: decodeURIComponent(db.username), password: decodeURIComponent(db.password) },
      };
      const database = [
        { id: 'f2', type: 'tab', label: 'i18n database' },
        connection,
        { id: 'n6', z: 'f2', type: 'timescale-sink', connection: 'c1', table: 'rounded', statsInterval: 0, wires: [[], []] },
        { id: 'n7', z: 'f2', type: 'timescale-sink', connection: 'c1', table: 'missing', mode: 'existing', statsInterval: 0, wires: [[], []] },
        { id: 'n8', z: 'f2', type: 'timescale-sink', connection: 'c1', table: 'telemetry', chunkInterval: '1 fortnight', wires: [[], []] },
      ];
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
      // Credentials reach a connection only through the admin API (as the editor deploys them).
      await deploy(red, [...flows, ...database], 'flows');
    });

    after(async function () {
      await red?.stop();
      if (red) fs.rmSync(red.userDir, { recursive: true, force: true });
    });

    it('shows the batcher\'s badge and logs the sink\'s error in German', async function () {
      await waitUntil('the batcher\'s badge in the log', () => /\[debug:n4\][^\n]*0 offen, hält 1/.test(red.output()), 30_000);
      assert.match(red.output(), /\[error\] \[timescale-sink:n5\] timescale-sink nicht gestartet: keine Verbindung konfiguriert/);
      assert.doesNotMatch(red.output(), /\b(status|log)\.[a-z][A-Za-z.]+/, 'no bare key reaches the log');
    });

    it('logs a table notice, a table that does not fit and an option\'s reason in German', async function () {
      await waitUntil('the notice of n6', () => /\[timescale-sink:n6\]/.test(red.output()), 30_000);
      await waitUntil('the config error of n7', () => /\[timescale-sink:n7\]/.test(red.output()), 30_000);
      const output = red.output();
      assert.match(output, /\[warn\] \[timescale-sink:n6\] Spalte "value" von "public"\."rounded" ist integer: Messwerte werden auf ganze Zahlen gerundet \(21\.5 wird als 22 gespeichert\)\. Haben die Messwerte Nachkommastellen, ausführen: ALTER TABLE "public"\."rounded" ALTER COLUMN "value" TYPE double precision/);
      assert.match(output, /\[error\] \[timescale-sink:n7\] Datenbank \S+ lehnt diese Konfiguration ab \(NO_TABLE: Tabelle "public"\."missing" existiert nicht \(oder dieser Benutzer sieht sie nicht\)\): die Tabelle existiert nicht/);
      assert.match(output, /\[error\] \[timescale-sink:n8\] timescale-sink nicht gestartet: Chunk-Intervall: „1 fortnight“ hat die unbekannte Einheit „fortnight“/);
      assert.doesNotMatch(output, /\b(status|log|notice|config)\.[a-z][A-Za-z.]+|\.(validation|label)\.[a-z]/i, 'no bare key reaches the log');
    });
  });
});
