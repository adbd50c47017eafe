// The per-record lock: one run per record on a gateway; a lock is taken over only when its owner is gone, and
// then by exactly one run, however many find it stale at once.
import assert from 'node:assert/strict';
import { type ChildProcessWithoutNullStreams, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, describe, test } from 'node:test';
import { isRotateError } from '../../src/errors.js';
import { UNREADABLE_LOCK_STALE_MS, inspectLock, lockRecord, startToken } from '../../src/state/lock.js';

const dir = mkdtempSync(join(tmpdir(), 'keeper-rotate-lock-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const UID = 'LockTestRecordUid00001';
const LOCK = join(dir, `${UID}.lock`);
const HOUR = 3_600_000;
const inProgress = (err: unknown) => isRotateError(err) && err.code === 'ROTATION_IN_PROGRESS';
const owner = () => (JSON.parse(readFileSync(LOCK, 'utf8')) as { runId: string }).runId;

function deadPid(): number {
  // A child that has exited: its pid is free (reuse within this test is vanishingly unlikely).
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  return Number(r.stdout.toString());
}

/** Nothing but the lock itself (or nothing) in the folder: no temporary, claim or set-aside file is left. */
function assertOnlyLock(expectLock: boolean): void {
  assert.deepEqual(readdirSync(dir).sort(), expectLock ? [`${UID}.lock`] : []);
}

test('a second lock on the same record is refused while the first is held, and works once released', () => {
  const first = lockRecord(dir, UID, Date.now() + HOUR);
  assert.equal(statSync(LOCK).mode & 0o777, 0o600);
  assertOnlyLock(true);
  // This process's own live lock is held too (the start token tells it from an earlier process with this pid).
  if (startToken(process.pid)) assert.throws(() => lockRecord(dir, UID, Date.now() + HOUR), inProgress);
  // The lock file names another live owner: the parent of this test process.
  writeFileSync(LOCK, JSON.stringify({ pid: process.ppid, runId: 'other', expiresAt: Date.now() + HOUR }));
  assert.throws(() => lockRecord(dir, UID, Date.now() + HOUR), inProgress);
  assert.equal(owner(), 'other');
  // The first holder's release does not free a lock that is no longer its own.
  first.release();
  assert.ok(existsSync(LOCK));
  rmSync(LOCK);
  const again = lockRecord(dir, UID, Date.now() + HOUR);
  again.release();
  assertOnlyLock(false);
});

test('a lock whose process is gone is taken over, and nothing is left beside it', () => {
  writeFileSync(LOCK, JSON.stringify({ pid: deadPid(), runId: 'dead', expiresAt: Date.now() + HOUR }));
  assert.equal(inspectLock(dir, UID).state, 'stale');
  const lock = lockRecord(dir, UID, Date.now() + HOUR);
  assert.equal(owner(), lock.runId);
  assertOnlyLock(true);
  lock.release();
  assertOnlyLock(false);
});

test('a lock past its hard stop is not taken over while its process lives (clock jump, hung run)', () => {
  writeFileSync(LOCK, JSON.stringify({ pid: process.ppid, runId: 'overdue', expiresAt: Date.now() - HOUR }));
  assert.throws(() => lockRecord(dir, UID, Date.now() + HOUR), inProgress);
  assert.equal(owner(), 'overdue');
  assert.deepEqual(inspectLock(dir, UID), { state: 'held', pid: process.ppid, overdue: true });
  rmSync(LOCK);
});

test('a live pid that started at another time than the lock says is a reused pid: the lock is taken over', (t) => {
  const token = startToken(process.ppid);
  if (!token) return t.skip('no process start times on this platform (no /proc): the pid alone decides');
  writeFileSync(LOCK, JSON.stringify({ pid: process.ppid, start: token, runId: 'live', expiresAt: Date.now() - HOUR }));
  assert.throws(() => lockRecord(dir, UID, Date.now() + HOUR), inProgress, 'the real owner (same start) keeps it');
  writeFileSync(LOCK, JSON.stringify({ pid: process.ppid, start: `${token}0`, runId: 'reused', expiresAt: Date.now() + HOUR }));
  assert.equal(inspectLock(dir, UID).state, 'stale');
  const lock = lockRecord(dir, UID, Date.now() + HOUR);
  assert.equal(owner(), lock.runId);
  lock.release();
});

describe('a lock file that cannot be read', () => {
  for (const [name, content] of [['empty', ''], ['half-written', '{"pid":']] as const) {
    test(`${name}: held while recent (a run may be writing it), taken over once ${UNREADABLE_LOCK_STALE_MS / 1000} s old`, () => {
      writeFileSync(LOCK, content);
      assert.throws(() => lockRecord(dir, UID, Date.now() + HOUR), inProgress);
      assert.equal(readFileSync(LOCK, 'utf8'), content);
      assert.deepEqual(inspectLock(dir, UID), { state: 'unreadable', stale: false });
      const old = new Date(Date.now() - UNREADABLE_LOCK_STALE_MS - 5_000);
      utimesSync(LOCK, old, old);
      assert.deepEqual(inspectLock(dir, UID), { state: 'unreadable', stale: true });
      const lock = lockRecord(dir, UID, Date.now() + HOUR);
      assert.equal(owner(), lock.runId);
      lock.release();
      assertOnlyLock(false);
    });
  }
});

describe('the claim that serializes a takeover', () => {
  const staleLock = () => {
    writeFileSync(LOCK, JSON.stringify({ pid: deadPid(), runId: 'dead', expiresAt: Date.now() + HOUR }));
    return `${LOCK}.${statSync(LOCK, { bigint: true }).ino}.claim`;
  };

  test('while another live run holds it, the stale lock is left to that run', () => {
    const claim = staleLock();
    writeFileSync(claim, JSON.stringify({ pid: process.ppid, runId: 'claimant', expiresAt: Date.now() }));
    assert.throws(() => lockRecord(dir, UID, Date.now() + HOUR), inProgress);
    assert.equal(owner(), 'dead');
    assert.ok(existsSync(claim));
    rmSync(claim);
    rmSync(LOCK);
  });

  test('one left by a run that died while taking over is cleared, and the lock taken over', () => {
    const claim = staleLock();
    writeFileSync(claim, JSON.stringify({ pid: deadPid(), runId: 'died-claiming', expiresAt: Date.now() }));
    const lock = lockRecord(dir, UID, Date.now() + HOUR);
    assert.equal(owner(), lock.runId);
    assertOnlyLock(true);
    lock.release();
  });
});

describe('processes racing for one lock', () => {
  const CHILD = join('test', 'helpers', 'lock-child.ts');
  const N = 4;
  let children: Array<{ proc: ChildProcessWithoutNullStreams; next: () => Promise<Record<string, unknown>> }> = [];

  function start() {
    const proc = spawn(process.execPath, ['--import', 'tsx', CHILD, dir, UID], { stdio: 'pipe' });
    const lines: string[] = [];
    const waiting: Array<(line: string) => void> = [];
    createInterface({ input: proc.stdout }).on('line', (line) => {
      const w = waiting.shift();
      if (w) w(line);
      else lines.push(line);
    });
    const next = () =>
      new Promise<Record<string, unknown>>((done) => {
        const line = lines.shift();
        if (line !== undefined) done(JSON.parse(line) as Record<string, unknown>);
        else waiting.push((l) => done(JSON.parse(l) as Record<string, unknown>));
      });
    return { proc, next };
  }

  after(() => {
    for (const c of children) c.proc.stdin.end();
  });

  /** Every child tries at once; returns the results, then has the winner release. */
  async function round(): Promise<Array<Record<string, unknown>>> {
    const at = Date.now() + 150;
    for (const c of children) c.proc.stdin.write(`go ${at}\n`);
    const results = await Promise.all(children.map((c) => c.next()));
    const winners = results.filter((r) => r.ok === true);
    assert.equal(winners.length, 1, JSON.stringify(results));
    assert.equal(owner(), winners[0]!.runId, 'the lock file names the one run that was told it holds it');
    for (const r of results.filter((x) => x.ok !== true)) assert.equal(r.code, 'ROTATION_IN_PROGRESS');
    for (const c of children) c.proc.stdin.write('release\n');
    await Promise.all(children.map((c) => c.next()));
    assertOnlyLock(false);
    return results;
  }

  test(`${N} processes: exactly one takes a free lock, and exactly one takes over a stale one, every time`, async () => {
    children = Array.from({ length: N }, start);
    for (const c of children) assert.deepEqual(await c.next(), { ready: true });
    for (let i = 0; i < 3; i++) await round();
    for (let i = 0; i < 5; i++) {
      writeFileSync(LOCK, JSON.stringify({ pid: deadPid(), runId: 'dead', expiresAt: Date.now() + HOUR }));
      await round();
    }
  });
});
