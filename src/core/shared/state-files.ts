import * as fs from 'fs';
import * as path from 'path';

/**
 * Where a node keeps a file of its own (spool, disk tier, totals, sequence journal): in `dir`, named
 * after the node's id with anything but letters, digits, `_`, `.` and `-` replaced, so the name is
 * safe on every filesystem.
 */
export function stateFile(dir: string, nodeId: string, suffix = ''): string {
  return path.join(dir, `${nodeId.replace(/[^A-Za-z0-9_.-]/g, '_')}${suffix}`);
}

/** Errors of a directory's fsync that say only that the platform or filesystem does not do it. */
const NO_DIRECTORY_SYNC = new Set(['EINVAL', 'EISDIR', 'EPERM', 'ENOTSUP', 'EBADF']);

/**
 * Makes the files created or renamed in `dir` survive a power cut: their names are the
 * directory's data, which an fsync of the file does not write. Skipped on Windows, where a
 * directory cannot be opened, and where the filesystem refuses it. Throws on other failures.
 */
export function syncDirectory(dir: string): void {
  if (process.platform === 'win32') return;
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch (err) {
    if (!NO_DIRECTORY_SYNC.has((err as NodeJS.ErrnoException).code ?? '')) throw err;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}
