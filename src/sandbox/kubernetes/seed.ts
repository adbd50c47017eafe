// What every sandbox's cluster starts with: the gateway's service account token (the user the kubeconfig names)
// and, in the demo, two namespaces it may write. `demo` is the one the demo records deliver to; `other-team` is
// one RBAC lets the gateway write too, as a shared gateway's cluster role often does, so the demo can show that
// the gateway's allow-list (KEEPER_ROTATE_ALLOW_K8S_SECRETS), not RBAC, is what stops a record editor from
// aiming a delivery at another team's Secret.
import type { KubernetesCluster } from './cluster.js';
import type { RbacRule } from './rbac.js';

export const GATEWAY_SERVICE_ACCOUNT = 'system:serviceaccount:keeper:gateway';

export interface SandboxKubernetes {
  cluster: KubernetesCluster;
  /** The bearer token of GATEWAY_SERVICE_ACCOUNT, written into DIR/kubeconfig. */
  gatewayToken: string;
}

/** The gateway's rules in the demo: every Secret in `demo` and `other-team`, and the one Deployment demo/app. */
export const DEMO_GATEWAY_RULES: RbacRule[] = [
  { namespace: 'demo', resources: ['secrets'], verbs: ['get', 'create', 'patch', 'update'], binding: 'keeper-gateway' },
  { namespace: 'demo', resources: ['deployments'], verbs: ['get', 'patch'], resourceNames: ['app'], binding: 'keeper-gateway' },
  { namespace: 'other-team', resources: ['secrets'], verbs: ['get', 'create', 'patch', 'update'], binding: 'keeper-gateway' },
];

export function seedKubernetes(cluster: KubernetesCluster, options: { demo: boolean }): SandboxKubernetes {
  const gatewayToken = cluster.addToken(GATEWAY_SERVICE_ACCOUNT, options.demo ? DEMO_GATEWAY_RULES : []);
  if (options.demo) {
    cluster.createNamespace('demo');
    cluster.createNamespace('other-team');
    // A key the application put there itself: a delivery must leave it as it is.
    cluster.seedSecret({ namespace: 'demo', name: 'app-creds', stringData: { database_host: 'db.demo.svc' }, labels: { app: 'app' } });
    cluster.seedDeployment({ namespace: 'demo', name: 'app' });
    cluster.seedSecret({ namespace: 'other-team', name: 'app-creds', stringData: { database_host: 'db.other-team.svc' } });
    cluster.seedDeployment({ namespace: 'other-team', name: 'app' });
  }
  return { cluster, gatewayToken };
}
