import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { RecordData } from '../../src/keeper/record-data.js';
import { cloneData, findField, readText, writeText } from '../../src/keeper/record.js';

function pamUser(): RecordData {
  return {
    title: 'App secret',
    type: 'pamUser',
    fields: [
      { type: 'login', value: ['my-app'] },
      { type: 'password', value: ['dummy'] },
      { type: 'text', label: 'shadowed', value: ['from fields'] },
    ],
    custom: [
      { type: 'text', label: 'application_object_id', value: [' 3f0c7a4e-0000-4000-8000-000000000001 '] },
      { type: 'secret', label: 'client_secret', value: [] },
      { type: 'text', label: 'shadowed', value: ['from custom'] },
    ],
  };
}

describe('record fields', () => {
  test('reads by label, else by the type of an unlabelled field, custom fields first', () => {
    const data = pamUser();
    assert.equal(readText(data, 'login'), 'my-app');
    assert.equal(readText(data, 'application_object_id'), '3f0c7a4e-0000-4000-8000-000000000001');
    assert.equal(readText(data, 'shadowed'), 'from custom');
    assert.equal(readText(data, 'client_secret'), undefined, 'an empty value reads as absent');
    assert.equal(readText(data, 'nope'), undefined);
    assert.equal(findField(data, 'text'), undefined, 'a labelled field is not found by its type');
  });

  test('writes an existing field in place, keeping its type', () => {
    const data = pamUser();
    writeText(data, { label: 'client_secret', kind: 'secret' }, 'value-1');
    assert.deepEqual(findField(data, 'client_secret'), { type: 'secret', label: 'client_secret', value: ['value-1'] });
    assert.equal(data.custom?.length, 3);
  });

  test('creates a missing field with the right type', () => {
    const data = pamUser();
    writeText(data, { label: 'client_secret_id', kind: 'text' }, 'id-1');
    writeText(data, { label: 'api_token', kind: 'secret' }, 'tok');
    assert.deepEqual(data.custom?.slice(-2), [
      { type: 'text', label: 'client_secret_id', value: ['id-1'] },
      { type: 'secret', label: 'api_token', value: ['tok'] },
    ]);
    const bare: RecordData = { title: 't', type: 'pamUser', fields: [] };
    writeText(bare, { label: 'expires', kind: 'text' }, 'x');
    assert.deepEqual(bare.custom, [{ type: 'text', label: 'expires', value: ['x'] }]);
  });

  test('a clone is independent of the original', () => {
    const data = pamUser();
    const copy = cloneData(data);
    writeText(copy, { label: 'client_secret', kind: 'secret' }, 'changed');
    assert.equal(readText(data, 'client_secret'), undefined);
    assert.equal(readText(copy, 'client_secret'), 'changed');
  });
});
