import assert from 'node:assert/strict';
import fs from 'fs';
import os from 'os';
import path from 'path';
import { CONNECTION_DEFAULTS, poolConfig, type ConnectionSettings } from '../src/core/connection/connection-settings';

function settings(overrides: Partial<ConnectionSettings> = {}): ConnectionSettings {
  return { ...CONNECTION_DEFAULTS, caFile: '', user: 'ingest', password: 'S3cret-pw', ...overrides };
}

describe('connection settings -> pg.Pool configuration', function () {
  it('maps the options and defaults', function () {
    const config = poolConfig(settings());
    assert.equal(config.host, 'localhost');
    assert.equal(config.port, 5432);
    assert.equal(config.database, 'postgres');
    assert.equal(config.max, 4);
    assert.equal(config.application_name, 'node-red-telemetry');
    assert.equal(config.connectionTimeoutMillis, 10000);
    assert.equal(config.statement_timeout, 30000);
    assert.equal(config.ssl, false);
  });

  it('statement timeout 0 means none', function () {
    assert.equal(poolConfig(settings({ statementTimeout: 0 })).statement_timeout, undefined);
  });

  it('TLS require encrypts without checking the certificate', function () {
    assert.deepEqual(poolConfig(settings({ tls: 'require' })).ssl, { rejectUnauthorized: false });
  });

  it('TLS verify-ca needs a CA file, checks the chain and not the host name', function () {
    assert.throws(() => poolConfig(settings({ tls: 'verify-ca' })), /verify-ca needs a CA file/);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ts-ca-'));
    const file = path.join(dir, 'ca.pem');
    fs.writeFileSync(file, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
    try {
      const ssl = poolConfig(settings({ tls: 'verify-ca', caFile: file })).ssl as { rejectUnauthorized: boolean; ca: string; checkServerIdentity?: () => unknown };
      assert.equal(ssl.rejectUnauthorized, true);
      assert.match(ssl.ca, /BEGIN CERTIFICATE/);
      assert.equal(typeof ssl.checkServerIdentity, 'function');
      assert.equal(ssl.checkServerIdentity?.(), undefined);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('TLS verify-full checks chain and host name, with the system CAs when no file is given', function () {
    const ssl = poolConfig(settings({ tls: 'verify-full' })).ssl as { rejectUnauthorized: boolean; ca?: string; checkServerIdentity?: unknown };
    assert.equal(ssl.rejectUnauthorized, true);
    assert.equal(ssl.ca, undefined);
    assert.equal(ssl.checkServerIdentity, undefined);
  });

  it('an unreadable CA file is a clear error without the password', function () {
    const err = (() => {
      try {
        poolConfig(settings({ tls: 'verify-full', caFile: '/nonexistent/ca.pem' }));
      } catch (e) {
        return e as Error;
      }
      return undefined;
    })();
    assert.ok(err);
    assert.match(err.message, /cannot read CA file \/nonexistent\/ca.pem: ENOENT/);
    assert.ok(!err.message.includes('S3cret-pw'));
  });
});
