import assert from 'node:assert/strict';
// The module object itself (not an import namespace copy), so sinon's stubs reach the code under test.
const fs = require('fs') as typeof import('fs');
import * as os from 'os';
import * as path from 'path';
import sinon from 'sinon';
import { restoreSpool, takeSpool, writeSpool } from '../src/core/buffer/spool';

type Msg = Record<string, unknown>;

describe('shutdown spool: restore streams, keeps what it cannot restore, counts what it wrote', function () {
  let dir = '';
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spool-'));
  });
  afterEach(() => {
    sinon.restore();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('reads the file in chunks, whatever their size: lines and multi-byte characters split across chunks come back whole', function () {
    const file = path.join(dir, 'b.jsonl');
    const messages = Array.from({ length: 200 }, (_, i) => ({ topic: `t${i % 3}`, payload: { note: 'Grüße 温度 🌡'.repeat(i % 5), i } }));
    writeSpool(file, { t0: 7 }, messages);
    const readSync = sinon.spy(fs, 'readSync');
    const got: Msg[] = [];
    let header: unknown;
    const result = restoreSpool<Msg>(file, { onHeader: (h) => (header = h), onMessage: (m) => got.push(m) }, { chunkBytes: 7 });
    assert.deepStrictEqual(got, messages);
    assert.deepEqual((header as { sequences: unknown }).sequences, { t0: 7 });
    assert.equal(result.restored, 200);
    assert.equal(result.badLines, 0);
    assert.ok(readSync.callCount > 100, `read in many small chunks (${readSync.callCount} reads)`);
    assert.equal(fs.existsSync(file), false, 'a fully restored spool is removed');
  });

  it('a file with unreadable lines: the good ones restored, the bad counted, the file kept aside under a new name', function () {
    const file = path.join(dir, 'b.jsonl');
    writeSpool(file, { a: 3 }, [{ topic: 'a', payload: 1 }, { topic: 'a', payload: 2 }]);
    const text = fs.readFileSync(file, 'utf8').split('\n');
    text.splice(2, 0, '{"topic":"a","payl', '42');
    fs.writeFileSync(file, text.join('\n'));
    const got: Msg[] = [];
    const result = restoreSpool<Msg>(file, { onMessage: (m) => got.push(m) });
    assert.deepEqual(got, [{ topic: 'a', payload: 1 }, { topic: 'a', payload: 2 }]);
    assert.equal(result.badLines, 2);
    assert.equal(result.badBytes, '{"topic":"a","payl'.length + 2);
    assert.ok(result.keptAs !== undefined && result.keptAs !== file);
    assert.equal(fs.existsSync(file), false);
    assert.equal(fs.readFileSync(result.keptAs, 'utf8'), text.join('\n'), 'kept as it was, for a person to look at');
  });

  it('a read that fails half way: what was read is restored, the rest counted in bytes, the file kept aside, never overwritten by the next spool', function () {
    const file = path.join(dir, 'b.jsonl');
    writeSpool(file, {}, Array.from({ length: 1000 }, (_, i) => ({ topic: 'a', payload: i })));
    const size = fs.statSync(file).size;
    const realRead = fs.readSync;
    let reads = 0;
    sinon.stub(fs, 'readSync').callsFake(((...args: Parameters<typeof fs.readSync>) => {
      if (++reads === 3) throw Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO' });
      return (realRead as (...a: unknown[]) => number)(...args);
    }) as typeof fs.readSync);
    const got: Msg[] = [];
    const result = restoreSpool<Msg>(file, { onMessage: (m) => got.push(m) }, { chunkBytes: 4096 });
    sinon.restore();
    assert.match(String(result.error), /EIO/);
    assert.ok(got.length > 0 && got.length < 1000, `restored what was read (${got.length})`);
    assert.deepEqual(got.map((m) => m.payload), Array.from({ length: got.length }, (_, i) => i));
    assert.ok(result.badBytes > 0 && result.badBytes < size, `the unread rest counted in bytes (${result.badBytes} of ${size})`);
    assert.ok(result.keptAs !== undefined);
    // The next close spools again under the usual name; the kept file is untouched.
    writeSpool(file, {}, [{ topic: 'new', payload: 1 }]);
    assert.equal(fs.statSync(result.keptAs).size, size);
    assert.deepEqual(takeSpool<Msg>(file).messages, [{ topic: 'new', payload: 1 }]);
  });

  it('a spool path that cannot be read at all (a directory): an error, kept aside, nothing thrown', function () {
    const file = path.join(dir, 'b.jsonl');
    fs.mkdirSync(file);
    const result = restoreSpool<Msg>(file, { onMessage: () => assert.fail('nothing to restore') });
    assert.match(String(result.error), /EISDIR/);
    assert.ok(result.keptAs !== undefined && fs.statSync(result.keptAs).isDirectory());
    assert.equal(fs.existsSync(file), false, 'the name is free for the next spool');
  });

  it('a spool written over one that was never restored keeps the old one aside', function () {
    const file = path.join(dir, 'b.jsonl');
    writeSpool(file, {}, [{ topic: 'old', payload: 1 }]);
    writeSpool(file, {}, [{ topic: 'new', payload: 2 }]);
    const aside = fs.readdirSync(dir).filter((f) => f !== 'b.jsonl');
    assert.equal(aside.length, 1, `kept aside: ${aside.join(', ')}`);
    assert.match(fs.readFileSync(path.join(dir, aside[0]), 'utf8'), /"old"/);
    assert.deepEqual(takeSpool<Msg>(file).messages, [{ topic: 'new', payload: 2 }]);
  });

  it('a line longer than the limit is skipped and counted, the lines after it restored', function () {
    const file = path.join(dir, 'b.jsonl');
    writeSpool(file, {}, [{ topic: 'a', payload: 1 }, { topic: 'a', payload: 'x'.repeat(5000) }, { topic: 'a', payload: 3 }]);
    const got: Msg[] = [];
    const result = restoreSpool<Msg>(file, { onMessage: (m) => got.push(m) }, { chunkBytes: 256, maxLineBytes: 1024 });
    assert.deepEqual(got.map((m) => m.payload), [1, 3]);
    assert.equal(result.badLines, 1);
    assert.ok(result.badBytes > 5000);
    assert.ok(result.keptAs !== undefined);
  });

  it('writeSpool says which messages it could not write, so only what it wrote is counted as spooled', function () {
    let deep: unknown = 1;
    for (let i = 0; i < 200_000; i++) deep = { a: deep };
    const file = path.join(dir, 'b.jsonl');
    const result = writeSpool(file, {}, [{ topic: 's', payload: 1 }, { topic: 's', payload: deep }, { topic: 's', payload: 3 }]);
    assert.deepEqual(result.skippedAt, [1]);
    assert.equal(result.skipped, 1);
  });

  it(`restores a spool larger than one string can hold (> 512 MiB) (${process.env.SPOOL_BIG === '0' ? 'skipped: SPOOL_BIG=0' : '588 MiB in the temp dir'})`, function () {
    if (process.env.SPOOL_BIG === '0') this.skip();
    this.timeout(180_000);
    const file = path.join(dir, 'big.jsonl');
    const chunk = 'x'.repeat(64 * 1024);
    const count = 9_400; // 9,400 lines of 64 KiB: 616 MB, beyond V8's largest string (about 512 MiB)
    const messages = function* () {
      for (let i = 0; i < count; i++) yield { topic: 'big', payload: { i, chunk } };
    };
    writeSpool(file, { big: count + 1 }, messages());
    const size = fs.statSync(file).size;
    assert.ok(size > 2 ** 29, `the file is ${size} bytes, more than V8's longest string`);
    assert.throws(() => fs.readFileSync(file, 'utf8'), /Cannot create a string longer than|ERR_STRING_TOO_LONG/, 'what the old restore did');
    let n = 0;
    let sum = 0;
    const result = restoreSpool<{ payload: { i: number; chunk: string } }>(file, {
      onMessage: (m) => {
        n++;
        sum += m.payload.i;
        assert.equal(m.payload.chunk.length, chunk.length);
      },
    });
    assert.equal(result.error, undefined);
    assert.equal(n, count);
    assert.equal(sum, (count * (count - 1)) / 2);
    assert.equal(result.badLines, 0);
    assert.equal(fs.existsSync(file), false);
  });
});
