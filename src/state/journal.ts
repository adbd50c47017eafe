// The journal of a rotation in flight, one file per record. A run writes each step here before it takes it, so
// the next run (after a crash, a kill or a lost reply) knows what was left and can finish or undo it: finalize
// a saved and verified transaction, roll back an unverified one, remove a credential the record never got,
// and store a secret the target already switched to (the Wiz case) that Keeper refused. Such a secret is
// sealed with AES-256-GCM under a key derived from the gateway's own KSM private key, so the file alone is
// useless to whoever copies it.
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, readFileSync, readdirSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { RotateError } from '../errors.js';
import type { GatewayConfig } from '../keeper/config.js';
import type { FieldRef } from '../keeper/record.js';

/**
 * - `creating`: about to ask the target for a credential (a crash here may leave one the journal cannot name).
 * - `created`: the target made `credentialId`; the record was not touched yet.
 * - `saving`: the save into a Keeper transaction was sent; it may be open.
 * - `verified`: saved in an open transaction and verified; only finalize was missing.
 * - `unsaved`: the target already replaced its credential in place; `sealed` holds what the record must get.
 */
export type JournalPhase = 'creating' | 'created' | 'saving' | 'verified' | 'unsaved';

export interface JournalEntry {
  version: 1;
  runId: string;
  target: string;
  recordUid: string;
  phase: JournalPhase;
  /** When the run started creating: a leftover of ours on the target is no older than this. */
  since: string;
  credentialId?: string;
  idField?: string;
  /** `unsaved` only: the record updates, sealed. */
  sealed?: string;
  /**
   * `creating` of an in-place target only: what a later run needs to replace the credential again should this
   * run stop inside the replace call (the target's `resumeState`, sealed).
   */
  resume?: string;
  at: string;
}

const UID_FILE = /^([A-Za-z0-9_-]{22})\.journal\.json$/;

export class Journal {
  readonly #dir: string;
  readonly #key: Buffer;

  constructor(dir: string, config: GatewayConfig) {
    this.#dir = dir;
    const ikm = Buffer.from(config.values.privateKey ?? '', 'utf8');
    this.#key = Buffer.from(hkdfSync('sha256', ikm, 'keeper-rotate journal v1', config.values.clientId ?? '', 32));
  }

  #path(uid: string): string {
    return join(this.#dir, `${uid}.journal.json`);
  }

  read(uid: string): JournalEntry | undefined {
    let text: string;
    try {
      text = readFileSync(this.#path(uid), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new RotateError('STATE_DIR_UNAVAILABLE', `cannot read the journal of record ${uid} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    try {
      const entry = JSON.parse(text) as JournalEntry;
      if (entry.version === 1 && entry.recordUid === uid) return entry;
    } catch {
      // Fall through: a journal we cannot read is reported, not silently dropped (it may hold a sealed secret).
    }
    throw new RotateError('STATE_DIR_UNAVAILABLE', `the journal of record ${uid} in ${this.#dir} is unreadable; move it aside after checking the record by hand`);
  }

  /** Written to a temporary file, synced, then renamed: a crash leaves the old entry or the new, never half. */
  write(entry: Omit<JournalEntry, 'version' | 'at'>): JournalEntry {
    const full: JournalEntry = { version: 1, ...entry, at: new Date().toISOString() };
    const path = this.#path(entry.recordUid);
    const tmp = `${path}.${process.pid}.tmp`;
    try {
      const fd = openSync(tmp, 'w', 0o600);
      try {
        writeSync(fd, JSON.stringify(full) + '\n');
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, path);
    } catch (err) {
      rmSync(tmp, { force: true });
      throw new RotateError('STATE_DIR_UNAVAILABLE', `cannot write the journal of record ${entry.recordUid} in ${this.#dir} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    return full;
  }

  clear(uid: string): void {
    rmSync(this.#path(uid), { force: true });
  }

  /** Records with a sealed secret waiting to be stored, from any target: every run stores these first. */
  unsaved(): JournalEntry[] {
    let names: string[];
    try {
      names = readdirSync(this.#dir);
    } catch {
      return [];
    }
    const out: JournalEntry[] = [];
    for (const name of names) {
      const uid = UID_FILE.exec(name)?.[1];
      if (!uid) continue;
      const entry = this.read(uid);
      if (entry?.phase === 'unsaved') out.push(entry);
    }
    return out;
  }

  seal(updates: Array<[FieldRef, string]>): string {
    return this.sealText(JSON.stringify(updates));
  }

  unseal(entry: JournalEntry): Array<[FieldRef, string]> {
    const text = this.unsealText(entry.sealed ?? '');
    if (text === undefined) {
      throw new RotateError('RECOVERY_UNREADABLE', `the sealed secret for record ${entry.recordUid} cannot be opened with this gateway's config (was the gateway re-registered?)`);
    }
    return JSON.parse(text) as Array<[FieldRef, string]>;
  }

  sealText(text: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv);
    const body = Buffer.concat([cipher.update(text, 'utf8'), cipher.final()]);
    return Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64');
  }

  /** The sealed text, or undefined when this gateway's key cannot open it. */
  unsealText(sealed: string): string | undefined {
    const raw = Buffer.from(sealed, 'base64');
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.#key, raw.subarray(0, 12));
      decipher.setAuthTag(raw.subarray(12, 28));
      return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
    } catch {
      return undefined;
    }
  }
}
