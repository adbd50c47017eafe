// The sandbox's certificate is DER written by hand (src/sandbox/tls.ts); OpenSSL 3 refuses one that is not
// strictly DER, so each structure must be in its shortest form.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { test } from 'node:test';
import { derInteger, generateTlsMaterial } from '../../src/sandbox/tls.js';

test('DER integers are minimal and positive, whatever the random bytes start with', () => {
  const hex = (b: Buffer) => b.toString('hex');
  assert.equal(hex(derInteger(Buffer.from([0x02]))), '020102');
  assert.equal(hex(derInteger(Buffer.from([0x00, 0x12, 0x34]))), '02021234', 'a leading zero byte is padding');
  assert.equal(hex(derInteger(Buffer.from([0x00, 0x00, 0x92]))), '02020092', 'one zero kept for a leading 1 bit');
  assert.equal(hex(derInteger(Buffer.from([0x92, 0x01]))), '0203009201');
  assert.equal(hex(derInteger(Buffer.from([0x00, 0x00]))), '020100', 'zero is one byte');
});

test('a generated certificate parses and verifies', () => {
  const { certPem } = generateTlsMaterial();
  const cert = new X509Certificate(certPem);
  assert.ok(cert.checkHost('localhost'));
  assert.ok(cert.checkIP('127.0.0.1'));
  assert.ok(/^[0-9A-F]+$/.test(cert.serialNumber) && !cert.serialNumber.startsWith('00'), cert.serialNumber);
});
