// The Kubernetes sandbox: one cluster's state (cluster.ts) behind the API server subset (api.ts), its RBAC
// (rbac.ts), its error bodies (status.ts), its patch formats (patch.ts) and its control routes (control.ts).
export { KUBERNETES_DEFAULT_BUDGET, KUBERNETES_OPERATIONS, KUBERNETES_SERVICE, KubernetesService, base64Error } from './api.js';
export type { KubernetesOperation, KubernetesServiceOptions } from './api.js';
export { DEFAULT_SECRET_TYPE, KubernetesCluster } from './cluster.js';
export type { Identity, JsonObject, SeedDeployment, SeedSecret } from './cluster.js';
export { registerKubernetesControl } from './control.js';
export { authorize, parseRules, ruleAllows } from './rbac.js';
export type { RbacRule, ResourceAttributes } from './rbac.js';
export { writeKubeconfig, kubeconfigText } from './kubeconfig.js';
export type { KubeconfigOptions } from './kubeconfig.js';
export { DEMO_GATEWAY_RULES, GATEWAY_SERVICE_ACCOUNT, seedKubernetes } from './seed.js';
export type { SandboxKubernetes } from './seed.js';
