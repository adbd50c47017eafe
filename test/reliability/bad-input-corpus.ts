// The bad-input corpus: malformed or hostile gateway input (the stdin line) and record content (the PAM User
// record, the PAM configuration, the `records` the gateway passes), for each of the three scripts, each with the
// error code it must get. bad-input.test.ts runs every case against one sandbox and checks, from the sandbox's own
// state, that it ends with exit 2 and that coded line, having written nothing to the vault and called no target.
//
// An `input` case is rejected before any request at all. A `record` case needs the records read first, so it
// may make Keeper reads (get_secret) and nothing else. A record-editor case (`targetReads`) is one only the target
// can refuse: the admin as the target, another app, an allow-list escape; it may read the target too, and still
// writes nothing anywhere.
import type { ErrorCode } from '../../src/errors.js';
import type { RecordData, RecordField } from '../../src/keeper/record-data.js';
import { DEMO } from '../../src/sandbox/demo-vault.js';
import type { Sandbox } from '../../src/sandbox/sandbox.js';

export const SCRIPTS = ['azure-app-secret', 'aws-iam-access-key', 'wiz-service-account'] as const;
export type ScriptName = (typeof SCRIPTS)[number];

/** Secret-looking values travel in every case (suffixed per case, see `caseSecret`): none may reach the output. */
export const SECRET = 'Hunter2-secret!xyz';
export const caseSecret = (index: number) => `${SECRET}-${String(index).padStart(3, '0')}`;

export interface InputCase {
  kind: 'input';
  name: string;
  script: ScriptName;
  code: ErrorCode;
  /** What the gateway pipes to stdin, given this case's secret. An array is fed chunk by chunk. */
  stdin(secret: string): string | string[];
}

/** The UIDs the harness seeded for a record case. */
export interface SeededUids {
  user: string;
  provider: string;
}

export interface RecordCase {
  kind: 'record';
  name: string;
  script: ScriptName;
  code: ErrorCode;
  /**
   * Changes a copy of the script's demo PAM User record (which rotates cleanly as it is), seeded under a fresh UID.
   * `'absent'`: the input names a well-formed UID that is not in the vault.
   */
  user?: ((data: RecordData, secret: string, seeded: Seeded) => void) | 'absent';
  /** A PAM configuration record to seed under a fresh UID and name as `providerRecordUid` instead of the demo's. */
  provider?: (secret: string, seeded: Seeded) => RecordData;
  /** Changes the gateway parameters the harness built (the fixture's shape, with the seeded UIDs). */
  params?: (params: GatewayParams, uids: SeededUids, secret: string, seeded: Seeded) => void;
  /** Seeds what the case needs on a target (another app, account or user) and returns what the case refers to. */
  setup?: (sandbox: Sandbox, index: number) => Seeded;
  /** The gateway's environment for this run, on top of the sandbox's: the gateway owner's allow-lists. */
  env?: Record<string, string>;
  /** Only the target can refuse this case: it may read the target (sign in, read the object), never write. */
  targetReads?: boolean;
}

/** What a case's setup seeded on a target, by name. */
export type Seeded = Record<string, string>;

export type BadInputCase = InputCase | RecordCase;

export interface GatewayParams {
  providerRecordUid: string;
  resourceRecordUid: string;
  userRecordUid: string;
  user: string;
  newPassword: string;
  oldPassword: string;
  records: Array<Record<string, unknown>>;
  [key: string]: unknown;
}

/** The demo vault's records each script rotates cleanly, and the PAM configuration its fixture names. */
export const DEMO_USER: Record<ScriptName, string> = {
  'azure-app-secret': DEMO.azure.userRecordUid,
  'aws-iam-access-key': DEMO.aws.userRecordUid,
  'wiz-service-account': DEMO.wiz.userRecordUid,
};
export const DEMO_PROVIDER: Record<ScriptName, string> = {
  'azure-app-secret': DEMO.pamConfigurationUid,
  'aws-iam-access-key': DEMO.aws.pamConfigurationUid,
  'wiz-service-account': DEMO.pamConfigurationUid,
};

/** The gateway's parameters, as in fixtures/: the PAM configuration's secret is left for the vault read. */
export function gatewayParams(script: ScriptName, uids: SeededUids, secret: string): GatewayParams {
  return {
    providerRecordUid: uids.provider,
    resourceRecordUid: '',
    userRecordUid: uids.user,
    user: script === 'wiz-service-account' ? DEMO.wiz.clientId : 'demo-user',
    newPassword: secret,
    oldPassword: `${secret}-old`,
    records: [
      { uid: uids.provider, title: 'PAM configuration' },
      { uid: uids.user, title: 'PAM User', NOOP: 'True' },
    ],
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Helpers to write cases with.

const b64 = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64');
/** The gateway's line for these parameters, `records` as base64 JSON unless a case gives it as something else. */
function line(script: ScriptName, secret: string, change: (p: Record<string, unknown>) => void = () => undefined): string {
  const p: Record<string, unknown> = { ...gatewayParams(script, { user: DEMO_USER[script], provider: DEMO_PROVIDER[script] }, secret) };
  p.records = b64(p.records);
  change(p);
  return b64(p) + '\n';
}
/** Hand-written JSON (for what JSON.stringify cannot produce: duplicate keys), base64 as the gateway sends it. */
const rawLine = (json: string) => b64(json) + '\n';

const GUID = '2b6c1a7e-3d4f-4a5b-8c9d-0e1f2a3b4c5d';
const ATTACHED = 'AttachedAdminRecord001';

const text = (label: string, value: unknown): RecordField => ({ type: 'text', label, value: [value] });
const hidden = (label: string, value: string): RecordField => ({ type: 'secret', label, value: [value] });
const matches = (f: RecordField, label: string) => f.label === label || (!f.label && f.type === label);

/** Sets the field by label (a standard field by its type), or adds it as a custom text field. */
function set(data: RecordData, label: string, value: unknown): void {
  const field = [...(data.custom ?? []), ...data.fields].find((f) => matches(f, label));
  if (field) field.value = [value];
  else (data.custom ??= []).push(text(label, value));
}
/** A second custom field by the same label. */
function twice(data: RecordData, label: string, value: unknown): void {
  (data.custom ??= []).push(text(label, value));
}
function drop(data: RecordData, label: string): void {
  data.fields = data.fields.filter((f) => !matches(f, label));
  data.custom = (data.custom ?? []).filter((f) => !matches(f, label));
}

const input = (script: ScriptName, name: string, code: ErrorCode, stdin: InputCase['stdin']): InputCase => ({ kind: 'input', script, name, code, stdin });
const record = (script: ScriptName, name: string, code: ErrorCode, spec: Pick<RecordCase, 'user' | 'provider' | 'params' | 'setup' | 'env' | 'targetReads'>): RecordCase => ({
  kind: 'record',
  script,
  name,
  code,
  ...spec,
});
const setting = (script: ScriptName, label: string, value: string, code: ErrorCode = 'SETTING_INVALID') =>
  record(script, `setting ${label} = ${JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}...` : value)}`, code, { user: (d) => set(d, label, value) });

const AZ = 'azure-app-secret';
const AWS = 'aws-iam-access-key';
const WIZ = 'wiz-service-account';
const MiB = 1024 * 1024;

// ---------------------------------------------------------------------------------------------------------------
// Gateway input: the stdin line. Nothing may reach any service.

const INPUT: InputCase[] = [
  // The line itself.
  input(AZ, 'empty stdin', 'INPUT_EMPTY', () => ''),
  input(AWS, 'only whitespace and line breaks', 'INPUT_EMPTY', () => ' \r\n\t \n'),
  input(WIZ, 'not base64 at all', 'INPUT_NOT_BASE64', () => '%%% not base64 %%%\n'),
  input(AZ, 'base64 of a bad length', 'INPUT_NOT_BASE64', () => 'abc'),
  input(AWS, 'base64 mixing the standard and URL-safe alphabets', 'INPUT_NOT_BASE64', (s) => line(AWS, s).replace(/^(.)(.)/, '+-')),
  input(WIZ, 'base64 with a NUL byte inside', 'INPUT_NOT_BASE64', (s) => {
    const l = line(WIZ, s);
    return `${l.slice(0, 8)}\u0000${l.slice(8)}`;
  }),
  input(AZ, 'base64 of text that is not JSON', 'INPUT_NOT_JSON', () => b64('hello, gateway')),
  input(AWS, 'base64 of bytes that are not UTF-8', 'INPUT_NOT_JSON', () => Buffer.from([0x7b, 0xff, 0xfe, 0x22, 0x7d]).toString('base64')),
  input(WIZ, 'two JSON objects in one line', 'INPUT_NOT_JSON', (s) => b64(JSON.stringify({ userRecordUid: DEMO.wiz.userRecordUid, newPassword: s }).repeat(2))),
  input(AZ, 'JSON truncated mid-object', 'INPUT_NOT_JSON', (s) => b64(JSON.stringify({ userRecordUid: DEMO.azure.userRecordUid, newPassword: s }).slice(0, -3))),
  input(WIZ, 'a JSON array instead of an object', 'INPUT_INVALID', (s) => b64([{ userRecordUid: DEMO.wiz.userRecordUid, newPassword: s }])),
  input(AZ, 'a JSON number instead of an object', 'INPUT_INVALID', () => b64(42)),
  input(AWS, 'JSON null instead of an object', 'INPUT_INVALID', () => b64(null)),
  input(WIZ, 'a JSON string instead of an object', 'INPUT_INVALID', () => b64(JSON.stringify(DEMO.wiz.userRecordUid))),
  input(AWS, 'over 1 MiB in one piece', 'INPUT_TOO_LARGE', () => 'A'.repeat(MiB + 1)),
  input(WIZ, 'over 1 MiB in 64 KiB chunks (an endless pipe)', 'INPUT_TOO_LARGE', () => Array.from({ length: 20 }, () => 'QUFB'.repeat(16 * 1024))),

  // userRecordUid.
  input(AZ, 'userRecordUid missing', 'INPUT_INVALID', (s) => line(AZ, s, (p) => delete p.userRecordUid)),
  input(AWS, 'userRecordUid a number', 'INPUT_INVALID', (s) => line(AWS, s, (p) => (p.userRecordUid = 1234567890))),
  input(WIZ, 'userRecordUid empty', 'INPUT_INVALID', (s) => line(WIZ, s, (p) => (p.userRecordUid = ''))),
  input(AZ, 'userRecordUid an array holding the UID', 'INPUT_INVALID', (s) => line(AZ, s, (p) => (p.userRecordUid = [DEMO.azure.userRecordUid]))),
  input(AWS, 'userRecordUid an object', 'INPUT_INVALID', (s) => line(AWS, s, (p) => (p.userRecordUid = { uid: DEMO.aws.userRecordUid }))),
  input(WIZ, 'userRecordUid one character too long', 'INPUT_INVALID', (s) => line(WIZ, s, (p) => (p.userRecordUid = `${DEMO.wiz.userRecordUid}A`))),
  input(AZ, 'userRecordUid of 100,000 characters', 'INPUT_INVALID', (s) => line(AZ, s, (p) => (p.userRecordUid = 'A'.repeat(100_000)))),
  input(AWS, 'userRecordUid carrying a path', 'INPUT_INVALID', (s) => line(AWS, s, (p) => (p.userRecordUid = '../../../etc/passwd'))),
  input(WIZ, 'userRecordUid of 22 characters with / and ..', 'INPUT_INVALID', (s) => line(WIZ, s, (p) => (p.userRecordUid = 'DemoWizSe/../ceAcct001'))),
  input(AZ, 'userRecordUid with ? and # (query and fragment)', 'INPUT_INVALID', (s) => line(AZ, s, (p) => (p.userRecordUid = 'DemoAzureApp?x=1#abc01'))),
  input(AWS, 'userRecordUid with %2F (an encoded slash)', 'INPUT_INVALID', (s) => line(AWS, s, (p) => (p.userRecordUid = 'DemoAws%2F..%2Fx000001'))),
  input(WIZ, 'userRecordUid with a space', 'INPUT_INVALID', (s) => line(WIZ, s, (p) => (p.userRecordUid = 'DemoWizServiceAcct 001'))),
  input(AZ, 'userRecordUid with a NUL character', 'INPUT_INVALID', (s) => line(AZ, s, (p) => (p.userRecordUid = 'DemoAzureAppSecret000\u0000'))),
  input(AWS, 'userRecordUid with a trailing newline', 'INPUT_INVALID', (s) => line(AWS, s, (p) => (p.userRecordUid = `${DEMO.aws.userRecordUid}\n`))),
  input(WIZ, 'userRecordUid with a fullwidth digit', 'INPUT_INVALID', (s) => line(WIZ, s, (p) => (p.userRecordUid = 'DemoWizServiceAcct000\uff11'))),
  input(AZ, 'userRecordUid behind a right-to-left override', 'INPUT_INVALID', (s) => line(AZ, s, (p) => (p.userRecordUid = `\u202e${DEMO.azure.userRecordUid.slice(1)}`))),
  input(AWS, 'userRecordUid nested 50,000 arrays deep', 'INPUT_INVALID', (s) =>
    rawLine(`{"newPassword":${JSON.stringify(s)},"userRecordUid":${'['.repeat(50_000)}${']'.repeat(50_000)}}`),
  ),
  input(WIZ, 'userRecordUid only inside a __proto__ key', 'INPUT_INVALID', (s) => rawLine(`{"__proto__":{"userRecordUid":"${DEMO.wiz.userRecordUid}"},"newPassword":${JSON.stringify(s)}}`)),

  // Duplicate keys: JSON.parse keeps the last, other parsers the first.
  input(AZ, 'userRecordUid given twice (hostile first, valid last)', 'INPUT_INVALID', (s) =>
    rawLine(`{"userRecordUid":"../../../etc/passwd","newPassword":${JSON.stringify(s)},"userRecordUid":"${DEMO.azure.userRecordUid}"}`),
  ),
  input(AWS, 'providerRecordUid given twice, once as a \\u escape', 'INPUT_INVALID', (s) =>
    rawLine(`{"userRecordUid":"${DEMO.aws.userRecordUid}","providerRecordUid":"${DEMO.aws.pamConfigurationUid}","\\u0070roviderRecordUid":"${DEMO.pamConfigurationUid}","newPassword":${JSON.stringify(s)}}`),
  ),
  input(WIZ, 'newPassword given twice with different values', 'INPUT_INVALID', (s) =>
    rawLine(`{"userRecordUid":"${DEMO.wiz.userRecordUid}","newPassword":${JSON.stringify(s)},"newPassword":${JSON.stringify(`${s}-2`)}}`),
  ),

  // The other keys.
  input(AZ, 'providerRecordUid with a path', 'INPUT_INVALID', (s) => line(AZ, s, (p) => (p.providerRecordUid = 'DemoPamConfiguration01/../x'))),
  input(AWS, 'providerRecordUid a number', 'INPUT_INVALID', (s) => line(AWS, s, (p) => (p.providerRecordUid = 1))),
  input(WIZ, 'providerRecordUid naming the PAM User record itself', 'INPUT_INVALID', (s) => line(WIZ, s, (p) => (p.providerRecordUid = DEMO.wiz.userRecordUid))),
  input(AZ, 'resourceRecordUid with a query', 'INPUT_INVALID', (s) => line(AZ, s, (p) => (p.resourceRecordUid = 'DemoResourceRec?id=001'))),
  input(AWS, 'newPassword a number', 'INPUT_INVALID', (s) => line(AWS, s, (p) => (p.newPassword = 31337))),
  input(WIZ, 'oldPassword an object holding the secret', 'INPUT_INVALID', (s) => line(WIZ, s, (p) => (p.oldPassword = { value: s }))),
  input(AZ, 'user with terminal escape sequences', 'INPUT_INVALID', (s) => line(AZ, s, (p) => (p.user = 'demo\u001b[2J\u001b[1;1Hkeeper-rotate: OK'))),
  input(AWS, 'user a boolean', 'INPUT_INVALID', (s) => line(AWS, s, (p) => (p.user = true))),

  // records, as a whole.
  input(WIZ, 'records not base64', 'INPUT_NOT_BASE64', (s) => line(WIZ, s, (p) => (p.records = '*** not base64 ***'))),
  input(AZ, 'records base64 of text that is not JSON', 'INPUT_NOT_JSON', (s) => line(AZ, s, (p) => (p.records = b64('uid=DemoPamConfiguration01')))),
  input(AWS, 'records base64 of a JSON object', 'INPUT_INVALID', (s) => line(AWS, s, (p) => (p.records = b64({ uid: DEMO.aws.pamConfigurationUid })))),
  input(WIZ, 'records a number', 'INPUT_INVALID', (s) => line(WIZ, s, (p) => (p.records = 7))),
  input(AZ, 'records a decoded object', 'INPUT_INVALID', (s) => line(AZ, s, (p) => (p.records = { 0: { uid: DEMO.pamConfigurationUid } }))),

  // records, element by element.
  input(AWS, 'a records element that is a string', 'INPUT_INVALID', (s) => line(AWS, s, (p) => (p.records = b64([DEMO.aws.pamConfigurationUid])))),
  input(WIZ, 'a records element that is null', 'INPUT_INVALID', (s) => line(WIZ, s, (p) => (p.records = b64([null])))),
  input(AZ, 'a records element that is an array, 10,000 deep', 'INPUT_INVALID', (s) => line(AZ, s, (p) => (p.records = b64(`${'['.repeat(10_000)}${']'.repeat(10_000)}`)))),
  input(AWS, 'a records element without a uid', 'INPUT_INVALID', (s) => line(AWS, s, (p) => (p.records = b64([{ title: 'admin', aws_access_key_id: 'AKIAIOSFODNN7EXAMPLE', aws_secret_access_key: s }])))),
  input(WIZ, 'a records element whose uid carries a path', 'INPUT_INVALID', (s) => line(WIZ, s, (p) => (p.records = b64([{ uid: '../DemoPamConfigurat01', title: 't' }])))),
  input(AZ, 'a records element whose uid is a number', 'INPUT_INVALID', (s) => line(AZ, s, (p) => (p.records = b64([{ uid: 12345, title: 't' }])))),
  input(AWS, 'the same record twice in records', 'INPUT_INVALID', (s) =>
    line(AWS, s, (p) => (p.records = b64([{ uid: DEMO.aws.pamConfigurationUid, title: 'a' }, { uid: DEMO.aws.pamConfigurationUid, title: 'b', accessKeyId: 'AKIAIOSFODNN7EXAMPLE', accessSecretKey: s }]))),
  ),
  input(WIZ, 'a records element whose title is an object', 'INPUT_INVALID', (s) => line(WIZ, s, (p) => (p.records = b64([{ uid: DEMO.pamConfigurationUid, title: { html: '<script>' } }])))),
  input(AZ, 'a records element with the uid key twice', 'INPUT_INVALID', (s) =>
    line(AZ, s, (p) => (p.records = b64(`[{"uid":"${DEMO.pamConfigurationUid}","clientSecret":${JSON.stringify(s)},"uid":"${ATTACHED}"}]`))),
  ),
];

// ---------------------------------------------------------------------------------------------------------------
// Record content: the PAM User record, the PAM configuration, and the dictionaries in `records`. Keeper reads only.

const AZURE_RECORDS: RecordCase[] = [
  record(AZ, 'a Login record instead of a PAM User', 'RECORD_WRONG_TYPE', { user: (d) => void (d.type = 'login') }),
  record(AZ, 'a well-formed UID the application cannot see', 'RECORD_NOT_FOUND', { user: 'absent' }),
  record(AZ, 'application_object_id missing', 'RECORD_FIELD_MISSING', { user: (d) => drop(d, 'application_object_id') }),
  record(AZ, 'application_object_id blank', 'RECORD_FIELD_MISSING', { user: (d) => set(d, 'application_object_id', '   ') }),
  record(AZ, 'application_object_id with a path', 'RECORD_FIELD_INVALID', { user: (d) => set(d, 'application_object_id', 'abc/../../x') }),
  record(AZ, 'application_object_id with a Graph query', 'RECORD_FIELD_INVALID', { user: (d) => set(d, 'application_object_id', `${DEMO.azure.targetObjectId}?$select=passwordCredentials`) }),
  record(AZ, 'application_object_id with a fragment', 'RECORD_FIELD_INVALID', { user: (d) => set(d, 'application_object_id', `${DEMO.azure.targetObjectId}#x`) }),
  record(AZ, 'application_object_id with a second GUID on a new line', 'RECORD_FIELD_INVALID', { user: (d) => set(d, 'application_object_id', `${DEMO.azure.targetObjectId}\n${GUID}`) }),
  record(AZ, 'application_object_id of 100,000 characters', 'RECORD_FIELD_INVALID', { user: (d) => set(d, 'application_object_id', 'a'.repeat(100_000)) }),
  record(AZ, "application_object_id with SQL: '); DROP", 'RECORD_FIELD_INVALID', { user: (d) => set(d, 'application_object_id', "'); DROP TABLE applications;--") }),
  record(AZ, 'application_object_id a JSON number', 'RECORD_FIELD_INVALID', { user: (d) => set(d, 'application_object_id', 12345) }),
  record(AZ, 'application_object_id set twice, to two applications', 'RECORD_FIELD_INVALID', { user: (d) => twice(d, 'application_object_id', GUID) }),
  record(AZ, 'client_secret_id with %00', 'RECORD_FIELD_INVALID', { user: (d) => set(d, 'client_secret_id', `${GUID}%00`) }),
  record(AZ, 'previous_client_secret_ids with an injection', 'RECORD_FIELD_INVALID', { user: (d) => set(d, 'previous_client_secret_ids', `${GUID},'); DROP TABLE secrets;--`) }),
  setting(AZ, 'keep_previous_secrets', '-1'),
  setting(AZ, 'keep_previous_secrets', 'abc'),
  setting(AZ, 'keep_previous_secrets', '1e3'),
  setting(AZ, 'secret_lifetime_days', '99999999999999999999'),
  setting(AZ, 'verify_timeout_seconds', '0x10'),
  setting(AZ, 'remove_other_secrets', 'maybe'),
  setting(AZ, 'dry_run', 'maybe'),
  setting(AZ, 'authority_host', 'http://login.microsoftonline.com'),
  setting(AZ, 'graph_endpoint', 'https://admin:pw@graph.microsoft.com'),
  setting(AZ, 'graph_endpoint', 'https://graph.microsoft.com/v1.0?$filter=x'),
  setting(AZ, 'authority_host', 'https://login.microsoftonline.com\n.attacker.example'),
  // A record editor must not be able to send the PAM configuration's admin secret to a host of their own.
  setting(AZ, 'authority_host', 'https://login.attacker.example'),
  setting(AZ, 'graph_endpoint', 'https://graph.microsoft.com.attacker.example'),
  record(AZ, 'keep_previous_secrets set twice with different values', 'SETTING_INVALID', { user: (d) => (set(d, 'keep_previous_secrets', '1'), twice(d, 'keep_previous_secrets', '10')) }),
  record(AZ, 'a PAM configuration whose tenantId carries a path', 'ADMIN_CREDENTIALS_INVALID', {
    provider: (s) => ({
      title: 'Hostile PAM configuration',
      type: 'pamAzureConfiguration',
      fields: [text('clientId', DEMO.azure.adminAppId), hidden('clientSecret', s), text('tenantId', 'contoso.onmicrosoft.com/../../attacker')],
      custom: [],
    }),
  }),
  record(AZ, 'the PAM configuration in records with a clientId that is not a GUID', 'ADMIN_CREDENTIALS_INVALID', {
    params: (p, _u, s) => Object.assign(p.records[0]!, { clientId: 'not-a-guid', clientSecret: s, tenantId: DEMO.azure.tenantId }),
  }),
  record(AZ, 'an attached record whose tenant_id has a query', 'ADMIN_CREDENTIALS_INVALID', {
    params: (p, _u, s) => p.records.push({ uid: ATTACHED, title: 'admin', application_client_id: DEMO.azure.adminAppId, client_secret: s, tenant_id: `${DEMO.azure.tenantId}?x=1` }),
  }),
  record(AZ, 'a Login record as the PAM configuration, with no admin keys', 'ADMIN_CREDENTIALS_NOT_FOUND', {
    provider: () => ({ title: 'Not a PAM configuration', type: 'login', fields: [{ type: 'login', value: ['someone'] }, { type: 'password', value: ['pw'] }], custom: [] }),
  }),
];

const AWS_RECORDS: RecordCase[] = [
  record(AWS, 'a Login record instead of a PAM User', 'RECORD_WRONG_TYPE', { user: (d) => void (d.type = 'login') }),
  record(AWS, 'a PAM Machine record instead of a PAM User', 'RECORD_WRONG_TYPE', { user: (d) => void (d.type = 'pamMachine') }),
  record(AWS, 'the login (IAM user name) empty', 'RECORD_FIELD_MISSING', { user: (d) => void (d.fields.find((f) => f.type === 'login')!.value = []) }),
  record(AWS, 'the login with a path', 'RECORD_FIELD_INVALID', { user: (d) => set(d, 'login', 'abc/../../x') }),
  record(AWS, 'the login with an IAM query', 'RECORD_FIELD_INVALID', { user: (d) => set(d, 'login', 'bot?Action=DeleteUser&UserName=admin') }),
  record(AWS, 'the login with a line break', 'RECORD_FIELD_INVALID', { user: (d) => set(d, 'login', 'demo-deploy-bot\nAction=CreateAccessKey') }),
  record(AWS, 'the login of 65 characters', 'RECORD_FIELD_INVALID', { user: (d) => set(d, 'login', 'u'.repeat(65)) }),
  record(AWS, "the login with SQL: '); DROP", 'RECORD_FIELD_INVALID', { user: (d) => set(d, 'login', "'); DROP TABLE users;--") }),
  record(AWS, 'a custom "login" field naming another user than the standard login', 'RECORD_FIELD_INVALID', { user: (d) => twice(d, 'login', DEMO.aws.adminUserName) }),
  record(AWS, 'aws_access_key_id lowercase with a path', 'RECORD_FIELD_INVALID', { user: (d) => set(d, 'aws_access_key_id', 'akia/../../0000000000') }),
  record(AWS, 'previous_aws_access_key_id with %00', 'RECORD_FIELD_INVALID', { user: (d) => set(d, 'previous_aws_access_key_id', 'AKIAIOSFODNN7EXAMPLE%00') }),
  setting(AWS, 'aws_region', 'us-east-1; rm -rf /'),
  setting(AWS, 'aws_region', 'us-east-1.attacker.example'),
  setting(AWS, 'admin_credentials', 'root'),
  setting(AWS, 'deactivate_previous_key', 'maybe'),
  setting(AWS, 'delete_all_keys_before_rotating', '1e3'),
  setting(AWS, 'verify_timeout_seconds', '3601'),
  setting(AWS, 'dry_run', 'yes please'),
  record(AWS, 'a PAM configuration whose accessKeyId is lowercase', 'ADMIN_CREDENTIALS_INVALID', {
    provider: (s) => ({ title: 'Hostile PAM configuration', type: 'pamAwsConfiguration', fields: [text('accessKeyId', 'akia-not-a-key-id-0001'), hidden('accessSecretKey', s)], custom: [] }),
  }),
  record(AWS, 'a PAM configuration whose roleArn carries a query', 'ADMIN_CREDENTIALS_INVALID', {
    provider: (s) => ({
      title: 'Hostile PAM configuration',
      type: 'pamAwsConfiguration',
      fields: [text('accessKeyId', 'AKIAIOSFODNN7EXAMPLE'), hidden('accessSecretKey', s), text('roleArn', 'arn:aws:iam::123456789012:role/x?Action=DeleteUser')],
      custom: [],
    }),
  }),
  record(AWS, 'an attached record whose aws_access_key_id is too short', 'ADMIN_CREDENTIALS_INVALID', {
    params: (p, _u, s) => p.records.push({ uid: ATTACHED, title: 'admin', aws_access_key_id: 'AKIA', aws_secret_access_key: s }),
  }),
];

const WIZ_RECORDS: RecordCase[] = [
  record(WIZ, 'a Login record instead of a PAM User', 'RECORD_WRONG_TYPE', { user: (d) => void (d.type = 'login') }),
  record(WIZ, 'a well-formed UID the application cannot see', 'RECORD_NOT_FOUND', { user: 'absent' }),
  // With an admin account attached: rotating itself, the account's missing login is first missing admin credentials.
  record(WIZ, 'the login (client ID) missing', 'RECORD_FIELD_MISSING', {
    user: (d) => drop(d, 'login'),
    params: (p, _u, s) => p.records.push({ uid: ATTACHED, title: 'admin', wiz_client_id: 'keeperrotateadminaccount00000000000000000000000000001', wiz_client_secret: s }),
  }),
  record(WIZ, 'the login with a path', 'RECORD_FIELD_INVALID', { user: (d) => set(d, 'login', 'abc/../../x') }),
  record(WIZ, 'the login with a query', 'RECORD_FIELD_INVALID', { user: (d) => set(d, 'login', `${DEMO.wiz.clientId}?x=1`) }),
  record(WIZ, 'the login with a fragment', 'RECORD_FIELD_INVALID', { user: (d) => set(d, 'login', `${DEMO.wiz.clientId}#x`) }),
  record(WIZ, 'the login of 129 characters', 'RECORD_FIELD_INVALID', { user: (d) => set(d, 'login', 'w'.repeat(129)) }),
  record(WIZ, 'the login with a NUL character inside', 'RECORD_FIELD_INVALID', { user: (d) => set(d, 'login', `${DEMO.wiz.clientId.slice(0, 10)}\u0000${DEMO.wiz.clientId.slice(10)}`) }),
  record(WIZ, 'the login with a GraphQL injection', 'RECORD_FIELD_INVALID', { user: (d) => set(d, 'login', '") { id } deleteServiceAccount(input: {id: "x"}) { _stub } #') }),
  record(WIZ, 'a custom "login" field naming another account than the standard login', 'RECORD_FIELD_INVALID', { user: (d) => twice(d, 'login', 'anotheraccount0000000000000000000000000000000000001') }),
  record(WIZ, 'no client_secret and no admin credentials anywhere', 'ADMIN_CREDENTIALS_NOT_FOUND', { user: (d) => drop(d, 'client_secret') }),
  setting(WIZ, 'wiz_auth_url', 'http://auth.app.wiz.io/oauth/token'),
  setting(WIZ, 'wiz_api_url', 'https://user:pw@api.us17.app.wiz.io/graphql'),
  setting(WIZ, 'wiz_api_url', 'https://api.us17.app.wiz.io/graphql?query={serviceAccounts{nodes{clientSecret}}}'),
  setting(WIZ, 'wiz_auth_url', 'javascript:alert(1)'),
  setting(WIZ, 'wiz_auth_url', 'https://auth.app.wiz.io\t.attacker.example/oauth/token'),
  setting(WIZ, 'wiz_auth_url', 'https://auth.app.wiz.io.attacker.example/oauth/token'),
  setting(WIZ, 'wiz_api_url', 'https://notwiz.io/graphql'),
  setting(WIZ, 'secret_lifetime_days', '0'),
  setting(WIZ, 'rotate_within_days', '1.5'),
  setting(WIZ, 'verify_timeout_seconds', '-5'),
  setting(WIZ, 'dry_run', 'maybe'),
  record(WIZ, 'secret_lifetime_days set twice with different values', 'SETTING_INVALID', { user: (d) => (set(d, 'secret_lifetime_days', '30'), twice(d, 'secret_lifetime_days', '3650')) }),
  record(WIZ, 'an attached record whose wiz_client_id carries a path', 'ADMIN_CREDENTIALS_INVALID', {
    params: (p, _u, s) => p.records.push({ uid: ATTACHED, title: 'admin', wiz_client_id: 'abc/../x', wiz_client_secret: s }),
  }),
  record(WIZ, "an attached record holding the account's own client ID", 'TARGET_IS_ADMIN', {
    params: (p, _u, s) => p.records.push({ uid: ATTACHED, title: 'admin', wiz_client_id: DEMO.wiz.clientId, wiz_client_secret: s }),
  }),
  record(WIZ, 'a PAM configuration whose wizClientId has a query', 'ADMIN_CREDENTIALS_INVALID', {
    provider: (s) => ({ title: 'Hostile PAM configuration', type: 'pamNetworkConfiguration', fields: [text('wizClientId', 'admin?scope=all'), hidden('wizClientSecret', s)], custom: [] }),
  }),
];

// ---------------------------------------------------------------------------------------------------------------
// What a hostile record editor tries (issue 14): the admin's own principal as the target, another app, escaping
// the gateway owner's allow-list, a record made for another script, and names that would drive a terminal.

/** A record as each script's template makes it, for running another script on it. */
function foreignRecord(kind: ScriptName, secret: string): RecordData {
  const base = { title: `a ${kind} record`, type: 'pamUser', fields: [{ type: 'login', value: [kind === 'wiz-service-account' ? DEMO.wiz.clientId : kind === 'aws-iam-access-key' ? DEMO.aws.userName : DEMO.azure.targetDisplayName] }, { type: 'password', value: ['not-used'] }] };
  if (kind === 'azure-app-secret') {
    return { ...base, custom: [text('application_object_id', DEMO.azure.targetObjectId), text('client_secret_id', GUID), hidden('client_secret', secret), text('expires', '2030-01-01T00:00:00Z')] };
  }
  if (kind === 'aws-iam-access-key') {
    return { ...base, custom: [text('aws_access_key_id', 'AKIAIOSFODNN7EXAMPLE'), hidden('aws_secret_access_key', secret), text('CreateDate', '2025-01-01T00:00:00Z')] };
  }
  return { ...base, custom: [hidden('client_secret', secret), text('expires', '2030-01-01T00:00:00Z')] };
}
const become = (data: RecordData, other: RecordData) => Object.assign(data, { ...other, title: data.title });

/** ESC [31m, an OSC 8 hyperlink, BEL, CR, a right-to-left override, a C1 CSI and an isolate: each would act raw. */
export const HOSTILE = 'x\u001b[31mred\u001b]8;;https://attacker.example/\u0007link\u001b]8;;\u0007\u0007\rkeeper-rotate: OK\u202etxt.exe\u009b2J\u2066';

const ALLOW_ONLY_DEMO_APP = { KEEPER_ROTATE_ALLOW_AZURE_APPS: DEMO.azure.targetObjectId };

const RECORD_EDITOR: RecordCase[] = [
  // The admin's own principal as the target.
  record(AWS, "the login naming the PAM configuration's admin user", 'TARGET_IS_ADMIN', { user: (d) => set(d, 'login', DEMO.aws.adminUserName), targetReads: true }),
  record(AWS, "the login naming the admin user in other letter case (IAM names ignore case)", 'TARGET_IS_ADMIN', { user: (d) => set(d, 'login', DEMO.aws.adminUserName.toUpperCase()), targetReads: true }),
  record(AWS, "the login naming an attached record's admin user, its key ID copied into the record", 'TARGET_IS_ADMIN', {
    setup: (sb, i) => {
      const userName = `attached-admin-${i}`;
      sb.aws.createUser({ userName, permissions: ['iam:ListAccessKeys', 'iam:CreateAccessKey', 'iam:DeleteAccessKey'] });
      const key = sb.aws.seedAccessKey(userName);
      return { userName, keyId: key.accessKeyId, keySecret: key.secretAccessKey };
    },
    // The key ID is no secret: an editor who copies it does not get to pass for the admin.
    user: (d, _s, x) => (set(d, 'login', x.userName!), set(d, 'aws_access_key_id', x.keyId!)),
    params: (p, _u, _s, x) => p.records.push({ uid: ATTACHED, title: 'admin', aws_access_key_id: x.keyId, aws_secret_access_key: x.keySecret }),
    targetReads: true,
  }),
  record(AZ, "application_object_id naming the admin app's object ID", 'TARGET_IS_ADMIN', { user: (d) => set(d, 'application_object_id', DEMO.azure.adminObjectId), targetReads: true }),
  record(AZ, "application_object_id naming the admin app's client ID: refused before any request", 'TARGET_IS_ADMIN', { user: (d) => set(d, 'application_object_id', DEMO.azure.adminAppId) }),
  record(WIZ, "a PAM configuration whose Wiz admin is the record's own account", 'TARGET_IS_ADMIN', {
    provider: (s) => ({ title: 'Wiz PAM configuration', type: 'pamNetworkConfiguration', fields: [text('wizClientId', DEMO.wiz.clientId), hidden('wizClientSecret', s)], custom: [] }),
  }),

  // Another app, another user, another account: outside the gateway owner's allow-list.
  record(AZ, 'another application of the tenant, with an allow-list naming only the demo app', 'TARGET_NOT_ALLOWED', {
    setup: (sb, i) => ({ objectId: sb.azure.createApp({ tenantId: DEMO.azure.tenantId, displayName: `other-app-${i}`, owners: [DEMO.azure.adminAppId] }).objectId }),
    user: (d, _s, x) => set(d, 'application_object_id', x.objectId!),
    env: ALLOW_ONLY_DEMO_APP,
    targetReads: true,
  }),
  record(AZ, "an app the admin does not own, remove_other_secrets on, with the allow-list 'owned'", 'TARGET_NOT_ALLOWED', {
    setup: (sb, i) => {
      const app = sb.azure.createApp({ tenantId: DEMO.azure.tenantId, displayName: `someone-elses-app-${i}` });
      sb.azure.addSecret(app.objectId, { displayName: 'their secret' });
      return { objectId: app.objectId };
    },
    user: (d, _s, x) => (set(d, 'application_object_id', x.objectId!), set(d, 'remove_other_secrets', 'true')),
    env: { KEEPER_ROTATE_ALLOW_AZURE_APPS: 'owned' },
    targetReads: true,
  }),
  record(AZ, 'the demo app named by its client ID, with an allow-list of another object ID', 'TARGET_NOT_ALLOWED', {
    user: (d) => set(d, 'application_object_id', DEMO.azure.targetAppId),
    env: { KEEPER_ROTATE_ALLOW_AZURE_APPS: GUID },
    targetReads: true,
  }),
  record(AZ, 'a record field named like the allow-list variable does not widen it', 'TARGET_NOT_ALLOWED', {
    setup: (sb, i) => ({ objectId: sb.azure.createApp({ tenantId: DEMO.azure.tenantId, displayName: `widened-app-${i}`, owners: [DEMO.azure.adminAppId] }).objectId }),
    user: (d, _s, x) => (set(d, 'application_object_id', x.objectId!), set(d, 'KEEPER_ROTATE_ALLOW_AZURE_APPS', x.objectId!)),
    env: ALLOW_ONLY_DEMO_APP,
    targetReads: true,
  }),
  record(AWS, 'a user name outside the allow-list patterns: refused before any request', 'TARGET_NOT_ALLOWED', { env: { KEEPER_ROTATE_ALLOW_AWS_USERS: 'svc-*, ci-?-bot' } }),
  record(AWS, 'a user outside the allow-list path (GetUser tells its path)', 'TARGET_NOT_ALLOWED', {
    setup: (sb) => (sb.aws.setPermissions(DEMO.aws.adminUserName, ['iam:ListAccessKeys', 'iam:CreateAccessKey', 'iam:DeleteAccessKey', 'iam:UpdateAccessKey', 'iam:GetUser']), {}),
    env: { KEEPER_ROTATE_ALLOW_AWS_USERS: '/rotated/' },
    targetReads: true,
  }),
  record(AWS, 'the gateway input carrying an allow-list of its own does not widen it', 'TARGET_NOT_ALLOWED', {
    env: { KEEPER_ROTATE_ALLOW_AWS_USERS: 'svc-*' },
    params: (p) => Object.assign(p, { KEEPER_ROTATE_ALLOW_AWS_USERS: '*' }),
  }),
  record(AWS, 'a record field named like the allow-list variable does not widen it', 'TARGET_NOT_ALLOWED', {
    user: (d) => set(d, 'KEEPER_ROTATE_ALLOW_AWS_USERS', '*'),
    env: { KEEPER_ROTATE_ALLOW_AWS_USERS: 'svc-*' },
  }),
  record(WIZ, 'an account name outside the allow-list patterns', 'TARGET_NOT_ALLOWED', { env: { KEEPER_ROTATE_ALLOW_WIZ_ACCOUNTS: 'ci-*, Demo-CI-Scanner' }, targetReads: true }),
  record(AZ, 'a malformed allow-list in the environment', 'SETTING_INVALID', { env: { KEEPER_ROTATE_ALLOW_AZURE_APPS: 'owned, every-app' } }),
  record(AWS, 'a malformed allow-list path in the environment', 'SETTING_INVALID', { env: { KEEPER_ROTATE_ALLOW_AWS_USERS: '/no-trailing-slash' } }),

  // A record made for another script.
  record(WIZ, 'an Azure record (its client_secret must not reach Wiz)', 'RECORD_WRONG_SCRIPT', { user: (d, s) => become(d, foreignRecord(AZ, s)) }),
  record(WIZ, 'an AWS record', 'RECORD_WRONG_SCRIPT', { user: (d, s) => become(d, foreignRecord(AWS, s)) }),
  record(AWS, 'a Wiz record (no IAM call for it)', 'RECORD_WRONG_SCRIPT', { user: (d, s) => become(d, foreignRecord(WIZ, s)) }),
  record(AWS, 'an Azure record', 'RECORD_WRONG_SCRIPT', { user: (d, s) => become(d, foreignRecord(AZ, s)) }),
  record(AZ, 'an AWS record', 'RECORD_WRONG_SCRIPT', { user: (d, s) => become(d, foreignRecord(AWS, s)) }),
  record(AZ, 'a Wiz record', 'RECORD_WRONG_SCRIPT', { user: (d, s) => become(d, foreignRecord(WIZ, s)) }),
  record(AZ, 'an Azure record that also carries AWS fields', 'RECORD_WRONG_SCRIPT', { user: (d, s) => set(d, 'aws_secret_access_key', s) }),
  record(WIZ, 'a Wiz record with an Azure application_object_id added', 'RECORD_WRONG_SCRIPT', { user: (d) => set(d, 'application_object_id', DEMO.azure.targetObjectId) }),

  // Names that would drive a terminal: every one printed escaped.
  record(AZ, 'a hostile record type and title', 'RECORD_WRONG_TYPE', { user: (d) => Object.assign(d, { type: `pamUser${HOSTILE}`, title: HOSTILE }) }),
  record(AWS, 'a hostile record type', 'RECORD_WRONG_TYPE', { user: (d) => void (d.type = HOSTILE) }),
  record(WIZ, 'a hostile Wiz account name outside the allow-list', 'TARGET_NOT_ALLOWED', {
    setup: (sb, i) => {
      const account = sb.wiz.createServiceAccount({ name: `${HOSTILE}-${i}`, expiresAt: new Date(Date.now() + 10 * 86_400_000) });
      return { clientId: account.clientId, clientSecret: account.clientSecret };
    },
    user: (d, _s, x) => (set(d, 'login', x.clientId!), set(d, 'client_secret', x.clientSecret!)),
    env: { KEEPER_ROTATE_ALLOW_WIZ_ACCOUNTS: 'demo-*' },
    targetReads: true,
  }),
];

export const CORPUS: readonly BadInputCase[] = [...INPUT, ...AZURE_RECORDS, ...AWS_RECORDS, ...WIZ_RECORDS, ...RECORD_EDITOR];
