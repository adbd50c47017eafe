// The Wiz sandbox: `wiz-auth` (the OAuth token endpoint) and `wiz-api` (GraphQL for service accounts), two
// SandboxServices over one WizTenant, as Wiz serves them from two hosts.
export { WIZ_AUTH_OPERATIONS, WIZ_AUTH_SERVICE, WizAuthService } from './auth.js';
export type { WizAuthOperation } from './auth.js';
export { WIZ_API_OPERATIONS, WIZ_API_SERVICE, WizApiService } from './api.js';
export type { WizApiOperation } from './api.js';
export { registerWizControl } from './control.js';
export { ERROR_STATUS } from './api.js';
export { DEFAULT_API_BUDGET, WizRateLimits } from './limits.js';
export type { WizRateLimitOptions, WizRateLimitSettings } from './limits.js';
export { MAX_PAGE_SIZE, REQUIRED_SCOPE, SCOPES_GRANTING, WIZ_API_FIELDS } from './resolvers.js';
export type { WizApiField } from './resolvers.js';
export { WIZ_SCHEMA_SDL, wizSchema } from './schema.js';
export {
  DEFAULT_DATA_CENTER,
  DEFAULT_TOKEN_LIFETIME_SECONDS,
  SERVICE_ACCOUNT_TYPES,
  WIZ_ROTATION_SCOPES,
  WizError,
  WizTenant,
} from './tenant.js';
export type {
  AuthVerdict,
  BearerVerdict,
  CreateServiceAccountOptions,
  ServiceAccountState,
  ServiceAccountType,
  ServiceAccountUpdate,
  TenantSettings,
  WizErrorCode,
  WizTenantOptions,
} from './tenant.js';
export { WIZ_API_AUDIENCE } from './tokens.js';
export type { WizAccessTokenClaims } from './tokens.js';
export { newClientId, newClientSecret, wizDateTime } from './formats.js';
