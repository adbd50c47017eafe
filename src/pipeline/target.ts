// The one interface every rotation target implements. The pipeline (rotate.ts) owns the order of steps and
// everything that keeps a working credential in the record; a target only knows its service: how to read the
// credentials there, plan, create, verify and remove one. A fourth target is a new file behind this interface.
import type { Deadline } from '../deadline.js';
import type { GatewayInput } from '../gateway/input.js';
import type { AdminFieldNames, ResolvedAdmin } from '../keeper/admin.js';
import type { FieldKind, FieldRef } from '../keeper/record.js';
import type { RecordData } from '../keeper/record-data.js';
import type { VaultRecord } from '../keeper/vault.js';
import type { Logger } from '../log.js';
import type { Secret } from '../secret.js';
import type { DeliveryPayload } from '../destinations/destination.js';
import type { SettingSpec } from './settings.js';

/** A field of the PAM User record this target reads or writes; templates and doctor use the same list. */
export interface RecordFieldSpec {
  label: string;
  kind: FieldKind;
  description: string;
  /** Must hold a value before a rotation (the target validates the value itself). */
  required: boolean;
  /** Placeholder for the CSV template. */
  example: string;
  /** A standard field of the PAM User type (e.g. `login`) rather than a custom field. */
  standard?: boolean;
}

/** A credential on the target, as the plan talks about it: IDs and names only, never values. */
export interface CredentialInfo {
  id: string;
  /** Why it is listed: "orphan from an interrupted run", "older than the 1 kept", ... */
  reason: string;
  /** Disable rather than delete (AWS: an old key set Inactive can be re-enabled by hand). */
  deactivate?: boolean;
  /** Made by an interrupted create of this record (PlanContext.interrupted), never saved in the record. */
  leftover?: boolean;
}

export interface RotationPlan {
  /** Removed before creating: orphans from interrupted runs, and room a quota needs. */
  removeBefore: CredentialInfo[];
  /** Removed after the new credential is saved, verified and finalized. */
  removeAfter: CredentialInfo[];
  /** Set when the target decides there is nothing to do this run (exit 0, record untouched). */
  skip?: string;
  /** Human-readable facts for the step log and the dry run. */
  notes: string[];
  /**
   * Overlap targets: the IDs of every credential on the target as the plan read it. Journaled just before the
   * create, so a later run that finds the create's outcome unknown counts as our leftover only a credential that
   * is none of these (AWS keys carry no name: without this list, any key made in that window would look ours).
   */
  present?: string[];
}

export interface NewCredential {
  id: string;
  secret: Secret;
  /** ISO-8601 UTC, or undefined for credentials that do not expire. */
  expires: string | undefined;
  /** The record field that holds `id`: how a later read tells whether the record references this credential. */
  idField: string;
  /** Field values to save into the PAM User record in the rotation transaction. */
  recordUpdates: Array<[FieldRef, string]>;
}

/**
 * Verification says "not yet" for propagation delays and for a throttled reply (429, AADSTS50196, STS
 * `Throttling`, Wiz `RATE_LIMIT_EXCEEDED`), and throws for anything that will not fix itself. `retryAfterMs` is
 * what the service asked for (its Retry-After); the verify loop waits at least that long before the next try.
 */
export type VerifyResult = { ok: true } | { ok: false; reason: string; throttled?: boolean; retryAfterMs?: number };

export interface PlanContext {
  /**
   * Set when an earlier run on this record stopped while asking the target for a credential: a credential made
   * in this window that the record does not name is that run's leftover (it cannot have made one later: its
   * hard stop ends the window).
   */
  interrupted?: {
    from: Date;
    to: Date;
    /** The credentials on the target just before that run's create: none of these is its leftover. */
    existing?: string[];
    /** What the interrupted run's session left to resume with (its `resumeState`), when it stopped mid-replace. */
    resume?: string;
  };
}

export interface TargetSession {
  /** Reads the target and decides what this run will remove; refuses (throws) when the rotation cannot fit. */
  plan(context: PlanContext): Promise<RotationPlan>;
  create(): Promise<NewCredential>;
  verify(credential: NewCredential): Promise<VerifyResult>;
  remove(credential: CredentialInfo): Promise<void>;
  /**
   * In-place targets: does the credential this record data holds authenticate on the target now (Wiz: a token
   * request with its client_secret)? Asked only when the new credential failed to verify, about the data the
   * record held before this run's save: when another run replaced the credential after this one and saved its
   * own, that one works and this run's does not, so the run rolls its save back instead of finalizing.
   */
  verifyRecord?(data: RecordData): Promise<VerifyResult>;
  /**
   * Called once the new credential is saved, verified and finalized. A session authenticating with the
   * credential it rotates switches to the new one here, so it never removes the secret it is still using; a
   * target with more to do on the new credential (Wiz: push its expiry out) does it here.
   */
  adopt?(credential: NewCredential): Promise<void>;
  /**
   * In-place targets: what a later run needs to replace the credential again if this run dies inside the
   * replace call, after the target applied it (Wiz: the API token, which outlives the secret it was issued for).
   * Sealed into the journal before the call; handed back through PlanContext.interrupted.resume.
   */
  resumeState?(): string | undefined;
  /** What to log as the target, e.g. "application 3f0c... (appId ...)". */
  describe(): string;
  /**
   * What destinations get (destinations/destination.ts), in this target's key layout, built from record data
   * (the record as read, or as this run saved it); undefined when that data holds no credential yet. Called
   * after `plan`, which may be what resolves an ID the layout needs (Azure's application client ID).
   */
  delivery?(data: RecordData): DeliveryPayload | undefined;
}

export interface TargetContext<K extends string, S extends K> {
  input: GatewayInput;
  user: VaultRecord;
  admin: ResolvedAdmin<K, S>;
  env: NodeJS.ProcessEnv;
  log: Logger;
  deadline: Deadline;
}

export interface Target<K extends string = string, S extends K = never, C = unknown> {
  name: string;
  summary: string;
  fields: readonly RecordFieldSpec[];
  settings: Readonly<Record<string, SettingSpec>>;
  admin: AdminFieldNames<K, S>;
  /** Validates the record and settings into a config. No network: a bad record is rejected before any call. */
  prepare(ctx: TargetContext<K, S>): C;
  /** Opens a session on the target (clients, tokens). */
  connect(config: C, ctx: TargetContext<K, S>): Promise<TargetSession>;
  /** How long verification may keep retrying, from the config. */
  verifyTimeoutMs(config: C): number;
  /**
   * The resource on the target this record names (the IAM user, the application, the Wiz account), as the record
   * gives it. Journal entries carry it: what a run made is on that resource, and a later run whose record names
   * another (a person pointed it elsewhere) must not look for it there. Absent for a target that leaves nothing
   * behind (ECR logins expire).
   */
  principal?(config: C): string;
  /**
   * The gateway owner's allow-list for this target (from the environment only), as one line for `--doctor`:
   * what this gateway may rotate. Throws SETTING_INVALID when the list is malformed, as `prepare` does.
   */
  allowList?(env: NodeJS.ProcessEnv): string;
  /**
   * `overlap` (default): old and new credentials live side by side, so a failed run removes the new one and the
   * record keeps the old. `in-place`: creating replaces the credential on the target at once (Wiz), so there
   * is nothing to go back to; the pipeline checks that Keeper accepts the write first and never drops the new one,
   * unless it fails to verify and the record's earlier data holds another run's newer credential that works
   * (`verifyRecord`).
   */
  mode?: 'overlap' | 'in-place';
  /**
   * The setting, when the config has one set, that makes a rotation invalidate the credential it replaces at
   * once (Azure keep_previous_secrets 0, AWS deactivate_previous_key): with destinations, consumers still use
   * that one until they reload, so the pipeline refuses it unless the record accepts it.
   */
  retiresReplacedAtOnce?(config: C): string | undefined;
}
