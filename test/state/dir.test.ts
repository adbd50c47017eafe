// The state folder's own checks: it and the gateway's subfolder must be real folders (not links), the user's
// own, and 0700. A folder this tool creates is made so; one it finds otherwise is refused, not changed.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { isRotateError } from '../../src/errors.js';
import type { GatewayConfig } from '../../src/keeper/config.js';
import { openStateDir } from '../../src/state/dir.js';

const base = mkdtempSync(join(tmpdir(), 'keeper-rotate-dir-'));
after(() => rmSync(base, { recursive: true, force: true }));
let n = 0;
const fresh = () => join(base, `case-${++n}`);

const CONFIG: GatewayConfig = { source: 'test', hostname: 'localhost', values: { hostname: 'localhost', clientId: 'client-dir', privateKey: 'p', appKey: 'k' } };
const SUB = createHash('sha256').update('client-dir').digest('hex').slice(0, 16);
const open = (root: string, platform: NodeJS.Platform = 'linux') => openStateDir(CONFIG, { env: { KEEPER_ROTATE_STATE_DIR: root }, platform });
const refused = (message: RegExp) => (err: unknown) => isRotateError(err) && err.code === 'STATE_DIR_UNAVAILABLE' && err.exitCode === 2 && message.test(err.message);
const mode = (path: string) => statSync(path).mode & 0o777;

test('created missing, with its parents, 0700', () => {
  const root = join(fresh(), 'deeper', 'state');
  assert.equal(open(root), join(root, SUB));
  assert.equal(mode(join(root, '..')), 0o700);
  assert.equal(mode(root), 0o700);
  assert.equal(mode(join(root, SUB)), 0o700);
});

test('created 0700 whatever the umask', () => {
  const parent = fresh();
  mkdirSync(parent, { mode: 0o700 });
  const root = join(parent, 'state');
  // A umask that strips the owner's own bits: the folders this run made are set right, not refused.
  const umask = process.umask(0o277);
  try {
    assert.equal(open(root), join(root, SUB));
  } finally {
    process.umask(umask);
  }
  assert.equal(mode(root), 0o700);
  assert.equal(mode(join(root, SUB)), 0o700);
  // And accepted as it is on the next run.
  assert.equal(open(root), join(root, SUB));
});

test('an existing root with group or other bits is refused with the chmod that fixes it, and left as it was', () => {
  const root = fresh();
  mkdirSync(root);
  chmodSync(root, 0o755);
  assert.throws(() => open(root), refused(new RegExp(`has mode 0755; .*chmod 700 '${root}'$`)));
  assert.equal(mode(root), 0o755);
  chmodSync(root, 0o700);
  assert.equal(open(root), join(root, SUB));
});

test('an existing gateway subfolder with group bits is refused too', () => {
  const root = fresh();
  mkdirSync(join(root, SUB), { recursive: true, mode: 0o700 });
  chmodSync(join(root, SUB), 0o770);
  assert.throws(() => open(root), refused(new RegExp(`${SUB} has mode 0770; .*chmod 700 '${join(root, SUB)}'$`)));
  assert.equal(mode(join(root, SUB)), 0o770);
});

test('a symbolic link, as the root (with or without a trailing slash) or as the subfolder, is refused', () => {
  const real = fresh();
  mkdirSync(real, { mode: 0o700 });
  const link = fresh();
  symlinkSync(real, link);
  assert.throws(() => open(link), refused(/is a symbolic link/));
  assert.throws(() => open(`${link}/`), refused(/is a symbolic link/));
  const root = fresh();
  mkdirSync(root, { mode: 0o700 });
  symlinkSync(real, join(root, SUB));
  assert.throws(() => open(root), refused(new RegExp(`${SUB} is a symbolic link`)));
  // Windows: the link check still applies.
  assert.throws(() => open(link, 'win32'), refused(/is a symbolic link/));
});

test('on Windows, POSIX mode bits are not judged (the folder inherits its ACL)', () => {
  const root = fresh();
  mkdirSync(root);
  chmodSync(root, 0o755);
  assert.equal(open(root, 'win32'), join(root, SUB));
});

test('a folder owned by another user is refused', { skip: process.getuid?.() !== 0 && 'only root can give a folder to another user' }, () => {
  const root = fresh();
  mkdirSync(root, { mode: 0o700 });
  chownSync(root, 54_321, 54_321);
  assert.throws(() => open(root), refused(/belongs to uid 54321, not to this user \(uid 0\); .*chown -R 0 /));
  const other = fresh();
  mkdirSync(join(other, SUB), { recursive: true, mode: 0o700 });
  chownSync(join(other, SUB), 54_321, 54_321);
  assert.throws(() => open(other), refused(/belongs to uid 54321/));
});
