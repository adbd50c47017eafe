// discover azure: the applications the admin app owns (its service principal's ownedObjects), or with --all
// every application in the tenant, each with its client secrets (key IDs, expiry). Graph pages every list
// (@odata.nextLink); the Graph client honours Retry-After on 429.
import type { Deadline } from '../deadline.js';
import { RotateError } from '../errors.js';
import type { Secret } from '../secret.js';
import { ALLOW_AZURE_APPS } from '../targets/allow-list.js';
import { AZURE_CLOUD_ENV, resolveEndpoints } from '../targets/azure-app-secret/clouds.js';
import type { Application } from '../targets/azure-app-secret/graph.js';
import { azureAllowList } from '../targets/azure-app-secret/index.js';
import { type Candidate, type Discovery, ageText } from './candidate.js';

export interface AzureDiscoverInput {
  env: NodeJS.ProcessEnv;
  deadline: Deadline;
  tenantId: string;
  clientId: string;
  secret: Secret;
  all: boolean;
  /** Records already in the vault, by lower-cased object ID or client ID. */
  existing: Map<string, string>;
  log: (line: string) => void;
}

function envUrl(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const v = env[name];
  if (!v) return undefined;
  if (!/^https:\/\/[^/?#@]+/.test(v)) throw new RotateError('SETTING_INVALID', `${name} must be an https:// URL`);
  return v.replace(/\/+$/, '');
}

export async function discoverAzure(input: AzureDiscoverInput): Promise<Discovery> {
  const graph = await import('../targets/azure-app-secret/graph.js');
  const endpoints = resolveEndpoints({}, { cloud: input.env[AZURE_CLOUD_ENV], authorityHost: envUrl(input.env, 'AZURE_AUTHORITY_HOST'), graphEndpoint: envUrl(input.env, 'KEEPER_ROTATE_GRAPH_ENDPOINT') });
  const credential = graph.newCredential(input.tenantId, input.clientId, input.secret, endpoints);
  const client = new graph.GraphApplications(credential, endpoints, input.deadline);
  const admin = input.clientId.toLowerCase();
  const allow = azureAllowList(input.env);
  let requests = 0;
  const owned = new Set<string>();
  const apps: Application[] = [];
  for await (const page of client.applications(input.all ? 'all' : { ownedBy: admin })) {
    requests += 1;
    apps.push(...page);
    if (!input.all) for (const a of page) owned.add(a.id.toLowerCase());
  }
  // An allow-list of `owned` decides by ownership: with --all, which ones the admin owns is one more list.
  if (input.all && allow?.owned) {
    for await (const page of client.applications({ ownedBy: admin })) {
      requests += 1;
      for (const a of page) owned.add(a.id.toLowerCase());
    }
  }
  input.log(`discover azure: ${apps.length} application(s) ${input.all ? 'in the tenant' : `owned by the admin app ${admin}`}`);
  const out: Discovery = { candidates: [], skipped: [], requests };
  for (const app of apps) {
    const objectId = app.id.toLowerCase();
    const appId = app.appId.toLowerCase();
    if (appId === admin) {
      out.skipped.push({ id: objectId, reason: 'is-admin', detail: 'the admin app itself' });
      continue;
    }
    if (allow && !allow.ids.has(objectId) && !allow.ids.has(appId) && !(allow.owned && owned.has(objectId))) {
      out.skipped.push({ id: objectId, reason: 'not-allowed', detail: `not in ${ALLOW_AZURE_APPS} (${allow.entries.join(', ')})` });
      continue;
    }
    const existing = input.existing.get(objectId) ?? input.existing.get(appId);
    if (existing) {
      out.skipped.push({ id: objectId, reason: 'has-record', detail: `record ${existing}` });
      continue;
    }
    const secrets = app.passwordCredentials.map((p) => `${p.keyId} (${p.displayName ?? 'no name'}, expires ${ageText(p.endDateTime ? new Date(p.endDateTime) : undefined)})`);
    out.candidates.push({
      target: 'azure-app-secret',
      id: objectId,
      aliases: [appId],
      title: `Azure app ${app.displayName}`,
      login: app.displayName,
      values: { application_object_id: objectId },
      notes: `discovered: client ID ${appId}; ${secrets.length === 0 ? 'no client secrets' : `secrets ${secrets.join('; ')}`}`,
    });
  }
  return out;
}
