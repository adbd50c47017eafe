// The KSM request/response envelope: headers, the ECIES-wrapped transmission key, the AES-GCM body and the ECDSA
// signature, checked in the order the real service must check them (it cannot know the client before it has
// decrypted the body that names it).
import type { SandboxRequest } from '../service.js';
import type { AppClient, ClientRegistry } from './clients.js';
import { decryptTransmissionKey, fromBase64, gcmDecrypt, gcmEncrypt, verifySignature } from './crypto.js';
import { badRequest, invalidSignature, unknownClient, wrongServerKey } from './errors.js';

export interface OpenedRequest {
  transmissionKey: Buffer;
  payload: Record<string, unknown>;
  client: AppClient;
}

export interface ServerSecrets {
  privateKey: Buffer;
  publicKeyId: string;
}

function header(req: SandboxRequest, name: string): string | undefined {
  const value = req.headers[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}

/** Throws a KsmError for every way a request can be unreadable or unauthenticated. */
export function openRequest(req: SandboxRequest, server: ServerSecrets, clients: ClientRegistry): OpenedRequest {
  const keyId = header(req, 'PublicKeyId');
  const wrappedKey = header(req, 'TransmissionKey');
  const authorization = header(req, 'Authorization');
  if (!keyId || !wrappedKey || !authorization) throw badRequest('PublicKeyId, TransmissionKey and Authorization headers are required');
  if (keyId.trim() !== server.publicKeyId) throw wrongServerKey(server.publicKeyId);
  const signatureMatch = /^Signature (\S+)$/.exec(authorization.trim());
  if (!signatureMatch) throw badRequest('Authorization must be "Signature <base64>"');

  const encryptedKey = fromBase64(wrappedKey);
  let transmissionKey: Buffer;
  try {
    transmissionKey = decryptTransmissionKey(server.privateKey, encryptedKey);
  } catch {
    throw badRequest('Unable to decrypt the transmission key');
  }
  let plaintext: Buffer;
  try {
    plaintext = gcmDecrypt(transmissionKey, req.body);
  } catch {
    throw badRequest('Unable to decrypt the request body');
  }
  let payload: unknown;
  try {
    payload = JSON.parse(plaintext.toString('utf8'));
  } catch {
    throw badRequest('The request body is not JSON');
  }
  if (!payload || typeof payload !== 'object' || Array.isArray(payload)) throw badRequest('The request body is not a JSON object');
  const clientId = (payload as Record<string, unknown>).clientId;
  if (typeof clientId !== 'string' || !clientId) throw badRequest('clientId is required');
  const client = clients.get(clientId);
  if (!client) throw unknownClient();
  // The SDK signs the bytes as sent: the wrapped key exactly as in the header, then the encrypted body.
  const signed = Buffer.concat([encryptedKey, req.body]);
  if (!verifySignature(client.publicKey, signed, fromBase64(signatureMatch[1]!))) throw invalidSignature();
  return { transmissionKey, payload: payload as Record<string, unknown>, client };
}

export function sealResponse(transmissionKey: Buffer, value: unknown): Buffer {
  return gcmEncrypt(transmissionKey, Buffer.from(JSON.stringify(value), 'utf8'));
}
