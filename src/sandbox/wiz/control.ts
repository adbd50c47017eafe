// Control-API routes for the Wiz sandbox (`/wiz/...`): seed service accounts (the answer carries the secret),
// read one back with its current secret, change it (enable, disable, expiry, scopes), rotate or delete it, ask
// whether a secret would get a token now, move the tenant to another data centre, and read or set the request
// budgets per service account (`/wiz/rate-limits`: `{api, auth}`, each `{burst, perSecond}` or null for none).
import { ControlError, bodyObject as object, type ControlApi } from '../control.js';
import type { Budget } from '../rate-limit.js';
import type { WizRateLimitOptions, WizRateLimitSettings } from './limits.js';
import { type CreateServiceAccountOptions, type ServiceAccountUpdate, type WizTenant, WizError } from './tenant.js';

function requiredString(body: Record<string, unknown>, key: string): string {
  const v = body[key];
  if (typeof v !== 'string' || v === '') throw new ControlError(400, `"${key}" is required and must be a string`);
  return v;
}

/** Runs a tenant call, turning its rule errors into control errors (NOT_FOUND 404, anything else 400). */
function guarded<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof WizError) throw new ControlError(err.code === 'NOT_FOUND' ? 404 : 400, `${err.code}: ${err.message}`);
    throw err;
  }
}

const UPDATABLE = ['name', 'description', 'enabled', 'scopes', 'expiresAt'] as const;

export function registerWizControl(api: ControlApi, tenant: WizTenant): void {
  api.route('GET', '/wiz/tenant', () => tenant.settings());

  api.route('PUT', '/wiz/tenant', ({ body }) => {
    const b = object(body);
    guarded(() => tenant.setDataCenter(requiredString(b, 'dataCenter')));
    return tenant.settings();
  });

  api.route('GET', '/wiz/rate-limits', () => tenant.rateLimits.settings());

  api.route('PUT', '/wiz/rate-limits', ({ body }) => {
    const b = object(body);
    const unknown = Object.keys(b).filter((k) => k !== 'api' && k !== 'auth' && k !== 'reset');
    if (unknown.length > 0) throw new ControlError(400, `cannot set ${unknown.join(', ')}; settable: api, auth, reset`);
    if (b.reset !== undefined && typeof b.reset !== 'boolean') throw new ControlError(400, '"reset" must be a boolean');
    let settings: WizRateLimitSettings;
    try {
      // set() checks each budget's shape itself, before it changes anything.
      const wanted: WizRateLimitOptions = {};
      if ('api' in b) wanted.api = b.api as Budget | null;
      if ('auth' in b) wanted.auth = b.auth as Budget | null;
      settings = tenant.rateLimits.set(wanted);
    } catch (err) {
      throw new ControlError(400, err instanceof Error ? err.message : String(err));
    }
    // reset: every bucket full again, so a test starts from a known budget.
    if (b.reset === true) tenant.rateLimits.reset();
    return settings;
  });

  api.route('GET', '/wiz/service-accounts', () => tenant.listServiceAccounts());

  api.route('POST', '/wiz/service-accounts', ({ body }) => {
    const b = object(body);
    requiredString(b, 'name');
    return guarded(() => tenant.createServiceAccount(b as unknown as CreateServiceAccountOptions));
  });

  api.route('GET', '/wiz/service-accounts/:id', ({ params }) => {
    const a = tenant.getServiceAccount(params.id!);
    if (!a) throw new ControlError(404, `no service account with id or clientId ${params.id}`);
    return a;
  });

  api.route('PATCH', '/wiz/service-accounts/:id', ({ params, body }) => {
    const b = object(body);
    const unknown = Object.keys(b).filter((k) => !(UPDATABLE as readonly string[]).includes(k));
    if (unknown.length > 0) throw new ControlError(400, `cannot update ${unknown.join(', ')}; updatable: ${UPDATABLE.join(', ')}`);
    return guarded(() => tenant.updateServiceAccount(params.id!, b as ServiceAccountUpdate));
  });

  api.route('POST', '/wiz/service-accounts/:id/rotate', ({ params }) => guarded(() => tenant.rotateSecret(params.id!)));

  api.route('DELETE', '/wiz/service-accounts/:id', ({ params }) => {
    if (!tenant.deleteServiceAccount(params.id!)) throw new ControlError(404, `no service account with id or clientId ${params.id}`);
    return { deleted: true };
  });

  api.route('POST', '/wiz/check', ({ body }) => {
    const b = object(body);
    return { valid: tenant.checkSecret(requiredString(b, 'clientId'), requiredString(b, 'clientSecret')) };
  });
}
