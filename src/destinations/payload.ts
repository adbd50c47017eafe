// Building a DeliveryPayload: the small pieces every target's `delivery` uses.
import { createHash } from 'node:crypto';
import { Secret } from '../secret.js';
import type { DeliveryEntry } from './destination.js';

/** The key a destination writes, the env name a consumer's SDK reads, and the value: one place per target's layout. */
export function entry(key: string, envName: string, value: string | Secret): DeliveryEntry {
  return { key, envName, value };
}

/**
 * One-way digest of a payload's values (domain-separated SHA-256, 128 bits shown). Stored beside the values
 * only, so it tells a later run nothing the destination's reader cannot already read.
 */
export function fingerprint(entries: readonly DeliveryEntry[], dockerConfigJson?: Secret): string {
  const h = createHash('sha256').update('keeper-rotate delivery v1\0');
  for (const e of entries) h.update(`${e.key}\0${e.value instanceof Secret ? e.value.reveal() : e.value}\0`);
  if (dockerConfigJson) h.update(`.dockerconfigjson\0${dockerConfigJson.reveal()}\0`);
  return h.digest('hex').slice(0, 32);
}
