// `keeper-rotate discover <aws|azure|wiz> [options]` (and `npm run discover -- ...`): lists what the admin
// credentials of a PAM configuration (read through KSM with the gateway's config, as a run reads it), or for AWS
// the host's own, can rotate, and emits one PAM User record per credential: CSV rows of the target's template for
// Commander's import, or records created in a shared folder through KSM (--create-in). A credential that already
// has a record is skipped and reported, so a second call creates nothing. What the gateway's allow-lists keep out
// is not emitted. Never a secret: the first rotation fills every secret field.
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Deadline } from '../deadline.js';
import { ExitCode, RotateError, describe } from '../errors.js';
import { loadGatewayConfig } from '../keeper/config.js';
import { readText } from '../keeper/record.js';
import { ThrottleGate } from '../keeper/throttle-gate.js';
import { KeeperVault, type VaultRecord } from '../keeper/vault.js';
import { Logger, escapeControls } from '../log.js';
import { Secret, redact } from '../secret.js';
import type { Candidate, DiscoverTargetName, Discovery } from './candidate.js';
import { eachLimited } from './pacer.js';
import { candidateCsv, candidateRecord, existingIds } from './records.js';

export const DISCOVER_USAGE = `Usage: keeper-rotate discover aws|azure|wiz [--config PAM_CONFIG_UID] [options]

  --config UID          the PAM configuration whose admin credentials list the credentials (read through KSM
                        with the gateway's config); AWS without it uses the gateway host's credential chain
  --path-prefix /P/     aws: IAM users under this path (default /)
  --name PATTERN        aws: IAM user names matching PATTERN (* and ?)
  --all                 azure: every application in the tenant, not only those the admin app owns
  --create-in FOLDER    create the records in this shared folder (the application needs edit rights on it)
  --dry-run             print what would be created, create nothing
  --out FILE            write the CSV rows to FILE instead of stdout
  --shared-folder NAME  the CSV's shared folder column (default keeper-rotate#edit)
  --concurrency N       requests at once to the target and to Keeper (default 4, at most 16)

Exit codes: 0 done, 2 bad usage or configuration, 3 a request failed (what was created stays; run again).
`;

const TARGET_NAMES: Record<string, DiscoverTargetName> = {
  aws: 'aws-iam-access-key',
  'aws-iam-access-key': 'aws-iam-access-key',
  azure: 'azure-app-secret',
  'azure-app-secret': 'azure-app-secret',
  wiz: 'wiz-service-account',
  'wiz-service-account': 'wiz-service-account',
};

/** Keeper's throttle clears after 10 s without a request to the endpoint (vault.ts THROTTLE_QUIET_MS). */
const KSM_QUIET_MS = 11_000;
const KSM_THROTTLE_RETRIES = 30;

export interface DiscoverIo {
  env: NodeJS.ProcessEnv;
  stdout: { write(chunk: string): unknown };
  stderr: { write(chunk: string): unknown };
}

export interface DiscoverResult {
  exitCode: ExitCode;
  discovery?: Discovery;
  created: string[];
  /** KSM requests made. */
  ksmRequests: number;
}

export async function runDiscover(argv: string[], io: DiscoverIo): Promise<DiscoverResult> {
  const line = (text: string) => io.stderr.write(escapeControls(redact(text)) + '\n');
  const result: DiscoverResult = { exitCode: ExitCode.Ok, created: [], ksmRequests: 0 };
  let vault: KeeperVault | undefined;
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string' },
        'path-prefix': { type: 'string' },
        name: { type: 'string' },
        all: { type: 'boolean' },
        'create-in': { type: 'string' },
        'dry-run': { type: 'boolean' },
        out: { type: 'string' },
        'shared-folder': { type: 'string' },
        concurrency: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
    if (values.help) {
      io.stdout.write(DISCOVER_USAGE);
      return result;
    }
    const target = positionals.length === 1 ? TARGET_NAMES[positionals[0]!] : undefined;
    if (!target) throw new RotateError('USAGE', `discover takes one target: aws, azure or wiz (see keeper-rotate discover --help)`);
    const concurrency = values.concurrency === undefined ? 4 : Number(values.concurrency);
    if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 16) throw new RotateError('USAGE', '--concurrency must be an integer from 1 to 16');
    const pathPrefix = values['path-prefix'] ?? '/';
    if (target === 'aws-iam-access-key' && !/^\/(?:[\x21-\x7e]+\/)?$/.test(pathPrefix)) throw new RotateError('USAGE', '--path-prefix must be an IAM path such as /fleet/ (it starts and ends with /)');
    if (values.name !== undefined && !/^[\w+=,.@*?-]{1,128}$/.test(values.name)) throw new RotateError('USAGE', '--name must be an IAM user name pattern (letters, digits, +=,.@_- and * ?)');
    if (values.all && target !== 'azure-app-secret') throw new RotateError('USAGE', '--all is for azure only');
    if ((values['path-prefix'] !== undefined || values.name !== undefined) && target !== 'aws-iam-access-key') throw new RotateError('USAGE', '--path-prefix and --name are for aws only');
    const createIn = values['create-in'];
    if (createIn !== undefined && !/^[A-Za-z0-9_-]{16,32}$/.test(createIn)) throw new RotateError('USAGE', '--create-in takes a shared folder UID');
    if (createIn !== undefined && values.out !== undefined) throw new RotateError('USAGE', '--out is for CSV output, not with --create-in');

    const seconds = Number(io.env.KEEPER_ROTATE_DEADLINE_SECONDS ?? 3600);
    const requestSeconds = Number(io.env.KEEPER_ROTATE_REQUEST_TIMEOUT_SECONDS ?? 30);
    const deadline = new Deadline(Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : 3_600_000, Date.now, Number.isFinite(requestSeconds) && requestSeconds > 0 ? requestSeconds * 1000 : 30_000);
    const config = loadGatewayConfig({ env: io.env, platform: process.platform });
    const gate = new ThrottleGate();
    vault = new KeeperVault(config, { deadline, gate, onRequest: () => (result.ksmRequests += 1) });
    // One read for every record the application sees: the PAM configuration and the existing records alike.
    const records = await vault.fetchAll();
    const pam = values.config === undefined ? undefined : records.find((r) => r.uid === values.config);
    if (values.config !== undefined && !pam) throw new RotateError('RECORD_NOT_FOUND', `PAM configuration ${values.config} is not shared with the gateway's application`);
    const existing = existingIds(records, target);
    const logger = new Logger({ script: 'keeper-rotate discover', format: io.env.KEEPER_ROTATE_LOG === 'json' ? 'json' : 'text', stderr: io.stderr, stdout: io.stdout });
    const discovery = await discoverTarget(target, { env: io.env, deadline, pam, existing, pathPrefix, name: values.name, all: values.all === true, concurrency, line, logger });
    result.discovery = discovery;

    for (const s of discovery.skipped) line(`discover: skipped ${s.id}: ${s.reason === 'has-record' ? 'already has a' : s.reason === 'is-admin' ? 'it is the admin:' : ''} ${s.detail}`.replace(/ +/g, ' '));
    for (const c of discovery.candidates) if (c.warning) line(`discover: warning: ${c.warning}`);

    if (createIn === undefined) {
      if (values['dry-run']) for (const c of discovery.candidates) io.stdout.write(escapeControls(`would emit: ${c.title} (${c.id})`) + '\n');
      else {
        const csv = discovery.candidates.map((c) => candidateCsv(c, values['shared-folder']) + '\n').join('');
        if (values.out) writeFileSync(values.out, csv, { mode: 0o600 });
        else io.stdout.write(csv);
      }
    } else {
      const folders = await vault.sharedFolders();
      if (!folders.some((f) => f.uid === createIn)) throw new RotateError('KEEPER_ACCESS_DENIED', `folder ${createIn} is not a shared folder of the gateway's application; share it with the application, with edit rights`);
      if (values['dry-run']) for (const c of discovery.candidates) io.stdout.write(escapeControls(`would create: ${c.title} (${c.id}) in folder ${createIn}`) + '\n');
      else await createAll(vault, gate, createIn, discovery.candidates, concurrency, result, io, line);
    }
    const counts = (reason: string) => discovery.skipped.filter((s) => s.reason === reason).length;
    line(
      `discover ${target}: ${discovery.candidates.length} to bring under records${createIn && !values['dry-run'] ? ` (${result.created.length} created)` : ''}, ` +
        `${counts('has-record')} already with a record, ${counts('not-allowed')} outside the allow-list, ${counts('is-admin')} admin; ` +
        `${discovery.requests} target request(s), ${result.ksmRequests} Keeper request(s)`,
    );
  } catch (err) {
    const e = err instanceof RotateError ? err : new RotateError('INTERNAL', describe(err), { cause: err });
    if (err instanceof TypeError && 'code' in err && String((err as { code: unknown }).code).startsWith('ERR_PARSE_ARGS')) {
      line(new RotateError('USAGE', `${err.message.split('\n')[0]} (see keeper-rotate discover --help)`).toLine());
      result.exitCode = ExitCode.Rejected;
    } else {
      line(e.toLine());
      result.exitCode = e.exitCode === ExitCode.CleanupIncomplete ? ExitCode.Failed : e.exitCode;
    }
    if (result.created.length > 0) line(`discover: ${result.created.length} record(s) were created before the failure; run again to create the rest`);
  } finally {
    vault?.close();
  }
  return result;
}

interface TargetContext {
  env: NodeJS.ProcessEnv;
  deadline: Deadline;
  pam: VaultRecord | undefined;
  existing: Map<string, string>;
  pathPrefix: string;
  name: string | undefined;
  all: boolean;
  concurrency: number;
  line: (text: string) => void;
  logger: Logger;
}

function required(pam: VaultRecord | undefined, labels: string[], what: string): string[] {
  if (!pam) throw new RotateError('ADMIN_CREDENTIALS_NOT_FOUND', `discover ${what} needs --config with the PAM configuration that holds its admin credentials (${labels.join(', ')})`);
  const values = labels.map((l) => readText(pam.data, l));
  const missing = labels.filter((_, i) => values[i] === undefined);
  if (missing.length) throw new RotateError('ADMIN_CREDENTIALS_NOT_FOUND', `PAM configuration ${pam.uid} has no ${missing.join(', ')}`);
  return values as string[];
}

async function discoverTarget(target: DiscoverTargetName, ctx: TargetContext): Promise<Discovery> {
  switch (target) {
    case 'aws-iam-access-key': {
      const { discoverAws } = await import('./aws.js');
      const keyId = ctx.pam ? readText(ctx.pam.data, 'accessKeyId') : undefined;
      const secret = ctx.pam ? readText(ctx.pam.data, 'accessSecretKey') : undefined;
      const roleArn = ctx.pam ? readText(ctx.pam.data, 'roleArn') : undefined;
      // As a run decides (keeper/admin.ts): the PAM configuration's keys, or its USE_INSTANCE_ROLE, or, with no
      // configuration named, the host's chain. A configuration with neither is refused rather than guessed at.
      const marker = (v: string | undefined) => v?.toUpperCase() === 'USE_INSTANCE_ROLE';
      let admin: Parameters<typeof discoverAws>[0]['admin'];
      if (!ctx.pam) admin = { host: true, because: 'discover aws was given no --config' };
      else if (marker(keyId) || marker(secret)) admin = { host: true, because: `PAM configuration ${ctx.pam.uid} says USE_INSTANCE_ROLE` };
      else {
        const [id, s] = required(ctx.pam, ['accessKeyId', 'accessSecretKey'], 'aws');
        admin = { keys: { accessKeyId: id!, secretAccessKey: new Secret(s!) } };
      }
      return discoverAws({
        env: ctx.env,
        deadline: ctx.deadline,
        pathPrefix: ctx.pathPrefix,
        namePattern: ctx.name,
        admin,
        roleArn,
        concurrency: ctx.concurrency,
        existing: ctx.existing,
        viaHost: !ctx.pam,
        log: ctx.line,
        logger: ctx.logger,
      });
    }
    case 'azure-app-secret': {
      const { discoverAzure } = await import('./azure.js');
      const [clientId, secret, tenantId] = required(ctx.pam, ['clientId', 'clientSecret', 'tenantId'], 'azure');
      return discoverAzure({ env: ctx.env, deadline: ctx.deadline, tenantId: tenantId!, clientId: clientId!, secret: new Secret(secret!), all: ctx.all, existing: ctx.existing, log: ctx.line });
    }
    case 'wiz-service-account': {
      const { discoverWiz } = await import('./wiz.js');
      const [clientId, secret] = required(ctx.pam, ['wizClientId', 'wizClientSecret'], 'wiz');
      return discoverWiz({ env: ctx.env, deadline: ctx.deadline, clientId: clientId!, secret: new Secret(secret!), existing: ctx.existing, log: ctx.line });
    }
  }
}

/**
 * Creates the records, `concurrency` at once. Keeper answers a client over its budget 429 and serves it again
 * only after 10 s without a request to that endpoint: a throttled create was refused, not applied, and the vault's
 * gate holds every create, the throttled ones and the next, until that quiet period has passed. The SDK gives a
 * request five tries; one throttled past them is sent again here, after the same pause.
 */
async function createAll(vault: KeeperVault, gate: ThrottleGate, folderUid: string, candidates: Candidate[], concurrency: number, result: DiscoverResult, io: DiscoverIo, line: (t: string) => void): Promise<void> {
  gate.onPause = (ms) => line(`discover: Keeper throttled the creates; pausing ${Math.ceil(ms / 1000)} s (${result.created.length} of ${candidates.length} created)`);
  await eachLimited(candidates, concurrency, async (c) => {
    const data = candidateRecord(c);
    for (let attempt = 0; ; attempt++) {
      try {
        const uid = await vault.create(folderUid, data);
        result.created.push(uid);
        io.stdout.write(escapeControls(`created ${uid}: ${c.title} (${c.id})`) + '\n');
        return;
      } catch (err) {
        if (!(err instanceof RotateError) || err.code !== 'KEEPER_THROTTLED' || attempt >= KSM_THROTTLE_RETRIES) throw err;
        gate.hold(KSM_QUIET_MS);
      }
    }
  });
}
