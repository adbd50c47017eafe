// Starts the whole local sandbox: the KSM server, each target's services, and the control API, all on loopback,
// plus the demo vault. `npm run sandbox`, the demo, replay and the tests all start it through here, so what a
// user tries by hand is what the tests run.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ControlApi } from './control.js';
import { FaultPlan, RequestLog } from './faults.js';
import { KsmService, type GatewayConfig, type TransactionModel } from './ksm/index.js';
import { type RunningService, type SandboxService, serve } from './service.js';
import { type TlsMaterial, sandboxTlsMaterial } from './tls.js';
import { seedDemoVault, type DemoVault } from './demo-vault.js';
import { AzureService } from './azure/index.js';
import type { SandboxCloud } from './azure/tokens.js';
import { AwsAccount, IamService, StsService, registerAwsControl } from './aws/index.js';
import { WizApiService, WizAuthService, WizTenant, registerWizControl } from './wiz/index.js';

export interface SandboxOptions {
  /** Write gateway-config.json, ca.pem, sandbox.json and env into this folder. */
  dir?: string;
  tls?: TlsMaterial;
  transactionModel?: TransactionModel;
  /** Seed the demo vault and target state (default true). */
  demo?: boolean;
  /** The Microsoft cloud the Azure service serves as (default `public`); the env then names it for the scripts. */
  azureCloud?: SandboxCloud;
}

export interface Sandbox {
  ksm: KsmService;
  azure: AzureService;
  aws: AwsAccount;
  wiz: WizTenant;
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
  close(): Promise<void>;
}

export async function startSandbox(options: SandboxOptions = {}): Promise<Sandbox> {
  const tls = options.tls ?? sandboxTlsMaterial();
  const faults = new FaultPlan();
  const log = new RequestLog();
  const control = new ControlApi(faults, log);
  const ksm = new KsmService(options.transactionModel ? { transactionModel: options.transactionModel } : {});
  const azure = new AzureService(options.azureCloud ? { cloud: options.azureCloud } : {});
  const aws = new AwsAccount();
  const wiz = new WizTenant();
  // Every service speaks TLS, as the real ones do; clients trust the sandbox certificate (NODE_EXTRA_CA_CERTS).
  const services: SandboxService[] = [ksm, azure, new IamService(aws), new StsService(aws), new WizAuthService(wiz), new WizApiService(wiz)];
  const running: RunningService[] = [];
  const closeAll = async () => {
    await Promise.all(running.map((r) => r.close()));
  };
  try {
    for (const service of services) running.push(await serve({ service, faults, log, tls }));
  } catch (err) {
    await closeAll();
    throw err;
  }
  const urls = Object.fromEntries(running.map((r) => [r.name, r.url]));
  ksm.registerControl(control);
  azure.registerControl(control);
  registerAwsControl(control, aws);
  registerWizControl(control, wiz);
  const controlServer = await control.listen();
  const gatewayConfig = ksm.createClient(new URL(urls.ksm!).host);
  const demo = options.demo === false ? undefined : seedDemoVault({ ksm, azure, aws, wiz });

  const env: Record<string, string> = {
    AZURE_AUTHORITY_HOST: urls.azure!,
    KEEPER_ROTATE_GRAPH_ENDPOINT: urls.azure!,
    AWS_ENDPOINT_URL_IAM: urls.iam!,
    AWS_ENDPOINT_URL_STS: urls.sts!,
    AWS_REGION: 'us-east-1',
    KEEPER_ROTATE_WIZ_AUTH_URL: `${urls['wiz-auth']!}/oauth/token`,
    KEEPER_ROTATE_WIZ_API_URL: `${urls['wiz-api']!}/graphql`,
    KEEPER_ROTATE_SANDBOX_CONTROL: controlServer.url,
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
    writeFileSync(join(options.dir, 'sandbox.json'), JSON.stringify({ services: urls, control: controlServer.url, controlRoutes: control.routes() }, null, 2) + '\n');
    writeFileSync(join(options.dir, 'env'), Object.entries(env).map(([k, v]) => `${k}=${v}`).join('\n') + '\n');
  }
  return {
    ksm,
    azure,
    aws,
    wiz,
    faults,
    log,
    control,
    controlUrl: controlServer.url,
    urls,
    gatewayConfig,
    env,
    certPem: tls.certPem,
    demo,
    close: async () => {
      await controlServer.close();
      await closeAll();
    },
  };
}
