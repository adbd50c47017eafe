// The journal: atomic entries per record, and sealed secrets that only this gateway's config can open.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { isRotateError } from '../../src/errors.js';
import type { GatewayConfig } from '../../src/keeper/config.js';
import { Journal } from '../../src/state/journal.js';
import { openStateDir, stateRoot } from '../../src/state/dir.js';

const root = mkdtempSync(join(tmpdir(), 'keeper-rotate-journal-'));
after(() => rmSync(root, { recursive: true, force: true }));
const UID = 'JournalTestRecordUid01';
const SECRET = 'wiz-secret-value-that-must-never-be-readable-0123456789';

function config(privateKey: string, clientId = 'client-1'): GatewayConfig {
  return { source: 'test', hostname: 'localhost', values: { hostname: 'localhost', clientId, privateKey, appKey: 'k' } };
}

const env = { KEEPER_ROTATE_STATE_DIR: root };

test('the state folder is private and namespaced by the gateway client', () => {
  const a = openStateDir(config('p', 'client-a'), { env, platform: 'linux' });
  const b = openStateDir(config('p', 'client-b'), { env, platform: 'linux' });
  assert.notEqual(a, b);
  assert.equal(statSync(a).mode & 0o777, 0o700);
  assert.equal(stateRoot({ env: {}, platform: 'linux', home: () => '/home/g' }), '/home/g/.local/state/keeper-rotate');
  assert.equal(stateRoot({ env: { XDG_STATE_HOME: '/s' }, platform: 'linux' }), '/s/keeper-rotate');
  assert.match(stateRoot({ env: { LOCALAPPDATA: 'C:\\L' }, platform: 'win32' }), /keeper-rotate$/);
});

test('an unusable state folder is a coded error naming the fix', () => {
  const file = join(root, 'a-file');
  writeFileSync(file, '');
  assert.throws(() => openStateDir(config('p'), { env: { KEEPER_ROTATE_STATE_DIR: file }, platform: 'linux' }), (err) =>
    isRotateError(err) && err.code === 'STATE_DIR_UNAVAILABLE' && /KEEPER_ROTATE_STATE_DIR/.test(err.message));
});

test('entries are written whole, read back, listed when unsaved, and cleared', () => {
  const dir = openStateDir(config('p'), { env, platform: 'linux' });
  const journal = new Journal(dir, config('p'));
  assert.equal(journal.read(UID), undefined);
  journal.write({ runId: 'r', target: 't', recordUid: UID, since: new Date().toISOString(), phase: 'saving', credentialId: 'id-1', idField: 'f' });
  assert.equal(journal.read(UID)?.phase, 'saving');
  assert.deepEqual(journal.unsaved().entries, []);
  journal.write({ runId: 'r', target: 't', recordUid: UID, since: new Date().toISOString(), phase: 'unsaved', sealed: journal.seal(UID, [[{ label: 'client_secret', kind: 'secret' }, SECRET]]) });
  assert.deepEqual(journal.unsaved().entries.map((e) => e.recordUid), [UID]);
  assert.equal(statSync(join(dir, `${UID}.journal.json`)).mode & 0o777, 0o600);
  assert.deepEqual(readdirSync(dir).filter((n) => n.endsWith('.tmp')), [], 'no temporary file is left behind');
  journal.clear(UID);
  assert.equal(journal.read(UID), undefined);
});

test('a sealed secret is not in the file, opens with the same config, and not with another', () => {
  const dir = openStateDir(config('p'), { env, platform: 'linux' });
  const journal = new Journal(dir, config('gateway-private-key'));
  const updates: Array<[{ label: string; kind: 'secret' }, string]> = [[{ label: 'client_secret', kind: 'secret' }, SECRET]];
  const entry = journal.write({ runId: 'r', target: 'wiz', recordUid: UID, since: new Date().toISOString(), phase: 'unsaved', sealed: journal.seal(UID, updates) });
  const file = readFileSync(join(dir, `${UID}.journal.json`), 'utf8');
  assert.ok(!file.includes(SECRET) && !file.includes(Buffer.from(SECRET).toString('base64')));
  assert.deepEqual(new Journal(dir, config('gateway-private-key')).unseal(entry), updates);
  assert.throws(() => new Journal(dir, config('another-key')).unseal(entry), (err) => isRotateError(err) && err.code === 'RECOVERY_UNREADABLE' && !err.message.includes(SECRET));
  journal.clear(UID);
});

test('a corrupt journal is reported, not silently dropped', () => {
  const dir = openStateDir(config('p'), { env, platform: 'linux' });
  writeFileSync(join(dir, `${UID}.journal.json`), '{not json');
  assert.throws(() => new Journal(dir, config('p')).read(UID), (err) => isRotateError(err) && err.code === 'STATE_DIR_UNAVAILABLE');
  rmSync(join(dir, `${UID}.journal.json`));
});

test('a resume token is sealed like a secret: only this gateway opens it, and a foreign key gets nothing', () => {
  const dir = openStateDir(config('resume-key', 'client-resume'), { env, platform: 'linux' });
  const journal = new Journal(dir, config('resume-key', 'client-resume'));
  const sealed = journal.sealText(UID, SECRET);
  assert.ok(!sealed.includes(SECRET) && !Buffer.from(sealed, 'base64').toString('latin1').includes(SECRET), 'the token is readable in the sealed text');
  journal.write({ runId: 'r', target: 'wiz-service-account', recordUid: UID, phase: 'creating', since: new Date().toISOString(), resume: sealed });
  assert.ok(!readFileSync(join(dir, `${UID}.journal.json`), 'utf8').includes(SECRET));
  assert.equal(journal.unsealText(UID, journal.read(UID)!.resume!), SECRET);
  assert.equal(new Journal(dir, config('another-gateway-key', 'client-resume')).unsealText(UID, sealed), undefined);
  assert.equal(journal.unsealText(UID, 'not-sealed-at-all'), undefined);
  journal.clear(UID);
});

test('an entry edited by hand, or copied under another record, fails its integrity check and stops only that record', () => {
  const dir = openStateDir(config('integrity-key', 'client-integrity'), { env, platform: 'linux' });
  const journal = new Journal(dir, config('integrity-key', 'client-integrity'));
  const OTHER = 'JournalTestRecordUid02';
  journal.write({ runId: 'r', target: 'azure-app-secret', recordUid: UID, since: new Date().toISOString(), phase: 'saving', txn: 'save', credentialId: 'id-1', idField: 'f' });
  const path = join(dir, `${UID}.journal.json`);
  const original = readFileSync(path, 'utf8');
  const edited = JSON.parse(original) as Record<string, unknown>;
  edited.phase = 'verified';
  writeFileSync(path, JSON.stringify(edited));
  assert.throws(() => journal.read(UID), (err) => isRotateError(err) && err.code === 'STATE_DIR_UNAVAILABLE' && /integrity/.test(err.message));
  // The same bytes under another record's name: refused too (the entry names its record, under the MAC).
  writeFileSync(path, original);
  writeFileSync(join(dir, `${OTHER}.journal.json`), original.replace(UID, OTHER));
  assert.throws(() => journal.read(OTHER), (err) => isRotateError(err) && err.code === 'STATE_DIR_UNAVAILABLE');
  assert.equal(journal.read(UID)?.phase, 'saving', 'the untouched entry still reads');
  // Listing sealed secrets skips the bad file and names it, so one bad journal does not stop every record.
  journal.write({ runId: 'r', target: 'wiz-service-account', recordUid: UID, since: new Date().toISOString(), phase: 'unsaved', sealed: journal.seal(UID, [[{ label: 'client_secret', kind: 'secret' }, SECRET]]) });
  const listed = journal.unsaved();
  assert.deepEqual(listed.entries.map((e) => e.recordUid), [UID]);
  assert.deepEqual(listed.unreadable, [OTHER]);
  // A journal written by another gateway key fails the check as well.
  assert.throws(() => new Journal(dir, config('another-key', 'client-integrity')).read(UID), (err) => isRotateError(err) && err.code === 'STATE_DIR_UNAVAILABLE');
  journal.clear(UID);
  rmSync(join(dir, `${OTHER}.journal.json`));
});

test("a sealed secret opens only for the record it was sealed for", () => {
  const dir = openStateDir(config('bind-key', 'client-bind'), { env, platform: 'linux' });
  const journal = new Journal(dir, config('bind-key', 'client-bind'));
  const sealed = journal.seal(UID, [[{ label: 'client_secret', kind: 'secret' }, SECRET]]);
  assert.equal(journal.unsealText('JournalTestRecordUid03', sealed), undefined);
  // Even inside a well-formed entry of the other record (written, so MACed, by this gateway).
  const moved = journal.write({ runId: 'r', target: 'wiz-service-account', recordUid: 'JournalTestRecordUid03', since: new Date().toISOString(), phase: 'unsaved', sealed });
  assert.throws(() => journal.unseal(moved), (err) => isRotateError(err) && err.code === 'RECOVERY_UNREADABLE');
  journal.clear('JournalTestRecordUid03');
});

test('the digest of what a record held compares equal only for the same values of the same record', () => {
  const journal = new Journal(root, config('digest-key'));
  const d = journal.digest(UID, ['a', undefined]);
  assert.equal(journal.digest(UID, ['a', undefined]), d);
  assert.notEqual(journal.digest(UID, ['b', undefined]), d);
  assert.notEqual(journal.digest('JournalTestRecordUid04', ['a', undefined]), d);
  assert.notEqual(new Journal(root, config('other-digest-key')).digest(UID, ['a', undefined]), d, 'keyed: no value can be tested against it without the gateway key');
  assert.ok(!d.includes('a'));
});

test("another registration's journal for a record is listed, so its loss is reported, not silent", () => {
  const old = openStateDir(config('old-key', 'client-old-registration'), { env, platform: 'linux' });
  const current = openStateDir(config('new-key', 'client-new-registration'), { env, platform: 'linux' });
  const before = new Journal(old, config('old-key', 'client-old-registration'));
  before.write({ runId: 'r', target: 'wiz-service-account', recordUid: UID, since: new Date().toISOString(), phase: 'unsaved', sealed: before.seal(UID, [[{ label: 'client_secret', kind: 'secret' }, SECRET]]) });
  const now = new Journal(current, config('new-key', 'client-new-registration'));
  assert.deepEqual(now.foreignSealed(UID), [old]);
  assert.deepEqual(now.foreignSealed('JournalTestRecordUid05'), []);
  before.clear(UID);
  assert.deepEqual(now.foreignSealed(UID), []);
});
