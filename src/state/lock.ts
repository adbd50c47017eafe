// One run per record on this gateway. Two runs on one record would each create a credential and race to save;
// the revision check would stop the second, but only after it had created something. The lock stops it first.
//
// A lock is taken over only when the process that wrote it is gone. Its deadline is not enough: a clock that
// jumps forward, or a run hung past its hard stop but still able to wake up and write, would otherwise have a
// second run beside it. A pid alone is not enough either: after a reboot or in a container, pids come round
// again fast, so the lock also names the owner's start (Linux: boot id and start time from /proc), and a
// live process that started at another time is not the owner.
//
// Every file here appears whole or not at all (written under a temporary name, then linked or renamed into
// place), so a reader never mistakes a lock being written for a broken one.
import { randomUUID } from 'node:crypto';
import { closeSync, fstatSync, linkSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RotateError, isRotateError } from '../errors.js';

interface LockFile {
  pid: number;
  runId: string;
  /** ms since the epoch after which the owner should have stopped: past it, doctor calls the run hung. */
  expiresAt: number;
  /** The owner's start token (startToken); absent where the platform has none. */
  start?: string;
}

export interface RecordLock {
  readonly runId: string;
  release(): void;
}

/**
 * How old a lock file that cannot be parsed must be before it counts as abandoned. This version never leaves
 * one behind a live run (files appear whole), so it is left by a crash, a full disk or an older version that
 * wrote in two steps; the wait covers the last of these.
 */
export const UNREADABLE_LOCK_STALE_MS = 30_000;

let bootId: string | undefined;

/**
 * Names one process for its whole life: the boot and the start time (clock ticks since boot) from
 * /proc/<pid>/stat. Undefined where there is no /proc (macOS, Windows) or the entry cannot be read; callers
 * then fall back to whether the pid is alive.
 */
export function startToken(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // The command name (field 2) is in parentheses and may itself hold spaces and parentheses.
    const start = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
    if (!start || !/^\d+$/.test(start)) return undefined;
    bootId ??= readBootId();
    return `${bootId}/${start}`;
  } catch {
    return undefined;
  }
}

function readBootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'latin1').trim();
  } catch {
    return '';
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Whether the process that wrote `owner` still runs. */
function ownerAlive(owner: { pid: number; start?: string }): boolean {
  if (owner.pid === process.pid) {
    // This process, or an earlier one that had its pid. Without a start token the two cannot be told apart;
    // a run never asks twice for the same record, so the earlier process is the likely one.
    return owner.start !== undefined && owner.start === startToken(process.pid);
  }
  if (!pidAlive(owner.pid)) return false;
  if (owner.start === undefined) return true;
  const now = startToken(owner.pid);
  // Unreadable (e.g. /proc mounted with hidepid): the pid is alive, so assume it is the owner.
  return now === undefined || now === owner.start;
}

/** One version of a file, read through one descriptor so that its identity and content belong together. */
interface Seen {
  dev: bigint;
  ino: bigint;
  mtimeMs: number;
  raw: Buffer;
  lock: LockFile | undefined;
}

function look(path: string): Seen | undefined {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    const st = fstatSync(fd, { bigint: true });
    const raw = readFileSync(fd);
    return { dev: st.dev, ino: st.ino, mtimeMs: Number(st.mtimeMs), raw, lock: parse(raw) };
  } finally {
    closeSync(fd);
  }
}

function parse(raw: Buffer): LockFile | undefined {
  try {
    const parsed = JSON.parse(raw.toString('utf8')) as Partial<LockFile>;
    // pid 0 or below would make kill() probe a whole process group, which is always alive.
    if (typeof parsed.pid === 'number' && Number.isInteger(parsed.pid) && parsed.pid > 0 && typeof parsed.runId === 'string' && typeof parsed.expiresAt === 'number' && (parsed.start === undefined || typeof parsed.start === 'string')) {
      return parsed as LockFile;
    }
  } catch {
    // Judged by its age below.
  }
  return undefined;
}

/** Inode numbers are reused once a file is gone, so the content (which holds a random run id) is compared too. */
function same(a: Seen, b: Seen): boolean {
  return a.dev === b.dev && a.ino === b.ino && a.mtimeMs === b.mtimeMs && a.raw.equals(b.raw);
}

/** Whether a run may still be using this lock (or claim): its owner lives, or it is unreadable and recent. */
function inUse(seen: Seen, now: number): boolean {
  if (seen.lock) return ownerAlive(seen.lock);
  // Either way round: a clock set back must not make a damaged file block runs for as long as it was set back.
  return Math.abs(now - seen.mtimeMs) < UNREADABLE_LOCK_STALE_MS;
}

/** Writes a private file under a unique temporary name beside `path`, to be linked or renamed into place. */
function stage(path: string, content: string): string {
  const tmp = `${path}.${randomUUID()}.tmp`;
  writeFileSync(tmp, content, { mode: 0o600, flag: 'wx' });
  return tmp;
}

/** Gives `tmp` the name `path` unless that name exists: an exclusive create of a file already whole. */
function publish(tmp: string, path: string): boolean {
  try {
    linkSync(tmp, path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
}

/**
 * Removes `path` if it is still the version `judged`. Renaming is atomic, so of several runs that judged the
 * same file only one moves it; if what it moved is not what it judged (another run replaced it in between),
 * it goes back under its name. Only used for claims: the put-back fails only if yet another run created the
 * name in that instant, which needs a run killed mid-takeover and then three runs racing within microseconds.
 */
function removeIfSame(path: string, judged: Seen): void {
  const aside = `${path}.${randomUUID()}.stale`;
  try {
    renameSync(path, aside);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  try {
    const moved = look(aside);
    if (moved && !same(moved, judged)) publish(aside, path);
  } finally {
    rmSync(aside, { force: true });
  }
}

function inProgress(seen: Seen, recordUid: string, now: number): RotateError {
  if (seen.lock) return new RotateError('ROTATION_IN_PROGRESS', `another run (pid ${seen.lock.pid}) is rotating record ${recordUid} on this gateway; nothing was changed`);
  const age = Math.round(Math.abs(now - seen.mtimeMs) / 1000);
  return new RotateError(
    'ROTATION_IN_PROGRESS',
    `the lock for record ${recordUid} on this gateway cannot be read and is ${age} s old: another run may be writing it, and it is taken over once it is ${UNREADABLE_LOCK_STALE_MS / 1000} s old; nothing was changed`,
  );
}

/**
 * Replaces the stale lock `judged` with ours (`tmp`). Runs that judged the same lock stale serialize on a claim
 * named after it, created whole and exclusively: the one that creates it checks that the lock is still the one
 * it judged and renames ours over it, so no run ever sees the record unlocked. A claim whose run is gone (it
 * died in these few steps) is removed as a stale lock is. Returns false when the lock changed meanwhile.
 */
function takeOver(path: string, judged: Seen, tmp: string, recordUid: string, now: number): boolean {
  const claim = `${path}.${judged.ino}.claim`;
  const mine = stage(claim, JSON.stringify({ pid: process.pid, runId: randomUUID(), expiresAt: now, start: startToken(process.pid) } satisfies LockFile));
  try {
    if (!publish(mine, claim)) {
      const other = look(claim);
      if (other && inUse(other, now)) {
        throw new RotateError('ROTATION_IN_PROGRESS', `another run is taking over the stale lock for record ${recordUid} on this gateway; nothing was changed`);
      }
      if (other) removeIfSame(claim, other);
      return false;
    }
    try {
      const current = look(path);
      if (!current || !same(current, judged)) return false;
      renameSync(tmp, path);
      return true;
    } finally {
      rmSync(claim, { force: true });
    }
  } finally {
    rmSync(mine, { force: true });
  }
}

export type LockState =
  | { state: 'none' }
  /** A run holds it; `overdue`: past its hard stop, so that run is likely hung (it keeps the lock until it exits). */
  | { state: 'held'; pid: number; overdue: boolean }
  | { state: 'stale'; pid: number }
  /** Cannot be parsed; `stale`: old enough that the next run takes it over, else the next run stops at it. */
  | { state: 'unreadable'; stale: boolean };

/** What a lock file says, without taking it (doctor), judged by the same rules as lockRecord. */
export function inspectLock(dir: string, recordUid: string, now = Date.now()): LockState {
  const seen = look(join(dir, `${recordUid}.lock`));
  if (!seen) return { state: 'none' };
  if (!seen.lock) return { state: 'unreadable', stale: !inUse(seen, now) };
  if (!inUse(seen, now)) return { state: 'stale', pid: seen.lock.pid };
  return { state: 'held', pid: seen.lock.pid, overdue: seen.lock.expiresAt <= now };
}

export function lockRecord(dir: string, recordUid: string, expiresAt: number, now = Date.now()): RecordLock {
  const path = join(dir, `${recordUid}.lock`);
  const runId = randomUUID();
  const lock: RecordLock = {
    runId,
    release: () => {
      // Only our own lock: a successor's must never be freed by a run that somehow outlived its own.
      if (look(path)?.lock?.runId === runId) rmSync(path, { force: true });
    },
  };
  try {
    // No fsync: other processes see the file at once, and a lock only matters while its run is alive; after a
    // crash of the host no process owns it. (The journal, which must outlive a crash, is synced.)
    const tmp = stage(path, JSON.stringify({ pid: process.pid, runId, expiresAt, start: startToken(process.pid) } satisfies LockFile));
    try {
      for (let attempt = 0; attempt < 4; attempt++) {
        if (publish(tmp, path)) return lock;
        const seen = look(path);
        if (!seen) continue; // released in between
        if (inUse(seen, now)) throw inProgress(seen, recordUid, now);
        if (takeOver(path, seen, tmp, recordUid, now)) return lock;
      }
    } finally {
      rmSync(tmp, { force: true });
    }
  } catch (err) {
    if (isRotateError(err)) throw err;
    throw new RotateError('STATE_DIR_UNAVAILABLE', `cannot write the lock for record ${recordUid} in ${dir} (${(err as NodeJS.ErrnoException).code ?? 'error'})`, { cause: err });
  }
  throw new RotateError('ROTATION_IN_PROGRESS', `another run took the lock for record ${recordUid} at the same moment; nothing was changed`);
}
