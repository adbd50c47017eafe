// The Azure sandbox (Entra token endpoint + Microsoft Graph applications) as one `azure` SandboxService.
export { AZURE_OPERATIONS, AZURE_SERVICE, AzureService, DEFAULT_TOKEN_LIFETIME_SECONDS, GRAPH_DEFAULT_BUDGETS } from './service.js';
export type { AzureOperation, AzureServiceOptions, GraphLimit } from './service.js';
export { registerAzureControl } from './control.js';
export { APP_PERMISSIONS, Directory, DirectoryError, PERSONAL_ACCOUNT_PASSWORD_LIMIT, SIGN_IN_AUDIENCES, defaultPasswordEnd } from './directory.js';
export type {
  AppIds,
  AppPermission,
  AppState,
  AuthVerdict,
  CreateAppOptions,
  DirectoryOptions,
  DirectoryTiming,
  SecretOptions,
  SecretState,
  SignInAudience,
  TenantOptions,
  TenantState,
  TenantUpdate,
} from './directory.js';
export { GRAPH_APP_ID, GRAPH_RESOURCE } from './tokens.js';
export { isGuid, newSecretText } from './formats.js';
