// Injected by scripts/bundle-options.ts: a bundle's bare `crypto` (the web Crypto global) is Node's crypto module.
// The AWS SDK asks `typeof crypto !== "undefined" && typeof crypto.randomUUID === "function"` as it starts
// (@smithy/uuid), and on Node 26 that first touch of the global loads the web crypto modules (0.5-0.7 ms of a
// rotation's CPU; issue 19). node:crypto, which TLS has loaded already, has randomUUID and getRandomValues too,
// and its `subtle` is the same object the global's is (read only where used).
import * as nodeCrypto from 'node:crypto';
export { nodeCrypto as crypto };
