// The file destination on a real filesystem: what the gateway owner allows, what lands on disk, and what a later
// run reads back. Every case runs in a temporary folder of its own.
import assert from 'node:assert/strict';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { isRotateError } from '../../src/errors.js';
import type { DeliveryPayload } from '../../src/destinations/destination.js';
import { ALLOW_FILE_DIRS, SENTINEL_PROVIDED, SENTINEL_UPDATED, fileDestination } from '../../src/destinations/file.js';
import { entry, fingerprint } from '../../src/destinations/payload.js';
import { Secret } from '../../src/secret.js';

function withDir(fn: (dir: string) => Promise<void> | void) {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'keeper-rotate-file-'));
    try {
      await fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

function awsPayload(id: string, secret: string): DeliveryPayload {
  const entries = [entry('access_key_id', 'AWS_ACCESS_KEY_ID', id), entry('secret_access_key', 'AWS_SECRET_ACCESS_KEY', new Secret(secret))];
  return { target: 'aws-iam-access-key', credentialId: id, entries, fingerprint: fingerprint(entries) };
}

const codeOf = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (err) {
    return isRotateError(err) ? err.code : 'not a RotateError';
  }
  return undefined;
};

test('no allow-list, or a path outside it, or a path that is not plain: refused before touching the disk', withDir((dir) => {
  const path = join(dir, 'app.env');
  assert.equal(codeOf(() => fileDestination({ path, format: 'env' }, {})), 'DESTINATION_NOT_ALLOWED');
  assert.equal(codeOf(() => fileDestination({ path, format: 'env' }, { [ALLOW_FILE_DIRS]: '  ' })), 'DESTINATION_NOT_ALLOWED', 'blank is unset');
  assert.equal(codeOf(() => fileDestination({ path, format: 'env' }, { [ALLOW_FILE_DIRS]: join(dir, 'other') })), 'DESTINATION_NOT_ALLOWED');
  assert.equal(codeOf(() => fileDestination({ path: `${dir}-sibling/app.env`, format: 'env' }, { [ALLOW_FILE_DIRS]: dir })), 'DESTINATION_NOT_ALLOWED', 'a prefix of the name is not the folder');
  for (const bad of [`${dir}/sub/../app.env`, 'relative/app.env', `${dir}/app.env\n`, `${dir}/`, `${dir}/${SENTINEL_UPDATED}`]) {
    assert.equal(codeOf(() => fileDestination({ path: bad, format: 'env' }, { [ALLOW_FILE_DIRS]: dir })), 'SETTING_INVALID', JSON.stringify(bad));
  }
  assert.equal(codeOf(() => fileDestination({ path, format: 'env' }, { [ALLOW_FILE_DIRS]: dir })), undefined);
  assert.deepEqual(readdirSync(dir), []);
}));

test('env: written whole with mode 0600, sentinels beside it, and read back by its fingerprint', withDir(async (dir) => {
  const path = join(dir, 'app.env');
  const d = fileDestination({ path, format: 'env' }, { [ALLOW_FILE_DIRS]: dir });
  await d.check();
  assert.equal(await d.held(), undefined);
  const first = awsPayload('AKIAFIRSTFIRSTFIRST1', 'first/secret+value=~.');
  await d.deliver(first);
  const text = readFileSync(path, 'utf8');
  assert.match(text, /^AWS_ACCESS_KEY_ID=AKIAFIRSTFIRSTFIRST1$/m);
  assert.match(text, /^AWS_SECRET_ACCESS_KEY=first\/secret\+value=~\.$/m);
  assert.equal(lstatSync(path).mode & 0o777, 0o600);
  assert.equal(await d.held(), first.fingerprint);
  const provided = readFileSync(join(dir, SENTINEL_PROVIDED), 'utf8');
  assert.match(readFileSync(join(dir, SENTINEL_UPDATED), 'utf8'), /app\.env/);
  for (const s of [SENTINEL_PROVIDED, SENTINEL_UPDATED]) assert.ok(!readFileSync(join(dir, s), 'utf8').includes('first/secret'), `${s} holds no value`);

  await new Promise((done) => setTimeout(done, 5));
  const second = awsPayload('AKIASECONDSECONDSEC2', 'a value with "quotes" and $dollar');
  await d.deliver(second);
  assert.match(readFileSync(path, 'utf8'), /^AWS_SECRET_ACCESS_KEY="a value with \\"quotes\\" and \\\$dollar"$/m);
  assert.equal(await d.held(), second.fingerprint);
  assert.equal(readFileSync(join(dir, SENTINEL_PROVIDED), 'utf8'), provided, 'PROVIDED is written once');
  assert.deepEqual(readdirSync(dir).sort(), ['app.env', SENTINEL_PROVIDED, SENTINEL_UPDATED].sort(), 'no temporary file is left');
}));

test('json and aws-profile: the aws-profile keeps the file\'s other profiles', withDir(async (dir) => {
  const env = { [ALLOW_FILE_DIRS]: dir };
  const p = awsPayload('AKIAJSONJSONJSONJSO1', 'json-secret-value');
  const json = fileDestination({ path: join(dir, 'creds.json'), format: 'json' }, env);
  await json.deliver(p);
  const parsed = JSON.parse(readFileSync(join(dir, 'creds.json'), 'utf8')) as Record<string, string>;
  assert.equal(parsed.access_key_id, 'AKIAJSONJSONJSONJSO1');
  assert.equal(parsed.secret_access_key, 'json-secret-value');
  assert.equal(await json.held(), p.fingerprint);

  const credentials = join(dir, 'credentials');
  writeFileSync(credentials, '[default]\naws_access_key_id = AKIAOTHEROTHEROTHER1\naws_secret_access_key = other\n\n[app]\naws_access_key_id = AKIAOLDOLDOLDOLDOLD1\naws_secret_access_key = old\nregion = eu-west-1\n');
  const profile = fileDestination({ path: credentials, format: 'aws-profile', profile: 'app' }, env);
  assert.equal(await profile.held(), undefined, 'a profile keeper-rotate did not write holds nothing of ours');
  await profile.deliver(p);
  const text = readFileSync(credentials, 'utf8');
  assert.match(text, /\[default\]\naws_access_key_id = AKIAOTHEROTHEROTHER1\naws_secret_access_key = other/);
  assert.match(text, /\[app\]\n# keeper-rotate fingerprint=[0-9a-f]+\naws_access_key_id = AKIAJSONJSONJSONJSO1\naws_secret_access_key = json-secret-value/);
  assert.ok(!text.includes('AKIAOLDOLDOLDOLDOLD1'));
  assert.equal(await profile.held(), p.fingerprint);
  const other = fileDestination({ path: credentials, format: 'aws-profile', profile: 'default' }, env);
  assert.equal(await other.held(), undefined, "another profile's fingerprint is not this one's");
}));

test('a symlink cannot aim the write outside the allowed folder, and a failed write keeps the old file', withDir(async (dir) => {
  const allowed = join(dir, 'allowed');
  const outside = join(dir, 'outside');
  mkdirSync(allowed);
  mkdirSync(outside);
  symlinkSync(outside, join(allowed, 'escape'));
  // Refused as the record's settings are read, before a run changes anything.
  assert.equal(codeOf(() => fileDestination({ path: join(allowed, 'escape', 'app.env'), format: 'env' }, { [ALLOW_FILE_DIRS]: allowed })), 'DESTINATION_NOT_ALLOWED');
  // And at delivery, for a link made after that.
  mkdirSync(join(allowed, 'later'));
  const later = fileDestination({ path: join(allowed, 'later', 'app.env'), format: 'env' }, { [ALLOW_FILE_DIRS]: allowed });
  rmSync(join(allowed, 'later'), { recursive: true });
  symlinkSync(outside, join(allowed, 'later'));
  await assert.rejects(later.deliver(awsPayload('AKIALINKLINKLINKLIN1', 'link-secret')), (err: unknown) => isRotateError(err) && err.code === 'DESTINATION_NOT_ALLOWED');
  assert.deepEqual(readdirSync(outside), []);

  writeFileSync(join(outside, 'target.env'), 'untouched\n');
  symlinkSync(join(outside, 'target.env'), join(allowed, 'linked.env'));
  const linkedFile = fileDestination({ path: join(allowed, 'linked.env'), format: 'env' }, { [ALLOW_FILE_DIRS]: allowed });
  await assert.rejects(linkedFile.deliver(awsPayload('AKIALINKLINKLINKLIN1', 'link-secret')), (err: unknown) => isRotateError(err) && err.code === 'DESTINATION_NOT_ALLOWED');
  assert.equal(readFileSync(join(outside, 'target.env'), 'utf8'), 'untouched\n');

  // A folder where the file should be: the rename fails, the error names no value, and nothing else changed.
  mkdirSync(join(allowed, 'busy.env'));
  const busy = fileDestination({ path: join(allowed, 'busy.env'), format: 'env' }, { [ALLOW_FILE_DIRS]: allowed });
  await assert.rejects(busy.deliver(awsPayload('AKIABUSYBUSYBUSYBUS1', 'busy-secret-value')), (err: unknown) => {
    assert.ok(isRotateError(err) && err.code === 'DELIVERY_FAILED', String(err));
    assert.ok(!String((err as Error).message).includes('busy-secret-value'));
    return true;
  });
  assert.ok(!readdirSync(allowed).some((n) => n.startsWith('.keeper-rotate-')), 'the temporary file was removed');
  assert.ok(!existsSync(join(allowed, SENTINEL_UPDATED)), 'no sentinel for a delivery that did not happen');
}));

test('a value with a line break is refused, not mangled', withDir(async (dir) => {
  const d = fileDestination({ path: join(dir, 'app.env'), format: 'env' }, { [ALLOW_FILE_DIRS]: dir });
  await assert.rejects(d.deliver(awsPayload('AKIABREAKBREAKBREAK1', 'line\nINJECTED=1')), (err: unknown) => isRotateError(err) && err.code === 'DELIVERY_FAILED');
  assert.deepEqual(readdirSync(dir), []);
}));
