// The demo vault: a PAM configuration and one ready-to-rotate PAM User record per target, with fixed UIDs and
// IDs so the fixtures in fixtures/ replay against any fresh sandbox unchanged. Secrets are made at start-up and
// live only in the sandbox's memory (and the demo vault), never in a fixture.
import type { RecordData, RecordField } from '../keeper/record-data.js';
import type { AzureService } from './azure/index.js';
import type { KsmService } from './ksm/index.js';
import type { AwsAccount, EcrTokens } from './aws/index.js';
import type { WizTenant } from './wiz/index.js';

export const DEMO = {
  folderName: 'keeper-rotate demo',
  pamConfigurationUid: 'DemoPamConfiguration01',
  azure: {
    userRecordUid: 'DemoAzureAppSecret0001',
    tenantId: '5b0f2c1e-7d3a-4c55-9a1e-2f6d8c4b7a10',
    adminAppId: '0a8e4c2d-1b3f-4e5a-8c7d-9e0f1a2b3c4d',
    adminObjectId: '1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f',
    targetAppId: '7f3e2d1c-0b9a-4887-a665-544332211000',
    targetObjectId: '9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d',
    targetDisplayName: 'demo-target-app',
  },
  aws: {
    userRecordUid: 'DemoAwsIamAccessKey001',
    pamConfigurationUid: 'DemoAwsPamConfigurat01',
    userName: 'demo-deploy-bot',
    adminUserName: 'keeper-rotate-admin',
  },
  ecr: {
    userRecordUid: 'DemoAwsEcrPullSecret01',
    userName: 'demo-ecr-puller',
  },
  wiz: {
    userRecordUid: 'DemoWizServiceAcct0001',
    accountName: 'demo-ci-scanner',
    clientId: 'keeperrotatedemowizserviceaccount0000000000000000001',
  },
} as const;

export interface DemoVault {
  folderUid: string;
  pamConfigurationUid: string;
  azure: { userRecordUid: string; tenantId: string; adminAppId: string; targetObjectId: string; targetAppId: string };
  aws: { userRecordUid: string; pamConfigurationUid: string; userName: string; adminAccessKeyId: string };
  ecr: { userRecordUid: string; userName: string; accessKeyId: string };
  wiz: { userRecordUid: string; clientId: string };
}

const text = (label: string, value: string): RecordField => ({ type: 'text', label, value: [value] });
const secret = (label: string, value: string): RecordField => ({ type: 'secret', label, value: [value] });

/** The fields that make the gateway run only the attached scripts (Keeper's guides list both). */
const SCRIPT_ONLY_FIELDS = [text('NOOP', 'True'), text('Private Key Type', 'rsa-ssh')];

/** ECR's logins and where its registry listens: the demo ECR record starts with a live login to it. */
export interface DemoEcr {
  tokens: EcrTokens;
  registryUrl: string;
}

export function seedDemoVault({ ksm, azure, aws, wiz, ecr }: { ksm: KsmService; azure: AzureService; aws: AwsAccount; wiz: WizTenant; ecr?: DemoEcr }): DemoVault {
  const folderUid = ksm.createFolder(DEMO.folderName);
  const a = DEMO.azure;
  const dir = azure.directory;
  dir.createTenant({ tenantId: a.tenantId });
  dir.createApp({ tenantId: a.tenantId, displayName: 'keeper-rotate-admin', appId: a.adminAppId, objectId: a.adminObjectId, permission: 'Application.ReadWrite.OwnedBy' });
  dir.createApp({ tenantId: a.tenantId, displayName: a.targetDisplayName, appId: a.targetAppId, objectId: a.targetObjectId, owners: [a.adminAppId] });
  const adminSecret = dir.addSecret(a.adminObjectId, { displayName: 'admin secret' });
  // As a record made with Keeper's template and rotated once by Keeper's Python script would look.
  const start = new Date(Date.now() - 30 * 86_400_000);
  const current = dir.addSecret(a.targetObjectId, {
    displayName: 'Client Secret Rotated by Keeper',
    startDateTime: start,
    endDateTime: new Date(start.getTime() + 365 * 86_400_000),
  });

  const pamConfiguration: RecordData = {
    title: 'Demo PAM configuration (Azure)',
    type: 'pamAzureConfiguration',
    fields: [text('clientId', a.adminAppId), secret('clientSecret', adminSecret.secretText), text('tenantId', a.tenantId)],
    custom: [],
  };
  ksm.seedRecord({ uid: DEMO.pamConfigurationUid, folderUid, data: pamConfiguration });

  const azureUser: RecordData = {
    title: 'Demo Azure app secret',
    type: 'pamUser',
    fields: [{ type: 'login', value: [a.targetDisplayName] }, { type: 'password', value: ['not-used-by-this-script'] }],
    custom: [
      text('application_object_id', a.targetObjectId),
      text('client_secret_id', current.keyId),
      secret('client_secret', current.secretText),
      text('expires', current.endDateTime),
      ...SCRIPT_ONLY_FIELDS,
    ],
  };
  ksm.seedRecord({ uid: a.userRecordUid, folderUid, data: azureUser });

  // AWS: an admin user with only the access-key actions it needs, behind its own PAM configuration, and a
  // machine user whose CURRENT key the record holds, as Keeper's AWS script leaves it (one key).
  const w = DEMO.aws;
  // ListUsers and GetAccessKeyLastUsed are what `keeper-rotate discover aws` reads; a rotation needs the other four.
  aws.createUser({
    userName: w.adminUserName,
    permissions: ['iam:ListAccessKeys', 'iam:CreateAccessKey', 'iam:DeleteAccessKey', 'iam:UpdateAccessKey', 'iam:ListUsers', 'iam:GetAccessKeyLastUsed'],
  });
  const adminKey = aws.seedAccessKey(w.adminUserName);
  aws.createUser({ userName: w.userName });
  const currentKey = aws.seedAccessKey(w.userName, { createDate: new Date(Date.now() - 90 * 86_400_000) });
  ksm.seedRecord({
    uid: w.pamConfigurationUid,
    folderUid,
    data: {
      title: 'Demo PAM configuration (AWS)',
      type: 'pamAwsConfiguration',
      fields: [text('accessKeyId', adminKey.accessKeyId), secret('accessSecretKey', adminKey.secretAccessKey)],
      custom: [],
    },
  });
  ksm.seedRecord({
    uid: w.userRecordUid,
    folderUid,
    data: {
      title: 'Demo AWS IAM access key',
      type: 'pamUser',
      fields: [{ type: 'login', value: [w.userName] }, { type: 'password', value: ['not-used-by-this-script'] }],
      custom: [
        text('aws_access_key_id', currentKey.accessKeyId),
        secret('aws_secret_access_key', currentKey.secretAccessKey),
        text('CreateDate', new Date(currentKey.createDate).toISOString()),
        text('Access_Key_ID_Removed_during_previous_rotation', ''),
        ...SCRIPT_ONLY_FIELDS,
      ],
    },
  });

  // ECR: a user allowed to pull and to ask for registry logins (and nothing else), whose own key the record holds:
  // each run asks for a fresh login to the account's registry and keeps it as a Docker config. The record starts
  // with a live login, as one refreshed an hour ago would hold, so there is a working pull secret to keep.
  const e = DEMO.ecr;
  aws.createUser({ userName: e.userName, permissions: ['ecr:GetAuthorizationToken', 'ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer', 'ecr:BatchCheckLayerAvailability'] });
  const pullerKey = aws.seedAccessKey(e.userName);
  const pullerArn = aws.getUser(e.userName)!.arn;
  const login = ecr ? ecr.tokens.issue(pullerArn, aws.accountId, 'us-east-1') : undefined;
  const loginFields =
    ecr && login
      ? [
          secret('ecr_docker_config_json', JSON.stringify({ auths: { [new URL(ecr.registryUrl).host]: { username: 'AWS', password: login.password, auth: login.authorizationToken } } })),
          text('ecr_token_expires', new Date(login.expiresMs).toISOString()),
          text('ecr_token_id', 'ecr-seeded-by-demo'),
        ]
      : [];
  ksm.seedRecord({
    uid: e.userRecordUid,
    folderUid,
    data: {
      title: 'Demo AWS ECR pull secret',
      type: 'pamUser',
      fields: [{ type: 'login', value: [e.userName] }, { type: 'password', value: ['not-used-by-this-script'] }],
      custom: [
        text('aws_access_key_id', pullerKey.accessKeyId),
        secret('aws_secret_access_key', pullerKey.secretAccessKey),
        text('ecr_regions', 'us-east-1'),
        ...loginFields,
        ...SCRIPT_ONLY_FIELDS,
      ],
    },
  });

  // Wiz: a service account that rotates itself, as the seed tool runs it, ten days from expiry.
  const z = DEMO.wiz;
  const account = wiz.createServiceAccount({ name: z.accountName, clientId: z.clientId, expiresAt: new Date(Date.now() + 10 * 86_400_000) });
  ksm.seedRecord({
    uid: z.userRecordUid,
    folderUid,
    data: {
      title: 'Demo Wiz service account',
      type: 'pamUser',
      fields: [{ type: 'login', value: [account.clientId] }, { type: 'password', value: ['not-used-by-this-script'] }],
      custom: [secret('client_secret', account.clientSecret), text('expires', account.expiresAt ?? ''), ...SCRIPT_ONLY_FIELDS],
    },
  });

  return {
    folderUid,
    pamConfigurationUid: DEMO.pamConfigurationUid,
    azure: { userRecordUid: a.userRecordUid, tenantId: a.tenantId, adminAppId: a.adminAppId, targetObjectId: a.targetObjectId, targetAppId: a.targetAppId },
    aws: { userRecordUid: w.userRecordUid, pamConfigurationUid: w.pamConfigurationUid, userName: w.userName, adminAccessKeyId: adminKey.accessKeyId },
    ecr: { userRecordUid: e.userRecordUid, userName: e.userName, accessKeyId: pullerKey.accessKeyId },
    wiz: { userRecordUid: z.userRecordUid, clientId: account.clientId },
  };
}
