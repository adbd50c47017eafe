// Delivery: the step after a rotation is finalized that pushes the record's credential out to where it is used
// (issue 17), and the check at the start of every run that brings a destination left behind up to date first.
//
// The order is the safety argument, as it is for rotation (rotate.ts):
//   plan (reads only) → bring every destination that does not hold the record's credential up to date → rotate
//   → finalize → journal "delivering" → deliver → clear → retire.
// - What is delivered is read from the record (the target session's `delivery`), never kept from memory: the
//   record's credential works (that is what every other rule of the pipeline keeps true), so delivering it is
//   always safe, and doing it twice writes the same thing twice.
// - Retiring waits for delivery. A destination that fails leaves the replaced credential valid (retention keeps
//   it, and this run retires nothing), the run exits 4 (DELIVERY_INCOMPLETE), and the next run delivers before
//   it changes anything, whatever happened in between: each destination says which credential it holds (`held`,
//   a fingerprint), so a kill between finalize and delivery, a lost journal, or a hand edit of the destination
//   are all found the same way.
// - Which destinations a record may name is the gateway owner's call (allow-lists in the gateway's environment,
//   deny by default); the record only picks among what they allow. Everything is validated before any network
//   call, so a rejected record writes nothing (exit 2).
import { RotateError, describe as describeError, isRotateError } from '../errors.js';
import type { RecordData } from '../keeper/record-data.js';
import type { Logger } from '../log.js';
import { redact } from '../secret.js';
import type { DeliveryPayload, Destination } from '../destinations/destination.js';
import { FILE_FORMATS, type FileFormat, fileDestination } from '../destinations/file.js';
import { kubernetesSecretDestination, parseSecretRef } from '../destinations/kubernetes-secret.js';
import type { Deadline } from '../deadline.js';
import { parseSetting, type SettingSpec } from './settings.js';

/** Comma-separated absolute paths. */
const PATH_LIST = /^\s*\/[^,]*(,\s*\/[^,]*)*\s*$/;

export const DELIVERY_SETTINGS = {
  files: {
    kind: 'pattern',
    label: 'file_destinations',
    default: undefined,
    pattern: PATH_LIST,
    hint: 'one or more absolute file paths, separated by commas',
    description: "Files on the gateway host to write the credential to after each rotation (only under the folders the gateway owner allows in KEEPER_ROTATE_ALLOW_FILE_DIRS).",
  },
  fileFormat: {
    kind: 'choice',
    label: 'file_format',
    default: 'env',
    choices: FILE_FORMATS,
    description: 'env (KEY=value lines), json, or aws-profile (one profile of an AWS credentials file; AWS keys only).',
  },
  fileProfile: {
    kind: 'pattern',
    label: 'file_aws_profile',
    default: undefined,
    pattern: /^[A-Za-z0-9_.+@-]{1,64}$/,
    hint: 'an AWS profile name',
    description: 'The profile file_format aws-profile writes (default: default).',
  },
  k8sSecrets: {
    kind: 'pattern',
    label: 'k8s_secret',
    default: undefined,
    pattern: /^\s*[^,/\s]+\/[^,/\s]+\s*(,\s*[^,/\s]+\/[^,/\s]+\s*)*$/,
    hint: 'one or more namespace/name, separated by commas',
    description: 'Kubernetes Secrets (namespace/name) to patch the credential into after each rotation (only those the gateway owner allows in KEEPER_ROTATE_ALLOW_K8S_SECRETS).',
  },
  k8sCreate: {
    kind: 'boolean',
    label: 'k8s_create',
    default: false,
    description: 'Create a k8s_secret that does not exist yet.',
  },
  k8sRestart: {
    kind: 'pattern',
    label: 'k8s_restart',
    default: undefined,
    pattern: /^\s*[^,\s]+\s*(,\s*[^,\s]+\s*)*$/,
    hint: 'Deployment names, separated by commas',
    description: "Deployments in the Secret's namespace to restart after each delivery (only those allowed in KEEPER_ROTATE_ALLOW_K8S_RESTARTS).",
  },
  retireAtOnce: {
    kind: 'boolean',
    label: 'retire_before_consumers_reload',
    default: false,
    description:
      "With destinations, a setting that invalidates the replaced credential at once (keep_previous_secrets 0, deactivate_previous_key) is refused, since consumers still use it until they reload; true accepts that.",
  },
} as const satisfies Record<string, SettingSpec>;

export interface Delivery {
  destinations: Destination[];
  /** The record accepts that a setting retires the replaced credential at once (`retire_before_consumers_reload`). */
  retireAtOnce: boolean;
}

const listOf = (text: string | undefined) => (text ?? '').split(',').map((p) => p.trim()).filter((p) => p !== '');

/** The record's destinations, validated against the gateway owner's allow-lists. No network, no filesystem write. */
export function deliveryFor(data: RecordData, env: NodeJS.ProcessEnv, target: string, ctx: { deadline?: Deadline } = {}): Delivery {
  const destinations: Destination[] = [];
  const files = parseSetting(DELIVERY_SETTINGS.files, data) as string | undefined;
  const format = parseSetting(DELIVERY_SETTINGS.fileFormat, data) as FileFormat;
  const profile = parseSetting(DELIVERY_SETTINGS.fileProfile, data) as string | undefined;
  if (format === 'aws-profile' && !target.startsWith('aws-iam')) {
    throw new RotateError('SETTING_INVALID', `file_format aws-profile holds AWS access keys; ${target} delivers other values (use env or json)`);
  }
  if (files) {
    const paths = files.split(',').map((p) => p.trim());
    if (new Set(paths).size !== paths.length) throw new RotateError('SETTING_INVALID', 'file_destinations names a file twice');
    for (const path of paths) destinations.push(fileDestination({ path, format, ...(profile ? { profile } : {}) }, env));
  }
  const secrets = listOf(parseSetting(DELIVERY_SETTINGS.k8sSecrets, data) as string | undefined);
  const restart = listOf(parseSetting(DELIVERY_SETTINGS.k8sRestart, data) as string | undefined);
  const create = parseSetting(DELIVERY_SETTINGS.k8sCreate, data);
  if (restart.length > 0 && secrets.length === 0) throw new RotateError('SETTING_INVALID', 'k8s_restart names Deployments but k8s_secret names no Secret to deliver to');
  if (new Set(secrets).size !== secrets.length) throw new RotateError('SETTING_INVALID', 'k8s_secret names a Secret twice');
  for (const text of secrets) {
    const ref = parseSecretRef(text);
    destinations.push(kubernetesSecretDestination({ ...ref, create, restart }, env, ctx.deadline ? { deadline: ctx.deadline } : {}));
  }
  return { destinations, retireAtOnce: parseSetting(DELIVERY_SETTINGS.retireAtOnce, data) };
}

/**
 * A setting that invalidates the replaced credential at once (`retires`, from the target) is refused with
 * destinations, unless the record accepts it: their consumers go on using that credential until they reload.
 */
export function checkRetention(delivery: Delivery, retires: string | undefined): void {
  if (!retires || delivery.destinations.length === 0 || delivery.retireAtOnce) return;
  throw new RotateError(
    'SETTING_INVALID',
    `${retires}, which invalidates the replaced credential as soon as the new one is verified, while the record's destinations' consumers may still use it until they reload; keep the replaced credential, or set retire_before_consumers_reload to true to accept that`,
  );
}

export const oneLine = (err: unknown) => redact(describeError(err)).replace(/^RotateError: /, '');

/**
 * Delivers to every destination, each tried even when one before it failed. Returns the ones that failed, each
 * with its reason (one line, scrubbed).
 */
export async function deliverAll(destinations: readonly Destination[], payload: DeliveryPayload, log: Logger, step: string): Promise<Array<{ where: string; why: string }>> {
  const failed: Array<{ where: string; why: string }> = [];
  for (const d of destinations) {
    try {
      await d.deliver(payload);
      log.info(step, `delivered ${payload.credentialId} to ${d.describe()}`);
    } catch (err) {
      failed.push({ where: d.describe(), why: oneLine(err) });
      log.warn(step, `could not deliver to ${d.describe()}: ${oneLine(err)}`);
    }
  }
  return failed;
}

/**
 * At the start of a run, before anything changes: every destination that does not hold the record's credential
 * gets it. A destination that cannot be read or written stops the run (exit 4): rotating now would move the
 * record further ahead of it, and a plan's removal could retire the very credential it still holds.
 */
export async function catchUp(
  destinations: readonly Destination[],
  payload: DeliveryPayload | undefined,
  log: Logger,
  reread?: () => Promise<{ payload: DeliveryPayload | undefined; destinations: readonly Destination[] }>,
): Promise<number> {
  if (!payload || destinations.length === 0) return 0;
  let behind = await behindOf(destinations, payload);
  if (behind.length === 0) return 0;
  // The run's read of the record may be stale by now: another gateway may have rotated since, and delivered. Its
  // delivery must not be overwritten with the credential it replaced (for Wiz, dead already), so what is
  // delivered, and where (a person may have changed the destinations too: `reread` gives new ones then), is read
  // again first, and only destinations still behind that get it.
  if (reread) {
    const fresh = await reread();
    if (!fresh.payload || fresh.destinations.length === 0) return 0;
    if (fresh.payload.fingerprint !== payload.fingerprint || fresh.destinations !== destinations) {
      if (fresh.payload.fingerprint !== payload.fingerprint) {
        log.info('deliver', `record ${fresh.payload.credentialId === payload.credentialId ? 'changed' : `now holds ${fresh.payload.credentialId}`} since this run read it; delivering what it holds now`);
      }
      payload = fresh.payload;
      behind = await behindOf(fresh.destinations, payload);
      if (behind.length === 0) return 0;
    }
  }
  log.info('deliver', `${behind.length} destination(s) do not hold the record's credential ${payload.credentialId} yet; delivering it before rotating`);
  const failed = await deliverAll(behind, payload, log, 'deliver');
  if (failed.length) throw incomplete(failed, `before rotating, the record's credential ${payload.credentialId} could not be delivered; nothing was rotated`);
  return behind.length;
}

/** The destinations that do not hold `payload` (read back); a read that fails stops the run (exit 4). */
async function behindOf(destinations: readonly Destination[], payload: DeliveryPayload): Promise<Destination[]> {
  const behind: Destination[] = [];
  for (const d of destinations) {
    let held: string | undefined;
    try {
      held = await d.held();
    } catch (err) {
      // Refused by the owner's allow-list (a link that now leads outside it): nothing was changed, as with any setting.
      if (isRotateError(err) && err.code === 'DESTINATION_NOT_ALLOWED') throw err;
      throw incomplete([{ where: d.describe(), why: oneLine(err) }], `before rotating, whether it holds the record's credential ${payload.credentialId} could not be read`, err);
    }
    if (held !== payload.fingerprint) behind.push(d);
  }
  return behind;
}

export function incomplete(failed: Array<{ where: string; why: string }>, what: string, cause?: unknown, after = 'the destination still holds what it held'): RotateError {
  const list = failed.map((f) => `${f.where} (${f.why})`).join('; ');
  return new RotateError('DELIVERY_INCOMPLETE', `${what}: ${list}; the record's credential works, ${after}, and the next run delivers it before anything else`, {
    ...(cause !== undefined ? { cause } : {}),
    refused: isRotateError(cause) ? cause.refused : false,
  });
}
