// A record discover creates is one the target's script rotates: the AWS record of a user with one key in use
// names that key as CURRENT, and its first rotation keeps it active as LAST beside the new key (the adoption the
// README promises), with the PAM configuration discover read as the admin.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readText } from '../../src/keeper/record.js';
import { discoverInProcess } from '../helpers/discover-in-process.js';
import { seedLargeTenant } from '../../src/sandbox/large-tenant.js';
import { startScriptSandbox } from '../helpers/run-script.js';

test('aws: a discovered record of a user with one key rotates, and the existing key stays active as LAST', { timeout: 120_000 }, async () => {
  const s = await startScriptSandbox('aws-iam-access-key');
  try {
    const fleet = seedLargeTenant(s.sandbox, { awsUsers: 3 });
    const user = fleet.awsUsers[1]!; // index 1: one key
    const [existing] = s.sandbox.aws.listKeys(user);
    assert.ok(existing && s.sandbox.aws.listKeys(user).length === 1);
    const r = await discoverInProcess(['aws', '--config', fleet.pamConfigurations.aws!, '--path-prefix', fleet.path, '--name', user, '--create-in', fleet.folderUid], s.env);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(r.created.length, 1, r.stdout);
    const uid = r.created[0]!;
    const params = {
      providerRecordUid: fleet.pamConfigurations.aws,
      resourceRecordUid: '',
      userRecordUid: uid,
      user,
      newPassword: 'not-used-by-this-script',
      oldPassword: 'not-used-by-this-script',
      records: [
        { uid: fleet.pamConfigurations.aws, title: 'fleet PAM configuration (AWS)' },
        { uid, title: `AWS IAM ${user}`, login: user, NOOP: 'True' },
      ],
    };
    const run = await s.run(params);
    assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
    const after = s.sandbox.ksm.readRecord(uid)!;
    const current = readText(after.data, 'aws_access_key_id');
    assert.notEqual(current, existing.accessKeyId);
    assert.equal(readText(after.data, 'previous_aws_access_key_id'), existing.accessKeyId);
    const keys = s.sandbox.aws.listKeys(user);
    assert.deepEqual(keys.map((k) => k.accessKeyId).sort(), [current, existing.accessKeyId].sort());
    assert.equal(keys.find((k) => k.accessKeyId === existing.accessKeyId)!.status, 'Active');
  } finally {
    await s.close();
  }
});
