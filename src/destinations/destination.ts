// Where a rotated credential is delivered after the rotation is finalized: a Kubernetes Secret, a file on the
// gateway host. A destination is to delivery what a target is to rotation: one small module behind this
// interface, and the pipeline (pipeline/deliver.ts) owns the order, the journal and the exit codes.
//
// Delivery is idempotent by construction: what is delivered is read from the record as it stands (the values the
// rotation saved), never from the run's memory, so a delivery that failed is repeated by the next run from the
// record alone, and delivering twice writes the same thing twice.
import type { Secret } from '../secret.js';

/** One value a destination writes, under the key the target's layout gives it (e.g. `secret_access_key`). */
export interface DeliveryEntry {
  key: string;
  /** The variable name an env file uses, as the consumer's own SDK reads it (AWS_ACCESS_KEY_ID, AZURE_CLIENT_SECRET). */
  envName: string;
  value: string | Secret;
}

/** What a target hands to its destinations: its key layout filled from the record (targets' `delivery`). */
export interface DeliveryPayload {
  /** The target's name, e.g. `aws-iam-access-key`. */
  target: string;
  /** The credential's ID (never secret): what the record names, for logs and sentinels. */
  credentialId: string;
  entries: DeliveryEntry[];
  /**
   * A digest of every entry (pipeline/deliver.ts `fingerprint`): what a destination stores beside the values so
   * a later run can tell, by reading it back, whether it holds this credential. An ID alone cannot tell (a Wiz
   * secret is replaced in place under the same client ID). One-way, and stored only where the values are.
   */
  fingerprint: string;
  /**
   * Set by targets whose credential is a registry login (ECR): the payload is a Docker config, and a Kubernetes
   * destination writes a `kubernetes.io/dockerconfigjson` Secret with it under `.dockerconfigjson`.
   */
  dockerConfigJson?: Secret;
}

export interface Destination {
  /** A stable kind name, used in settings, logs and the doctor's lines (`kubernetes-secret`, `file`). */
  readonly kind: string;
  /** One line naming where, never what: "Kubernetes Secret team-a/app-creds", "file /srv/app/creds.env". */
  describe(): string;
  /** Checks that delivery would be allowed and possible, writing nothing (doctor, dry run). Throws a RotateError. */
  check(): Promise<void>;
  /**
   * The fingerprint of what the destination holds now, undefined when it holds nothing of ours (missing, or
   * written by someone else). Reads only. A run compares it with the record's before it changes anything, so a
   * destination left behind by any earlier history is brought up to date first.
   */
  held(): Promise<string | undefined>;
  /** Writes the payload. Must be safe to repeat. Throws a RotateError (DELIVERY_FAILED or a narrower code). */
  deliver(payload: DeliveryPayload): Promise<void>;
}
