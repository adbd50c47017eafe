// Every target the keeper-rotate executable runs, by the name its first argument gives. Each script is loaded only
// once chosen (multi-call.ts); a new target is one line here and its own entry point in src/entrypoints.
import type { TargetEntry } from './multi-call.js';

export const TARGETS: Readonly<Record<string, TargetEntry>> = {
  'azure-app-secret': { title: 'Azure app client secret (Microsoft Graph)', load: async () => (await import('../targets/azure-app-secret/script.js')).script },
  'aws-iam-access-key': { title: 'AWS IAM access key (CURRENT/LAST)', load: async () => (await import('../targets/aws-iam-access-key/script.js')).script },
  'aws-ecr-pull-secret': { title: 'AWS ECR pull secret (registry logins, refreshed)', load: async () => (await import('../targets/aws-ecr-pull-secret/script.js')).script },
  'wiz-service-account': { title: 'Wiz service account client secret', load: async () => (await import('../targets/wiz-service-account/script.js')).script },
};
