// The API server's error replies: a `Status` object (kind Status, apiVersion v1) for everything the server itself
// refuses, with the message, reason and details the real server writes (k8s.io/apimachinery
// pkg/api/errors/errors.go: NewUnauthorized, NewForbidden, NewNotFound, NewAlreadyExists, NewConflict,
// NewInvalid, NewBadRequest, NewUnsupportedMediaType; API reference "Status" at
// https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/status/). The bodies quoted in public
// issues read the same, e.g. `Secret "registry-harbor" is invalid: type: Invalid value: "kubernetes.io/dockercfg":
// field is immutable` with reason Invalid, code 422 and a FieldValueInvalid cause (jenkinsci/kubernetes-cd-plugin
// #55), and `Secret in version "v1" cannot be handled as a Secret: ... illegal base64 data at input byte 8`
// as a 400 BadRequest (kubectl's "Error from server (BadRequest)").
import type { Reply } from '../service.js';
import { json } from '../service.js';

export type StatusReason =
  | 'Unauthorized'
  | 'Forbidden'
  | 'NotFound'
  | 'AlreadyExists'
  | 'Conflict'
  | 'Invalid'
  | 'BadRequest'
  | 'UnsupportedMediaType'
  | 'MethodNotAllowed'
  | 'TooManyRequests'
  | 'InternalError';

export interface StatusCause {
  reason: string;
  message: string;
  field: string;
}

export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  causes?: StatusCause[];
  retryAfterSeconds?: number;
}

/** What a resource is called in messages and details: `secrets`, or `deployments.apps` in the `apps` group. */
export interface ResourceKind {
  /** The plural resource name: `secrets`, `deployments`. */
  resource: string;
  /** The API group: '' for core. */
  group: string;
  /** The object kind: `Secret`, `Deployment` (Invalid errors name the kind, not the resource). */
  kind: string;
}

export const SECRETS: ResourceKind = { resource: 'secrets', group: '', kind: 'Secret' };
export const DEPLOYMENTS: ResourceKind = { resource: 'deployments', group: 'apps', kind: 'Deployment' };
export const NAMESPACES: ResourceKind = { resource: 'namespaces', group: '', kind: 'Namespace' };

/** `secrets`, `deployments.apps`: how GroupResource.String() names a resource in messages. */
export function qualified(r: ResourceKind): string {
  return r.group === '' ? r.resource : `${r.resource}.${r.group}`;
}

export function status(code: number, reason: StatusReason, message: string, details?: StatusDetails, headers: Record<string, string> = {}): Reply {
  return json(code, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, ...(details ? { details } : {}), code }, headers);
}

function resourceDetails(r: ResourceKind, name: string | undefined): StatusDetails {
  return { ...(name !== undefined ? { name } : {}), ...(r.group !== '' ? { group: r.group } : {}), kind: r.resource };
}

/** The authenticator found no valid credential: no details, the one word. */
export function unauthorized(): Reply {
  return status(401, 'Unauthorized', 'Unauthorized');
}

/**
 * RBAC denied the request: `secrets "app-creds" is forbidden: User "system:serviceaccount:keeper:gateway" cannot
 * patch resource "secrets" in API group "" in the namespace "team-a"` (the authorization filter's
 * forbiddenMessage; a create has no name, so the message starts `secrets is forbidden`).
 */
export function forbidden(r: ResourceKind, name: string | undefined, user: string, verb: string, namespace: string): Reply {
  const what = name !== undefined && name !== '' ? `${qualified(r)} "${name}"` : qualified(r);
  const message = `${what} is forbidden: User "${user}" cannot ${verb} resource "${r.resource}" in API group "${r.group}" in the namespace "${namespace}"`;
  return status(403, 'Forbidden', message, resourceDetails(r, name === '' ? undefined : name));
}

export function notFound(r: ResourceKind, name: string): Reply {
  return status(404, 'NotFound', `${qualified(r)} "${name}" not found`, resourceDetails(r, name));
}

export function alreadyExists(r: ResourceKind, name: string): Reply {
  return status(409, 'AlreadyExists', `${qualified(r)} "${name}" already exists`, resourceDetails(r, name));
}

/** The optimistic-concurrency failure: the object's resourceVersion moved on since the client read it. */
export function conflict(r: ResourceKind, name: string): Reply {
  const message = `Operation cannot be fulfilled on ${qualified(r)} "${name}": the object has been modified; please apply your changes to the latest version and try again`;
  return status(409, 'Conflict', message, resourceDetails(r, name));
}

/** One field error, as field.Error prints it: `data[.dockerconfigjson]: Required value`. */
export interface FieldError {
  field: string;
  /** FieldValueInvalid, FieldValueRequired, FieldValueTooLong, FieldValueForbidden. */
  type: 'FieldValueInvalid' | 'FieldValueRequired' | 'FieldValueTooLong' | 'FieldValueForbidden';
  /** The detail after the type's words (for FieldValueInvalid: `Invalid value: "<value>": <detail>`). */
  text: string;
}

/** `Secret "x" is invalid: type: Invalid value: "...": field is immutable` (422, reason Invalid, one cause per error). */
export function invalid(r: ResourceKind, name: string, errors: FieldError[]): Reply {
  const causes = errors.map((e) => ({ reason: e.type, message: e.text, field: e.field }));
  const list = errors.map((e) => `${e.field}: ${e.text}`);
  // The qualified kind, as GroupKind.String() prints it: `Secret`, `Deployment.apps`.
  const kind = r.group === '' ? r.kind : `${r.kind}.${r.group}`;
  const message = `${kind} "${name}" is invalid: ${list.length === 1 ? list[0] : `[${list.join(', ')}]`}`;
  return status(422, 'Invalid', message, { name, ...(r.group !== '' ? { group: r.group } : {}), kind: r.kind, causes });
}

export function badRequest(message: string): Reply {
  return status(400, 'BadRequest', message);
}

/** negotiation.NewUnsupportedMediaTypeError: the patch types this resource accepts. */
export function unsupportedMediaType(accepted: readonly string[]): Reply {
  return status(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: ${accepted.join(', ')}`);
}

export function methodNotAllowed(verb: string, r: ResourceKind): Reply {
  return status(405, 'MethodNotAllowed', `the server does not allow this method on the requested resource`, { kind: r.resource, ...(r.group !== '' ? { group: r.group } : {}) }, { allow: verb });
}

/**
 * API Priority and Fairness rejecting a request: HTTP 429 with `Retry-After`. The filter writes it with Go's
 * `http.Error(w, "Too many requests, please try again later.", 429)` (apiserver pkg/server/filters/maxinflight.go
 * `tooManyRequests`), so the body is that one line of text/plain, not a Status object: a client that expects JSON
 * on every error gets none here, and the sandbox is no kinder.
 */
export function tooManyRequests(retryAfterSeconds: number): Reply {
  return {
    status: 429,
    headers: { 'content-type': 'text/plain; charset=utf-8', 'x-content-type-options': 'nosniff', 'retry-after': String(Math.max(1, Math.ceil(retryAfterSeconds))) },
    body: 'Too many requests, please try again later.\n',
  };
}
