// The server-side halves of the KSM SDK's crypto (node/nodePlatform.ts in @keeper-security/secrets-manager-core
// 17.5.0). Every layout here is what the SDK writes or reads byte for byte; a mismatch shows up in the SDK as an
// opaque "unable to authenticate data", so the sizes are checked where they are produced.
import {
  createCipheriv,
  createDecipheriv,
  createECDH,
  createHash,
  createHmac,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  verify,
} from 'node:crypto';

const GCM_IV = 12;
const GCM_TAG = 16;
const P256_POINT = 65;
const PKCS8_P256_WITH_PUBLIC = 138;
// DER SubjectPublicKeyInfo header for an uncompressed P-256 point: lets node:crypto verify with the raw 65 bytes
// the SDK sends and stores (it never sends a SPKI).
const SPKI_P256_PREFIX = Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex');
const CLIENT_ID_HASH_TAG = 'KEEPER_SECRETS_MANAGER_CLIENT_ID';

/** Web-safe base64 without padding, the SDK's `webSafe64FromBytes`. */
export const toWebSafe64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64url');
/** Accepts web-safe or standard base64, as the SDK's readers do. */
export const fromBase64 = (text: string): Buffer => Buffer.from(text.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
export const toBase64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64');

/** AES-256-GCM, `iv(12) || ciphertext || tag(16)`, no AAD: the only cipher KSM uses outside folder names. */
export function gcmEncrypt(key: Uint8Array, plaintext: Uint8Array): Buffer {
  const iv = randomBytes(GCM_IV);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([iv, body, cipher.getAuthTag()]);
}

/** Throws when the data is short or fails authentication (wrong key, tampered bytes). */
export function gcmDecrypt(key: Uint8Array, data: Uint8Array): Buffer {
  if (data.length < GCM_IV + GCM_TAG) throw new Error('ciphertext too short');
  const bytes = Buffer.from(data);
  const decipher = createDecipheriv('aes-256-gcm', key, bytes.subarray(0, GCM_IV));
  decipher.setAuthTag(bytes.subarray(bytes.length - GCM_TAG));
  return Buffer.concat([decipher.update(bytes.subarray(GCM_IV, bytes.length - GCM_TAG)), decipher.final()]);
}

/** AES-256-CBC `iv(16) || ciphertext`, PKCS#7: only folder names in get_folders still use it. */
export function cbcEncrypt(key: Uint8Array, plaintext: Uint8Array): Buffer {
  const iv = randomBytes(16);
  const cipher = createCipheriv('aes-256-cbc', key, iv);
  return Buffer.concat([iv, cipher.update(plaintext), cipher.final()]);
}

export interface ServerKeyPair {
  /** The raw 32-byte scalar. */
  privateKey: Buffer;
  /** The 65-byte uncompressed point clients get as `serverPublicKey`. */
  publicKey: Buffer;
}

export function generateServerKeyPair(): ServerKeyPair {
  const ecdh = createECDH('prime256v1');
  ecdh.generateKeys();
  return { privateKey: ecdh.getPrivateKey(), publicKey: ecdh.getPublicKey() };
}

function eciesKey(sharedSecret: Buffer): Buffer {
  // The SDK hashes the bare X coordinate with no KDF info (its optional `id` is never passed for transmission keys).
  return createHash('sha256').update(sharedSecret).digest();
}

/** The SDK's `publicEncrypt`: `ephemeralPublic(65) || GCM(SHA256(ECDH x), data)`. For tools and tests that speak raw KSM. */
export function encryptTransmissionKey(serverPublicKey: Uint8Array, transmissionKey: Uint8Array): Buffer {
  const ecdh = createECDH('prime256v1');
  ecdh.generateKeys();
  const sym = eciesKey(ecdh.computeSecret(serverPublicKey));
  return Buffer.concat([ecdh.getPublicKey(), gcmEncrypt(sym, transmissionKey)]);
}

/** Inverse of the SDK's `publicEncrypt` with the server's private key; throws on anything that is not a 32-byte key. */
export function decryptTransmissionKey(serverPrivateKey: Uint8Array, encryptedKey: Uint8Array): Buffer {
  if (encryptedKey.length < P256_POINT + GCM_IV + GCM_TAG) throw new Error('encrypted transmission key too short');
  const ecdh = createECDH('prime256v1');
  ecdh.setPrivateKey(serverPrivateKey);
  const bytes = Buffer.from(encryptedKey);
  const sym = eciesKey(ecdh.computeSecret(bytes.subarray(0, P256_POINT)));
  const key = gcmDecrypt(sym, bytes.subarray(P256_POINT));
  if (key.length !== 32) throw new Error(`transmission key is ${key.length} bytes, expected 32`);
  return key;
}

export interface ClientKeyPair {
  /** PKCS#8 DER with the public key inside: the SDK slices the scalar at [36,68) and the point from the last 65 bytes. */
  pkcs8: Buffer;
  publicKey: Buffer;
}

export function generateClientKeyPair(): ClientKeyPair {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const pkcs8 = privateKey.export({ format: 'der', type: 'pkcs8' });
  // Any other DER layout would make the SDK sign with garbage and every call would fail "Signature is invalid".
  if (pkcs8.length !== PKCS8_P256_WITH_PUBLIC) throw new Error(`PKCS#8 key is ${pkcs8.length} bytes, the SDK needs ${PKCS8_P256_WITH_PUBLIC}`);
  return { pkcs8, publicKey: Buffer.from(pkcs8.subarray(pkcs8.length - P256_POINT)) };
}

/** ECDSA P-256 / SHA-256 over `data` with a DER signature, checked against a raw 65-byte point. */
export function verifySignature(publicKey: Uint8Array, data: Uint8Array, signature: Uint8Array): boolean {
  try {
    const key = createPublicKey({ key: Buffer.concat([SPKI_P256_PREFIX, publicKey]), format: 'der', type: 'spki' });
    return verify('sha256', data, key, signature);
  } catch {
    return false;
  }
}

/** A client id the way the SDK derives it from a one-time token's client key. */
export function clientIdFromClientKey(clientKey: Uint8Array): string {
  return createHmac('sha512', clientKey).update(CLIENT_ID_HASH_TAG).digest('base64');
}

/**
 * A Keeper UID: 16 random bytes, web-safe base64 without padding (22 chars). Like the SDK's `getUidBytes`, it never
 * starts with `-`, which command lines would take for an option.
 */
export function newUid(): string {
  const bytes = randomBytes(16);
  if ((bytes[0]! & 0xf8) === 0xf8) bytes[0] = bytes[0]! & 0x7f;
  return toWebSafe64(bytes);
}

export const newKey = (): Buffer => randomBytes(32);
