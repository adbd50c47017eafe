import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resolveEndpoints } from '../../src/targets/azure-app-secret/clouds.js';

test('the record\'s graph_endpoint names the cloud: the token is asked for that Graph, at that cloud\'s login host', () => {
  for (const [graph, login] of [
    ['https://graph.microsoft.us', 'https://login.microsoftonline.us'],
    ['https://dod-graph.microsoft.us', 'https://login.microsoftonline.us'],
    ['https://microsoftgraph.chinacloudapi.cn', 'https://login.chinacloudapi.cn'],
    ['https://graph.microsoft.com', 'https://login.microsoftonline.com'],
  ]) {
    const e = resolveEndpoints({ graphEndpoint: graph }, {});
    assert.deepEqual({ graphResource: e.graphResource, graphEndpoint: e.graphEndpoint, authorityHost: e.authorityHost }, { graphResource: graph, graphEndpoint: graph, authorityHost: login });
  }
});

test('with nothing set, global Azure; the record\'s login host alone names its cloud (GCC High for login.microsoftonline.us)', () => {
  assert.equal(resolveEndpoints({}, {}).graphResource, 'https://graph.microsoft.com');
  assert.equal(resolveEndpoints({ authorityHost: 'https://login.microsoftonline.us' }, {}).graphResource, 'https://graph.microsoft.us');
  assert.equal(resolveEndpoints({ authorityHost: 'https://login.partner.microsoftonline.cn' }, {}).graphResource, 'https://microsoftgraph.chinacloudapi.cn');
});

test('the gateway\'s endpoints change where requests go, never which Graph the token is for', () => {
  const e = resolveEndpoints({}, { cloud: 'usgov', graphEndpoint: 'https://localhost:4443', authorityHost: 'https://localhost:4443' });
  assert.deepEqual(e, { cloud: e.cloud, authorityHost: 'https://localhost:4443', graphEndpoint: 'https://localhost:4443', graphResource: 'https://graph.microsoft.us' });
  assert.equal(resolveEndpoints({}, { graphEndpoint: 'https://proxy.example.internal' }).graphResource, 'https://graph.microsoft.com');
  assert.equal(resolveEndpoints({}, { graphEndpoint: 'https://dod-graph.microsoft.us' }).graphResource, 'https://dod-graph.microsoft.us');
});

test("a gateway that names its cloud binds the record: another cloud's Graph or login host on the record is refused", () => {
  const refused = (err: Error & { code?: string }) => err.code === 'SETTING_INVALID' && /this gateway rotates in .*KEEPER_ROTATE_AZURE_CLOUD=usgov/.test(err.message);
  assert.throws(() => resolveEndpoints({ authorityHost: 'https://login.microsoftonline.com' }, { cloud: 'usgov' }), refused);
  assert.throws(() => resolveEndpoints({ graphEndpoint: 'https://graph.microsoft.com' }, { cloud: 'usgov' }), refused);
  assert.throws(() => resolveEndpoints({ graphEndpoint: 'https://dod-graph.microsoft.us' }, { cloud: 'usgov' }), refused);
  assert.equal(resolveEndpoints({ authorityHost: 'https://login.microsoftonline.us' }, { cloud: 'usgov-dod' }).graphResource, 'https://dod-graph.microsoft.us', 'the US Government login host serves DoD too');
  assert.equal(resolveEndpoints({ graphEndpoint: 'https://graph.microsoft.us' }, { cloud: 'usgov' }).graphResource, 'https://graph.microsoft.us');
});

test('a login host of another cloud than the Graph is refused before any request, and so is an unknown cloud name', () => {
  assert.throws(() => resolveEndpoints({ graphEndpoint: 'https://graph.microsoft.us', authorityHost: 'https://login.microsoftonline.com' }, {}), (err: Error & { code?: string }) => err.code === 'SETTING_INVALID' && /login\.microsoftonline\.com cannot issue tokens for https:\/\/graph\.microsoft\.us/.test(err.message));
  assert.throws(() => resolveEndpoints({ graphEndpoint: 'https://microsoftgraph.chinacloudapi.cn' }, { authorityHost: 'https://login.microsoftonline.us' }), /cannot issue tokens/);
  assert.throws(() => resolveEndpoints({}, { cloud: 'mars' }), /KEEPER_ROTATE_AZURE_CLOUD must be one of public, usgov, usgov-dod, china/);
});
