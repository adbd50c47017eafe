// create_secret on the KSM sandbox, driven by the real @keeper-security/secrets-manager-core: createSecret2 (keys
// from get_folders) and createSecret (keys from get_secret) make a record the app then reads back; a folder the app
// has no share of, or only a read-only one, is refused the way Keeper refuses it and nothing is created.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { createSecret, createSecret2, getFolders, getSecrets, loadJsonConfig, updateSecret2, type SecretManagerOptions } from '@keeper-security/secrets-manager-core';
import type { RecordData } from '../../src/keeper/record-data.js';
import { FaultPlan, RequestLog } from '../../src/sandbox/faults.js';
import { KsmService, type GatewayConfig, toBase64 } from '../../src/sandbox/ksm/index.js';
import { type RunningService, serve } from '../../src/sandbox/service.js';
import { sandboxTlsMaterial } from '../../src/sandbox/tls.js';
import { rawKsmCall } from '../helpers/ksm-raw.js';

const log = new RequestLog();
const ksm = new KsmService({ budget: { enabled: false } });
let running: RunningService;
let host: string;
let shared: string;
let readOnly: string;
let other: string;
let config: GatewayConfig;

before(async () => {
  running = await serve({ service: ksm, faults: new FaultPlan(), log, tls: sandboxTlsMaterial() });
  host = `localhost:${running.port}`;
  shared = ksm.createFolder('Rotation');
  readOnly = ksm.createFolder('Read only');
  other = ksm.createFolder('Not shared');
  config = ksm.createClient(host, { folders: [shared, readOnly], readOnlyFolders: [readOnly] });
});

after(async () => {
  await running.close();
});

const options = (cfg: GatewayConfig = config): SecretManagerOptions => ({ storage: loadJsonConfig(JSON.stringify(cfg)) });

function pamUser(title: string): RecordData {
  return {
    title,
    type: 'pamUser',
    fields: [
      { type: 'login', value: ['svc-discovered'] },
      { type: 'password', value: ['not-used'] },
    ],
    custom: [{ type: 'text', label: 'application_object_id', value: ['9c1c4f2e-0000-4000-8000-000000000001'] }],
  };
}

async function ksmFailure(call: Promise<unknown>): Promise<Record<string, unknown>> {
  const err = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(err instanceof Error, 'expected the SDK call to fail');
  return JSON.parse(err.message) as Record<string, unknown>;
}

describe('create_secret', () => {
  test('createSecret2 makes a record in the shared folder that getSecrets then returns, editable, with the data sent', async () => {
    const data = pamUser('made by createSecret2');
    const uid = await createSecret2(options(), { folderUid: shared }, data);
    const stored = ksm.readRecord(uid);
    assert.ok(stored, 'the vault holds the new record');
    assert.equal(stored.folderUid, shared);
    assert.deepEqual(stored.data, data);
    const { records } = await getSecrets(options(), [uid]);
    assert.equal(records.length, 1);
    assert.equal(records[0]!.recordUid, uid);
    assert.deepEqual(records[0]!.data, data);
    assert.equal(stored.editable, true);
  });

  test('createSecret (keys warmed by get_secret) works too, and each create gets a new revision', async () => {
    const a = await createSecret(options(), shared, pamUser('first'));
    const b = await createSecret(options(), shared, pamUser('second'));
    assert.notEqual(a, b);
    assert.ok(ksm.readRecord(b)!.revision > ksm.readRecord(a)!.revision);
  });

  test('a folder shared read-only: 403 access_denied, nothing created, and its records cannot be saved', async () => {
    const before = ksm.listRecords().length;
    const seeded = ksm.seedRecord({ data: pamUser('in the read-only folder'), folderUid: readOnly });
    // get_folders lists it (so the SDK holds its key and sends the create); the SDK's key cache is process-wide.
    const folders = await getFolders(options());
    assert.ok(folders.some((f) => f.folderUid === readOnly));
    const body = await ksmFailure(createSecret2(options(), { folderUid: readOnly }, pamUser('refused')));
    assert.equal(body.error, 'access_denied');
    assert.match(String(body.message), new RegExp(`Folder ${readOnly} is read-only`));
    assert.equal(ksm.listRecords().length, before + 1, 'only the seeded record was added');
    const { records } = await getSecrets(options(), [seeded.uid]);
    const save = await ksmFailure(updateSecret2(options(), records[0]!));
    assert.equal(save.error, 'access_denied', 'a read-only share makes its records read-only too');
  });

  test('a folder the app has no share of: 403 access_denied "Folder ... is not accessible", as Keeper answers', async () => {
    const before = ksm.listRecords().length;
    const reply = await rawKsmCall(config, 'create_secret', {
      clientVersion: 'ms17.5.0',
      clientId: config.clientId,
      recordUid: 'AAAAAAAAAAAAAAAAAAAAAA',
      recordKey: 'AAAA',
      folderUid: other,
      folderKey: 'AAAA',
      data: 'AAAA',
    });
    assert.equal(reply.status, 403);
    const body = JSON.parse(reply.body.toString('utf8')) as Record<string, unknown>;
    assert.equal(body.error, 'access_denied');
    assert.equal(body.message, `Folder ${other} is not accessible`);
    assert.equal(ksm.listRecords().length, before);
  });

  test("a record key wrapped for another owner key is refused (400): the owner's vault could never open the record", async () => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const point = publicKey.export({ format: 'der', type: 'spki' }).subarray(-65);
    const wrong = { ...config, appOwnerPublicKey: toBase64(point) };
    const before = ksm.listRecords().length;
    await getFolders(options(wrong)); // the folder keys, in the SDK's process-wide cache
    const body = await ksmFailure(createSecret2(options(wrong), { folderUid: shared }, pamUser('wrong owner')));
    assert.equal(body.error, 'bad_request');
    assert.match(String(body.message), /owner/);
    assert.equal(ksm.listRecords().length, before);
  });

  test('a missing field and a malformed UID are 400 bad_request', async () => {
    const base = { clientVersion: 'ms17.5.0', clientId: config.clientId, recordKey: 'AAAA', folderUid: shared, folderKey: 'AAAA', data: 'AAAA' };
    const missing = await rawKsmCall(config, 'create_secret', base);
    assert.equal(missing.status, 400);
    assert.match(missing.body.toString('utf8'), /recordUid is required/);
    const malformed = await rawKsmCall(config, 'create_secret', { ...base, recordUid: 'short' });
    assert.equal(malformed.status, 400);
    assert.match(malformed.body.toString('utf8'), /recordUid must be 16 bytes/);
  });
});
