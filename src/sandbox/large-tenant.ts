// The sandbox's "large tenant": a fleet to discover, as an admin who brings 1,000 credentials under rotation has
// them. N IAM users on a path (0, 1 or 2 keys each, of varied ages, some used), N Entra applications owned by the
// demo's admin app (one secret each), N Wiz service accounts, a PAM configuration per target whose admin may list
// them, and an empty shared folder for the records. Everything is a pure function of N and the index, so two runs
// seed the same fleet (secrets aside). `POST /sandbox/large-tenant` seeds it on a running sandbox.
import type { RecordData, RecordField } from '../keeper/record-data.js';
import type { AwsAccount } from './aws/index.js';
import type { AzureService } from './azure/index.js';
import { DEMO } from './demo-vault.js';
import type { KsmService } from './ksm/index.js';
import type { WizTenant } from './wiz/index.js';

export interface LargeTenantOptions {
  /** IAM users on `path` (default 0). */
  awsUsers?: number;
  /** Entra applications owned by the demo's admin app (default 0). */
  azureApps?: number;
  /** Wiz service accounts (default 0). */
  wizAccounts?: number;
  /** The users' IAM path (default `/fleet/`). */
  path?: string;
  /** Name prefix for everything seeded (default `fleet`), so two seedings can sit side by side. */
  prefix?: string;
}

export interface LargeTenant {
  /** The shared folder for discovered records (empty; shared with the gateway's application, editable). */
  folderUid: string;
  path: string;
  awsUsers: string[];
  azureApps: Array<{ objectId: string; appId: string; displayName: string }>;
  wizClientIds: string[];
  /** PAM configurations whose admin can list each target (undefined for a target not seeded). */
  pamConfigurations: { aws?: string; azure: string; wiz?: string };
}

const DAY = 86_400_000;
/** The most of one kind a seeding makes: enough for a fleet, small enough that a typo cannot exhaust memory. */
export const LARGE_TENANT_MAX = 20_000;

const text = (label: string, value: string): RecordField => ({ type: 'text', label, value: [value] });
const secret = (label: string, value: string): RecordField => ({ type: 'secret', label, value: [value] });

function count(value: number | undefined, name: string): number {
  const n = value ?? 0;
  if (!Number.isSafeInteger(n) || n < 0 || n > LARGE_TENANT_MAX) throw new Error(`${name} must be an integer from 0 to ${LARGE_TENANT_MAX}`);
  return n;
}

const pad = (i: number) => String(i).padStart(5, '0');

export function seedLargeTenant(s: { ksm: KsmService; aws: AwsAccount; azure: AzureService; wiz: WizTenant }, options: LargeTenantOptions = {}): LargeTenant {
  const awsUsers = count(options.awsUsers, 'awsUsers');
  const azureApps = count(options.azureApps, 'azureApps');
  const wizAccounts = count(options.wizAccounts, 'wizAccounts');
  const path = options.path ?? '/fleet/';
  const prefix = options.prefix ?? 'fleet';
  if (!/^[a-z0-9-]{1,20}$/.test(prefix)) throw new Error('prefix must be 1 to 20 lower-case letters, digits or -');
  if (!/^\/(?:[\x21-\x7e]+\/)?$/.test(path)) throw new Error('path must be an IAM path such as /fleet/');
  const now = Date.now();
  const folderUid = s.ksm.createFolder(`keeper-rotate ${prefix}`);
  const pamFolder = s.ksm.createFolder(`keeper-rotate ${prefix} admin`);
  const out: LargeTenant = { folderUid, path, awsUsers: [], azureApps: [], wizClientIds: [], pamConfigurations: { azure: DEMO.pamConfigurationUid } };

  if (awsUsers > 0) {
    // An admin that may list users and read keys, and nothing else: what discovery needs.
    const admin = `${prefix}-discovery-admin`;
    s.aws.createUser({ userName: admin, permissions: ['iam:ListUsers', 'iam:ListAccessKeys', 'iam:GetAccessKeyLastUsed', 'iam:CreateAccessKey', 'iam:DeleteAccessKey', 'iam:UpdateAccessKey'] });
    const key = s.aws.seedAccessKey(admin);
    out.pamConfigurations.aws = s.ksm.seedRecord({
      folderUid: pamFolder,
      data: { title: `${prefix} PAM configuration (AWS)`, type: 'pamAwsConfiguration', fields: [text('accessKeyId', key.accessKeyId), secret('accessSecretKey', key.secretAccessKey)], custom: [] },
    }).uid;
    for (let i = 0; i < awsUsers; i++) {
      const userName = `${prefix}-svc-${pad(i)}`;
      s.aws.createUser({ userName, path });
      // 0, 1 or 2 keys in turn; ages spread over about two years; every other key used some days ago.
      for (let k = 0; k < i % 3; k++) {
        const made = s.aws.seedAccessKey(userName, { createDate: new Date(now - ((i * 37 + k * 101) % 700) * DAY - DAY), status: k === 1 && i % 2 === 0 ? 'Inactive' : 'Active' });
        if ((i + k) % 2 === 0) s.aws.recordKeyUse(made.accessKeyId, 'sts', 'us-east-1', now - ((i * 13) % 90) * DAY);
      }
      out.awsUsers.push(userName);
    }
  }

  if (azureApps > 0) {
    const a = DEMO.azure;
    for (let i = 0; i < azureApps; i++) {
      const displayName = `${prefix}-app-${pad(i)}`;
      const ids = s.azure.directory.createApp({ tenantId: a.tenantId, displayName, owners: [a.adminAppId] });
      const start = new Date(now - ((i * 29) % 300) * DAY);
      s.azure.directory.addSecret(ids.objectId, { displayName: 'seeded', startDateTime: start, endDateTime: new Date(start.getTime() + 365 * DAY) });
      out.azureApps.push({ objectId: ids.objectId, appId: ids.appId, displayName });
    }
  }

  if (wizAccounts > 0) {
    const admin = s.wiz.createServiceAccount({ name: `${prefix}-discovery-admin`, scopes: ['read:service_accounts', 'update:service_accounts'] });
    const data: RecordData = {
      title: `${prefix} PAM configuration (Wiz)`,
      type: 'pamNetworkConfiguration',
      fields: [],
      custom: [text('wizClientId', admin.clientId), secret('wizClientSecret', admin.clientSecret)],
    };
    out.pamConfigurations.wiz = s.ksm.seedRecord({ folderUid: pamFolder, data }).uid;
    for (let i = 0; i < wizAccounts; i++) {
      const account = s.wiz.createServiceAccount({ name: `${prefix}-scanner-${pad(i)}`, expiresAt: i % 4 === 0 ? null : new Date(now + ((i * 11) % 120) * DAY + DAY) });
      out.wizClientIds.push(account.clientId);
    }
  }
  return out;
}
