/**
 * A connection's password never shows in a log line, a status or an error, whatever its length,
 * and redacting a short one does not wreck the messages around it.
 */
import assert from 'node:assert/strict';
import { passwordRedactor } from '../src/core/connection/connection-settings';
import { helper } from './support/node-red';

const connectionNode = require('../nodes/timescale-connection.js');

describe('password redaction', function () {
  it('removes a password of any length where it stands alone, and in connection strings and key=value settings', function () {
    for (const password of ['x', '7', 'ab', 'pwd', 'pass', 'S3cr3t!', 'a much longer secret']) {
      const redact = passwordRedactor(password);
      const texts = [
        `connect postgres://telemetry:${password}@db:5432/plant failed`,
        `connect postgres://telemetry:${encodeURIComponent(password)}@db:5432/plant failed`,
        `host=db password=${password} dbname=plant`,
        `password "${password}" was refused`,
        `the password was ${password}`,
        password
      ];
      for (const text of texts) {
        const out = redact(text);
        assert.ok(out.includes('***'), `${JSON.stringify(password)} in ${JSON.stringify(text)} -> ${JSON.stringify(out)}`);
        assert.ok(!out.replace(/telemetry|plant|password|connect|failed|refused|was|the|host|dbname|db|5432/g, '').includes(password), `${JSON.stringify(password)} shows in ${JSON.stringify(out)}`);
      }
    }
  });

  it('keeps the message readable when the password is short: words that only contain it stay', function () {
    assert.equal(passwordRedactor('a')('password authentication failed for user "plant" (28P01)'), 'password authentication failed for user "plant" (28P01)');
    assert.equal(passwordRedactor('pass')('password authentication failed'), 'password authentication failed');
    assert.equal(passwordRedactor('a')('user a: password a refused'), 'user ***: password *** refused');
    // A long password goes wherever it appears, even inside other text.
    assert.equal(passwordRedactor('Tr0ub4dor&3')('xTr0ub4dor&3y'), 'x***y');
    assert.equal(passwordRedactor(undefined)('postgres://u:secret@h/db'), 'postgres://u:***@h/db');
  });

  it('is what the connection node gives its sinks, also for a 1-character password', async function () {
    const flow = [{ id: 'conn', type: 'timescale-connection', host: '127.0.0.1', port: '1', database: 'plant', tls: 'off' }];
    await helper.load([connectionNode], flow, { conn: { user: 'telemetry', password: 'x' } });
    try {
      const redact = (helper.getNode('conn') as unknown as { redact(text: string): string }).redact;
      assert.equal(redact('connect postgres://telemetry:x@127.0.0.1:1/plant: password x refused (ECONNREFUSED)'), 'connect postgres://telemetry:***@127.0.0.1:1/plant: password *** refused (ECONNREFUSED)');
    } finally {
      await helper.unload();
    }
  });
});
