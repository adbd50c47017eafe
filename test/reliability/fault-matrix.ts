// The fault matrix: for each target, every network call of a clean rotation × every fault the sandbox can
// inject, plus a SIGKILL right after each call, each case on a fresh sandbox with the built script run the way
// the gateway runs it. After each case the invariant is checked from the sandbox's own state (never from the
// script's word): the record holds a credential that works on the target, the exit code tells the truth, no
// secret reached the output, and one more clean run leaves the target with what retention allows and no orphan.
// `npm run faults` prints the tables; test/reliability/faults.test.ts runs the same cases under `npm test`.
// Calls only some gateways make (the allow-lists' owner and path reads) come from a scenario of their own, which
// walks only the calls the first rotation does not make (SCENARIOS below).
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { encodeGatewayInput } from '../../src/gateway/input.js';
import type { RecordData } from '../../src/keeper/record-data.js';
import { cloneData, readText, writeText } from '../../src/keeper/record.js';
import { ALLOW_FILE_DIRS } from '../../src/destinations/file.js';
import { ALLOW_K8S_SECRETS } from '../../src/destinations/kubernetes-secret.js';
import { ALLOW_AWS_USERS, ALLOW_AZURE_APPS, ALLOW_WIZ_ACCOUNTS } from '../../src/targets/allow-list.js';
import { DEMO } from '../../src/sandbox/demo-vault.js';
import type { FaultKind, FaultSpec, RequestLogEntry } from '../../src/sandbox/faults.js';
import { TRANSACTION_MODELS, type RecordView, type TransactionModel } from '../../src/sandbox/ksm/index.js';
import { type Sandbox, startSandbox } from '../../src/sandbox/sandbox.js';

const ROOT = resolve(import.meta.dirname, '..', '..');

/** Each sandbox fault kind, and `kill`: the script is SIGKILLed the moment the sandbox has applied the call. */
export const CASE_KINDS = ['status', 'throttle', 'delay', 'drop', 'corrupt', 'kill'] as const;
export type CaseKind = (typeof CASE_KINDS)[number];

/**
 * The reply corpus: what a service (or a proxy, a load balancer, something in the middle) answers when it answers
 * badly, armed on one call at a time, in the service's own error format where it has one:
 * - `html`: a proxy's 502 page; `redirect`: a 307 to another origin (never followed there);
 * - `markup`: a 400 in the service's format whose message carries markup (raw, for XML), quotes, terminal escapes,
 *   a bidi override and a line break;
 * - `shape`: a 200 whose body parses but has an unexpected shape; `error-200`: the service's error body under 200;
 * - `success-500`: the call applied, its real reply under a 500; `wrong-type`: the real reply as text/html;
 * - `truncate`: applied, then cut off halfway; `trickle`: a 200 that never ends; `oversize`: a 200 of 64 MiB.
 */
export const REPLY_KINDS = ['html', 'redirect', 'markup', 'shape', 'error-200', 'success-500', 'wrong-type', 'truncate', 'trickle', 'oversize'] as const;
export type ReplyKind = (typeof REPLY_KINDS)[number];
export type AnyKind = CaseKind | ReplyKind;

/** A reply-corpus message: markup, quotes, an ANSI colour, a bidi override, a line break. */
export const RAW_HOSTILE = 'bad <b>value</b> & "quoted" \u001b[31mred\u001b[0m \u202eevil\u202c\nsecond <script>x</script>';

const isXml = (service: string) => service === 'iam' || service === 'sts';
const isOauth = (service: string, operation: string) => service === 'wiz-auth' || (service === 'azure' && (operation === 'token' || operation === 'openidConfiguration'));

/** The service's own error body (and its content type) with `message` in it. */
function errorReply(service: string, operation: string, message: string): { body: string; type: string } {
  const j = (v: unknown) => ({ body: JSON.stringify(v), type: 'application/json' });
  if (isXml(service)) {
    // Raw, not escaped: the hostile case a reply parser must survive.
    return { body: `<ErrorResponse xmlns="https://${service}.amazonaws.com/doc/2010-05-08/"><Error><Type>Sender</Type><Code>ValidationError</Code><Message>${message}</Message></Error><RequestId>0f0e0d0c-0000-4000-8000-000000000000</RequestId></ErrorResponse>`, type: 'text/xml' };
  }
  if (isOauth(service, operation)) return j({ error: 'invalid_request', error_description: message, error_codes: [90014] });
  if (service === 'azure') return j({ error: { code: 'Request_BadRequest', message, innerError: { 'request-id': '0f0e0d0c-0000-4000-8000-000000000000' } } });
  if (service === 'wiz-api') return j({ errors: [{ message, extensions: { code: 'BAD_USER_INPUT' } }], data: null });
  // The Kubernetes API's Status object (src/sandbox/kubernetes/status.ts).
  if (service === 'kubernetes') return j({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason: 'BadRequest', code: 400 });
  return j({ path: `https://keeper/api/rest/sm/v1/${operation}, POST`, additional_info: '', location: 'default exception manager', error: 'bad_request', message });
}

/** The sandbox fault for a reply-corpus kind on a call. */
export function replySpec(call: { service: string; operation: string; nth: number }, kind: ReplyKind): FaultSpec {
  const base = { service: call.service, operation: call.operation, nth: call.nth };
  switch (kind) {
    case 'html':
      return { ...base, kind: 'status', status: 502, headers: { 'content-type': 'text/html' }, body: '<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>' };
    case 'redirect':
      return { ...base, kind: 'status', status: 307, headers: { location: 'https://127.0.0.1:9/elsewhere', 'content-type': 'text/plain' }, body: '' };
    case 'markup': {
      const e = errorReply(call.service, call.operation, RAW_HOSTILE);
      return { ...base, kind: 'status', status: 400, headers: { 'content-type': e.type }, body: e.body };
    }
    case 'shape':
      return isXml(call.service)
        ? { ...base, kind: 'status', status: 200, headers: { 'content-type': 'text/xml' }, body: '<?xml version="1.0"?><UnexpectedResponse><Foo>1</Foo></UnexpectedResponse>' }
        : { ...base, kind: 'status', status: 200, body: '{"unexpected":{"shape":[1,2,3]}}' };
    case 'error-200': {
      const e = errorReply(call.service, call.operation, 'the request failed');
      return { ...base, kind: 'status', status: 200, headers: { 'content-type': e.type }, body: e.body };
    }
    case 'success-500':
      return { ...base, kind: 'status', status: 500, replyBody: true };
    case 'wrong-type':
      return { ...base, kind: 'status', status: 200, replyBody: true, headers: { 'content-type': 'text/html' } };
    case 'truncate':
    case 'trickle':
    case 'oversize':
      return { ...base, kind };
  }
}

export const isReplyKind = (kind: string): kind is ReplyKind => (REPLY_KINDS as readonly string[]).includes(kind);
/** Raw control characters and bidi controls that must never reach a terminal from outside data. */
export const RAW_CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;
/** How each service's failures must be named in the error line. */
const SERVICE_WORDS: Record<string, RegExp> = {
  ksm: /Keeper/,
  azure: /Graph|Entra|Azure|token/i,
  iam: /AWS|IAM/,
  sts: /AWS|STS/,
  ecr: /AWS|ECR/,
  'ecr-registry': /registry/,
  'wiz-auth': /Wiz/,
  'wiz-api': /Wiz/,
  kubernetes: /Kubernetes/,
};

/**
 * Per-call timeout for the faulted runs, and how long a `delay` holds a call: the hang outlasts the client's
 * timeout, and the sandbox then applies the call anyway, as a real server does for a client that gave up.
 */
export const REQUEST_TIMEOUT_SECONDS = 2;
export const HANG_MS = 3_000;
const DEADLINE_SECONDS = 60;

/** What the matrix needs to know about a target to judge a case from sandbox state alone. */
export interface TargetOracle {
  script: string;
  uid: string;
  /** Can the credential in this record data sign in on the target right now? */
  works(sb: Sandbox, data: RecordData): boolean;
  /** The IDs of the credentials on the target now (of the object `data` names, when the target reads it from the record). */
  credentials(sb: Sandbox, data?: RecordData): string[];
  /** The credential IDs the record references (current and the ones retention keeps or still has to retire). */
  referenced(data: RecordData): string[];
  /** How many credentials the target may hold after a clean run. */
  limit: number;
  /** Every secret value the target's sandbox ever issued. */
  issued(sb: Sandbox): Iterable<string>;
  /** In place (Wiz): a run stopped between replace and save leaves the new secret sealed on the gateway instead. */
  inPlace?: boolean;
}

const text = (data: RecordData, label: string) => readText(data, label);
/** The app the record names: the demo app in the matrix, another one where the chaos tester points the record elsewhere. */
const azureApp = (sb: Sandbox, data?: RecordData) => sb.azure.directory.getApp((data && text(data, 'application_object_id')) ?? DEMO.azure.targetObjectId);
const list = (value: string | undefined) => (value ?? '').split(',').map((s) => s.trim()).filter(Boolean);

export const ORACLES: Record<string, TargetOracle> = {
  'azure-app-secret': {
    script: 'azure-app-secret',
    uid: DEMO.azure.userRecordUid,
    works: (sb, data) => {
      const secret = text(data, 'client_secret');
      const app = azureApp(sb, data);
      if (secret === undefined || app === undefined) return false;
      // A secret Entra is still propagating works: nothing but time stands between it and a token.
      return sb.azure.directory.checkSecret(app.tenantId, app.appId, secret) || app.secrets.some((s) => s.secretText === secret && s.usableAt !== null && Date.parse(s.usableAt) > Date.now() && Date.parse(s.endDateTime) > Date.now());
    },
    credentials: (sb, data) => azureApp(sb, data)?.secrets.map((s) => s.keyId) ?? [],
    referenced: (data) => [text(data, 'client_secret_id') ?? '', ...list(text(data, 'previous_client_secret_ids'))].filter(Boolean),
    // The current secret, one kept (keep_previous_secrets=1), and the demo app's secret nobody rotates.
    limit: 3,
    issued: (sb) => sb.azure.directory.issued,
  },
  'aws-iam-access-key': {
    script: 'aws-iam-access-key',
    uid: DEMO.aws.userRecordUid,
    works: (sb, data) => {
      const id = text(data, 'aws_access_key_id');
      const secret = text(data, 'aws_secret_access_key');
      if (id === undefined || secret === undefined) return false;
      // A key IAM is still propagating works: nothing but time stands between it and a signed request.
      const key = sb.aws.getKey(id);
      return sb.aws.checkKey(id, secret) || (key !== undefined && key.secretAccessKey === secret && key.status === 'Active' && !key.propagated);
    },
    // The user the record names: the demo user in the matrix, another one where the chaos tester points the record elsewhere.
    credentials: (sb, data) => sb.aws.listKeys((data && text(data, 'login')) ?? DEMO.aws.userName).map((k) => k.accessKeyId),
    referenced: (data) => [text(data, 'aws_access_key_id') ?? '', text(data, 'previous_aws_access_key_id') ?? ''].filter(Boolean),
    // IAM's quota: CURRENT and LAST.
    limit: 2,
    issued: (sb) => sb.aws.issued,
  },
  'aws-ecr-pull-secret': {
    script: 'aws-ecr-pull-secret',
    uid: DEMO.ecr.userRecordUid,
    // Every login of the record's Docker config opens the registry (the demo record starts with a live one).
    works: (sb, data) => sb.ecrTokens.opens(text(data, 'ecr_docker_config_json')),
    // A login is no resource on AWS: nothing to list, nothing a run could leave behind.
    credentials: () => [],
    referenced: (data) => [text(data, 'ecr_token_id') ?? ''].filter(Boolean),
    limit: 0,
    issued: (sb) => sb.aws.issued,
  },
  'wiz-service-account': {
    script: 'wiz-service-account',
    uid: DEMO.wiz.userRecordUid,
    works: (sb, data) => {
      const secret = text(data, 'client_secret');
      return secret !== undefined && sb.wiz.checkSecret(DEMO.wiz.clientId, secret);
    },
    credentials: () => [DEMO.wiz.clientId],
    referenced: () => [DEMO.wiz.clientId],
    limit: 1,
    issued: (sb) => sb.wiz.issued,
    inPlace: true,
  },
};

export interface CallRef {
  service: string;
  operation: string;
  /** 1 for the first call of this service and operation in the rotation, 2 for the second, ... */
  nth: number;
  /** Position in the clean rotation, from 1. */
  index: number;
}

/**
 * `first`: the demo record's first rotation. `steady`: a later one, after one clean rotation, where retention
 * has something to retire (Azure's removePassword, AWS's DeleteAccessKey of LAST). `allow-list`: the first
 * rotation on a gateway whose owner set the allow-lists (ALLOW_LIST_ENV) so that each demo record is inside them
 * by the rule that costs a request, the calls no gateway without them makes: Graph's listOwners for `owned`, IAM
 * GetUser for a path prefix. Only those calls are walked (`newCalls`); the rest are the first rotation's.
 * `delivery`: a steady rotation of a record with two destinations, a file (deliveryFile) and a Kubernetes Secret
 * (DELIVERY_SECRET), killed or cut off at each Keeper write (the save and the finalize among them: the kill right
 * after finalize is the one between finalize and delivery) and at each call to the Kubernetes API. Each
 * destination must hold a working credential throughout (for an overlap target) and the record's own after the
 * clean run. Its other calls are the steady rotation's, already walked.
 */
export const SCENARIOS = ['first', 'steady', 'allow-list', 'delivery'] as const;
export type Scenario = (typeof SCENARIOS)[number];

/**
 * The gateway environment of the `allow-list` scenario. Azure: `owned`, and the demo admin app owns the demo app.
 * AWS: a path prefix only, so no name pattern lets the user in without GetUser; the demo user was made with no
 * path, so its path is `/` (the sandbox cannot move a user, and a record pointed at another user would not be
 * the demo record the oracles judge). Wiz: the demo account's name, which Wiz already returns with the account
 * the rotation reads, so it adds no call (ALLOW_LIST_CALLS holds the matrix to that).
 */
export const ALLOW_LIST_ENV: Readonly<Record<string, string>> = {
  [ALLOW_AZURE_APPS]: 'owned',
  [ALLOW_AWS_USERS]: '/',
  [ALLOW_WIZ_ACCOUNTS]: DEMO.wiz.accountName,
};

/** The calls the allow-lists add to each target's rotation (by callName): the `allow-list` scenario's walk. */
export const ALLOW_LIST_CALLS: Readonly<Record<string, readonly string[]>> = {
  'azure-app-secret': ['azure listOwners'],
  'aws-iam-access-key': ['iam GetUser'],
  'aws-ecr-pull-secret': [],
  'wiz-service-account': [],
};

/** The kinds the `delivery` scenario walks: what leaves a run's delivery undone (the rest are the steady rotation's). */
export const DELIVERY_KINDS: readonly CaseKind[] = ['kill', 'drop'];
/** The Keeper writes the `delivery` scenario walks. */
const DELIVERY_WALK = new Set(['ksm update_secret', 'ksm finalize_secret_update', 'kubernetes GetSecret', 'kubernetes PatchSecret']);
/** The `delivery` scenario's Kubernetes Secret (created by the warm-up: k8s_create). */
const DELIVERY_SECRET = { namespace: 'demo', name: 'matrix-creds' };

/** The calls after which a credential a destination was given may stop working. */
const RETIRING = new Set(['azure removePassword', 'iam DeleteAccessKey', 'iam UpdateAccessKey']);

/**
 * Checks, right after every retiring call the sandbox handles from now on, that the delivered file still holds a
 * working credential: delivery must come before retirement in every history, not only by the end of it.
 */
function watchDelivered(sb: Sandbox, oracle: TargetOracle, problems: string[], when: string): () => void {
  return sb.log.onRecord((e) => {
    if (!RETIRING.has(`${e.service} ${e.operation}`) || e.status >= 300) return;
    for (const [where, delivered] of destinationsData(sb, oracle.uid)) {
      if (!delivered || !oracle.works(sb, delivered)) problems.push(`${when}: right after ${e.service} ${e.operation}, the ${where} holds ${delivered ? 'a credential that no longer works' : 'nothing'}`);
    }
  });
}

/** Where the `delivery` scenario's record delivers: an env file in a folder of the sandbox's own. */
export function deliveryFile(sb: Sandbox): string {
  return join(dirname(sb.env.KEEPER_ROTATE_STATE_DIR!), 'delivered', 'app.env');
}

/** The gateway environment a scenario adds to the sandbox's. */
export function scenarioEnv(sb: Sandbox, scenario: Scenario): Record<string, string> {
  if (scenario === 'delivery') return { ...sb.env, [ALLOW_FILE_DIRS]: dirname(deliveryFile(sb)), [ALLOW_K8S_SECRETS]: `${DELIVERY_SECRET.namespace}/*` };
  return scenario === 'allow-list' ? { ...sb.env, ...ALLOW_LIST_ENV } : sb.env;
}

/** The env file's values as record data the oracles read (the record's labels for what each variable holds). */
export function deliveredData(sb: Sandbox, uid: string): RecordData | undefined {
  let text: string;
  try {
    text = readFileSync(deliveryFile(sb), 'utf8');
  } catch {
    return undefined;
  }
  const labels: Record<string, string> = {
    AWS_ACCESS_KEY_ID: 'aws_access_key_id',
    AWS_SECRET_ACCESS_KEY: 'aws_secret_access_key',
    AZURE_CLIENT_SECRET: 'client_secret',
    WIZ_CLIENT_SECRET: 'client_secret',
    WIZ_CLIENT_ID: 'login',
    ECR_DOCKER_CONFIG_JSON: 'ecr_docker_config_json',
  };
  const data = cloneData(sb.ksm.readRecord(uid)!.data);
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    const label = eq > 0 ? labels[line.slice(0, eq)] : undefined;
    // A value the env format had to quote (a Docker config's JSON) is read back as a shell reads it.
    const raw = line.slice(eq + 1);
    const value = /^".*"$/.test(raw) ? raw.slice(1, -1).replace(/\\([\\"$`])/g, '$1') : raw;
    if (label) writeText(data, { label, kind: label.includes('secret') || label.includes('config') ? 'secret' : 'text' }, value);
  }
  return data;
}

/** The Kubernetes Secret's values as record data the oracles read. */
function secretData(sb: Sandbox, uid: string): RecordData | undefined {
  const text = sb.kubernetes.cluster.secretText(DELIVERY_SECRET.namespace, DELIVERY_SECRET.name);
  if (!text) return undefined;
  const labels: Record<string, string> = {
    access_key_id: 'aws_access_key_id',
    secret_access_key: 'aws_secret_access_key',
    client_secret: 'client_secret',
    '.dockerconfigjson': 'ecr_docker_config_json',
  };
  const data = cloneData(sb.ksm.readRecord(uid)!.data);
  for (const [key, label] of Object.entries(labels)) if (text[key] !== undefined) writeText(data, { label, kind: 'secret' }, text[key]!);
  return data;
}

/** Each destination of the `delivery` scenario, with what it holds (undefined: nothing). */
export function destinationsData(sb: Sandbox, uid: string): Array<[string, RecordData | undefined]> {
  return [
    ['delivered file', deliveredData(sb, uid)],
    [`Kubernetes Secret ${DELIVERY_SECRET.namespace}/${DELIVERY_SECRET.name}`, secretData(sb, uid)],
  ];
}

/**
 * What a scenario needs on the targets before its first run. `allow-list`: the demo AWS admin has only the four
 * access-key actions, and a path in the list needs iam:GetUser too (as the README tells the owner); the demo
 * admin app must own the demo app, which the demo vault makes it (checked, so a changed demo vault says so
 * here instead of as every case refused).
 */
function prepareScenario(sb: Sandbox, scenario: Scenario, uid?: string): void {
  if (scenario === 'delivery') {
    mkdirSync(dirname(deliveryFile(sb)), { recursive: true });
    for (const record of uid ? [uid] : Object.values(ORACLES).map((o) => o.uid)) {
      const data = cloneData(sb.ksm.readRecord(record)!.data);
      writeText(data, { label: 'file_destinations', kind: 'text' }, deliveryFile(sb));
      writeText(data, { label: 'k8s_secret', kind: 'text' }, `${DELIVERY_SECRET.namespace}/${DELIVERY_SECRET.name}`);
      writeText(data, { label: 'k8s_create', kind: 'text' }, 'true');
      sb.ksm.editRecord(record, data);
    }
    return;
  }
  if (scenario !== 'allow-list') return;
  const admin = sb.aws.getUser(DEMO.aws.adminUserName);
  if (!admin) throw new Error(`the demo AWS admin ${DEMO.aws.adminUserName} is missing`);
  const granted = admin.permissions;
  if (typeof granted !== 'string' && !granted.includes('iam:GetUser')) sb.aws.setPermissions(DEMO.aws.adminUserName, [...granted, 'iam:GetUser']);
  const owners = sb.azure.directory.getApp(DEMO.azure.targetObjectId)?.owners ?? [];
  if (!owners.includes(DEMO.azure.adminAppId.toLowerCase())) throw new Error(`the demo admin app does not own the demo app (owners: ${owners.join(', ') || 'none'}): the allow-list scenario needs it to`);
}

export interface MatrixCase {
  target: string;
  scenario: Scenario;
  call: CallRef;
  kind: AnyKind;
  /** Keeper's transaction model for the case (undocumented, so both are modelled: src/sandbox/ksm/vault.ts). */
  model: TransactionModel;
}

export interface CaseResult extends MatrixCase {
  /** Exit code of the faulted run (`killed` when the matrix killed it). */
  exit: number | 'killed';
  /** The first error code the run printed, if any. */
  error: string | undefined;
  /** Exit code of the clean run that follows. */
  cleanExit: number;
  /**
   * `held`: every check passed. `sealed` (in-place targets): right after the run the record's secret did not
   * work, but the gateway held the new secret (or the token to replace it again) sealed, the run said so (exit
   * 5, or it was killed), and the clean run restored a working secret; every other check passed.
   */
  /**
   * `unfired`: the fault never fired because the run ended before it reached the call: the case proved nothing
   * either way. Told apart from `lost` so a harness miss (a run that stopped early on a loaded machine) is not
   * read as a product failure, and retried once by the callers; a second miss fails the case all the same.
   */
  verdict: 'held' | 'sealed' | 'lost' | 'unfired';
  /** Why the case did not hold (empty when it did). */
  problems: string[];
  ms: number;
}

export interface ScriptRun {
  code: number | 'killed';
  stdout: string;
  stderr: string;
}

/** Builds the bundles the gateway runs into a temporary folder (or uses `dir` when it already holds them). */
export function buildScripts(dir?: string): { dir: string; cleanup(): void } {
  if (dir && ORACLE_NAMES.every((n) => existsSync(join(dir, `${n}.cjs`)))) return { dir, cleanup: () => {} };
  const out = mkdtempSync(join(tmpdir(), 'keeper-rotate-faults-build-'));
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/build.ts', '--outdir', out], { cwd: ROOT, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`build failed: ${r.stderr}`);
  return { dir: out, cleanup: () => rmSync(out, { recursive: true, force: true }) };
}

export const ORACLE_NAMES = Object.keys(ORACLES);

export function fixture(script: string): Record<string, unknown> {
  return JSON.parse(readFileSync(join(ROOT, 'fixtures', `${script}.json`), 'utf8')) as Record<string, unknown>;
}

export interface RunLimits {
  deadlineSeconds: number;
  requestTimeoutSeconds: number;
}

/** Runs a built script as the gateway does: `node NAME.cjs`, the fixture's base64 line on stdin, only `env` (and PATH). */
export function runBuilt(
  bundle: string,
  script: string,
  env: Record<string, string>,
  onSpawn?: (child: ChildProcess) => void,
  limits: RunLimits = { deadlineSeconds: DEADLINE_SECONDS, requestTimeoutSeconds: REQUEST_TIMEOUT_SECONDS },
): Promise<ScriptRun> {
  const child = spawn(process.execPath, [join(bundle, `${script}.cjs`)], {
    cwd: tmpdir(),
    env: {
      PATH: process.env.PATH ?? '',
      ...env,
      KEEPER_ROTATE_DEADLINE_SECONDS: String(limits.deadlineSeconds),
      KEEPER_ROTATE_REQUEST_TIMEOUT_SECONDS: String(limits.requestTimeoutSeconds),
    },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (c: Buffer) => out.push(c));
  child.stderr.on('data', (c: Buffer) => err.push(c));
  child.stdin.end(encodeGatewayInput(fixture(script)) + '\n');
  onSpawn?.(child);
  const guard = setTimeout(() => child.kill('SIGKILL'), (limits.deadlineSeconds + 30) * 1000);
  return new Promise((done, fail) => {
    child.on('error', (e) => {
      clearTimeout(guard);
      fail(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(guard);
      done({ code: signal ? 'killed' : (code ?? 1), stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
  });
}

async function withSandbox<T>(fn: (sb: Sandbox) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'keeper-rotate-faults-'));
  // The matrix needs the same calls in every case: a propagation delay (verify retries) and request budgets
  // (throttled retries, Wiz's 3 a second) make how often a call repeats depend on timing, so a fault armed on
  // "the 2nd GetCallerIdentity" might never fire. Both stay on for the histories, the chaos runs and the targets'
  // own tests; the matrix keeps the read lag, which changes no call count of a clean run.
  const sb = await startSandbox({ dir, realism: { propagationMs: 0, budgets: false } });
  try {
    return await fn(sb);
  } finally {
    await sb.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function warmUp(bundle: string, target: string, sb: Sandbox, env: Record<string, string> = sb.env): Promise<void> {
  // No fault is armed here, so nothing is gained by the cases' short request timeout, and a loaded machine (CI's
  // two cores running several test files) must not fail the warm-up on a slow but healthy reply.
  const run = await runBuilt(bundle, target, env, undefined, { deadlineSeconds: DEADLINE_SECONDS, requestTimeoutSeconds: 30 });
  if (run.code !== 0) throw new Error(`the warm-up rotation of ${target} failed (exit ${run.code}):\n${run.stderr}`);
  sb.log.clear();
}

/** The calls a clean rotation of this target makes in this scenario, in order, as the sandbox saw them. */
export async function discoverCalls(bundle: string, target: string, scenario: Scenario = 'first'): Promise<CallRef[]> {
  return withSandbox(async (sb) => {
    prepareScenario(sb, scenario);
    if (scenario === 'steady' || scenario === 'delivery') await warmUp(bundle, target, sb, scenarioEnv(sb, scenario));
    const run = await runBuilt(bundle, target, scenarioEnv(sb, scenario));
    if (run.code !== 0) throw new Error(`the clean rotation of ${target} (${scenario}) failed (exit ${run.code}):\n${run.stderr}`);
    const seen = new Map<string, number>();
    return sb.log.entries().map((e: RequestLogEntry, i) => {
      const key = `${e.service} ${e.operation}`;
      const nth = (seen.get(key) ?? 0) + 1;
      seen.set(key, nth);
      return { service: e.service, operation: e.operation, nth, index: i + 1 };
    });
  });
}

/**
 * Every call × every kind under the pending model, and under the immediate model from the first Keeper write on
 * (before it, the two models cannot differ: nothing is in a transaction yet). `walk`: only these of `calls` (the
 * first write is still found in all of them).
 */
export function casesFor(
  target: string,
  scenario: Scenario,
  calls: CallRef[],
  kinds: readonly AnyKind[] = CASE_KINDS,
  models: readonly TransactionModel[] = TRANSACTION_MODELS,
  walk: readonly CallRef[] = calls,
): MatrixCase[] {
  const firstWrite = calls.find((c) => c.service === 'ksm' && c.operation === 'update_secret')?.index ?? Infinity;
  const walked = new Set(walk.map((c) => c.index));
  return models.flatMap((model) =>
    calls
      .filter((call) => walked.has(call.index) && (model === 'pending' || call.index >= firstWrite))
      .flatMap((call) => kinds.map((kind) => ({ target, scenario, call, kind, model }))),
  );
}

/**
 * The calls of `calls` whose service operation `base` never makes. By operation, not by which one of them: how
 * many times a rotation repeats an operation it has (a verification that needed another try, a token fetched
 * again) depends on timing, and a `#2` one discovery happened to make would be walked as new under load.
 */
export function newCalls(base: readonly CallRef[], calls: readonly CallRef[]): CallRef[] {
  const known = new Set(base.map((c) => `${c.service} ${c.operation}`));
  return calls.filter((c) => !known.has(`${c.service} ${c.operation}`));
}

export interface ScenarioPlan {
  scenario: Scenario;
  /** Every call of the scenario's clean rotation, in order. */
  calls: CallRef[];
  /** The calls the matrix faults: all of them, or (`allow-list`) only the ones the first rotation does not make. */
  walk: CallRef[];
  /** The kinds walked, when not all of them (`delivery`). */
  kinds?: readonly CaseKind[];
}

/**
 * The scenarios worth running for a target: `steady` only when its calls differ from the first rotation's;
 * `allow-list` always (its walk may be empty: then its only test is that the allow-lists add no call).
 */
export async function scenariosFor(bundle: string, target: string, only?: readonly Scenario[]): Promise<ScenarioPlan[]> {
  const wanted = (s: Scenario) => !only || only.includes(s);
  const first = await discoverCalls(bundle, target, 'first');
  const plans: ScenarioPlan[] = [];
  if (wanted('first')) plans.push({ scenario: 'first', calls: first, walk: first });
  if (wanted('steady')) {
    const steady = await discoverCalls(bundle, target, 'steady');
    if (first.map(callName).join('|') !== steady.map(callName).join('|')) plans.push({ scenario: 'steady', calls: steady, walk: steady });
  }
  if (wanted('allow-list')) {
    const allowed = await discoverCalls(bundle, target, 'allow-list');
    plans.push({ scenario: 'allow-list', calls: allowed, walk: newCalls(first, allowed) });
  }
  if (wanted('delivery')) {
    const delivering = await discoverCalls(bundle, target, 'delivery');
    plans.push({ scenario: 'delivery', calls: delivering, walk: delivering.filter((c) => DELIVERY_WALK.has(`${c.service} ${c.operation}`)), kinds: DELIVERY_KINDS });
  }
  return plans;
}

/** The sandbox fault for a kind on a call (a `kill` is a drop after the call is applied; the caller kills on fire). */
export function faultSpec(call: { service: string; operation: string; nth: number }, kind: CaseKind): FaultSpec {
  const base = { service: call.service, operation: call.operation, nth: call.nth };
  switch (kind) {
    case 'status':
      return { ...base, kind: 'status', status: 503, body: '' };
    case 'throttle':
      return { ...base, kind: 'throttle', retryAfterSeconds: 1 };
    case 'delay':
      return { ...base, kind: 'delay', delayMs: HANG_MS };
    // Applied, then the connection breaks: the server changed state and the client cannot know.
    case 'drop':
      return { ...base, kind: 'drop', after: true };
    case 'corrupt':
      return { ...base, kind: 'corrupt' };
    // The listener kills the script as the call arrives; the sandbox then applies it (the kill is immediate,
    // the handling follows in this process), so the script dies right after its call took effect.
    case 'kill':
      return { ...base, kind: 'drop', after: true };
  }
}

function faultFor(c: MatrixCase): FaultSpec {
  return isReplyKind(c.kind) ? replySpec(c.call, c.kind) : faultSpec(c.call, c.kind);
}

/** One call per distinct service operation (its first), for the reply corpus under `npm test`. */
export function distinctOperations(calls: CallRef[]): CallRef[] {
  const seen = new Set<string>();
  return calls.filter((c) => {
    const key = `${c.service} ${c.operation}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** Every journal entry in a gateway's state folder (its per-client subfolders included). */
export function journalEntries(stateDir: string): Array<{ phase?: string; sealed?: string; resume?: string; recordUid?: string; txn?: string }> {
  const out: Array<{ phase?: string; sealed?: string; resume?: string; recordUid?: string; txn?: string }> = [];
  const walk = (dir: string) => {
    if (!existsSync(dir)) return;
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (name.endsWith('.journal.json')) out.push(JSON.parse(readFileSync(path, 'utf8')) as { phase?: string; sealed?: string; resume?: string });
    }
  };
  walk(stateDir);
  return out;
}

/**
 * Journal entries of the gateway's state folder from which the next run restores a working credential on its
 * own: a sealed, unsaved secret, or (in place, self-rotating) the sealed token to replace the secret again.
 */
export function sealedJournals(stateDir: string): number {
  return journalEntries(stateDir).filter((e) => (e.phase === 'unsaved' && e.sealed) || (e.phase === 'creating' && e.resume)).length;
}

/** Record data whose credential the record may end up holding: what it shows, and an open transaction's other side. */
export function possibleData(view: RecordView): RecordData[] {
  return view.transaction ? [view.data, view.transaction.data] : [view.data];
}

export const ERROR_LINE = /^keeper-rotate: ([A-Z_]+): /m;

/** A case, run again once when its fault never fired (the run ended before the call: a harness miss, not a verdict). */
export async function runCase(bundle: string, c: MatrixCase): Promise<CaseResult> {
  const first = await runCaseOnce(bundle, c);
  return first.verdict === 'unfired' ? runCaseOnce(bundle, c) : first;
}

async function runCaseOnce(bundle: string, c: MatrixCase): Promise<CaseResult> {
  const oracle = ORACLES[c.target]!;
  const started = Date.now();
  return withSandbox(async (sb) => {
    sb.ksm.setTransactionModel(c.model);
    prepareScenario(sb, c.scenario, oracle.uid);
    const env = scenarioEnv(sb, c.scenario);
    if (c.scenario === 'steady' || c.scenario === 'delivery') await warmUp(bundle, oracle.script, sb, env);
    const problems: string[] = [];
    const before = sb.ksm.readRecord(oracle.uid)!;
    const baseline = new Set(oracle.credentials(sb));
    const unwatch = c.scenario === 'delivery' && !oracle.inPlace ? watchDelivered(sb, oracle, problems, 'the faulted run') : () => {};
    sb.faults.arm(faultFor(c));
    let firedAt: number | undefined;
    const unsubscribe = sb.faults.onFire(() => (firedAt = Date.now()));
    let unsubscribeKill = () => {};
    const run = await runBuilt(bundle, oracle.script, env, (child) => {
      if (c.kind === 'kill') unsubscribeKill = sb.faults.onFire(() => child.kill('SIGKILL'));
    });
    unsubscribe();
    unsubscribeKill();
    sb.faults.clear();
    if (firedAt === undefined) {
      const why = ERROR_LINE.exec(run.stderr)?.[0] ?? `exit ${run.code}`;
      return { ...c, exit: run.code, error: ERROR_LINE.exec(run.stderr)?.[1], cleanExit: -1, verdict: 'unfired', problems: [`the fault on call ${c.call.index} never fired: the run ended first (${why.slice(0, 200)})`], ms: Date.now() - started };
    }
    // A hung call is applied when the hang ends, perhaps after the script gave up on it and even after it
    // exited. Judge the state once that has happened: a late write is exactly what can break a record.
    if (c.kind === 'delay' && firedAt !== undefined) await sleep(Math.max(0, firedAt + HANG_MS + 500 - Date.now()));

    // 1. The record holds a working credential now (both sides of an open transaction must work), or, for an
    //    in-place target, the run stopped with the new secret sealed on this gateway.
    const after = sb.ksm.readRecord(oracle.uid)!;
    const broken = possibleData(after).filter((d) => !oracle.works(sb, d));
    const sealed = sealedJournals(sb.env.KEEPER_ROTATE_STATE_DIR!);
    let verdict: CaseResult['verdict'] = 'held';
    if (broken.length > 0) {
      if (oracle.inPlace && sealed > 0 && (run.code === 'killed' || run.code === 5)) verdict = 'sealed';
      else problems.push(`the record holds a credential that does not work${after.transaction ? ' (on one side of its open transaction)' : ''}`);
    }
    // 1b. A destination holds a credential that works: the one delivered, kept valid until the new one is there.
    //     (An in-place target's replace kills the one it held at once; the clean run's check below covers it.)
    if (c.scenario === 'delivery' && !oracle.inPlace) {
      for (const [where, delivered] of destinationsData(sb, oracle.uid)) {
        if (!delivered || !oracle.works(sb, delivered)) problems.push(`the ${where} holds ${delivered ? 'a credential that does not work' : 'nothing'} after the faulted run`);
      }
    }

    // 2. Exit 0 only for a finished rotation: a new credential, saved, finalized, working.
    const error = ERROR_LINE.exec(run.stderr)?.[1];
    if (run.code === 0) {
      if (after.transaction) problems.push('exit 0 with a Keeper transaction left open');
      const changed = oracle.inPlace ? text(after.data, 'client_secret') !== text(before.data, 'client_secret') : oracle.referenced(after.data)[0] !== oracle.referenced(before.data)[0];
      if (!changed) problems.push('exit 0 but the record still holds the credential it had before');
      if (error) problems.push(`exit 0 with an error line (${error})`);
    } else if (run.code !== 'killed' && !error) {
      problems.push(`exit ${run.code} without a coded error line`);
    }
    // The demo record is inside every list of the allow-list scenario: a fault on the read that decides it is a
    // failed read, never a refusal that sends the owner to fix a list that is right.
    if (c.scenario === 'allow-list' && error === 'TARGET_NOT_ALLOWED') problems.push(`exit ${run.code} TARGET_NOT_ALLOWED for a record inside the allow-list: the faulted read was taken for a refusal`);
    // Anything a service can send is a failure this tool expects: never "a bug".
    if (run.code === 1) problems.push(`exit 1 (${error ?? 'no code'}): a reply a service can send is not a bug`);
    if (RAW_CONTROL.test(run.stdout + run.stderr)) problems.push('a raw control character reached the output');
    if (isReplyKind(c.kind) && run.code !== 0 && run.code !== 'killed') {
      const line = ERROR_LINE.exec(run.stderr) ? run.stderr.split('\n').find((l) => l.startsWith('keeper-rotate: ')) ?? '' : '';
      const faulted = sb.log.entries().find((e) => e.fault !== undefined);
      // The line names what failed: the service (or, when a later step failed because of it, at least a service).
      if (faulted && !SERVICE_WORDS[faulted.service]!.test(line) && !Object.values(SERVICE_WORDS).some((w) => w.test(line))) problems.push(`the error line names no service: ${line.slice(0, 200)}`);
    }
    if (c.kind === 'oversize') {
      // What the sandbox counts is what it got into the socket, the kernel's buffers included, and a loopback
      // receive buffer grows to 32 MiB here (net.ipv4.tcp_rmem): 8 MiB read plus full buffers went past a 16 MiB
      // bound under load. Only a client that took the whole 64 MiB reply proves that no cap applied.
      const took = sb.log.entries().find((e) => e.fault === 'oversize')?.bytes ?? 0;
      if (took >= 64 * 1024 * 1024) problems.push(`the client took the whole ${Math.round(took / 1048576)} MiB reply: no size cap`);
    }

    // 3. No secret value, from any side, in what the script printed.
    const output = run.stdout + run.stderr;
    const values = new Set<string>([...oracle.issued(sb), text(before.data, 'client_secret') ?? '', text(after.data, 'client_secret') ?? '', text(after.data, 'aws_secret_access_key') ?? '']);
    values.delete('');
    const leaked = [...values].filter((v) => v.length >= 8 && output.includes(v)).length;
    if (leaked > 0) problems.push(`${leaked} secret value(s) appear in the script's output`);

    // 4. One more clean run finishes (or undoes) whatever was left, and leaves what retention allows.
    unwatch();
    const unwatchClean = c.scenario === 'delivery' && !oracle.inPlace ? watchDelivered(sb, oracle, problems, 'the clean run') : () => {};
    const clean = await runBuilt(bundle, oracle.script, env);
    unwatchClean();
    const final = sb.ksm.readRecord(oracle.uid)!;
    if (clean.code !== 0) problems.push(`the clean run after it exited ${clean.code}: ${(ERROR_LINE.exec(clean.stderr)?.[0] ?? clean.stderr.trim().split('\n').pop() ?? '').slice(0, 300)}`);
    if (final.transaction) problems.push('a Keeper transaction is still open after the clean run');
    if (!oracle.works(sb, final.data)) problems.push('after the clean run the record holds a credential that does not work');
    if (c.scenario === 'delivery') {
      for (const [where, delivered] of destinationsData(sb, oracle.uid)) {
        const same = delivered !== undefined && ['client_secret', 'aws_access_key_id', 'aws_secret_access_key', 'ecr_docker_config_json'].every((l) => text(delivered, l) === text(final.data, l));
        if (!same || !oracle.works(sb, delivered!)) problems.push(`after the clean run the ${where} does not hold the record's working credential`);
      }
    }
    const now = oracle.credentials(sb);
    const referenced = new Set(oracle.referenced(final.data));
    const orphans = now.filter((id) => !baseline.has(id) && !referenced.has(id));
    if (orphans.length > 0) problems.push(`orphans on the target after the clean run: ${orphans.join(', ')}`);
    if (now.length > oracle.limit) problems.push(`the target holds ${now.length} credentials, more than the ${oracle.limit} retention allows`);
    const cleanLeaks = [...new Set(oracle.issued(sb))].filter((v) => v.length >= 8 && (clean.stdout + clean.stderr).includes(v)).length;
    if (cleanLeaks > 0) problems.push(`${cleanLeaks} secret value(s) appear in the clean run's output`);

    if (problems.length > 0) verdict = 'lost';
    return { ...c, exit: run.code, error, cleanExit: clean.code === 'killed' ? 137 : clean.code, verdict, problems, ms: Date.now() - started };
  });
}

/** Runs `items` through `fn`, `width` at a time, keeping the order of the input in the output. */
export async function pool<T, R>(items: readonly T[], width: number, fn: (item: T) => Promise<R>, onDone?: (r: R) => void): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
      onDone?.(out[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(width, items.length)) }, worker));
  return out;
}

export function callName(call: CallRef): string {
  return `${call.service} ${call.operation}${call.nth > 1 ? ` #${call.nth}` : ''}`;
}

/** One table per target: a row per call, a column per kind, each cell the faulted run's exit and the verdict. */
export function formatTables(results: CaseResult[]): string {
  const lines: string[] = [];
  const groupOf = (r: CaseResult) => `${r.target} (${r.scenario} rotation, ${r.model} transactions)`;
  for (const group of [...new Set(results.map(groupOf))]) {
    const rows = results.filter((r) => groupOf(r) === group);
    const calls = [...new Map(rows.map((r) => [r.call.index, r.call])).values()].sort((a, b) => a.index - b.index);
    const kinds = [...CASE_KINDS, ...REPLY_KINDS].filter((k) => rows.some((r) => r.kind === k));
    const width = Math.max(4, ...calls.map((c) => `${c.index}. ${callName(c)}`.length));
    lines.push('', `${group}: ${calls.length} calls × ${kinds.length} faults`, `${'call'.padEnd(width)}  ${kinds.map((k) => k.padEnd(12)).join('')}`);
    for (const call of calls) {
      const cells = kinds.map((k) => {
        const r = rows.find((x) => x.call.index === call.index && x.kind === k);
        if (!r) return '-'.padEnd(12);
        const mark = r.verdict === 'held' ? 'ok' : r.verdict === 'sealed' ? 'sealed' : r.verdict === 'unfired' ? 'UNFIRED' : 'LOST';
        return `${r.exit === 'killed' ? 'K' : r.exit} ${mark}`.padEnd(12);
      });
      lines.push(`${`${call.index}. ${callName(call)}`.padEnd(width)}  ${cells.join('')}`);
    }
  }
  return lines.join('\n');
}

export function summaryLine(results: CaseResult[]): string {
  const held = results.filter((r) => r.verdict === 'held' || r.verdict === 'sealed').length;
  const lost = results.filter((r) => r.verdict === 'lost').length;
  const unfired = results.length - held - lost;
  return `faults: ${results.length} cases, ${held} held, ${lost} lost${unfired ? `, ${unfired} never fired` : ''}`;
}
