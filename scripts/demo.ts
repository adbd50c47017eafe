// `npm run demo`: the main job on a fresh machine. Builds the scripts, starts the sandbox with its demo vault,
// runs each built script exactly as the gateway does (a child process, the base64 line on stdin, the
// sandbox's gateway config), and shows the record and the target before and after. Exits 0 only if every
// rotation was verified from the sandbox's own state, and stops every server it started.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { encodeGatewayInput } from '../src/gateway/input.js';
import { readText } from '../src/keeper/record.js';
import { startSandbox, type Sandbox } from '../src/sandbox/sandbox.js';

interface DemoTarget {
  script: string;
  /** Lines describing the record and the target right now (IDs and hints only, never secret values). */
  snapshot(sandbox: Sandbox): string[];
  /** Whether the record now holds a credential, different from `before`, that authenticates on the target. */
  verified(sandbox: Sandbox, before: string[]): boolean;
}

const azure: DemoTarget = {
  script: 'azure-app-secret',
  snapshot(sandbox) {
    const d = sandbox.demo!.azure;
    const record = sandbox.ksm.readRecord(d.userRecordUid)!;
    const app = sandbox.azure.directory.getApp(d.targetObjectId)!;
    const secret = readText(record.data, 'client_secret') ?? '';
    return [
      `record ${d.userRecordUid}: client_secret_id=${readText(record.data, 'client_secret_id')} expires=${readText(record.data, 'expires')} previous=${readText(record.data, 'previous_client_secret_ids') ?? '-'}`,
      `  its client_secret signs in: ${sandbox.azure.directory.checkSecret(d.tenantId, d.targetAppId, secret) ? 'yes' : 'NO'}`,
      `app ${app.displayName} has ${app.secrets.length} secret(s):`,
      ...app.secrets.map((s) => `  ${s.keyId} "${s.displayName}" until ${s.endDateTime.slice(0, 10)} signs in: ${sandbox.azure.directory.checkSecret(d.tenantId, d.targetAppId, s.secretText) ? 'yes' : 'no'}`),
    ];
  },
  verified(sandbox, before) {
    const d = sandbox.demo!.azure;
    const record = sandbox.ksm.readRecord(d.userRecordUid)!;
    const secret = readText(record.data, 'client_secret') ?? '';
    const id = readText(record.data, 'client_secret_id') ?? '';
    return !before.some((l) => l.includes(`client_secret_id=${id} `)) && sandbox.azure.directory.checkSecret(d.tenantId, d.targetAppId, secret);
  },
};

const aws: DemoTarget = {
  script: 'aws-iam-access-key',
  snapshot(sandbox) {
    const d = sandbox.demo!.aws;
    const record = sandbox.ksm.readRecord(d.userRecordUid)!;
    const id = readText(record.data, 'aws_access_key_id') ?? '';
    const keys = sandbox.aws.listKeys(d.userName);
    return [
      `record ${d.userRecordUid}: aws_access_key_id=${id} (CURRENT) previous=${readText(record.data, 'previous_aws_access_key_id') ?? '-'} (LAST)`,
      `  its key authenticates: ${sandbox.aws.checkKey(id, readText(record.data, 'aws_secret_access_key') ?? '') ? 'yes' : 'NO'}`,
      `IAM user ${d.userName} has ${keys.length} access key(s):`,
      ...keys.map((k) => `  ${k.accessKeyId} ${k.status} created ${k.createDate.slice(0, 19)}Z authenticates: ${sandbox.aws.checkKey(k.accessKeyId, k.secretAccessKey) ? 'yes' : 'no'}`),
    ];
  },
  verified(sandbox, before) {
    const d = sandbox.demo!.aws;
    const record = sandbox.ksm.readRecord(d.userRecordUid)!;
    const id = readText(record.data, 'aws_access_key_id') ?? '';
    const last = readText(record.data, 'previous_aws_access_key_id') ?? '';
    const lastKey = sandbox.aws.listKeys(d.userName).find((k) => k.accessKeyId === last);
    // The new key works, and LAST (the key the record held) still does, for jobs that fetched it earlier.
    return (
      !before.some((l) => l.includes(`aws_access_key_id=${id} `)) &&
      sandbox.aws.checkKey(id, readText(record.data, 'aws_secret_access_key') ?? '') &&
      lastKey !== undefined &&
      sandbox.aws.checkKey(lastKey.accessKeyId, lastKey.secretAccessKey)
    );
  },
};

const wiz: DemoTarget = {
  script: 'wiz-service-account',
  snapshot(sandbox) {
    const d = sandbox.demo!.wiz;
    const record = sandbox.ksm.readRecord(d.userRecordUid)!;
    const account = sandbox.wiz.getServiceAccount(d.clientId)!;
    return [
      `record ${d.userRecordUid}: login=${d.clientId} expires=${readText(record.data, 'expires') ?? '-'}`,
      `  its client_secret gets a token: ${sandbox.wiz.checkSecret(d.clientId, readText(record.data, 'client_secret') ?? '') ? 'yes' : 'NO'}`,
      `service account ${account.name}: expiresAt=${account.expiresAt ?? '-'} lastRotatedAt=${account.lastRotatedAt ?? '-'}`,
    ];
  },
  verified(sandbox, before) {
    const d = sandbox.demo!.wiz;
    const record = sandbox.ksm.readRecord(d.userRecordUid)!;
    const account = sandbox.wiz.getServiceAccount(d.clientId)!;
    // Wiz replaces the secret in place: the new one works, the expiry moved, and the record says the same.
    return (
      sandbox.wiz.checkSecret(d.clientId, readText(record.data, 'client_secret') ?? '') &&
      account.lastRotatedAt !== null &&
      !before.some((l) => l.includes(`expiresAt=${account.expiresAt} `)) &&
      readText(record.data, 'expires') === account.expiresAt
    );
  },
};

const ecr: DemoTarget = {
  script: 'aws-ecr-pull-secret',
  snapshot(sandbox) {
    const d = sandbox.demo!.ecr;
    const record = sandbox.ksm.readRecord(d.userRecordUid)!;
    const config = readText(record.data, 'ecr_docker_config_json');
    let hosts = '-';
    try {
      hosts = Object.keys((JSON.parse(config ?? '') as { auths: Record<string, unknown> }).auths).join(', ');
    } catch {
      // No Docker config yet.
    }
    return [
      `record ${d.userRecordUid}: ecr_token_id=${readText(record.data, 'ecr_token_id') ?? '-'} expires=${readText(record.data, 'ecr_token_expires') ?? '-'} registries=${hosts}`,
      `  its Docker config opens the registry: ${sandbox.ecrTokens.opens(config) ? 'yes' : 'NO'}`,
      `ECR has issued ${sandbox.ecrTokens.list().length} login(s), ${sandbox.ecrTokens.list().filter((t) => t.state === 'live').length} live (a login cannot be revoked: each expires 12 hours after it was issued)`,
    ];
  },
  verified(sandbox, before) {
    const d = sandbox.demo!.ecr;
    const record = sandbox.ksm.readRecord(d.userRecordUid)!;
    const id = readText(record.data, 'ecr_token_id') ?? '';
    return !before.some((l) => l.includes(`ecr_token_id=${id} `)) && sandbox.ecrTokens.opens(readText(record.data, 'ecr_docker_config_json'));
  },
};

const TARGETS: DemoTarget[] = [azure, aws, ecr, wiz];

function run(script: string, line: string, env: NodeJS.ProcessEnv): Promise<{ code: number; output: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [resolve('dist', `${script}.cjs`)], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    child.stdin.end(line + '\n');
    child.on('exit', (code, signal) => done({ code: code ?? (signal ? 128 : 1), output }));
  });
}

const build = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/build.ts'], { stdio: 'inherit' });
if (build.status !== 0) process.exit(build.status ?? 1);

const dir = mkdtempSync(join(tmpdir(), 'keeper-rotate-demo-'));
const sandbox = await startSandbox({ dir });
let failures = 0;
try {
  console.log(`\nSandbox up: ${Object.entries(sandbox.urls).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  for (const target of TARGETS) {
    console.log(`\n=== ${target.script} ===`);
    const before = target.snapshot(sandbox);
    console.log('Before:');
    for (const l of before) console.log(`  ${l}`);
    const fixture = JSON.parse(readFileSync(join('fixtures', `${target.script}.json`), 'utf8')) as Record<string, unknown>;
    const { code, output } = await run(target.script, encodeGatewayInput(fixture), { ...process.env, ...sandbox.env });
    console.log(`Gateway ran dist/${target.script}.cjs: exit code ${code}`);
    for (const l of output.trimEnd().split('\n')) console.log(`  | ${l}`);
    const after = target.snapshot(sandbox);
    console.log('After:');
    for (const l of after) console.log(`  ${l}`);
    const ok = code === 0 && target.verified(sandbox, before);
    console.log(ok ? `VERIFIED: the record holds a new secret that signs in` : `NOT VERIFIED`);
    if (!ok) failures += 1;
  }
} finally {
  await sandbox.close();
  rmSync(dir, { recursive: true, force: true });
}
console.log(`\ndemo: ${TARGETS.length - failures} of ${TARGETS.length} rotations verified`);
process.exit(failures === 0 ? 0 : 1);
