// `npm run demo`: the main job on a fresh machine. Builds the scripts, starts the sandbox with its demo vault,
// runs each built script exactly as the gateway does (a child process, the base64 line on stdin, the
// sandbox's gateway config), and shows the record and the target before and after. Exits 0 only if every
// rotation was verified from the sandbox's own state, and stops every server it started.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { encodeGatewayInput } from '../src/gateway/input.js';
import { cloneData, readText, writeText } from '../src/keeper/record.js';
import { ALLOW_FILE_DIRS } from '../src/destinations/file.js';
import { ALLOW_K8S_RESTARTS, ALLOW_K8S_SECRETS, RESTARTED_AT_ANNOTATION } from '../src/destinations/kubernetes-secret.js';
import { startSandbox, type Sandbox } from '../src/sandbox/sandbox.js';

interface DemoTarget {
  script: string;
  /** Where the demo record delivers the credential (record settings), shown before and after. */
  destination?: { settings(dir: string): Record<string, string>; show(sandbox: Sandbox, dir: string): string[]; holds(sandbox: Sandbox, dir: string): boolean };
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

/** A Kubernetes Secret's keys, values shown only as whether they are the record's (never printed). */
function secretLines(sandbox: Sandbox, ns: string, name: string, record: Record<string, string | undefined>): string[] {
  const text = sandbox.kubernetes.cluster.secretText(ns, name);
  if (!text) return [`Kubernetes Secret ${ns}/${name}: does not exist`];
  return [
    `Kubernetes Secret ${ns}/${name}:`,
    ...Object.keys(text)
      .sort()
      .map((k) => `  ${k}: ${k in record ? (text[k] === record[k] ? "the record's value" : 'NOT the record\'s value') : 'its own value, kept'}`),
  ];
}

const aws: DemoTarget = {
  script: 'aws-iam-access-key',
  destination: {
    settings: () => ({ k8s_secret: 'demo/app-creds', k8s_restart: 'app' }),
    show(sandbox) {
      const record = sandbox.ksm.readRecord(sandbox.demo!.aws.userRecordUid)!;
      const restarted = (sandbox.kubernetes.cluster.deployment('demo', 'app') as { spec?: { template?: { metadata?: { annotations?: Record<string, string> } } } } | undefined)?.spec?.template?.metadata?.annotations?.[RESTARTED_AT_ANNOTATION];
      const text = sandbox.kubernetes.cluster.secretText('demo', 'app-creds') ?? {};
      return [
        ...secretLines(sandbox, 'demo', 'app-creds', { access_key_id: readText(record.data, 'aws_access_key_id'), secret_access_key: readText(record.data, 'aws_secret_access_key') }),
        `  access_key_id=${text.access_key_id ?? '-'}; the key in the Secret authenticates: ${text.access_key_id && sandbox.aws.checkKey(text.access_key_id, text.secret_access_key ?? '') ? 'yes' : 'no'}`,
        `Deployment demo/app restarted at: ${restarted ?? 'never'}`,
      ];
    },
    holds(sandbox) {
      const record = sandbox.ksm.readRecord(sandbox.demo!.aws.userRecordUid)!;
      const text = sandbox.kubernetes.cluster.secretText('demo', 'app-creds') ?? {};
      return text.access_key_id === readText(record.data, 'aws_access_key_id') && sandbox.aws.checkKey(text.access_key_id ?? '', text.secret_access_key ?? '');
    },
  },
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
  destination: {
    settings: (dir) => ({ file_destinations: join(dir, 'wiz.json'), file_format: 'json' }),
    show(sandbox, dir) {
      const path = join(dir, 'wiz.json');
      if (!existsSync(path)) return [`file ${path}: does not exist`];
      const json = JSON.parse(readFileSync(path, 'utf8')) as Record<string, string>;
      return [`file ${path}: client_id=${json.client_id}; its client_secret gets a token: ${sandbox.wiz.checkSecret(json.client_id ?? '', json.client_secret ?? '') ? 'yes' : 'no'}`];
    },
    holds(sandbox, dir) {
      const path = join(dir, 'wiz.json');
      if (!existsSync(path)) return false;
      const json = JSON.parse(readFileSync(path, 'utf8')) as Record<string, string>;
      const record = sandbox.ksm.readRecord(sandbox.demo!.wiz.userRecordUid)!;
      return json.client_secret === readText(record.data, 'client_secret') && sandbox.wiz.checkSecret(json.client_id ?? '', json.client_secret ?? '');
    },
  },
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
  destination: {
    settings: () => ({ k8s_secret: 'demo/regcred', k8s_create: 'true' }),
    show(sandbox) {
      const secret = sandbox.kubernetes.cluster.secret('demo', 'regcred') as { type?: string } | undefined;
      const text = sandbox.kubernetes.cluster.secretText('demo', 'regcred');
      if (!secret || !text) return ['Kubernetes Secret demo/regcred: does not exist'];
      return [`Kubernetes Secret demo/regcred (${secret.type}): its .dockerconfigjson opens the registry: ${sandbox.ecrTokens.opens(text['.dockerconfigjson']) ? 'yes' : 'no'}`];
    },
    holds(sandbox) {
      const text = sandbox.kubernetes.cluster.secretText('demo', 'regcred');
      const record = sandbox.ksm.readRecord(sandbox.demo!.ecr.userRecordUid)!;
      return text !== undefined && text['.dockerconfigjson'] === readText(record.data, 'ecr_docker_config_json') && sandbox.ecrTokens.opens(text['.dockerconfigjson']);
    },
  },
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
// Where the demo records deliver: files in a folder of the demo's own, and the sandbox's Kubernetes API. The
// gateway owner's allow-lists name exactly those; without them a record could name no destination at all.
const delivered = join(dir, 'delivered');
mkdirSync(delivered);
const gatewayEnv = { ...process.env, ...sandbox.env, [ALLOW_FILE_DIRS]: delivered, [ALLOW_K8S_SECRETS]: 'demo/*', [ALLOW_K8S_RESTARTS]: 'demo/app' };
let failures = 0;
try {
  console.log(`\nSandbox up: ${Object.entries(sandbox.urls).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  for (const target of TARGETS) {
    console.log(`\n=== ${target.script} ===`);
    const uid = sandbox.demo![({ 'azure-app-secret': 'azure', 'aws-iam-access-key': 'aws', 'aws-ecr-pull-secret': 'ecr', 'wiz-service-account': 'wiz' } as const)[target.script as 'azure-app-secret']].userRecordUid;
    if (target.destination) {
      const data = cloneData(sandbox.ksm.readRecord(uid)!.data);
      const settings = target.destination.settings(delivered);
      for (const [label, value] of Object.entries(settings)) writeText(data, { label, kind: 'text' }, value);
      sandbox.ksm.editRecord(uid, data);
      console.log(`Record ${uid} delivers to: ${Object.entries(settings).map(([k, v]) => `${k}=${v}`).join(' ')}`);
    }
    const before = [...target.snapshot(sandbox), ...(target.destination?.show(sandbox, delivered) ?? [])];
    console.log('Before:');
    for (const l of before) console.log(`  ${l}`);
    const fixture = JSON.parse(readFileSync(join('fixtures', `${target.script}.json`), 'utf8')) as Record<string, unknown>;
    const { code, output } = await run(target.script, encodeGatewayInput(fixture), gatewayEnv);
    console.log(`Gateway ran dist/${target.script}.cjs: exit code ${code}`);
    for (const l of output.trimEnd().split('\n')) console.log(`  | ${l}`);
    const after = [...target.snapshot(sandbox), ...(target.destination?.show(sandbox, delivered) ?? [])];
    console.log('After:');
    for (const l of after) console.log(`  ${l}`);
    const ok = code === 0 && target.verified(sandbox, before) && (target.destination?.holds(sandbox, delivered) ?? true);
    console.log(ok ? `VERIFIED: the record holds a new secret that signs in${target.destination ? ', and so does its destination' : ''}` : `NOT VERIFIED`);
    if (!ok) failures += 1;
  }
} finally {
  await sandbox.close();
  rmSync(dir, { recursive: true, force: true });
}
console.log(`\ndemo: ${TARGETS.length - failures} of ${TARGETS.length} rotations verified`);
process.exit(failures === 0 ? 0 : 1);
