import assert from 'node:assert/strict';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { takeSpool, writeSpool } from '../src/core/buffer/spool';

/** The spool on a disk that fills up, for real: a 64 KiB tmpfs (needs root; skipped otherwise). */
describe('spool on a full disk', function () {
  let mountPoint = '';

  before(function () {
    mountPoint = fs.mkdtempSync(path.join(os.tmpdir(), 'telemetry-spool-full-'));
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', mountPoint], { stdio: 'ignore' });
    } catch {
      fs.rmSync(mountPoint, { recursive: true, force: true });
      this.skip();
    }
  });

  after(function () {
    if (!fs.existsSync(mountPoint)) return;
    execFileSync('umount', [mountPoint], { stdio: 'ignore' });
    fs.rmSync(mountPoint, { recursive: true, force: true });
  });

  it('fails with ENOSPC, leaves no half file behind, and a spool that fits still works afterwards', function () {
    const file = path.join(mountPoint, 'buffer.jsonl');
    const many = Array.from({ length: 5000 }, (_, i) => ({ topic: `line/${i % 7}`, payload: { value: i, note: 'x'.repeat(20) }, seq: i + 1 }));
    assert.throws(() => writeSpool(file, { 'line/0': 10 }, many), /ENOSPC/);
    assert.deepEqual(fs.readdirSync(mountPoint), [], 'the partial .tmp file was removed');
    // The space is free again: a small spool fits and reads back whole.
    writeSpool(file, { 'line/0': 3 }, many.slice(0, 3));
    const back = takeSpool<Record<string, unknown>>(file);
    assert.equal(back.messages.length, 3);
    assert.deepEqual(back.header?.sequences, { 'line/0': 3 });
  });
});

describe('spool with a message JSON cannot write', function () {
  it('leaves out only that message (counted) and spools the others', function () {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telemetry-spool-deep-'));
    try {
      // Too deep for JSON.stringify's recursion: it throws RangeError, which used to fail the whole spool.
      let deep: unknown = 1;
      for (let i = 0; i < 200_000; i++) deep = { a: deep };
      const file = path.join(dir, 'b.jsonl');
      const result = writeSpool(file, { s: 4 }, [{ topic: 's', payload: 1 }, { topic: 's', payload: deep }, { topic: 's', payload: 3 }]);
      assert.deepEqual(result, { skipped: 1, skippedAt: [1] });
      const back = takeSpool<{ payload: number }>(file);
      assert.deepEqual(back.messages.map((m) => m.payload), [1, 3]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
