// The kubeconfig `npm run sandbox -- --dir DIR` writes beside its env file, so that kubectl and
// @kubernetes/client-node reach the sandbox's API server as they would a cluster: its URL, its CA (inline, as
// `certificate-authority-data`), and a service account's bearer token
// (https://kubernetes.io/docs/concepts/configuration/organize-cluster-access-kubeconfig/). YAML, because that is
// what every kubeconfig reader expects to find; the values need no quoting beyond what JSON strings give.
import { writeFileSync } from 'node:fs';

export interface KubeconfigOptions {
  server: string;
  caPem: string;
  token: string;
  /** The context's default namespace. */
  namespace?: string;
  /** Names of the cluster, user and context (default `keeper-rotate-sandbox`, `gateway`). */
  clusterName?: string;
  userName?: string;
}

export function kubeconfigText(o: KubeconfigOptions): string {
  const cluster = o.clusterName ?? 'keeper-rotate-sandbox';
  const user = o.userName ?? 'gateway';
  const q = (s: string) => JSON.stringify(s);
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    `- name: ${q(cluster)}`,
    '  cluster:',
    `    server: ${q(o.server)}`,
    `    certificate-authority-data: ${q(Buffer.from(o.caPem, 'utf8').toString('base64'))}`,
    'users:',
    `- name: ${q(user)}`,
    '  user:',
    `    token: ${q(o.token)}`,
    'contexts:',
    `- name: ${q(cluster)}`,
    '  context:',
    `    cluster: ${q(cluster)}`,
    `    user: ${q(user)}`,
    ...(o.namespace ? [`    namespace: ${q(o.namespace)}`] : []),
    `current-context: ${q(cluster)}`,
    '',
  ].join('\n');
}

/** Writes the kubeconfig with mode 0600: it holds a bearer token. */
export function writeKubeconfig(path: string, o: KubeconfigOptions): void {
  writeFileSync(path, kubeconfigText(o), { mode: 0o600 });
}
