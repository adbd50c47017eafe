// discover wiz: every service account the admin account can read (serviceAccounts(first, after), page by page),
// with its client ID, expiry and scopes. The Wiz client waits out 429 as Wiz asks.
import type { Deadline } from '../deadline.js';
import { RotateError } from '../errors.js';
import type { Secret } from '../secret.js';
import { ALLOW_WIZ_ACCOUNTS } from '../targets/allow-list.js';
import { wizAllowList } from '../targets/wiz-service-account/index.js';
import { DEFAULT_AUTH_URL, WizGraphql, apiUrlFor, requestToken } from '../targets/wiz-service-account/wiz-api.js';
import { type Candidate, type Discovery, ageText } from './candidate.js';
import { SET_BY_ROTATION } from './records.js';

export interface WizDiscoverInput {
  env: NodeJS.ProcessEnv;
  deadline: Deadline;
  clientId: string;
  secret: Secret;
  existing: Map<string, string>;
  log: (line: string) => void;
}

export async function discoverWiz(input: WizDiscoverInput): Promise<Discovery> {
  const authUrl = input.env.KEEPER_ROTATE_WIZ_AUTH_URL || DEFAULT_AUTH_URL;
  const call = { deadline: input.deadline };
  const token = await requestToken(authUrl, input.clientId, input.secret, call);
  if (!token.ok) throw new RotateError('TARGET_AUTH_FAILED', `the Wiz admin credentials (client ID ${input.clientId}) do not sign in: ${token.reason}`);
  let apiUrl = input.env.KEEPER_ROTATE_WIZ_API_URL;
  if (!apiUrl) {
    if (!token.token.dataCenter) throw new RotateError('TARGET_REQUEST_FAILED', 'the Wiz token has no dc claim to find the API by; set KEEPER_ROTATE_WIZ_API_URL');
    apiUrl = apiUrlFor(authUrl, token.token.dataCenter);
  }
  const api = new WizGraphql(apiUrl, token.token, call);
  const allow = wizAllowList(input.env);
  const out: Discovery = { candidates: [], skipped: [], requests: 1 };
  let total = 0;
  // Paged under Wiz's 3 requests a second by the client itself (wiz-api.ts WIZ_API_PACE).
  for await (const page of api.serviceAccounts()) {
    out.requests += 1;
    for (const a of page) {
      total += 1;
      if (a.clientId === input.clientId) {
        out.skipped.push({ id: a.clientId, reason: 'is-admin', detail: 'the admin account itself' });
        continue;
      }
      if (allow && !allow.matches.some((m) => m(a.name))) {
        out.skipped.push({ id: a.clientId, reason: 'not-allowed', detail: `${a.name} is not in ${ALLOW_WIZ_ACCOUNTS} (${allow.entries.join(', ')})` });
        continue;
      }
      const existing = input.existing.get(a.clientId);
      if (existing) {
        out.skipped.push({ id: a.clientId, reason: 'has-record', detail: `record ${existing}` });
        continue;
      }
      const c: Candidate = {
        target: 'wiz-service-account',
        id: a.clientId,
        aliases: [],
        title: `Wiz ${a.name}`,
        login: a.clientId,
        // The template asks for the account's current secret (an account that rotates itself signs in with it);
        // a discovered record is rotated with the admin credentials, and the first rotation writes the secret.
        values: { client_secret: SET_BY_ROTATION },
        notes: `discovered: ${a.name}, ${a.enabled ? 'enabled' : 'disabled'}, expires ${a.expiresAt ? ageText(new Date(a.expiresAt)) : 'never'}, scopes ${a.scopes.join(' ') || 'none'}`,
      };
      if (!a.enabled) c.warning = `service account ${a.name} is disabled: enable it in Wiz before its first rotation`;
      out.candidates.push(c);
    }
  }
  input.log(`discover wiz: ${total} service account(s)`);
  return out;
}
