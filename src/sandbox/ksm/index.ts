// The KSM sandbox's public API: the service, its config and store types, and the crypto helpers tools need to
// speak raw KSM (tests that send requests the SDK never would).
export { KsmService, KSM_ENDPOINTS, type KsmEndpoint, type KsmServiceOptions } from './service.js';
export type { ClientAccess, GatewayConfig } from './clients.js';
export { KSM_DEFAULT_BUDGET, type KsmBudget } from './budget.js';
export {
  TRANSACTION_MODELS,
  isRecordData,
  type FolderView,
  type RecordView,
  type SeedRecordInput,
  type TransactionModel,
  type TransactionType,
} from './vault.js';
export { KsmError } from './errors.js';
export { encryptTransmissionKey, fromBase64, gcmDecrypt, gcmEncrypt, toBase64, toWebSafe64 } from './crypto.js';
export { padRecordJson } from './responses.js';
