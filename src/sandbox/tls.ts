// A self-signed certificate for the loopback sandbox, generated at run time so that no private key is ever
// committed. The clients we test (the KSM SDK, @azure/identity, the Graph client's fetch) refuse plain HTTP or
// untrusted certificates, so the sandbox must speak real TLS. Node has no X.509 writer; the DER below is the
// handful of structures one ECDSA P-256 certificate needs, which is smaller than a dependency tree.
import { X509Certificate, createPrivateKey, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface TlsMaterial {
  certPem: string;
  keyPem: string;
}

/** Environment variable naming a folder with `cert.pem` and `key.pem` for the sandbox to serve. */
export const SANDBOX_TLS_DIR_ENV = 'KEEPER_ROTATE_SANDBOX_TLS_DIR';

function tlv(tag: number, content: Buffer): Buffer {
  const len = content.length;
  let header: Buffer;
  if (len < 0x80) header = Buffer.from([tag, len]);
  else if (len < 0x100) header = Buffer.from([tag, 0x81, len]);
  else header = Buffer.from([tag, 0x82, len >> 8, len & 0xff]);
  return Buffer.concat([header, content]);
}
const seq = (...parts: Buffer[]) => tlv(0x30, Buffer.concat(parts));
const set = (...parts: Buffer[]) => tlv(0x31, Buffer.concat(parts));

function oid(dotted: string): Buffer {
  const [a, b, ...rest] = dotted.split('.').map(Number) as [number, number, ...number[]];
  const bytes = [40 * a + b];
  for (const n of rest) {
    const chunk = [n & 0x7f];
    for (let v = n >> 7; v > 0; v >>= 7) chunk.unshift((v & 0x7f) | 0x80);
    bytes.push(...chunk);
  }
  return tlv(0x06, Buffer.from(bytes));
}

/**
 * A non-negative DER INTEGER of the big-endian `value`. DER wants the shortest form: leading zero bytes go (a
 * random serial starting 0x00 0x12 is "illegal padding" to OpenSSL 3, which then refuses the whole certificate),
 * and a leading 1 bit needs one zero byte in front to stay positive.
 */
export function derInteger(value: Buffer): Buffer {
  let start = 0;
  while (start < value.length - 1 && value[start] === 0) start++;
  const v = value.subarray(start);
  return tlv(0x02, v[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), v]) : v);
}

function utcTime(d: Date): Buffer {
  const s = d.toISOString().replace(/[-:T]/g, '').slice(2, 14) + 'Z';
  return tlv(0x17, Buffer.from(s, 'ascii'));
}

const bitString = (content: Buffer) => tlv(0x03, Buffer.concat([Buffer.from([0]), content]));
const explicit = (n: number, content: Buffer) => tlv(0xa0 + n, content);
const TRUE = Buffer.from([0x01, 0x01, 0xff]);

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return seq(oid(id), ...(critical ? [TRUE] : []), tlv(0x04, value));
}

/** Generates a fresh P-256 key and a self-signed certificate valid for localhost, 127.0.0.1 and ::1. */
export function generateTlsMaterial(commonName = 'keeper-rotate sandbox'): TlsMaterial {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const name = seq(set(seq(oid('2.5.4.3'), tlv(0x0c, Buffer.from(commonName, 'utf8')))));
  const ecdsaWithSha256 = seq(oid('1.2.840.10045.4.3.2'));
  const now = Date.now();
  const san = seq(
    tlv(0x82, Buffer.from('localhost', 'ascii')),
    tlv(0x87, Buffer.from([127, 0, 0, 1])),
    tlv(0x87, Buffer.concat([Buffer.alloc(15), Buffer.from([1])])),
  );
  const tbs = seq(
    explicit(0, derInteger(Buffer.from([2]))),
    derInteger(randomBytes(16)),
    ecdsaWithSha256,
    name,
    seq(utcTime(new Date(now - 60_000)), utcTime(new Date(now + 30 * 86_400_000))),
    name,
    publicKey.export({ type: 'spki', format: 'der' }),
    explicit(
      3,
      seq(
        // A self-signed leaf is its own trust anchor; CA:TRUE keeps OpenSSL content when it is listed as one.
        extension('2.5.29.19', true, seq(TRUE)),
        extension('2.5.29.15', true, bitString(Buffer.from([0x84]))), // digitalSignature, keyCertSign
        extension('2.5.29.37', false, seq(oid('1.3.6.1.5.5.7.3.1'))), // serverAuth
        extension('2.5.29.17', false, san),
      ),
    ),
  );
  const signature = sign('sha256', tbs, privateKey);
  const der = seq(tbs, ecdsaWithSha256, bitString(signature));
  const certPem = `-----BEGIN CERTIFICATE-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n').trimEnd()}\n-----END CERTIFICATE-----\n`;
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  // Fail here, not in a client far away, if the DER above is ever wrong.
  if (!new X509Certificate(certPem).verify(publicKey)) throw new Error('generated certificate does not verify');
  return { certPem, keyPem };
}

/**
 * The certificate the sandbox serves: the one in `KEEPER_ROTATE_SANDBOX_TLS_DIR` when set (the test runner
 * creates one per run and trusts it through NODE_EXTRA_CA_CERTS), else a fresh one.
 */
export function sandboxTlsMaterial(env: NodeJS.ProcessEnv = process.env): TlsMaterial {
  const dir = env[SANDBOX_TLS_DIR_ENV];
  if (dir && existsSync(join(dir, 'cert.pem'))) {
    const material = {
      certPem: readFileSync(join(dir, 'cert.pem'), 'utf8'),
      keyPem: readFileSync(join(dir, 'key.pem'), 'utf8'),
    };
    createPrivateKey(material.keyPem); // a clear error now beats a TLS handshake failure later
    return material;
  }
  return generateTlsMaterial();
}
