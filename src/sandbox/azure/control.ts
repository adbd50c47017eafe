// Control-API routes for the Azure sandbox (`/azure/...`): seed tenants, apps and secrets, tune a tenant's
// propagation delay and lifetime policy, tune the directory's timing (propagation and read-lag medians, their
// spread, the seed), read an app back with its secret values (and when each became usable and listed), and ask
// whether a secret works.
import { ControlError, bodyObject as object, optionalString, requiredString, type ControlApi } from '../control.js';
import { type CreateAppOptions, DirectoryError, type DirectoryTiming, type SecretOptions, type TenantOptions, type TenantUpdate } from './directory.js';
import type { AzureService } from './service.js';

/** Runs a directory call, turning its Graph-shaped errors into control errors with the same status. */
function guarded<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof DirectoryError) throw new ControlError(err.status, `${err.code}: ${err.message}`);
    throw err;
  }
}

const TIMING_KEYS = ['propagationDelayMs', 'readLagMs', 'delaySpread', 'seed'] as const;

export function registerAzureControl(api: ControlApi, azure: AzureService): void {
  api.route('GET', '/azure/directory', () => azure.directory.timing());

  api.route('PUT', '/azure/directory', ({ body }) => {
    const b = object(body);
    const update: Partial<DirectoryTiming> = {};
    for (const key of TIMING_KEYS) if (b[key] !== undefined) update[key] = b[key] as number;
    return guarded(() => azure.setTiming(update));
  });

  api.route('POST', '/azure/tenants', ({ body }) => guarded(() => azure.createTenant(object(body) as TenantOptions)));

  api.route('GET', '/azure/tenants/:id', ({ params }) => {
    const t = azure.getTenant(params.id!);
    if (!t) throw new ControlError(404, `no tenant ${params.id}`);
    return t;
  });

  api.route('PUT', '/azure/tenants/:id', ({ params, body }) => {
    const b = object(body);
    const update: TenantUpdate = {};
    if (b.propagationDelayMs !== undefined) update.propagationDelayMs = b.propagationDelayMs as number;
    if (b.maxLifetimeDays !== undefined) update.maxLifetimeDays = b.maxLifetimeDays as number | null;
    return guarded(() => azure.updateTenant(params.id!, update));
  });

  api.route('POST', '/azure/apps', ({ body }) => {
    const b = object(body);
    requiredString(b, 'tenantId');
    requiredString(b, 'displayName');
    if (b.owners !== undefined && !(Array.isArray(b.owners) && b.owners.every((o) => typeof o === 'string'))) {
      throw new ControlError(400, '"owners" must be an array of appIds');
    }
    return guarded(() => azure.createApp(b as unknown as CreateAppOptions));
  });

  api.route('GET', '/azure/apps/:id', ({ params }) => {
    const app = azure.getApp(params.id!);
    if (!app) throw new ControlError(404, `no app with object id or appId ${params.id}`);
    return app;
  });

  api.route('POST', '/azure/apps/:id/secrets', ({ params, body }) => {
    const b = object(body);
    const options: SecretOptions = {};
    const displayName = optionalString(b, 'displayName');
    const start = optionalString(b, 'startDateTime');
    const end = optionalString(b, 'endDateTime');
    if (displayName !== undefined) options.displayName = displayName;
    if (start !== undefined) options.startDateTime = start;
    if (end !== undefined) options.endDateTime = end;
    if (b.propagated !== undefined) options.propagated = b.propagated === true;
    return guarded(() => azure.addSecret(params.id!, options));
  });

  api.route('POST', '/azure/check', ({ body }) => {
    const b = object(body);
    return { valid: azure.checkSecret(requiredString(b, 'tenantId'), requiredString(b, 'clientId'), requiredString(b, 'clientSecret')) };
  });
}
