// One KSM request built by hand exactly as the SDK builds it (transmission key, AES-GCM body, ECDSA signature), so a
// test can send a payload the SDK would refuse to build, e.g. a create in a folder whose key it does not hold.
import { createPrivateKey, randomBytes, sign } from 'node:crypto';
import { request } from 'node:https';
import { type GatewayConfig, encryptTransmissionKey, fromBase64, gcmEncrypt } from '../../src/sandbox/ksm/index.js';

export interface RawReply {
  status: number;
  body: Buffer;
  transmissionKey: Buffer;
}

/** `payload`: a JSON object, or raw bytes (a body the SDK would never send). */
export function rawKsmCall(cfg: GatewayConfig, endpoint: string, payload: Buffer | object): Promise<RawReply> {
  const transmissionKey = randomBytes(32);
  const encryptedKey = encryptTransmissionKey(fromBase64(cfg.serverPublicKey), transmissionKey);
  const body = gcmEncrypt(transmissionKey, Buffer.isBuffer(payload) ? payload : Buffer.from(JSON.stringify(payload)));
  const key = createPrivateKey({ key: fromBase64(cfg.privateKey), format: 'der', type: 'pkcs8' });
  const signature = sign('sha256', Buffer.concat([encryptedKey, body]), key);
  return new Promise((resolve, reject) => {
    const req = request(
      `https://${cfg.hostname}/api/rest/sm/v1/${endpoint}`,
      {
        method: 'POST',
        headers: {
          'Content-Type': 'application/octet-stream',
          PublicKeyId: cfg.serverPublicKeyId,
          TransmissionKey: encryptedKey.toString('base64'),
          Authorization: `Signature ${signature.toString('base64')}`,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), transmissionKey }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}
