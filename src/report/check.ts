// `--check`: does the target agree with the record? For each record, the admin credentials a run would use
// (keeper/admin.ts, the same order of places), then the target's own read-only steps, the ones `--doctor` and a
// dry run take: validate the record (prepare), sign in (connect) and read what a rotation would plan on (plan).
// Nothing is created, changed or removed, no lock or journal is written, no Keeper write is made. What the plan
// read says whether the record's credential is still on the target and whether anything is orphaned.
import type { Deadline } from '../deadline.js';
import { RotateError, describe, isRotateError } from '../errors.js';
import type { GatewayInput } from '../gateway/input.js';
import { type ResolvedAdmin, resolveAdmin } from '../keeper/admin.js';
import type { VaultRecord } from '../keeper/vault.js';
import type { Logger } from '../log.js';
import type { RotationPlan, Target } from '../pipeline/target.js';
import { redact } from '../secret.js';
import { FIELDS as AWS, awsIamAccessKey } from '../targets/aws-iam-access-key/index.js';
import { azureAppSecret } from '../targets/azure-app-secret/index.js';
import { awsEcrPullSecret } from '../targets/aws-ecr-pull-secret/index.js';
import type { ScriptName } from '../targets/record-shape.js';
import { wizServiceAccount } from '../targets/wiz-service-account/index.js';
import { mapBounded } from './bounded.js';
import type { CheckResult, ReportRow } from './model.js';
import { readPlain } from './plain-fields.js';

// Each target's own types are erased here: the check drives every one through the same interface steps.
const TARGETS: Record<ScriptName, Target<string, string, unknown>> = {
  'aws-iam-access-key': awsIamAccessKey as unknown as Target<string, string, unknown>,
  'azure-app-secret': azureAppSecret as unknown as Target<string, string, unknown>,
  'aws-ecr-pull-secret': awsEcrPullSecret as unknown as Target<string, string, unknown>,
  'wiz-service-account': wizServiceAccount as unknown as Target<string, string, unknown>,
};

/** PAM configuration records by their type (pamAwsConfiguration, pamAzureConfiguration, pamNetworkConfiguration...). */
export const PAM_CONFIGURATION_TYPE = /^pam[A-Za-z]*Configuration$/;

export interface CheckContext {
  env: NodeJS.ProcessEnv;
  log: Logger;
  deadline: Deadline;
  /** The PAM configurations whose admin credentials a check may use, in the order they are tried. */
  configurations: readonly VaultRecord[];
  concurrency: number;
}

function inputFor(user: string, provider: string | undefined): GatewayInput {
  return { userRecordUid: user, providerRecordUid: provider, resourceRecordUid: undefined, user: undefined, newPassword: undefined, oldPassword: undefined, records: [] };
}

/**
 * The admin credentials a run could use, in the order a check tries them: each of these PAM configurations that
 * holds this target's admin fields, then what a run finds with none (the record itself, or for AWS the host's
 * chain where the gateway allows it). A gateway input names a run's configuration; the report has none, so a
 * check that a set of credentials may not make (refused sign-in, missing permission) goes on to the next one.
 */
export function adminCandidates(target: Target<string, string, unknown>, user: VaultRecord, configurations: readonly VaultRecord[], env: NodeJS.ProcessEnv): Array<{ admin: ResolvedAdmin<string, string>; input: GatewayInput } | { error: unknown }> {
  const out: Array<{ admin: ResolvedAdmin<string, string>; input: GatewayInput } | { error: unknown }> = [];
  for (const provider of configurations) {
    const input = inputFor(user.uid, provider.uid);
    try {
      const admin = resolveAdmin(target.admin, { input, user, provider, env });
      if (admin.source.kind === 'pam-configuration' || admin.source.kind === 'host') out.push({ admin, input });
    } catch (err) {
      out.push({ error: err });
    }
  }
  const input = inputFor(user.uid, undefined);
  try {
    out.push({ admin: resolveAdmin(target.admin, { input, user, provider: undefined, env }), input });
  } catch (err) {
    out.push({ error: err });
  }
  return out;
}

/** Codes after which a check tries the next admin credentials: these ones may not do it, another set may. */
const NOT_THESE_CREDENTIALS = new Set(['TARGET_PERMISSION_DENIED', 'TARGET_AUTH_FAILED', 'ADMIN_CREDENTIALS_NOT_FOUND', 'ADMIN_CREDENTIALS_INVALID']);

const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

/** What the plan's read says about the record's credential, as findings; none means the target agrees. */
export function interpretPlan(row: ReportRow, user: VaultRecord, plan: RotationPlan): string[] {
  const findings: string[] = [];
  const present = plan.present;
  const id = row.credentialId;
  // Wiz replaces its secret in place and ECR logins are no resource: only AWS keys and Azure secrets are listed.
  if (present && id && (row.target === 'aws-iam-access-key' || row.target === 'azure-app-secret') && !present.some((p) => same(p, id))) {
    findings.push(`the record's credential ${id} is not on the target`);
  }
  for (const c of plan.removeBefore) {
    if (c.leftover || /interrupted run/.test(c.reason)) findings.push(`orphan ${c.id} on the target: ${c.reason}`);
  }
  if (row.target === 'aws-iam-access-key' && present && id) {
    // IAM keys carry no name: any key the record knows neither as CURRENT nor as LAST is one nobody rotates.
    const last = readPlain(user.data, AWS.lastKeyId.label);
    for (const key of present) if (!same(key, id) && !(last && same(key, last))) findings.push(`key ${key} on IAM user ${row.principal} is neither the record's CURRENT nor its LAST key`);
  }
  return findings;
}

/**
 * What a throttled check does: the whole pool pauses (every worker waits until `until`), then the record is
 * checked again. A service throttles the caller, not one request: a thousand checks that each retried on their
 * own would keep it throttled. Each check's own client still retries a throttled request first.
 */
export class ThrottleGate {
  until = 0;
  async wait(deadline: Deadline): Promise<void> {
    const ms = this.until - Date.now();
    if (ms > 0) await deadline.wait(ms, 'a throttled service');
  }
  throttled(attempt: number): void {
    this.until = Math.max(this.until, Date.now() + Math.min(30_000, 1_000 * 2 ** attempt));
  }
}
/** How often one record's check starts again after its service throttled it past its client's retries. */
export const THROTTLE_ATTEMPTS = 6;
const THROTTLED = new Set(['TARGET_THROTTLED', 'KEEPER_THROTTLED']);

async function checkOne(row: ReportRow, user: VaultRecord, ctx: CheckContext, gate: ThrottleGate): Promise<CheckResult> {
  for (let attempt = 0; ; attempt++) {
    await gate.wait(ctx.deadline).catch(() => undefined);
    const result = await checkOnce(row, user, ctx);
    if (!THROTTLED.has(result.code ?? '') || attempt + 1 >= THROTTLE_ATTEMPTS) return result;
    gate.throttled(attempt);
  }
}

async function checkOnce(row: ReportRow, user: VaultRecord, ctx: CheckContext): Promise<CheckResult> {
  if (!row.target) return { state: 'unchecked', findings: ['the record mixes the fields of several targets'], code: 'RECORD_WRONG_SCRIPT' };
  const target = TARGETS[row.target];
  try {
    let result: CheckResult | undefined;
    for (const candidate of adminCandidates(target, user, ctx.configurations, ctx.env)) {
      result = await withAdmin(row, user, ctx, target, candidate);
      if (!NOT_THESE_CREDENTIALS.has(result.code ?? '')) break;
    }
    return result!;
  } catch (err) {
    return failed(err);
  }
}

async function withAdmin(row: ReportRow, user: VaultRecord, ctx: CheckContext, target: Target<string, string, unknown>, candidate: ReturnType<typeof adminCandidates>[number]): Promise<CheckResult> {
  try {
    if ('error' in candidate) throw candidate.error;
    const { admin, input } = candidate;
    ctx.deadline.check(`checking record ${row.recordUid}`);
    const tctx = { input, user, admin, env: ctx.env, log: ctx.log, deadline: ctx.deadline };
    const config = target.prepare(tctx);
    const session = await target.connect(config, tctx);
    const plan = await session.plan({});
    const findings = interpretPlan(row, user, plan);
    return { state: findings.length ? 'disagrees' : 'agrees', findings };
  } catch (err) {
    return failed(err);
  }
}

function failed(err: unknown): CheckResult {
  const error = isRotateError(err) ? err : new RotateError('INTERNAL', `unexpected error: ${describe(err)}`, { cause: err });
  const message = redact(error.message);
  // The target says the credential's holder is gone: that is the target disagreeing, not a check that failed.
  if (error.code === 'TARGET_NOT_FOUND') return { state: 'disagrees', findings: [message], code: error.code };
  return { state: 'unchecked', findings: [message], code: error.code };
}

/** Checks every row against its target, at most `concurrency` at once, and adds what each found to its problems. */
export async function checkRows(rows: ReportRow[], records: ReadonlyMap<string, VaultRecord>, ctx: CheckContext): Promise<void> {
  const gate = new ThrottleGate();
  const results = await mapBounded(rows, ctx.concurrency, (row) => checkOne(row, records.get(row.recordUid)!, ctx, gate));
  rows.forEach((row, i) => {
    const check = results[i]!;
    row.check = check;
    if (check.state === 'disagrees') for (const f of check.findings) row.problems.push({ status: 'disagrees', text: f });
    if (check.state === 'unchecked') row.problems.push({ status: 'disagrees', text: `the check could not finish: ${check.code}: ${check.findings.join('; ')}` });
  });
}
