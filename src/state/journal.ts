// The journal of a rotation in flight, one file per record: the rotation's state machine, written down before
// each step (pipeline/machine.ts). The next run (after a crash, a kill or a lost reply) resumes that machine
// from the entry: finish a saved and verified transaction, roll back an unverified one, remove a credential
// the record never got, store a secret the target already switched to (the Wiz case).
//
// Each entry is authenticated with an HMAC under a key derived from the gateway's own KSM private key, and names
// its record: an entry edited, forged, or copied under another record's name is refused, as is a sealed secret
// moved into another record's entry (its AES-256-GCM seal binds the record UID too). The file alone is useless
// to whoever copies it, and a re-registered gateway (a new private key, and a new state subfolder) cannot open
// what the old registration left: see `foreignSealed`.
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { closeSync, fsyncSync, openSync, readFileSync, readdirSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { RotateError } from '../errors.js';
import type { GatewayConfig } from '../keeper/config.js';
import type { FieldRef } from '../keeper/record.js';

/**
 * The phases of a rotation, in the order a run passes them (pipeline/machine.ts says what each one leaves and
 * how a later run resumes from it):
 * - `preparing`: this run's write check holds a rotation transaction open on the record (`txn: 'probe'`) while
 *   it removes what the plan removes before creating.
 * - `creating`: the create (or in-place replace) call was sent; its outcome is unknown until it answers.
 * - `created`: the target made `credentialId`; the record does not hold it.
 * - `saving`: the save of `credentialId` into a rotation transaction was sent; it may be open.
 * - `verified`: saved in an open transaction and verified; only finalize was missing.
 * - `unsaved`: the target replaced its credential in place; `sealed` holds what the record must get.
 * - `delivering`: finalized; the record's credential is being delivered to the record's destinations (and old
 *   ones are not retired until it is). Holds no credential: the next run reads every destination back and
 *   delivers the record's credential where it is missing (pipeline/deliver.ts), so this entry only says why.
 */
export type JournalPhase = 'preparing' | 'creating' | 'created' | 'saving' | 'verified' | 'unsaved' | 'delivering';

export interface JournalEntry {
  version: 2;
  runId: string;
  target: string;
  recordUid: string;
  phase: JournalPhase;
  /** When the run started creating: a leftover of ours on the target is no older than this. */
  since: string;
  /**
   * The resource on the target the record named for this run (target.principal: the IAM user, the application,
   * the Wiz account), lower-cased. What the run made or left is there: a later run on a record that names
   * another resource must not look for it, or remove it, on that one (RECOVERY_RETARGETED).
   */
  principal?: string;
  /**
   * `creating`, when the create was answered (a failure with a reply: it ran its course on the server): nothing it
   * made is younger than this. Without it, a leftover may be as young as the run's longest allows.
   */
  until?: string;
  /**
   * A rotation transaction this run may have open on the record: `probe` (the write check: the record's own data)
   * or `save` (the new credential). Only such a transaction is ever rolled back: one we cannot prove is ours may
   * be another gateway's save.
   */
  txn?: 'probe' | 'save';
  /**
   * With `txn: 'save'`: when a save of this record was first refused because a transaction was already open, after
   * one of ours got no reply. That transaction is our late save or another gateway's rotation in progress, and
   * Keeper does not say which: it is rolled back only once a run's longest has passed since (pipeline/machine.ts
   * storeSealed), when any run that held it then has ended.
   */
  contestedAt?: string;
  credentialId?: string;
  idField?: string;
  /** `creating`: the credential IDs on the target just before the create; a leftover of ours is none of them. */
  existing?: string[];
  /**
   * An earlier interrupted run's window, carried until this run's plan has removed what that run left (a run
   * killed while removing it would otherwise forget it).
   */
  inherited?: { since: string; until?: string; existing?: string[]; resume?: string };
  /** `unsaved`: the record updates, sealed. */
  sealed?: string;
  /**
   * `unsaved`: a digest of the values the record held in the fields the sealed updates write, as this run read
   * it before replacing. The sealed secret is stored only while the record still holds those: if someone saved
   * another secret since (by hand, or another gateway's rotation), it is newer than ours and is kept.
   */
  before?: string;
  /**
   * `creating` of an in-place target only: what a later run needs to replace the credential again should this
   * run stop inside the replace call (the target's `resumeState`, sealed).
   */
  resume?: string;
  at: string;
  /** HMAC-SHA256 of every other key, under the gateway-derived key. */
  mac?: string;
}

export type JournalStep = Omit<JournalEntry, 'version' | 'at' | 'mac'>;

const UID_FILE = /^([A-Za-z0-9_-]{22})\.journal\.json$/;

/**
 * The record's state as this process last knew it (the entry it read at the start, or the last it wrote;
 * undefined once cleared), and whether this run finalized a rotation: the hard stop reports from both.
 */
let current: JournalEntry | undefined;
let finalized = false;
export function currentStep(): JournalEntry | undefined {
  return current;
}
export function rotationFinalized(): boolean {
  return finalized;
}
export function noteFinalized(): void {
  finalized = true;
}

function canonical(entry: Omit<JournalEntry, 'mac'>): string {
  return JSON.stringify(Object.keys(entry).sort().map((k) => [k, (entry as Record<string, unknown>)[k]]));
}

export class Journal {
  readonly #dir: string;
  readonly #sealKey: Buffer;
  readonly #macKey: Buffer;

  constructor(dir: string, config: GatewayConfig) {
    this.#dir = dir;
    const ikm = Buffer.from(config.values.privateKey ?? '', 'utf8');
    this.#sealKey = Buffer.from(hkdfSync('sha256', ikm, 'keeper-rotate journal v1', config.values.clientId ?? '', 32));
    this.#macKey = Buffer.from(hkdfSync('sha256', ikm, 'keeper-rotate journal v2', `mac ${config.values.clientId ?? ''}`, 32));
  }

  #path(uid: string): string {
    return join(this.#dir, `${uid}.journal.json`);
  }

  #mac(entry: Omit<JournalEntry, 'mac'>): string {
    return createHmac('sha256', this.#macKey).update(canonical(entry)).digest('base64');
  }

  read(uid: string): JournalEntry | undefined {
    let text: string;
    try {
      text = readFileSync(this.#path(uid), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new RotateError('STATE_DIR_UNAVAILABLE', `cannot read the journal of record ${uid} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    let entry: JournalEntry | undefined;
    try {
      entry = JSON.parse(text) as JournalEntry;
    } catch {
      entry = undefined;
    }
    if (entry && entry.version === 2 && entry.recordUid === uid && typeof entry.mac === 'string') {
      const { mac, ...rest } = entry;
      const want = Buffer.from(this.#mac(rest), 'base64');
      const got = Buffer.from(mac, 'base64');
      if (want.length === got.length && timingSafeEqual(want, got)) {
        current ??= entry;
        return entry;
      }
    }
    // A journal we cannot trust is reported, not silently dropped (it may hold a sealed secret), and stops only
    // this record: it may be foreign (another registration's), edited or cut short.
    throw new RotateError(
      'STATE_DIR_UNAVAILABLE',
      `the journal of record ${uid} in ${this.#dir} is unreadable or fails its integrity check; check the record by hand (does its credential sign in?), then move the file aside`,
    );
  }

  /** Written to a temporary file, synced, then renamed: a crash leaves the old entry or the new, never half. */
  write(step: JournalStep | JournalEntry): JournalEntry {
    const { mac: _mac, version: _version, at: _at, ...fields } = step as JournalEntry;
    const body: Omit<JournalEntry, 'mac'> = { version: 2, ...fields, at: new Date().toISOString() };
    for (const k of Object.keys(body) as Array<keyof typeof body>) if (body[k] === undefined) delete body[k];
    const full: JournalEntry = { ...body, mac: this.#mac(body) };
    const path = this.#path(step.recordUid);
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
      throw new RotateError('STATE_DIR_UNAVAILABLE', `cannot write the journal of record ${step.recordUid} in ${this.#dir} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    current = full;
    return full;
  }

  clear(uid: string): void {
    if (current?.recordUid === uid) current = undefined;
    try {
      rmSync(this.#path(uid), { force: true });
    } catch {
      // A journal that cannot be removed stays for the next run, which settles it again: every step it names is
      // safe to take twice. Failing here would turn a settled run into a failed one.
    }
  }

  /**
   * Records with a sealed secret waiting to be stored, from any target: every run stores these first. A journal
   * of another record that cannot be read is skipped here (its own record's runs report it), so one bad file
   * does not stop every rotation on the gateway.
   */
  unsaved(): { entries: JournalEntry[]; unreadable: string[] } {
    const entries: JournalEntry[] = [];
    const unreadable: string[] = [];
    for (const uid of this.#uids(this.#dir)) {
      try {
        const entry = this.read(uid);
        if (entry?.phase === 'unsaved') entries.push(entry);
      } catch {
        unreadable.push(uid);
      }
    }
    return { entries, unreadable };
  }

  #uids(dir: string): string[] {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return [];
    }
    return names.flatMap((n) => UID_FILE.exec(n)?.[1] ?? []);
  }

  /**
   * Journals for this record in the state folders of other gateway registrations on this host (siblings of this
   * one): a gateway re-registered with Keeper gets a new client, so a new folder and a new key, and whatever the
   * old registration sealed there can no longer be opened. Listed so the run and doctor say so instead of
   * silently forgetting it.
   */
  foreignSealed(uid: string): string[] {
    const parent = dirname(this.#dir);
    const own = basename(this.#dir);
    let siblings: string[];
    try {
      siblings = readdirSync(parent);
    } catch {
      return [];
    }
    return siblings
      .filter((s) => s !== own && /^[0-9a-f]{16}$/.test(s))
      .map((s) => join(parent, s))
      .filter((d) => this.#uids(d).includes(uid));
  }

  /** A keyed digest of a record's field values (an entry's `before`): comparable, yet no value can be tested against it. */
  digest(recordUid: string, values: Array<string | undefined>): string {
    return createHmac('sha256', this.#macKey).update(JSON.stringify(['before', recordUid, values.map((v) => v ?? null)])).digest('base64');
  }

  seal(recordUid: string, updates: Array<[FieldRef, string]>): string {
    return this.sealText(recordUid, JSON.stringify(updates));
  }

  unseal(entry: JournalEntry): Array<[FieldRef, string]> {
    const text = this.unsealText(entry.recordUid, entry.sealed ?? '');
    if (text === undefined) {
      throw new RotateError('RECOVERY_UNREADABLE', `the sealed secret for record ${entry.recordUid} cannot be opened with this gateway's config (was the gateway re-registered?)`);
    }
    return JSON.parse(text) as Array<[FieldRef, string]>;
  }

  /** AES-256-GCM with the record UID as associated data: a seal opens only for the record it was made for. */
  sealText(recordUid: string, text: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#sealKey, iv);
    cipher.setAAD(Buffer.from(recordUid, 'utf8'));
    const body = Buffer.concat([cipher.update(text, 'utf8'), cipher.final()]);
    return Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64');
  }

  /** The sealed text, or undefined when this gateway's key cannot open it for this record. */
  unsealText(recordUid: string, sealed: string): string | undefined {
    const raw = Buffer.from(sealed, 'base64');
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.#sealKey, raw.subarray(0, 12));
      decipher.setAAD(Buffer.from(recordUid, 'utf8'));
      decipher.setAuthTag(raw.subarray(12, 28));
      return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
    } catch {
      return undefined;
    }
  }
}
