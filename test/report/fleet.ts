// Records for the report's tests, seeded through the sandbox's in-process API beside the demo vault: one case
// per finding the report makes (expired, failing, disagreeing), hostile titles and messages, records the report
// must leave out, and a fleet of any size for the scale test.
import type { RecordData, RecordField } from '../../src/keeper/record-data.js';
import { DEMO } from '../../src/sandbox/demo-vault.js';
import type { Sandbox } from '../../src/sandbox/sandbox.js';

const DAY = 86_400_000;
export const text = (label: string, value: string): RecordField => ({ type: 'text', label, value: [value] });
export const secret = (label: string, value: string): RecordField => ({ type: 'secret', label, value: [value] });
const pamUser = (title: string, login: string, custom: RecordField[]): RecordData => ({
  title,
  type: 'pamUser',
  fields: [{ type: 'login', value: [login] }, { type: 'password', value: ['pam-user-password-not-for-any-report'] }],
  custom,
});

/** Markup, a bidi override, ANSI escapes, a line break and a formula: everything a title must not do in a report. */
export const HOSTILE_TITLE = '\u202Egnp.exe \u001b[31mred\u001b[0m <img src=x onerror=alert(1)><script>alert(2)</script>\nforged line';
export const FORMULA_TITLE = '=SUM(1+1)*cmd|\' /C calc\'!A0';
export const HOSTILE_MESSAGE = '</td></tr><script>alert(3)</script>\u2066isolated\u2069 \u009b2J';

export interface Cases {
  expiredAzure: string;
  failingWiz: string;
  disagreeingAws: string;
  hostileAws: string;
  ignored: string[];
}

/** The outcome fields a run writes (src/report/outcome-fields.ts). */
function outcome(exit: number, error: string, message: string, at = new Date()): RecordField[] {
  return [text('last_rotation_at', at.toISOString()), text('last_rotation_exit', String(exit)), text('last_rotation_error', error), text('last_rotation_message', message)];
}

export function seedFailingWiz(s: Sandbox): string {
  const account = s.wiz.createServiceAccount({ name: 'report-failing-scanner', expiresAt: new Date(Date.now() + 60 * DAY) });
  return s.ksm.seedRecord({
    folderUid: s.demo!.folderUid,
    data: pamUser('Wiz scanner whose last run failed', account.clientId, [
      secret('client_secret', account.clientSecret),
      text('expires', account.expiresAt ?? ''),
      ...outcome(3, 'TARGET_THROTTLED', 'Wiz kept throttling past the retries'),
    ]),
  }).uid;
}

export function seedExpiredAzure(s: Sandbox): string {
  const tenantId = DEMO.azure.tenantId;
  const app = s.azure.directory.createApp({ tenantId, displayName: 'report-expired-app', owners: [DEMO.azure.adminAppId] });
  const start = new Date(Date.now() - 400 * DAY);
  const made = s.azure.directory.addSecret(app.objectId, { displayName: 'old', startDateTime: start, endDateTime: new Date(Date.now() - 5 * DAY) });
  return s.ksm.seedRecord({
    folderUid: s.demo!.folderUid,
    data: pamUser(FORMULA_TITLE, 'report-expired-app', [
      text('application_object_id', app.objectId),
      text('client_secret_id', made.keyId),
      secret('client_secret', made.secretText),
      text('expires', made.endDateTime),
      ...outcome(0, '', 'rotated, saved and verified', start),
    ]),
  }).uid;
}

/** The record names a key the user no longer has, and the user has a key the record does not know. */
export function seedDisagreeingAws(s: Sandbox): string {
  s.aws.createUser({ userName: 'report-drifted-bot' });
  s.aws.seedAccessKey('report-drifted-bot', { createDate: new Date(Date.now() - 20 * DAY) });
  return s.ksm.seedRecord({
    folderUid: s.demo!.folderUid,
    data: pamUser('AWS bot whose key was replaced by hand', 'report-drifted-bot', [
      text('aws_access_key_id', 'AKIAREPORTGONEKEY001'),
      secret('aws_secret_access_key', 'reportGoneKeySecret0000000000000000000001'),
      text('CreateDate', new Date(Date.now() - 40 * DAY).toISOString()),
    ]),
  }).uid;
}

export function seedHostileAws(s: Sandbox): string {
  s.aws.createUser({ userName: 'report-hostile-bot' });
  const key = s.aws.seedAccessKey('report-hostile-bot', { createDate: new Date(Date.now() - 3 * DAY) });
  return s.ksm.seedRecord({
    folderUid: s.demo!.folderUid,
    data: pamUser(HOSTILE_TITLE, 'report-hostile-bot', [
      text('aws_access_key_id', key.accessKeyId),
      secret('aws_secret_access_key', key.secretAccessKey),
      text('CreateDate', new Date(key.createDate).toISOString()),
      ...outcome(0, '', HOSTILE_MESSAGE),
    ]),
  }).uid;
}

/** Records the report leaves out: not a PAM User, or a PAM User of none of our targets. */
export function seedIgnored(s: Sandbox): string[] {
  const login: RecordData = { title: 'A login with a client_secret', type: 'login', fields: [{ type: 'login', value: ['someone'] }], custom: [secret('client_secret', 'login-record-client-secret-0001')] };
  const other = pamUser('A PAM User for a database', 'dbadmin', []);
  return [s.ksm.seedRecord({ folderUid: s.demo!.folderUid, data: login }).uid, s.ksm.seedRecord({ folderUid: s.demo!.folderUid, data: other }).uid];
}

export function seedCases(s: Sandbox): Cases {
  return { failingWiz: seedFailingWiz(s), expiredAzure: seedExpiredAzure(s), disagreeingAws: seedDisagreeingAws(s), hostileAws: seedHostileAws(s), ignored: seedIgnored(s) };
}

/** `count` AWS records, each naming its user's one key, as a fleet brought under rotation looks. */
export function seedAwsFleet(s: Sandbox, count: number): string[] {
  const uids: string[] = [];
  for (let i = 0; i < count; i++) {
    const userName = `fleet-bot-${String(i).padStart(4, '0')}`;
    s.aws.createUser({ userName });
    const key = s.aws.seedAccessKey(userName, { createDate: new Date(Date.now() - (i % 120) * DAY) });
    uids.push(
      s.ksm.seedRecord({
        folderUid: s.demo!.folderUid,
        data: pamUser(`fleet bot ${i}`, userName, [text('aws_access_key_id', key.accessKeyId), secret('aws_secret_access_key', key.secretAccessKey), text('CreateDate', new Date(key.createDate).toISOString())]),
      }).uid,
    );
  }
  return uids;
}

/** `count` Azure records, each holding its app's one secret, the apps owned by the demo's admin app. */
export function seedAzureFleet(s: Sandbox, count: number): string[] {
  const uids: string[] = [];
  for (let i = 0; i < count; i++) {
    const app = s.azure.directory.createApp({ tenantId: DEMO.azure.tenantId, displayName: `fleet-app-${i}`, owners: [DEMO.azure.adminAppId] });
    const made = s.azure.directory.addSecret(app.objectId, { displayName: 'Client Secret Rotated by Keeper', startDateTime: new Date(Date.now() - DAY), endDateTime: new Date(Date.now() + 300 * DAY) });
    uids.push(
      s.ksm.seedRecord({
        folderUid: s.demo!.folderUid,
        data: pamUser(`fleet app ${i}`, `fleet-app-${i}`, [text('application_object_id', app.objectId), text('client_secret_id', made.keyId), secret('client_secret', made.secretText), text('expires', made.endDateTime)]),
      }).uid,
    );
  }
  return uids;
}

/** Every secret value in the vault (hidden and password fields) and on every target the sandbox serves. */
export function knownSecrets(s: Sandbox): string[] {
  const out: string[] = [];
  for (const r of s.ksm.listRecords()) {
    for (const f of [...r.data.fields, ...(r.data.custom ?? [])]) if (f.type === 'secret' || f.type === 'password') out.push(...f.value.map(String));
  }
  out.push(...s.wiz.listServiceAccounts().map((a) => a.clientSecret));
  for (const r of s.ksm.listRecords()) {
    const login = r.data.fields.find((f) => f.type === 'login')?.value[0];
    const user = typeof login === 'string' ? s.aws.getUser(login) : undefined;
    if (user) out.push(...s.aws.listKeys(login as string).map((k) => k.secretAccessKey));
    const appRef = r.data.custom?.find((f) => f.label === 'application_object_id')?.value[0];
    const app = typeof appRef === 'string' ? s.azure.getApp(appRef) : undefined;
    if (app) out.push(...app.secrets.map((x) => x.secretText));
  }
  out.push(...(s.azure.getApp(DEMO.azure.adminObjectId)?.secrets ?? []).map((x) => x.secretText));
  out.push(...s.aws.listKeys(DEMO.aws.adminUserName).map((k) => k.secretAccessKey));
  return [...new Set(out.filter((x) => x.length >= 8))];
}
