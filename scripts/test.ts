// `npm test` after the type check: runs every test/**/*.test.ts with node:test through tsx.
// NODE_EXTRA_CA_CERTS is read only when a Node process starts, so the sandbox certificate is made here, once
// per run, and every test process (and every script a test spawns) trusts it from its first instruction. The
// sandbox servers the tests start serve that same certificate.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { SANDBOX_NO_PROXY } from '../src/sandbox/sandbox.js';
import { SANDBOX_TLS_DIR_ENV, generateTlsMaterial } from '../src/sandbox/tls.js';

function findTests(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) return findTests(path);
      return name.endsWith('.test.ts') ? [path] : [];
    });
}

const root = process.cwd();
const filters = process.argv.slice(2);
const files = findTests(join(root, 'test'))
  .map((f) => relative(root, f))
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)));
if (files.length === 0) {
  console.error(`no test files match ${filters.join(' ') || 'test/**/*.test.ts'}`);
  process.exit(1);
}

const tlsDir = mkdtempSync(join(tmpdir(), 'keeper-rotate-test-tls-'));
const material = generateTlsMaterial();
writeFileSync(join(tlsDir, 'cert.pem'), material.certPem);
writeFileSync(join(tlsDir, 'key.pem'), material.keyPem, { mode: 0o600 });

const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=2', ...files], {
  stdio: 'inherit',
  // A test that runs a script without a sandbox of its own must not write to this machine's real state folder.
  // Every test talks to loopback only: a proxy in the developer's shell (which the scripts honour) must not get it.
  env: { ...process.env, NODE_EXTRA_CA_CERTS: join(tlsDir, 'cert.pem'), [SANDBOX_TLS_DIR_ENV]: tlsDir, KEEPER_ROTATE_STATE_DIR: join(tlsDir, 'state'), NO_PROXY: SANDBOX_NO_PROXY, no_proxy: SANDBOX_NO_PROXY },
});
const cleanup = () => rmSync(tlsDir, { recursive: true, force: true });
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => {
  cleanup();
  process.exit(code ?? (signal ? 1 : 0));
});
