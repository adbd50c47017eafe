// The three patch formats the API server takes on a PATCH of a built-in object
// (https://kubernetes.io/docs/tasks/manage-kubernetes-objects/update-api-object-kubectl-patch/): JSON merge
// patch (RFC 7386), strategic merge patch, and JSON patch (RFC 6902). Server-side apply
// (application/apply-patch+yaml) is not served: nothing here sends it, and the sandbox answers 415 for it, as a
// server that does not know a type does.
//
// Strategic merge differs from merge patch only in how it merges lists of objects (by a key such as a container's
// `name`) and in its `$patch` directives. The objects served here (Secrets, Deployments) are patched at maps
// (data, labels, annotations, the pod template's annotations), where the two agree; a strategic patch that
// touches a list or carries a directive is refused with 400 rather than merged the wrong way.

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

export const PATCH_TYPES = ['application/json-patch+json', 'application/merge-patch+json', 'application/strategic-merge-patch+json'] as const;
export type PatchType = (typeof PATCH_TYPES)[number];

/** What the server lists as accepted in its 415 (it also names server-side apply, which it serves). */
export const ACCEPTED_PATCH_TYPES = ['application/json-patch+json', 'application/merge-patch+json', 'application/apply-patch+yaml', 'application/strategic-merge-patch+json'];

export class PatchError extends Error {}

function isObject(v: Json | undefined): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function clone<T extends Json>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

/** RFC 7386: objects merge key by key, null deletes, anything else replaces. */
export function mergePatch(target: Json, patch: Json): Json {
  if (!isObject(patch)) return clone(patch);
  const out: JsonObject = isObject(target) ? clone(target) : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k] ?? null, v);
  }
  return out;
}

function checkStrategic(patch: Json, path: string): void {
  if (Array.isArray(patch)) throw new PatchError(`strategic merge of the list at ${path || '/'} is not supported by the sandbox`);
  if (!isObject(patch)) return;
  for (const [k, v] of Object.entries(patch)) {
    if (k.startsWith('$')) throw new PatchError(`strategic merge directive ${k} at ${path || '/'} is not supported by the sandbox`);
    checkStrategic(v, `${path}/${k}`);
  }
}

export function strategicMergePatch(target: Json, patch: Json): Json {
  checkStrategic(patch, '');
  return mergePatch(target, patch);
}

function unescape(token: string): string {
  return token.replace(/~1/g, '/').replace(/~0/g, '~');
}

function pointer(path: string): string[] {
  if (path === '') return [];
  if (!path.startsWith('/')) throw new PatchError(`invalid JSON pointer "${path}"`);
  return path.slice(1).split('/').map(unescape);
}

function parentOf(doc: Json, tokens: string[], path: string): { parent: JsonObject | Json[]; key: string } {
  let node: Json = doc;
  for (const t of tokens.slice(0, -1)) {
    if (Array.isArray(node)) node = node[Number(t)] as Json;
    else if (isObject(node)) node = node[t] as Json;
    else node = undefined as unknown as Json;
    if (node === undefined) throw new PatchError(`doc is missing path: "${path}": missing value`);
  }
  if (!Array.isArray(node) && !isObject(node)) throw new PatchError(`doc is missing path: "${path}": missing value`);
  return { parent: node, key: tokens[tokens.length - 1]! };
}

function get(doc: Json, path: string): Json {
  let node: Json | undefined = doc;
  for (const t of pointer(path)) {
    if (Array.isArray(node)) node = node[Number(t)];
    else if (isObject(node)) node = node[t];
    else node = undefined;
    if (node === undefined) throw new PatchError(`doc is missing path: "${path}": missing value`);
  }
  return node;
}

/** RFC 6902, as evanphx/json-patch (the server's library) applies it: the whole patch or none of it. */
export function jsonPatch(target: Json, ops: Json): Json {
  if (!Array.isArray(ops)) throw new PatchError('a JSON patch is an array of operations');
  let doc = clone(target);
  for (const raw of ops) {
    if (!isObject(raw) || typeof raw.op !== 'string' || typeof raw.path !== 'string') throw new PatchError('each JSON patch operation needs "op" and "path"');
    const { op, path } = raw as { op: string; path: string };
    const tokens = pointer(path);
    const value = raw.value;
    const from = typeof raw.from === 'string' ? raw.from : undefined;
    const put = (v: Json, replace: boolean) => {
      if (tokens.length === 0) {
        doc = clone(v);
        return;
      }
      const { parent, key } = parentOf(doc, tokens, path);
      if (Array.isArray(parent)) {
        const i = key === '-' ? parent.length : Number(key);
        if (!Number.isInteger(i) || i < 0 || i > parent.length - (replace ? 1 : 0)) throw new PatchError(`Unable to access invalid index: ${key}`);
        if (replace) parent[i] = clone(v);
        else parent.splice(i, 0, clone(v));
      } else {
        if (replace && !(key in parent)) throw new PatchError(`replace operation does not apply: doc is missing key: ${path}: missing value`);
        parent[key] = clone(v);
      }
    };
    const remove = (p: string, t: string[]): Json => {
      if (t.length === 0) throw new PatchError('cannot remove the whole document');
      const { parent, key } = parentOf(doc, t, p);
      if (Array.isArray(parent)) {
        const i = Number(key);
        if (!Number.isInteger(i) || i < 0 || i >= parent.length) throw new PatchError(`Unable to remove nonexistent index: ${key}`);
        return parent.splice(i, 1)[0]!;
      }
      if (!(key in parent)) throw new PatchError(`remove operation does not apply: doc is missing path: "${p}": missing value`);
      const old = parent[key]!;
      delete parent[key];
      return old;
    };
    switch (op) {
      case 'add':
        if (value === undefined) throw new PatchError('add operation needs a value');
        put(value, false);
        break;
      case 'replace':
        if (value === undefined) throw new PatchError('replace operation needs a value');
        put(value, true);
        break;
      case 'remove':
        remove(path, tokens);
        break;
      case 'test':
        if (JSON.stringify(get(doc, path)) !== JSON.stringify(value ?? null)) throw new PatchError(`testing value ${path} failed: test failed`);
        break;
      case 'copy':
        if (from === undefined) throw new PatchError('copy operation needs "from"');
        put(get(doc, from), false);
        break;
      case 'move': {
        if (from === undefined) throw new PatchError('move operation needs "from"');
        const moved = remove(from, pointer(from));
        put(moved, false);
        break;
      }
      default:
        throw new PatchError(`Unexpected kind: ${op}`);
    }
  }
  return doc;
}

export function applyPatch(type: PatchType, target: Json, body: Json): Json {
  if (type === 'application/json-patch+json') return jsonPatch(target, body);
  if (type === 'application/strategic-merge-patch+json') return strategicMergePatch(target, body);
  return mergePatch(target, body);
}
