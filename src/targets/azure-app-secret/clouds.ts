// Microsoft's clouds: each has its own Entra login host and its own Graph, and a token is issued only for the
// Graph of the cloud that signs it. Microsoft's national-cloud guide ("Microsoft Graph national cloud
// deployments", learn.microsoft.com/graph/deployments) lists the pairs, and says the `.default` scope of a
// client-credentials request must name the national Graph (`https://graph.microsoft.us/.default`), not the global
// one: login.microsoftonline.us answers a request for graph.microsoft.com with AADSTS500011 (resource principal
// not found).
import { RotateError } from '../../errors.js';

export interface AzureCloud {
  name: string;
  /** What `KEEPER_ROTATE_AZURE_CLOUD` calls it. */
  id: string;
  authorityHost: string;
  /** The Graph resource: the token's audience, the scope's prefix, and where Graph is unless overridden. */
  graph: string;
}

export const AZURE_CLOUDS: readonly AzureCloud[] = [
  { id: 'public', name: 'global Azure', authorityHost: 'https://login.microsoftonline.com', graph: 'https://graph.microsoft.com' },
  { id: 'usgov', name: 'Azure US Government (GCC High, L4)', authorityHost: 'https://login.microsoftonline.us', graph: 'https://graph.microsoft.us' },
  { id: 'usgov-dod', name: 'Azure US Government DoD (L5)', authorityHost: 'https://login.microsoftonline.us', graph: 'https://dod-graph.microsoft.us' },
  { id: 'china', name: 'Azure operated by 21Vianet', authorityHost: 'https://login.chinacloudapi.cn', graph: 'https://microsoftgraph.chinacloudapi.cn' },
];

export const AZURE_CLOUD_ENV = 'KEEPER_ROTATE_AZURE_CLOUD';

/** Login hosts of each cloud (China has two; both US Government Graphs share one login host). */
const LOGIN_CLOUDS: Record<string, string[]> = {
  'login.microsoftonline.com': ['public'],
  'login.microsoftonline.us': ['usgov', 'usgov-dod'],
  'login.chinacloudapi.cn': ['china'],
  'login.partner.microsoftonline.cn': ['china'],
};

const byGraphHost = (url: string | undefined) => (url ? AZURE_CLOUDS.find((c) => new URL(c.graph).host === new URL(url).host) : undefined);
/** A login host's cloud; login.microsoftonline.us means GCC High unless graph_endpoint names the DoD Graph. */
const byLoginHost = (url: string | undefined) => {
  const id = url ? LOGIN_CLOUDS[new URL(url).host]?.[0] : undefined;
  return id ? AZURE_CLOUDS.find((c) => c.id === id) : undefined;
};

export interface ResolvedEndpoints {
  cloud: AzureCloud;
  authorityHost: string;
  graphEndpoint: string;
  graphResource: string;
}

/**
 * Which cloud a run talks to, and where. The first of these that names a cloud decides: the record's
 * `graph_endpoint` (only Microsoft's Graph hosts are accepted there), the gateway's `KEEPER_ROTATE_AZURE_CLOUD`,
 * the record's `authority_host`, a Microsoft host in the gateway's `KEEPER_ROTATE_GRAPH_ENDPOINT` or
 * `AZURE_AUTHORITY_HOST`; else global Azure. The gateway's `KEEPER_ROTATE_GRAPH_ENDPOINT` and
 * `AZURE_AUTHORITY_HOST` only change where requests go (a proxy, the sandbox): the token is always asked for the
 * cloud's own Graph resource, since that is what Entra issues and Graph accepts.
 */
export function resolveEndpoints(record: { authorityHost?: string | undefined; graphEndpoint?: string | undefined }, env: { cloud?: string | undefined; authorityHost?: string | undefined; graphEndpoint?: string | undefined }): ResolvedEndpoints {
  let named: AzureCloud | undefined;
  if (env.cloud) {
    named = AZURE_CLOUDS.find((c) => c.id === env.cloud!.trim().toLowerCase());
    if (!named) throw new RotateError('SETTING_INVALID', `${AZURE_CLOUD_ENV} must be one of ${AZURE_CLOUDS.map((c) => c.id).join(', ')}`);
  }
  // The gateway owner's cloud binds the record: a record editor must not send the admin secret of one cloud to
  // another cloud's login host (Microsoft's, but not the one the owner chose).
  if (named) {
    const recordGraph = byGraphHost(record.graphEndpoint);
    const recordLogin = record.authorityHost ? LOGIN_CLOUDS[new URL(record.authorityHost).host] : undefined;
    if ((recordGraph && recordGraph.id !== named.id) || (recordLogin && !recordLogin.includes(named.id))) {
      throw new RotateError('SETTING_INVALID', `this gateway rotates in ${named.name} (${AZURE_CLOUD_ENV}=${named.id}); the record's ${recordGraph && recordGraph.id !== named.id ? 'graph_endpoint' : 'authority_host'} belongs to another cloud`);
    }
  }
  const cloud = byGraphHost(record.graphEndpoint) ?? named ?? byLoginHost(record.authorityHost) ?? byGraphHost(env.graphEndpoint) ?? byLoginHost(env.authorityHost) ?? AZURE_CLOUDS[0]!;
  const authorityHost = record.authorityHost ?? env.authorityHost ?? cloud.authorityHost;
  const loginClouds = LOGIN_CLOUDS[new URL(authorityHost).host];
  if (loginClouds && !loginClouds.includes(cloud.id)) {
    throw new RotateError(
      'SETTING_INVALID',
      `the authority ${new URL(authorityHost).host} cannot issue tokens for ${cloud.graph} (${cloud.name}); use ${new URL(cloud.authorityHost).host}, or leave authority_host empty to follow graph_endpoint`,
    );
  }
  return { cloud, authorityHost, graphEndpoint: record.graphEndpoint ?? env.graphEndpoint ?? cloud.graph, graphResource: cloud.graph };
}
