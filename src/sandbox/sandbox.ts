// Starts the whole local sandbox: the KSM server, each target's services, and the control API, all on loopback,
// plus the demo vault. `npm run sandbox`, the demo, replay and the tests all start it through here, so what a
// user tries by hand is what the tests run. And what they run is as hard as production, on a shorter clock:
// new credentials propagate after seeded, spread-out delays, fresh writes are missing from reads for a moment,
// and IAM, STS and Graph throttle a caller that sends too much (HARD_REALISM, below).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ControlApi, ControlError, bodyObject } from './control.js';
import { FaultPlan, RequestLog } from './faults.js';
import { KsmService, type GatewayConfig, type TransactionModel } from './ksm/index.js';
import type { Budget } from './rate-limit.js';
import { DEFAULT_SEED } from './random.js';
import { type RequestBudget, type RunningService, type SandboxService, serve } from './service.js';
import { type TlsMaterial, sandboxTlsMaterial } from './tls.js';
import { seedDemoVault, type DemoVault } from './demo-vault.js';
import { type LargeTenantOptions, seedLargeTenant } from './large-tenant.js';
import { AzureService, type GraphLimit } from './azure/index.js';
import type { SandboxCloud } from './azure/tokens.js';
import { AwsAccount, EcrService, EcrTokens, IamService, InstanceMetadataService, RegistryService, StsService, registerAwsControl, registerEcrControl } from './aws/index.js';
import { WizApiService, WizAuthService, WizTenant, registerWizControl } from './wiz/index.js';
import { KubernetesCluster, KubernetesService, type SandboxKubernetes, registerKubernetesControl, seedKubernetes, writeKubeconfig } from './kubernetes/index.js';


/** Budgets per service: a budget (or, for Graph, some of its limits) in place of the default, or false for none. */
export interface BudgetOverrides {
  iam?: Budget | false;
  sts?: Budget | false;
  ecr?: Budget | false;
  azure?: Partial<Record<GraphLimit, Budget>> | false;
}

/**
 * How hard the sandbox is. Production's delays are seconds to tens of seconds; the sandbox keeps their shape (a
 * seeded log-normal spread around a median, random.ts) on a clock of tens to hundreds of milliseconds, so the
 * tests wait out real propagation and lag without taking minutes.
 */
export interface SandboxRealism {
  /** Median of how long a new IAM access key or Entra secret keeps failing to authenticate, in ms. */
  propagationMs: number;
  /** Median of how long a new IAM key is missing from ListAccessKeys and a new secret from a GET of its app, in ms. */
  readLagMs: number;
  /** The log-normal sigma both are drawn with around their medians (0: every credential waits the median). */
  spread: number;
  /**
   * Request budgets for iam, sts and Graph: true for each one's documented default, false for none, or overrides.
   * KSM's budget (ksm/budget.ts, Keeper's per client and endpoint) is on unless this is false.
   */
  budgets: boolean | BudgetOverrides;
  /** IAM checks the two-key quota against its lagging read, so racing creates can make a third key (account.ts). */
  nonAtomicQuota: boolean;
}

/** The sandbox's default read-after-write lag (median, ms; 18 to 136 ms at sigma 0.5). */
export const READ_LAG_MS = 50;

/**
 * The defaults of every sandbox the tests, the demo and `npm run sandbox` start. A new credential is usable after
 * 100 ms in the median, 37 to 272 ms (sigma 0.5, clamped at two sigmas); a new key or secret is missing from the
 * list for READ_LAG_MS in the median; the budgets are the services' own (IAM_DEFAULT_BUDGET, STS_DEFAULT_BUDGET,
 * GRAPH_DEFAULT_BUDGETS). The racy IAM quota stays off: it is a rare production event, and a test turns it on.
 * The scripts survive the lag: an unlisted leftover of a failed create stays the next run's to look for
 * (pipeline/machine.ts `removeLeftovers`), and a record's unlisted CURRENT is never taken for deleted (the
 * targets' plan.ts).
 */
export const HARD_REALISM: SandboxRealism = { propagationMs: 100, readLagMs: READ_LAG_MS, spread: 0.5, budgets: true, nonAtomicQuota: false };

/** Where the sandbox listens: never through a proxy. */
export const SANDBOX_NO_PROXY = 'localhost,127.0.0.1,::1';

/** The sandbox as it was before: everything at once, nothing throttled (`realism: false`). */
export const EASY_REALISM: SandboxRealism = { propagationMs: 0, readLagMs: 0, spread: 0, budgets: false, nonAtomicQuota: false };

export interface SandboxOptions {
  /** Write gateway-config.json, ca.pem, sandbox.json and env into this folder. */
  dir?: string;
  tls?: TlsMaterial;
  transactionModel?: TransactionModel;
  /** Seed the demo vault and target state (default true). */
  demo?: boolean;
  /** How hard the sandbox is: HARD_REALISM, with these fields changed; false is EASY_REALISM. */
  realism?: Partial<SandboxRealism> | false;
  /** Seeds every delay draw (DEFAULT_SEED when absent): one seed and one history give the same delays. */
  seed?: number;
  /** The Microsoft cloud the Azure service serves as (default `public`); the env then names it for the scripts. */
  azureCloud?: SandboxCloud;
  /**
   * Services served over plain HTTP instead of HTTPS, by name (`iam`, `sts`): a private endpoint such as
   * LocalStack's is often http://, and the AWS SDK reaches it through a different code path than https://.
   */
  plainHttp?: readonly string[];
}

export interface Sandbox {
  ksm: KsmService;
  azure: AzureService;
  aws: AwsAccount;
  /** The ECR logins GetAuthorizationToken issued and the registry (`ecr-registry`) accepts while they live. */
  ecrTokens: EcrTokens;
  /** The EC2 instance metadata service (plain HTTP): attach a role to give the host an instance role. */
  imds: InstanceMetadataService;
  wiz: WizTenant;
  /** The Kubernetes API server's cluster, and the gateway service account's token (the kubeconfig's user). */
  kubernetes: SandboxKubernetes;
  faults: FaultPlan;
  log: RequestLog;
  control: ControlApi;
  controlUrl: string;
  urls: Record<string, string>;
  /** A gateway KSM config bound to this sandbox's KSM server. */
  gatewayConfig: GatewayConfig;
  /** What a script needs in its environment to use this sandbox (the same lines as the `env` file). */
  env: Record<string, string>;
  /** The certificate clients must trust (NODE_EXTRA_CA_CERTS). */
  certPem: string;
  demo: DemoVault | undefined;
  /** The request budget of each service that has one (`iam`, `sts`, `azure`, `kubernetes`), as the control API tunes them. */
  budgets: Record<string, RequestBudget>;
  close(): Promise<void>;
}

export async function startSandbox(options: SandboxOptions = {}): Promise<Sandbox> {
  const tls = options.tls ?? sandboxTlsMaterial();
  const faults = new FaultPlan();
  const log = new RequestLog();
  const control = new ControlApi(faults, log);
  const realism: SandboxRealism = options.realism === false ? EASY_REALISM : { ...HARD_REALISM, ...options.realism };
  const seed = options.seed ?? DEFAULT_SEED;
  const overrides: BudgetOverrides = typeof realism.budgets === 'object' ? realism.budgets : {};
  const timing = { propagationDelayMs: realism.propagationMs, readLagMs: realism.readLagMs, delaySpread: realism.spread, seed };
  // KSM charges its own budget (ksm/budget.ts: it knows the client only once a request is open); `budgets: false`
  // starts it off too, so `realism: false` throttles nothing. PUT /ksm/budget tunes it.
  const ksm = new KsmService({
    ...(options.transactionModel ? { transactionModel: options.transactionModel } : {}),
    ...(realism.budgets === false ? { budget: { enabled: false } } : {}),
  });
  const azure = new AzureService({ ...(options.azureCloud ? { cloud: options.azureCloud } : {}), timing, budget: overrides.azure || true });
  const aws = new AwsAccount({ ...timing, nonAtomicQuota: realism.nonAtomicQuota });
  const iam = new IamService(aws, { budget: overrides.iam || true });
  const sts = new StsService(aws, { budget: overrides.sts || true });
  // ECR's API and its registry share one table of logins; the API names the registry as every login's proxyEndpoint.
  const ecrTokens = new EcrTokens(aws);
  let registryUrl = '';
  const ecr = new EcrService(aws, ecrTokens, () => registryUrl, { budget: overrides.ecr || true });
  const registry = new RegistryService(ecrTokens);
  // Every budget exists, so the control API can turn one on; `budgets: false` (or a service's false) starts it off.
  const budgets: Record<string, RequestBudget> = { iam: iam.budget!, sts: sts.budget!, ecr: ecr.budget!, azure: azure.budget! };
  for (const [name, budget] of Object.entries(budgets)) budget.enabled = realism.budgets !== false && overrides[name as keyof BudgetOverrides] !== false;
  // Wiz's API budget lives in the tenant (wiz/limits.ts); `budgets: false` starts it off like the others.
  const wiz = new WizTenant(realism.budgets === false ? { rateLimits: { api: null } } : {});
  const cluster = new KubernetesCluster();
  const kubernetesApi = new KubernetesService(cluster);
  kubernetesApi.budget.enabled = realism.budgets !== false;
  budgets.kubernetes = kubernetesApi.budget;
  // Every service speaks TLS, as the real ones do (unless plainHttp names it); clients trust the sandbox
  // certificate (NODE_EXTRA_CA_CERTS).
  const services: SandboxService[] = [ksm, azure, iam, sts, ecr, registry, new WizAuthService(wiz), new WizApiService(wiz), kubernetesApi];
  const unknown = options.plainHttp?.filter((name) => !services.some((s) => s.name === name)) ?? [];
  if (unknown.length) throw new Error(`plainHttp: no service named ${unknown.join(', ')} (services: ${services.map((s) => s.name).join(', ')})`);
  // IMDS is plain HTTP, as on EC2 (http://169.254.169.254): the SDK reaches it with node:http, never TLS.
  const imds = new InstanceMetadataService(aws);
  const running: RunningService[] = [];
  const closeAll = async () => {
    await Promise.all(running.map((r) => r.close()));
  };
  try {
    for (const service of services) running.push(await serve({ service, faults, log, ...(options.plainHttp?.includes(service.name) ? {} : { tls }) }));
    running.push(await serve({ service: imds, faults, log }));
  } catch (err) {
    await closeAll();
    throw err;
  }
  const urls = Object.fromEntries(running.map((r) => [r.name, r.url]));
  registryUrl = urls[registry.name]!;
  ksm.registerControl(control);
  azure.registerControl(control);
  registerAwsControl(control, aws, imds);
  registerEcrControl(control, ecrTokens);
  registerWizControl(control, wiz);
  registerKubernetesControl(control, cluster);
  registerRealismControl(control, { aws, azure, budgets });
  // A fleet to discover (large-tenant.ts): {awsUsers, azureApps, wizAccounts, path?, prefix?}.
  control.route('POST', '/sandbox/large-tenant', ({ body }) => {
    const b = bodyObject(body);
    try {
      return seedLargeTenant({ ksm, aws, azure, wiz }, b as LargeTenantOptions);
    } catch (err) {
      throw new ControlError(400, err instanceof Error ? err.message : String(err));
    }
  });
  const controlServer = await control.listen();
  const gatewayConfig = ksm.createClient(new URL(urls.ksm!).host);
  const demo = options.demo === false ? undefined : seedDemoVault({ ksm, azure, aws, wiz, ecr: { tokens: ecrTokens, registryUrl } });
  const kubernetes = seedKubernetes(cluster, { demo: options.demo !== false });

  const env: Record<string, string> = {
    AZURE_AUTHORITY_HOST: urls.azure!,
    KEEPER_ROTATE_GRAPH_ENDPOINT: urls.azure!,
    AWS_ENDPOINT_URL_IAM: urls.iam!,
    AWS_ENDPOINT_URL_STS: urls.sts!,
    AWS_ENDPOINT_URL_ECR: urls.ecr!,
    AWS_REGION: 'us-east-1',
    // Where the SDK's instance-role provider looks (a host with no other AWS credentials, or USE_INSTANCE_ROLE):
    // the sandbox's IMDS, which serves credentials once a role is attached (PUT /aws/instance).
    AWS_EC2_METADATA_SERVICE_ENDPOINT: urls.imds!,
    KEEPER_ROTATE_WIZ_AUTH_URL: `${urls['wiz-auth']!}/oauth/token`,
    KEEPER_ROTATE_WIZ_API_URL: `${urls['wiz-api']!}/graphql`,
    KEEPER_ROTATE_SANDBOX_CONTROL: controlServer.url,
    // The scripts honour HTTPS_PROXY (src/http/proxy.ts); one set in the shell could not reach a loopback sandbox.
    // Both spellings: the lower-case one wins over an upper-case one from the shell.
    NO_PROXY: SANDBOX_NO_PROXY,
    no_proxy: SANDBOX_NO_PROXY,
    // The scripts reach the sandbox by its own URL, so which cloud's Graph to ask tokens for must be said.
    ...(options.azureCloud && options.azureCloud !== 'public' ? { KEEPER_ROTATE_AZURE_CLOUD: options.azureCloud } : {}),
  };
  if (options.dir) {
    mkdirSync(options.dir, { recursive: true });
    const configPath = join(options.dir, 'gateway-config.json');
    const caPath = join(options.dir, 'ca.pem');
    writeFileSync(configPath, JSON.stringify(gatewayConfig, null, 2) + '\n', { mode: 0o600 });
    writeFileSync(caPath, tls.certPem);
    env.KEEPER_GATEWAY_CONFIG = configPath;
    env.NODE_EXTRA_CA_CERTS = caPath;
    // Scripts run against the sandbox keep their locks and journals beside its config, never in the user's
    // real state folder, where a sandbox record's journal would outlive the sandbox.
    env.KEEPER_ROTATE_STATE_DIR = join(options.dir, 'state');
    // kubectl and @kubernetes/client-node read KUBECONFIG: the sandbox's API server, its CA and the gateway's token.
    const kubeconfigPath = join(options.dir, 'kubeconfig');
    writeKubeconfig(kubeconfigPath, { server: urls.kubernetes!, caPem: tls.certPem, token: kubernetes.gatewayToken, namespace: 'demo' });
    env.KUBECONFIG = kubeconfigPath;
    writeFileSync(join(options.dir, 'sandbox.json'), JSON.stringify({ services: urls, control: controlServer.url, controlRoutes: control.routes() }, null, 2) + '\n');
    writeFileSync(join(options.dir, 'env'), Object.entries(env).map(([k, v]) => `${k}=${v}`).join('\n') + '\n');
  }
  return {
    ksm,
    azure,
    aws,
    ecrTokens,
    imds,
    wiz,
    kubernetes,
    faults,
    log,
    control,
    controlUrl: controlServer.url,
    urls,
    gatewayConfig,
    env,
    certPem: tls.certPem,
    demo,
    budgets,
    close: async () => {
      await controlServer.close();
      await closeAll();
    },
  };
}

/**
 * Control routes for the sandbox's realism as a whole: `GET /sandbox` (seed, each service's timing, budgets),
 * `PUT /sandbox` (seed, propagationMs, readLagMs, spread, nonAtomicQuota, budgets on or off, for every service at
 * once), `GET /budgets`, `PUT /budgets/:service` ({enabled, limits: {name: {burst, perSecond}}}) and
 * `DELETE /budgets` (every caller's buckets full again, e.g. between bench runs).
 */
function registerRealismControl(control: ControlApi, s: { aws: AwsAccount; azure: AzureService; budgets: Record<string, RequestBudget> }): void {
  const budgetState = () => Object.fromEntries(Object.entries(s.budgets).map(([name, b]) => [name, b.state()]));
  const state = () => ({ seed: s.aws.timing().seed, aws: s.aws.timing(), azure: s.azure.directory.timing(), budgets: budgetState() });
  const number = (b: Record<string, unknown>, key: string): number | undefined => {
    const v = b[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new ControlError(400, `"${key}" must be a number`);
    return v;
  };
  const attempt = <T>(fn: () => T): T => {
    try {
      return fn();
    } catch (err) {
      if (err instanceof ControlError) throw err;
      throw new ControlError(400, err instanceof Error ? err.message : String(err));
    }
  };
  control.route('GET', '/sandbox', state);
  control.route('PUT', '/sandbox', ({ body }) => {
    const b = bodyObject(body);
    const seed = number(b, 'seed');
    const propagationDelayMs = number(b, 'propagationMs');
    const readLagMs = number(b, 'readLagMs');
    const delaySpread = number(b, 'spread');
    if (b.nonAtomicQuota !== undefined && typeof b.nonAtomicQuota !== 'boolean') throw new ControlError(400, '"nonAtomicQuota" must be true or false');
    if (b.budgets !== undefined && typeof b.budgets !== 'boolean') throw new ControlError(400, '"budgets" must be true or false (tune one service with PUT /budgets/:service)');
    const timing = {
      ...(seed === undefined ? {} : { seed }),
      ...(propagationDelayMs === undefined ? {} : { propagationDelayMs }),
      ...(readLagMs === undefined ? {} : { readLagMs }),
      ...(delaySpread === undefined ? {} : { delaySpread }),
    };
    // Checked before anything changes (both services take the same fields by the same rules), so a bad value
    // leaves the sandbox as it was.
    attempt(() => new AwsAccount({ accountId: s.aws.accountId, ...s.aws.timing(), ...timing }));
    attempt(() => s.aws.setTiming({ ...timing, ...(typeof b.nonAtomicQuota === 'boolean' ? { nonAtomicQuota: b.nonAtomicQuota } : {}) }));
    attempt(() => s.azure.setTiming(timing));
    if (typeof b.budgets === 'boolean') for (const budget of Object.values(s.budgets)) budget.enabled = b.budgets;
    return state();
  });
  control.route('GET', '/budgets', budgetState);
  control.route('PUT', '/budgets/:service', ({ params, body }) => {
    const budget = s.budgets[params.service!];
    if (!budget) throw new ControlError(404, `no budget for service ${params.service} (services: ${Object.keys(s.budgets).join(', ')})`);
    const b = bodyObject(body);
    if (b.enabled !== undefined && typeof b.enabled !== 'boolean') throw new ControlError(400, '"enabled" must be true or false');
    const limits = b.limits === undefined ? {} : bodyObject(b.limits);
    const known = budget.limits();
    for (const [name, value] of Object.entries(limits)) {
      if (!(name in known)) throw new ControlError(400, `no limit named ${name} (limits: ${Object.keys(known).join(', ')})`);
      const v = bodyObject(value);
      const next = { burst: number(v, 'burst') ?? known[name]!.burst, perSecond: number(v, 'perSecond') ?? known[name]!.perSecond };
      if (!(next.burst >= 1) || !(next.perSecond > 0)) throw new ControlError(400, `${name}: a budget needs burst >= 1 and perSecond > 0`);
    }
    for (const [name, value] of Object.entries(limits)) {
      const v = value as Record<string, number>;
      budget.set(name, { burst: v.burst ?? known[name]!.burst, perSecond: v.perSecond ?? known[name]!.perSecond });
    }
    if (typeof b.enabled === 'boolean') budget.enabled = b.enabled;
    return budget.state();
  });
  control.route('DELETE', '/budgets', () => {
    for (const budget of Object.values(s.budgets)) budget.reset();
    return budgetState();
  });
}
