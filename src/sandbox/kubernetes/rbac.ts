// RBAC as the API server evaluates it, reduced to what one token needs: a list of rules, each the union of a
// Role (or ClusterRole) and the binding that grants it in one namespace (or all). A request is allowed when any
// rule matches its attributes (https://kubernetes.io/docs/reference/access-authn-authz/rbac/): namespace,
// API group, resource, verb and, when the rule lists resourceNames, the object's name. A create has no name in
// its attributes ("You cannot restrict create or deletecollection requests by their resource name", same page),
// so a rule with resourceNames never allows a create.

export interface RbacRule {
  /** The namespace of the RoleBinding; `*` for a ClusterRoleBinding (every namespace). */
  namespace: string;
  /** API groups: '' is core; default: the group of each named resource (secrets: '', deployments: 'apps'). */
  apiGroups?: string[];
  /** Plural resource names, or `*`. */
  resources: string[];
  /** get, list, watch, create, update, patch, delete, or `*`. */
  verbs: string[];
  /** When set, only these objects (never a create). */
  resourceNames?: string[];
  /** The binding's name, for the reason a SelfSubjectAccessReview gives (default `keeper-rotate`). */
  binding?: string;
}

export interface ResourceAttributes {
  namespace: string;
  group: string;
  resource: string;
  verb: string;
  /** '' for a create or a collection. */
  name: string;
}

export interface Decision {
  allowed: boolean;
  /** Why, as the RBAC authorizer phrases an allow; '' for a denial (the API gives no reason then). */
  reason: string;
}

const DEFAULT_GROUP: Record<string, string> = { secrets: '', configmaps: '', namespaces: '', deployments: 'apps', selfsubjectaccessreviews: 'authorization.k8s.io' };

function matches(list: readonly string[], value: string): boolean {
  return list.includes('*') || list.includes(value);
}

export function ruleAllows(rule: RbacRule, a: ResourceAttributes): boolean {
  if (rule.namespace !== '*' && rule.namespace !== a.namespace) return false;
  if (!matches(rule.verbs, a.verb)) return false;
  if (!matches(rule.resources, a.resource)) return false;
  const groups = rule.apiGroups ?? [...new Set(rule.resources.map((r) => DEFAULT_GROUP[r] ?? ''))];
  if (!matches(groups, a.group)) return false;
  if (rule.resourceNames && rule.resourceNames.length > 0) return a.name !== '' && rule.resourceNames.includes(a.name);
  return true;
}

/** The subject a user name stands for in an allow reason: `ServiceAccount "gateway/keeper"` or `User "alice"`. */
function subject(user: string): string {
  const sa = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(user);
  return sa ? `ServiceAccount "${sa[2]}/${sa[1]}"` : `User "${user}"`;
}

export function authorize(user: string, rules: readonly RbacRule[], a: ResourceAttributes): Decision {
  const rule = rules.find((r) => ruleAllows(r, a));
  if (!rule) return { allowed: false, reason: '' };
  const binding = rule.binding ?? 'keeper-rotate';
  const reason =
    rule.namespace === '*'
      ? `RBAC: allowed by ClusterRoleBinding "${binding}" of ClusterRole "${binding}" to ${subject(user)}`
      : `RBAC: allowed by RoleBinding "${binding}/${rule.namespace}" of Role "${binding}" to ${subject(user)}`;
  return { allowed: true, reason };
}

/** A rule list from control-API JSON, checked; throws with a message naming what is wrong. */
export function parseRules(input: unknown): RbacRule[] {
  if (!Array.isArray(input)) throw new Error('"rules" must be an array');
  return input.map((r, i) => {
    if (!r || typeof r !== 'object') throw new Error(`rules[${i}] must be an object`);
    const o = r as Record<string, unknown>;
    const strings = (key: string, required: boolean): string[] | undefined => {
      const v = o[key];
      if (v === undefined && !required) return undefined;
      if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) throw new Error(`rules[${i}].${key} must be an array of strings`);
      return v as string[];
    };
    if (typeof o.namespace !== 'string' || o.namespace === '') throw new Error(`rules[${i}].namespace must be a namespace or *`);
    const apiGroups = strings('apiGroups', false);
    const resourceNames = strings('resourceNames', false);
    return {
      namespace: o.namespace,
      resources: strings('resources', true)!,
      verbs: strings('verbs', true)!,
      ...(apiGroups ? { apiGroups } : {}),
      ...(resourceNames ? { resourceNames } : {}),
      ...(typeof o.binding === 'string' ? { binding: o.binding } : {}),
    };
  });
}
