import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { ERROR_CODES } from '../src/errors.js';

test('every error code has a row in the README table, with its exit code', () => {
  const readme = readFileSync('README.md', 'utf8');
  for (const [code, exit] of Object.entries(ERROR_CODES)) {
    assert.match(readme, new RegExp(`^\\| \`${code}\` \\| ${exit} \\|`, 'm'), `README lacks a row for ${code} (exit ${exit})`);
  }
});
