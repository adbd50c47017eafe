// The bundles a gateway runs: built by `npm run build`, copied alone into an empty folder (no node_modules
// anywhere up the tree that could hide a missing dependency), and run there as the gateway runs them.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { encodeGatewayInput } from '../src/gateway/input.js';
import { cloneData, readText, writeText } from '../src/keeper/record.js';
import { DEMO } from '../src/sandbox/demo-vault.js';
import { startSandbox, type Sandbox } from '../src/sandbox/sandbox.js';
import { assertRotatesDemo } from './helpers/demo-credential.js';

const ROOT = resolve(import.meta.dirname, '..');
const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
/** Every target's entry point; not the glue they share, nor the executable that runs them all (binary.test.ts). */
const SCRIPTS = readdirSync(join(ROOT, 'src', 'entrypoints'))
  .filter((f) => f.endsWith('.ts') && f !== 'entry.ts' && f !== 'keeper-rotate.ts')
  .map((f) => f.slice(0, -3));
const built = mkdtempSync(join(tmpdir(), 'keeper-rotate-built-'));
const empty = mkdtempSync(join(tmpdir(), 'keeper-rotate-empty-'));
const sandboxDir = mkdtempSync(join(tmpdir(), 'keeper-rotate-bundle-sandbox-'));
const httpSandboxDir = mkdtempSync(join(tmpdir(), 'keeper-rotate-bundle-http-sandbox-'));
let sandbox: Sandbox;
/** IAM and STS over plain http://, as a private endpoint (LocalStack, a proxy) may be: the AWS SDK's other path. */
let httpSandbox: Sandbox;

before(async () => {
  const build = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/build.ts', '--outdir', built], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(build.status, 0, build.stderr);
  for (const name of SCRIPTS) copyFileSync(join(built, `${name}.cjs`), join(empty, `${name}.cjs`));
  sandbox = await startSandbox({ dir: sandboxDir });
  httpSandbox = await startSandbox({ dir: httpSandboxDir, plainHttp: ['iam', 'sts'] });
});

after(async () => {
  await sandbox?.close();
  await httpSandbox?.close();
  for (const d of [built, empty, sandboxDir, httpSandboxDir]) rmSync(d, { recursive: true, force: true });
});

/** A bundle's own code and the code of each lazy chunk in it (gzipped, base64: see scripts/build.ts). */
function bundleSources(name: string): string[] {
  const code = readFileSync(join(empty, `${name}.cjs`), 'utf8');
  const chunks = [...code.matchAll(/Buffer\.from\("([A-Za-z0-9+/=]+)", ?"base64"\)/g)].map((m) => gunzipSync(Buffer.from(m[1]!, 'base64')).toString('utf8'));
  assert.equal(chunks.length, code.split('gunzipSync(').length - 1, 'every lazy chunk in the bundle was found and decoded');
  return [code, ...chunks];
}

function gatewayLine(name: string): string {
  return encodeGatewayInput(JSON.parse(readFileSync(join(ROOT, 'fixtures', `${name}.json`), 'utf8')) as Record<string, unknown>) + '\n';
}

async function rotatesDemoRecord(name: string, on: Sandbox, env: NodeJS.ProcessEnv = on.env): Promise<void> {
  await assertRotatesDemo(on, name, () => run(name, [], gatewayLine(name), env));
}

function run(name: string, args: string[], stdin: string, env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    // Only what a gateway host has: PATH and the variables the run needs; no NODE_PATH, cwd in the empty folder.
    const child = spawn(process.execPath, [join(empty, `${name}.cjs`), ...args], { cwd: empty, env: { PATH: process.env.PATH, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c));
    child.stderr.on('data', (c: Buffer) => (stderr += c));
    child.stdin.end(stdin);
    child.on('close', (code) => done({ code: code ?? 1, stdout, stderr }));
  });
}

describe('bundles', () => {
  test('one file per script, starting with the node shebang', () => {
    for (const name of SCRIPTS) assert.match(readFileSync(join(empty, `${name}.cjs`), 'utf8'), /^#!\/usr\/bin\/env node\n/);
    assert.ok(SCRIPTS.includes('azure-app-secret') && SCRIPTS.includes('aws-iam-access-key'));
  });

  for (const name of SCRIPTS) {
    test(`${name}: --version and --help work from an empty folder`, async () => {
      const v = await run(name, ['--version'], '');
      assert.equal(v.code, 0, v.stderr);
      assert.equal(v.stdout, `${name} ${version}\n`);
      const h = await run(name, ['--help'], '');
      assert.equal(h.code, 0, h.stderr);
      assert.match(h.stdout, /PAM User record fields:/);
    });

    test(`${name}: rotates the demo record from an empty folder, as the gateway runs it`, async () => {
      await rotatesDemoRecord(name, sandbox);
    });

    // Every start compiles the script's own code, gzipped chunks aside. A module the Kubernetes chunk shares with
    // the script that imports the client puts the whole client there (910 KiB with tr46's table, ws, js-yaml): 12 MB
    // of peak memory and 20 ms of CPU in every rotation, for code that only a delivery to a Secret runs
    // (LAZY_OWN_FOLDERS in scripts/bundle-options.ts). A name from the client's generated models marks it.
    test(`${name}: the Kubernetes client is only in its lazy chunk, not in the code every start compiles`, () => {
      const [own, ...chunks] = bundleSources(name);
      const marker = 'V1CertificateSigningRequest';
      assert.equal(chunks.filter((c) => c.includes(marker)).length, 1, 'one lazy chunk holds the Kubernetes client');
      assert.equal(own!.includes(marker), false, "the script's own code holds the Kubernetes client");
    });

    // esbuild leaves an `import()` of a Node built-in as it is; in a lazy chunk (vm.compileFunction) it then
    // fails with "A dynamic import callback was not specified" (the AWS SDK imports node:http so for http://).
    test(`${name}: no import() is left in the bundle or its lazy chunks`, () => {
      const sources = bundleSources(name);
      for (const [i, source] of sources.entries()) assert.doesNotMatch(source, /\bimport\(/, i === 0 ? 'the bundle' : `lazy chunk ${i}`);
    });
  }

  // Node builds fetch's classes (Request, Response, Headers, FormData) from undici, and the first touch of any of
  // them, even a `typeof`, loads all of it: ~40 ms and 10 MB a run. No script may (scripts/bundle-options.ts).
  test('no script loads undici, and the check would see it', async () => {
    const hook = join(built, 'undici-hook.cjs');
    writeFileSync(hook, `process.on('exit', () => { if (process.moduleLoadList.some((m) => m.includes('internal/deps/undici'))) require('node:fs').writeSync(2, 'UNDICI LOADED\\n'); });\n`);
    const probe = spawnSync(process.execPath, ['--require', hook, '-e', 'typeof FormData'], { encoding: 'utf8' });
    assert.equal(probe.stderr, 'UNDICI LOADED\n', 'a probe for FormData loads undici, and the hook says so');
    for (const name of SCRIPTS) {
      const r = await run(name, [], gatewayLine(name), { ...sandbox.env, NODE_OPTIONS: `--require ${JSON.stringify(hook)}` });
      assert.equal(r.code, 0, r.stderr);
      assert.doesNotMatch(r.stderr, /UNDICI LOADED/, `${name} loaded undici`);
    }
  });

  // The Kubernetes client's chunk holds src/destinations/kubernetes (its HTTP library with it) and is handed the
  // script's other modules of ours (errors, the agent, the reply cap); no demo rotation runs it.
  test('aws-iam-access-key: delivers to a Kubernetes Secret through the lazy Kubernetes chunk, from an empty folder', async () => {
    const k8s = await startSandbox({ dir: join(sandboxDir, 'k8s') });
    try {
      const uid = k8s.demo!.aws.userRecordUid;
      const data = cloneData(k8s.ksm.readRecord(uid)!.data);
      writeText(data, { label: 'k8s_secret', kind: 'text' }, 'demo/app-creds');
      writeText(data, { label: 'k8s_restart', kind: 'text' }, 'app');
      k8s.ksm.editRecord(uid, data);
      const env = { ...k8s.env, KEEPER_ROTATE_ALLOW_K8S_SECRETS: 'demo/*', KEEPER_ROTATE_ALLOW_K8S_RESTARTS: 'demo/app' };
      await rotatesDemoRecord('aws-iam-access-key', k8s, env);
      const secret = k8s.kubernetes.cluster.secretText('demo', 'app-creds')!;
      assert.equal(secret.access_key_id, readText(k8s.ksm.readRecord(uid)!.data, 'aws_access_key_id'));
      assert.ok(k8s.aws.checkKey(secret.access_key_id!, secret.secret_access_key!), 'the key in the Secret signs in');

      k8s.faults.arm({ service: 'kubernetes', operation: 'PatchDeployment', kind: 'status', status: 500, body: '{"kind":"Status","apiVersion":"v1","status":"Failure","message":"etcdserver: request timed out","reason":"InternalError","code":500}' });
      const failed = await run('aws-iam-access-key', [], gatewayLine('aws-iam-access-key'), env);
      assert.equal(failed.code, 4, failed.stderr);
      assert.match(failed.stderr, /^keeper-rotate: DELIVERY_INCOMPLETE: rotated to /m);
      assert.doesNotMatch(failed.stderr, /INTERNAL/);
    } finally {
      await k8s.close();
    }
  });

  // Only the AWS script takes an http:// endpoint (AWS_ENDPOINT_URL_*); Graph, Wiz and Keeper are https only.
  test('aws-iam-access-key: rotates over plain http (IAM and STS at http:// endpoints)', async () => {
    assert.match(httpSandbox.env.AWS_ENDPOINT_URL_IAM!, /^http:\/\//);
    assert.match(httpSandbox.env.AWS_ENDPOINT_URL_STS!, /^http:\/\//);
    await rotatesDemoRecord('aws-iam-access-key', httpSandbox);
  });

  test("aws-iam-access-key: the SDK's default credential chain is not in the IAM clients' chunk, only in its own", () => {
    const chunks = bundleSources('aws-iam-access-key').slice(1);
    // Markers of the chain: the container-credentials and credential_process providers.
    const chain = (code: string) => code.includes('AWS_CONTAINER_CREDENTIALS_FULL_URI') && code.includes('credential_process');
    const clients = chunks.filter((c) => c.includes('CreateAccessKey'));
    assert.equal(clients.length, 1, 'one chunk holds the IAM client');
    assert.equal(chain(clients[0]!), false, 'a run with keys would compile the host credential chain for nothing');
    assert.equal(chunks.filter(chain).length, 1, 'the host credential chain is a chunk of its own');
  });

  // scripts/bundle-options.ts noJsonwebtoken: MSAL signs with jsonwebtoken only for a certificate credential.
  test('azure-app-secret: MSAL\'s certificate assertions (jsonwebtoken) are not in the bundle', () => {
    const sources = bundleSources('azure-app-secret');
    assert.ok(sources.some((c) => c.includes('ConfidentialClientApplication')), 'MSAL is in a chunk');
    assert.equal(sources.filter((c) => c.includes('JsonWebTokenError')).length, 0);
  });

  test("aws-iam-access-key: USE_INSTANCE_ROLE in the PAM configuration rotates with the EC2 instance role (IMDSv2, over http) from an empty folder", async () => {
    sandbox.aws.createRole({ roleName: 'gateway-instance', trustedUsers: [], trustedServices: ['ec2.amazonaws.com'], permissions: 'all' });
    sandbox.imds.attachRole('gateway-instance');
    const config = sandbox.ksm.readRecord(DEMO.aws.pamConfigurationUid)!.data;
    const marked = cloneData(config);
    writeText(marked, { label: 'accessKeyId', kind: 'text' }, 'USE_INSTANCE_ROLE');
    writeText(marked, { label: 'accessSecretKey', kind: 'secret' }, 'USE_INSTANCE_ROLE');
    sandbox.ksm.editRecord(DEMO.aws.pamConfigurationUid, marked);
    try {
      const fixture = JSON.parse(readFileSync(join(ROOT, 'fixtures', 'aws-iam-access-key.json'), 'utf8')) as Record<string, unknown>;
      const mark = sandbox.log.entries().length;
      const none = join(sandboxDir, 'no-such-aws-file');
      const r = await run('aws-iam-access-key', [], encodeGatewayInput(fixture) + '\n', { ...sandbox.env, AWS_SHARED_CREDENTIALS_FILE: none, AWS_CONFIG_FILE: none });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /as PAM configuration \S+ asks \(USE_INSTANCE_ROLE\)/);
      assert.deepEqual(sandbox.log.entries().slice(mark).filter((e) => e.service === 'imds').map((e) => e.operation), ['GetToken', 'GetRoleName', 'GetCredentials']);
    } finally {
      sandbox.ksm.editRecord(DEMO.aws.pamConfigurationUid, config);
      sandbox.imds.attachRole(undefined);
    }
  });
});
