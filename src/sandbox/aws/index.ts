// The AWS sandbox: one account's IAM users, keys and roles behind two awsQuery services, `iam` and `sts`, on
// their own hosts, with real SigV4 checking so the unmodified @aws-sdk/client-iam and client-sts talk to it; and
// ECR's API (`ecr`, awsJson1.1, for @aws-sdk/client-ecr) with the registry its logins open (`ecr-registry`).
export {
  ACCESS_KEY_STATUSES,
  AwsAccount,
  DEFAULT_MAX_SESSION_DURATION_SECONDS,
  DEFAULT_SESSION_DURATION_SECONDS,
  IAM_SIGNING_REGION,
  PARTITIONS,
} from './account.js';
export type {
  AccessKeyState,
  AccessKeyStatus,
  AccountOptions,
  AccountTiming,
  AssumeRoleInput,
  CreateRoleOptions,
  CreateUserOptions,
  LastUsed,
  Partition,
  Permissions,
  Principal,
  Resource,
  RolePermissions,
  RoleState,
  SeedKeyOptions,
  TemporaryCredentials,
  UserState,
} from './account.js';
export { ACCESS_KEYS_PER_USER, AwsError } from './errors.js';
export { IAM_DEFAULT_BUDGET, IAM_NAMESPACE, IAM_OPERATIONS, IAM_SERVICE, IAM_VERSION, IamService } from './iam.js';
export { signingScope } from './query.js';
export type { QueryBudgetOptions } from './query.js';
export type { IamOperation } from './iam.js';
export { MAX_SESSION_DURATION_SECONDS, MIN_SESSION_DURATION_SECONDS, STS_DEFAULT_BUDGET, STS_NAMESPACE, STS_OPERATIONS, STS_SERVICE, STS_VERSION, StsService, regionInPartition } from './sts.js';
export type { StsOperation } from './sts.js';
export { registerAwsControl, registerEcrControl } from './control.js';
export { ECR_ACTION, ECR_DEFAULT_BUDGET, ECR_OPERATIONS, ECR_SERVICE, ECR_TARGET_PREFIX, EcrService } from './ecr.js';
export type { EcrOperation } from './ecr.js';
export { ECR_TOKEN_LIFETIME_MS, ECR_USER, EcrTokens } from './ecr-tokens.js';
export type { IssuedToken, TokenState, TokenVerdict } from './ecr-tokens.js';
export { EXPIRED_MESSAGE, REGISTRY_OPERATIONS, REGISTRY_SERVICE, RegistryService } from './registry.js';
export { IMDS_OPERATIONS, IMDS_SERVICE, InstanceMetadataService } from './imds.js';
export { MAX_CLOCK_SKEW_MS, signRequest, verifySigV4 } from './sigv4.js';
export type { SignInput, SignableRequest, VerifiedRequest, VerifyOptions } from './sigv4.js';
