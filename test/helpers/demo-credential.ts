// What a demo record holds, judged from the sandbox's own state: whether its credential signs in on the target
// right now. A test that sees a built script exit 0 checks this too, so "rotated" means a working credential.
import assert from 'node:assert/strict';
import { readText } from '../../src/keeper/record.js';
import type { Sandbox } from '../../src/sandbox/sandbox.js';

export interface DemoCredential {
  /** The record's revision in Keeper: a save raises it. */
  revision: number;
  /** The secret the record holds, to compare before and after (never printed). */
  secret: string;
  /** Whether the record's credential signs in on the target now. */
  works: boolean;
}

export function demoCredential(sandbox: Sandbox, script: string): DemoCredential {
  const demo = sandbox.demo!;
  const read = (uid: string) => {
    const record = sandbox.ksm.readRecord(uid)!;
    return { revision: record.revision, field: (label: string) => readText(record.data, label) ?? '' };
  };
  switch (script) {
    case 'azure-app-secret': {
      const r = read(demo.azure.userRecordUid);
      const secret = r.field('client_secret');
      return { revision: r.revision, secret, works: sandbox.azure.directory.checkSecret(demo.azure.tenantId, demo.azure.targetAppId, secret) };
    }
    case 'aws-iam-access-key': {
      const r = read(demo.aws.userRecordUid);
      const secret = r.field('aws_secret_access_key');
      return { revision: r.revision, secret, works: sandbox.aws.checkKey(r.field('aws_access_key_id'), secret) };
    }
    case 'aws-ecr-pull-secret': {
      const r = read(demo.ecr.userRecordUid);
      const secret = r.field('ecr_docker_config_json');
      return { revision: r.revision, secret, works: sandbox.ecrTokens.opens(secret) };
    }
    case 'wiz-service-account': {
      const r = read(demo.wiz.userRecordUid);
      const secret = r.field('client_secret');
      return { revision: r.revision, secret, works: sandbox.wiz.checkSecret(demo.wiz.clientId, secret) };
    }
    default:
      // A new target adds its case here, or every test that uses this fails on it.
      throw new Error(`no demo credential check for ${script}`);
  }
}

/**
 * Runs `rotate` (a built script or the executable rotating `script`'s demo record) and checks what a rotation
 * promises: exit 0, the summary line, and a saved record that holds a new credential which signs in.
 */
export async function assertRotatesDemo<R extends { code: number | null; stdout: string; stderr: string }>(sandbox: Sandbox, script: string, rotate: () => Promise<R>): Promise<R> {
  const before = demoCredential(sandbox, script);
  const r = await rotate();
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`^${script}: rotated: `));
  const now = demoCredential(sandbox, script);
  assert.ok(now.revision > before.revision, 'the record was saved');
  assert.ok(now.secret !== before.secret, 'the record holds a new secret');
  assert.ok(now.works, "the record's new credential signs in on the target");
  return r;
}
