// One run per record on this gateway. Two runs on one record would each create a credential and race to save;
// the revision check would stop the second, but only after it had created something. The lock stops it first.
// A lock whose process is gone, or whose run is past its hard stop, is stale and taken over.
import { randomUUID } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { RotateError } from '../errors.js';

interface LockFile {
  pid: number;
  runId: string;
  /** ms since the epoch after which the owner has certainly stopped (its deadline plus the hard-stop grace). */
  expiresAt: number;
}

export interface RecordLock {
  readonly runId: string;
  release(): void;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readLock(path: string): LockFile | undefined {
  try {
    const parsed = JSON.parse(readFileSync(path, 'utf8')) as Partial<LockFile>;
    if (typeof parsed.pid === 'number' && typeof parsed.expiresAt === 'number' && typeof parsed.runId === 'string') return parsed as LockFile;
  } catch {
    // Unreadable or half-written: treated as stale below.
  }
  return undefined;
}

/**
 * What a lock file says, without taking it (doctor): none, one held by a live run, a stale one the next run
 * takes over, or one that cannot be read.
 */
export function inspectLock(dir: string, recordUid: string, now = Date.now()): { state: 'none' | 'unreadable' } | { state: 'held' | 'stale'; pid: number } {
  const path = join(dir, `${recordUid}.lock`);
  if (!existsSync(path)) return { state: 'none' };
  const lock = readLock(path);
  if (!lock) return { state: 'unreadable' };
  return { state: lock.expiresAt > now && alive(lock.pid) ? 'held' : 'stale', pid: lock.pid };
}

export function lockRecord(dir: string, recordUid: string, expiresAt: number, now = Date.now()): RecordLock {
  const path = join(dir, `${recordUid}.lock`);
  const runId = randomUUID();
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      try {
        // No fsync: other processes see the write at once, and a lock only matters while its run is alive. After
        // a crash of the host no run holds it, and an empty or missing lock file is taken over as stale. (The
        // journal, which must outlive a crash, is synced.) An fsync here sat before the first request of every run.
        writeSync(fd, JSON.stringify({ pid: process.pid, runId, expiresAt } satisfies LockFile));
      } finally {
        closeSync(fd);
      }
      return {
        runId,
        release: () => {
          // Only our own lock: a run that outlived its lock must not free a successor's.
          if (readLock(path)?.runId === runId) rmSync(path, { force: true });
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new RotateError('STATE_DIR_UNAVAILABLE', `cannot write the lock for record ${recordUid} in ${dir} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
      }
      const held = readLock(path);
      if (held && held.pid !== process.pid && alive(held.pid) && held.expiresAt > now) {
        throw new RotateError('ROTATION_IN_PROGRESS', `another run (pid ${held.pid}) is rotating record ${recordUid} on this gateway; nothing was changed`);
      }
      rmSync(path, { force: true });
    }
  }
  throw new RotateError('ROTATION_IN_PROGRESS', `another run took the lock for record ${recordUid} at the same moment; nothing was changed`);
}
