// Which proxy, if any, a connection goes through: read once from the gateway's environment, decided per
// destination. Node 20's clients read none of these variables (and each library that does reads them its own
// way: @azure/core-rest-pipeline sends https and http alike to HTTPS_PROXY and matches NO_PROXY hosts exactly),
// so every client of this tool asks here instead (src/http/agent.ts), and they all agree.
//
// The semantics are curl's (its `no_proxy` matching in lib/noproxy.c), the convention most tools share (Python's
// urllib matches names the same way), plus ports and CIDR ranges as Go and Python's requests read them:
// - `https_proxy`/`HTTPS_PROXY` for https URLs, `http_proxy`/`HTTP_PROXY` for http URLs, the lower-case name
//   first; neither stands in for the other, and ALL_PROXY is not read (it is often a SOCKS proxy, which this tool
//   cannot speak). An empty value is unset. A value without a scheme is `http://`; `https://` means TLS to the
//   proxy itself. The port defaults to 80 (http) or 443 (https).
// - `no_proxy`/`NO_PROXY`: entries separated by commas (or white space). `*` matches every host. A name matches
//   itself and every name under it (`example.com` matches `api.example.com`, on a label boundary only, so not
//   `badexample.com`); a leading `.` or `*.` is ignored. `name:port` matches that port only (curl ignores a port;
//   Go, Python and proxy-from-env honour it). An IP address matches that address, and `10.0.0.0/8` or `fd00::/8`
//   every address in the range, when the URL names the host by address (names are never resolved to match).
//   Case and a trailing `.` do not matter. Nothing is bypassed implicitly, not even localhost.
import { BlockList, isIP } from 'node:net';
import { RotateError } from '../errors.js';
import { Secret } from '../secret.js';

/** A proxy to send connections through; `auth` is the Proxy-Authorization value, never printed. */
export interface Proxy {
  /** `http:` (plain TCP to the proxy) or `https:` (TLS to the proxy). */
  protocol: 'http:' | 'https:';
  host: string;
  port: number;
  /** `Basic base64(user:password)` when the URL carries credentials. */
  auth?: Secret;
  /** `http://host:port`, with no credentials: the only form of a proxy that messages ever show. */
  display: string;
  /** The variable it came from, for messages. */
  variable: string;
}

export interface ProxyRules {
  https?: Proxy;
  http?: Proxy;
  /** The raw NO_PROXY entries, for --doctor. */
  noProxy: readonly string[];
  /** Does NO_PROXY exempt this destination? */
  bypass(host: string, port: number): boolean;
}

/** The first set, non-empty variable of `names`. */
function firstSet(env: NodeJS.ProcessEnv, names: readonly string[]): { name: string; value: string } | undefined {
  for (const name of names) {
    const value = env[name]?.trim();
    if (value) return { name, value };
  }
  return undefined;
}

/** Parses a proxy variable's value; a value this tool cannot use is PROXY_INVALID (exit 2, before any request). */
export function parseProxyUrl(variable: string, value: string): Proxy {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `http://${value}`;
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(withScheme)?.[1]?.toLowerCase() ?? '';
  // The value may hold a password: a message names the variable and what is wrong, never the value.
  if (scheme !== 'http' && scheme !== 'https') {
    throw new RotateError('PROXY_INVALID', `${variable} names a ${JSON.stringify(scheme.slice(0, 10))} proxy; only http:// and https:// proxies are supported (SOCKS is not)`);
  }
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new RotateError('PROXY_INVALID', `${variable} is not a URL (expected http://[user:password@]host:port)`);
  }
  if (!url.hostname) throw new RotateError('PROXY_INVALID', `${variable} names no host (expected http://[user:password@]host:port)`);
  const protocol = url.protocol as 'http:' | 'https:';
  const port = url.port ? Number(url.port) : protocol === 'https:' ? 443 : 80;
  const host = url.hostname.replace(/^\[|\]$/g, '');
  let auth: Secret | undefined;
  if (url.username || url.password) {
    let user: string;
    let password: string;
    try {
      user = decodeURIComponent(url.username);
      password = decodeURIComponent(url.password);
    } catch {
      throw new RotateError('PROXY_INVALID', `${variable} holds credentials that are not valid percent-encoding`);
    }
    // Each wrapped as a secret, which registers it (and its base64: the header's value) with redact(), so no
    // text this tool prints can carry the password even if something quotes it.
    const credentials = new Secret(`${user}:${password}`);
    if (password) void new Secret(password);
    auth = new Secret(`Basic ${Buffer.from(credentials.reveal()).toString('base64')}`);
  }
  const display = `${protocol}//${isIP(host) === 6 ? `[${host}]` : host}:${port}`;
  return { protocol, host, port, display, variable, ...(auth ? { auth } : {}) };
}

/** Lower case, no brackets, no trailing dot: the form hosts are compared in. */
function normalHost(host: string): string {
  return host.toLowerCase().replace(/^\[|\]$/g, '').replace(/\.$/, '');
}

interface NoProxyEntry {
  /** A name that matches itself and the names under it; undefined for an address entry. */
  domain?: string;
  /** Addresses and ranges (an IP entry or a CIDR one). */
  addresses?: BlockList;
  port?: number;
}

function parseNoProxyEntry(raw: string): NoProxyEntry | 'all' | undefined {
  if (raw === '*') return 'all';
  let text = raw;
  let port: number | undefined;
  // `[v6]:port`, `host:port`, `v4:port`; a bare IPv6 address has more than one colon and no port.
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  if (bracketed) {
    text = bracketed[1]!;
    if (bracketed[2]) port = Number(bracketed[2]);
  } else {
    const withPort = /^([^:]+):(\d+)$/.exec(text);
    if (withPort) {
      text = withPort[1]!;
      port = Number(withPort[2]);
    }
  }
  const cidr = /^(.+)\/(\d{1,3})$/.exec(text);
  const family = isIP(cidr ? cidr[1]! : text);
  if (family) {
    const addresses = new BlockList();
    const type = family === 6 ? 'ipv6' : 'ipv4';
    const prefix = cidr ? Number(cidr[2]) : family === 6 ? 128 : 32;
    if (prefix > (family === 6 ? 128 : 32)) return undefined;
    addresses.addSubnet(cidr ? cidr[1]! : text, prefix, type);
    return { addresses, ...(port ? { port } : {}) };
  }
  const domain = normalHost(text.replace(/^\*?\./, ''));
  if (!domain || domain.includes('*') || domain.includes('/')) return undefined;
  return { domain, ...(port ? { port } : {}) };
}

/** Parses NO_PROXY into a matcher. Entries it cannot read are ignored, as curl ignores them. */
export function noProxyMatcher(value: string | undefined): { entries: string[]; bypass(host: string, port: number): boolean } {
  const entries = (value ?? '').split(/[\s,]+/).filter(Boolean);
  const parsed = entries.map(parseNoProxyEntry);
  const all = parsed.includes('all');
  const rules = parsed.filter((e): e is NoProxyEntry => e !== undefined && e !== 'all');
  return {
    entries,
    bypass(host: string, port: number): boolean {
      if (all) return true;
      const name = normalHost(host);
      const family = isIP(name);
      return rules.some((rule) => {
        if (rule.port !== undefined && rule.port !== port) return false;
        if (rule.addresses) return family !== 0 && rule.addresses.check(name, family === 6 ? 'ipv6' : 'ipv4');
        return name === rule.domain || name.endsWith(`.${rule.domain}`);
      });
    },
  };
}

/** Reads the proxy variables from `env`. Throws PROXY_INVALID for a proxy URL this tool cannot use. */
export function proxyRules(env: NodeJS.ProcessEnv): ProxyRules {
  const https = firstSet(env, ['https_proxy', 'HTTPS_PROXY']);
  const http = firstSet(env, ['http_proxy', 'HTTP_PROXY']);
  const noProxy = noProxyMatcher(firstSet(env, ['no_proxy', 'NO_PROXY'])?.value);
  return {
    ...(https ? { https: parseProxyUrl(https.name, https.value) } : {}),
    ...(http ? { http: parseProxyUrl(http.name, http.value) } : {}),
    noProxy: noProxy.entries,
    bypass: noProxy.bypass,
  };
}

/** The proxy for a connection to host:port over https (`secure`) or http; undefined: connect directly. */
export function proxyFor(rules: ProxyRules, secure: boolean, host: string, port: number): Proxy | undefined {
  const proxy = secure ? rules.https : rules.http;
  if (!proxy || rules.bypass(host, port)) return undefined;
  return proxy;
}

/** The same for a URL (default ports filled in). */
export function proxyForUrl(rules: ProxyRules, url: string | URL): Proxy | undefined {
  const u = typeof url === 'string' ? new URL(url) : url;
  const secure = u.protocol === 'https:';
  return proxyFor(rules, secure, u.hostname, u.port ? Number(u.port) : secure ? 443 : 80);
}

let current: ProxyRules | undefined;

/**
 * Reads the proxy variables of the environment a run was given (cli/main.ts calls it before any request, so a
 * bad value is PROXY_INVALID with nothing sent). Every agent made afterwards routes by these rules.
 */
export function useProxyEnvironment(env: NodeJS.ProcessEnv): ProxyRules {
  current = proxyRules(env);
  return current;
}

/** The rules in force: those of useProxyEnvironment, else the process's own environment's. */
export function currentProxyRules(): ProxyRules {
  return (current ??= proxyRules(process.env));
}

/** What --doctor says about the rules: each proxy without its credentials, NO_PROXY, and the route to `hosts`. */
export function describeProxyRules(rules: ProxyRules, hosts: Readonly<Record<string, string>>): { detail: string; notes: string[] } {
  const one = (scheme: string, p: Proxy | undefined) => (p ? `${scheme} through ${p.display} (${p.variable}${p.auth ? ', with credentials' : ''})` : `${scheme} direct`);
  if (!rules.https && !rules.http) return { detail: 'no proxy: every connection is direct (HTTPS_PROXY and HTTP_PROXY are unset)', notes: [] };
  const notes = [rules.noProxy.length ? `NO_PROXY: ${rules.noProxy.join(', ')}` : 'NO_PROXY: unset, no host is exempt'];
  for (const [what, url] of Object.entries(hosts)) {
    const u = new URL(url);
    notes.push(`${what} (${u.host}): ${proxyForUrl(rules, u) ? 'through the proxy' : 'direct'}`);
  }
  return { detail: `${one('https', rules.https)}; ${one('http', rules.http)}`, notes };
}
