// packaging/install.sh run for real with /bin/sh, staged under DESTDIR in a temporary root, on a stand-in
// binary (a small shell script this test writes: an input file, not a stand-in for our code). As root, the state
// folder goes to another user (nobody), so its owner shows that the chown happened; otherwise to this user.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  closeSync,
  copyFileSync,
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, test } from 'node:test';

const ROOT = resolve(import.meta.dirname, '..', '..');
const INSTALL_SH = join(ROOT, 'packaging', 'install.sh');
// The wrappers' contract (packaging/wrappers/*.sh run this binary and point the scripts at this folder).
const BIN = '/opt/keeper-rotate/bin/keeper-rotate';
const WRAPPERS = '/opt/keeper-rotate/wrappers';
const STATE = '/var/lib/keeper-rotate';
// Where `npm run build:binary` writes the binary, relative to the repository.
const BUILT_BINARY = 'dist/keeper-rotate';

const ME = process.getuid!();
// Someone other than this process: as root, nobody (whom a root run can also drop to); otherwise root.
const OTHER_USER = ME === 0 ? 'nobody' : 'root';
const OTHER_UID = Number(execFileSync('id', ['-u', OTHER_USER], { encoding: 'utf8' }));
const OWNER = ME === 0 ? OTHER_USER : userInfo().username;
const OWNER_UID = ME === 0 ? OTHER_UID : ME;

const temps: string[] = [];
after(() => {
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});
function temp(): string {
  const d = mkdtempSync(join(tmpdir(), 'keeper-rotate-install-'));
  temps.push(d);
  return d;
}

function standIn(version: string): string {
  return `#!/bin/sh\necho "keeper-rotate ${version}"\n`;
}

/** A release folder as shipped: install.sh, the binary beside it, and wrappers/. */
function release(dir: string, version = 'v1', wrappers: Record<string, string> = { 'azure-app-secret.sh': '#!/bin/sh\nexec keeper-rotate azure-app-secret "$@"\n' }): string {
  mkdirSync(join(dir, 'wrappers'), { recursive: true });
  copyFileSync(INSTALL_SH, join(dir, 'install.sh'));
  // Not executable and (as root) someone else's: the installed copy must be 0755 and the installer's.
  writeFileSync(join(dir, 'keeper-rotate'), standIn(version), { mode: 0o600 });
  if (ME === 0) chownSync(join(dir, 'keeper-rotate'), OTHER_UID, OTHER_UID);
  for (const [name, body] of Object.entries(wrappers)) writeFileSync(join(dir, 'wrappers', name), body, { mode: 0o644 });
  return join(dir, 'install.sh');
}

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(script: string, args: string[], destdir: string | undefined, prefix: string[] = []): Result {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH };
  if (destdir !== undefined) env.DESTDIR = destdir;
  const cmd = [...prefix, 'sh', script, ...args];
  const r = spawnSync(cmd[0]!, cmd.slice(1), { env, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function mode(path: string): number {
  return lstatSync(path).mode & 0o7777;
}

/** Every path under `dir` with its inode, mode, owner and mtime, to show a run changed nothing. */
function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (p: string) => {
    const st = lstatSync(p);
    out.set(p, `${st.ino} ${st.mode.toString(8)} ${st.uid} ${st.mtimeMs}`);
    if (st.isDirectory()) for (const name of readdirSync(p)) walk(join(p, name));
  };
  walk(dir);
  return out;
}

describe('packaging/install.sh', () => {
  test('installs the binary (0755, the installer\'s), the wrappers beside it, and the state folder (0700, --user\'s)', () => {
    const dir = temp();
    const script = release(join(dir, 'release'));
    const root = join(dir, 'root');
    const r = run(script, ['--user', OWNER], root);
    assert.equal(r.code, 0, r.stderr);

    const bin = join(root, BIN);
    assert.equal(readFileSync(bin, 'utf8'), standIn('v1'));
    assert.equal(mode(bin), 0o755);
    assert.equal(lstatSync(bin).uid, ME);
    assert.equal(execFileSync(bin, { encoding: 'utf8' }), 'keeper-rotate v1\n');

    const wrapper = join(root, WRAPPERS, 'azure-app-secret.sh');
    assert.equal(readFileSync(wrapper, 'utf8'), readFileSync(join(dir, 'release', 'wrappers', 'azure-app-secret.sh'), 'utf8'));
    assert.equal(mode(wrapper), 0o755);

    const state = lstatSync(join(root, STATE));
    assert.ok(state.isDirectory());
    assert.equal(state.mode & 0o7777, 0o700);
    assert.equal(state.uid, OWNER_UID);

    // One line per action, naming the path it acted on.
    assert.match(r.stdout, new RegExp(`^keeper-rotate install: installed ${join(root, BIN)} \\(mode 0755\\)$`, 'm'));
    assert.match(r.stdout, new RegExp(`^keeper-rotate install: installed ${wrapper} \\(mode 0755\\)$`, 'm'));
    assert.match(r.stdout, new RegExp(`^keeper-rotate install: created ${join(root, STATE)} \\(owner ${OWNER}, mode 0700\\)$`, 'm'));
    assert.equal(r.stderr, '');
  });

  test('in a checkout, without --binary, installs dist/keeper-rotate; with no binary anywhere it refuses', () => {
    const dir = temp();
    mkdirSync(join(dir, 'repo', 'packaging'), { recursive: true });
    mkdirSync(join(dir, 'repo', 'dist'));
    const script = join(dir, 'repo', 'packaging', 'install.sh');
    copyFileSync(INSTALL_SH, script);

    const none = run(script, ['--user', OWNER], join(dir, 'root'));
    assert.equal(none.code, 1);
    assert.match(none.stderr, /npm run build:binary/);
    assert.match(none.stderr, /--binary PATH/);
    assert.equal(existsSync(join(dir, 'root')), false, 'a refusal writes nothing');

    writeFileSync(join(dir, 'repo', BUILT_BINARY), standIn('built'));
    const r = run(script, ['--user', OWNER], join(dir, 'root'));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`installing the binary ${join(dir, 'repo', BUILT_BINARY)}$`, 'm'));
    assert.equal(readFileSync(join(dir, 'root', BIN), 'utf8'), standIn('built'));
    assert.match(r.stdout, /no wrappers\/ beside this script: none installed/);
    assert.equal(existsSync(join(dir, 'root', WRAPPERS)), false);
  });

  test('an upgrade renames a new file into place: a run that has the old binary open keeps reading it whole', () => {
    const dir = temp();
    const script = release(join(dir, 'release'), 'v1');
    const root = join(dir, 'root');
    assert.equal(run(script, ['--user', OWNER], root).code, 0);
    const bin = join(root, BIN);
    const before = statSync(bin);
    const fd = openSync(bin, 'r');
    try {
      writeFileSync(join(dir, 'release', 'keeper-rotate'), standIn('v2-with-a-longer-body'));
      const r = run(script, ['--user', OWNER], root);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`^keeper-rotate install: replaced ${bin} \\(mode 0755\\)$`, 'm'));
      assert.match(r.stdout, /installed \(1 change\)$/m);

      const now = statSync(bin);
      assert.notEqual(now.ino, before.ino, 'a new file, not the old one written over');
      const buf = Buffer.alloc(200);
      const n = readSync(fd, buf, 0, buf.length, 0);
      assert.equal(buf.subarray(0, n).toString('utf8'), standIn('v1'), 'the open file still holds the old binary, whole');
      assert.equal(readFileSync(bin, 'utf8'), standIn('v2-with-a-longer-body'));
      assert.equal(mode(bin), 0o755);
      assert.deepEqual(readdirSync(join(root, '/opt/keeper-rotate/bin')), ['keeper-rotate'], 'no temporary file left behind');
    } finally {
      closeSync(fd);
    }
  });

  test('a second run changes nothing and says so; a binary whose mode was changed is put back', () => {
    const dir = temp();
    const script = release(join(dir, 'release'));
    const root = join(dir, 'root');
    assert.equal(run(script, ['--user', OWNER], root).code, 0);
    const first = snapshot(root);

    const again = run(script, ['--user', OWNER], root);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /^keeper-rotate install: nothing to change: already installed$/m);
    assert.doesNotMatch(again.stdout, /installed \/|created|replaced/);
    assert.match(again.stdout, new RegExp(`^keeper-rotate install: unchanged ${join(root, BIN)}$`, 'm'));
    assert.match(again.stdout, new RegExp(`^keeper-rotate install: unchanged ${join(root, STATE)} \\(owner ${OWNER}, mode 0700\\)$`, 'm'));
    assert.deepEqual(snapshot(root), first);

    chmodSync(join(root, BIN), 0o700);
    const fixed = run(script, ['--user', OWNER], root);
    assert.equal(fixed.code, 0, fixed.stderr);
    assert.match(fixed.stdout, /replaced .*\/bin\/keeper-rotate \(mode 0755\)$/m);
    assert.equal(mode(join(root, BIN)), 0o755);
  });

  test('--prefix installs elsewhere and says which KEEPER_ROTATE_BIN the wrappers then need', () => {
    const dir = temp();
    const script = release(join(dir, 'release'));
    const root = join(dir, 'root');
    const r = run(script, ['--user', OWNER, '--prefix', '/usr/local/keeper-rotate'], root);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(mode(join(root, '/usr/local/keeper-rotate/bin/keeper-rotate')), 0o755);
    assert.equal(existsSync(join(root, '/opt')), false);
    assert.match(r.stdout, /set KEEPER_ROTATE_BIN=\/usr\/local\/keeper-rotate\/bin\/keeper-rotate/);
  });

  test('--uninstall removes the binary and the wrappers, and keeps the state folder with what it holds', () => {
    const dir = temp();
    const script = release(join(dir, 'release'));
    const root = join(dir, 'root');
    assert.equal(run(script, ['--user', OWNER], root).code, 0);
    const journal = join(root, STATE, '0123456789abcdef', 'journal-REC.json');
    mkdirSync(join(root, STATE, '0123456789abcdef'), { mode: 0o700 });
    writeFileSync(journal, '{"step":"saved"}', { mode: 0o600 });

    const r = run(script, ['--uninstall'], root);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(existsSync(join(root, BIN)), false);
    assert.equal(existsSync(join(root, WRAPPERS)), false);
    assert.equal(existsSync(join(root, '/opt/keeper-rotate')), false);
    assert.match(r.stdout, new RegExp(`^keeper-rotate install: removed ${join(root, BIN)}$`, 'm'));
    assert.match(r.stdout, new RegExp(`^keeper-rotate install: kept ${join(root, STATE)}: it may hold the journal of an unfinished rotation or a sealed secret`, 'm'));
    assert.equal(readFileSync(journal, 'utf8'), '{"step":"saved"}');
    assert.equal(mode(join(root, STATE)), 0o700);
    assert.equal(lstatSync(join(root, STATE)).uid, OWNER_UID);

    const again = run(script, ['--uninstall'], root);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /^keeper-rotate install: nothing to remove$/m);
    assert.doesNotMatch(again.stdout, /removed/);
  });

  test('--uninstall leaves a folder someone added files to', () => {
    const dir = temp();
    const script = release(join(dir, 'release'));
    const root = join(dir, 'root');
    assert.equal(run(script, ['--user', OWNER], root).code, 0);
    writeFileSync(join(root, '/opt/keeper-rotate/bin/notes.txt'), 'mine');
    const r = run(script, ['--uninstall'], root);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(existsSync(join(root, BIN)), false);
    assert.equal(readFileSync(join(root, '/opt/keeper-rotate/bin/notes.txt'), 'utf8'), 'mine');
    assert.match(r.stdout, /kept .*\/opt\/keeper-rotate\/bin: not empty$/m);
  });

  describe('refusals change nothing', () => {
    function assertNothingInstalled(root: string): void {
      assert.equal(existsSync(join(root, '/opt')), false, 'no binary or wrapper installed');
    }

    test('a state folder that is a symbolic link', () => {
      const dir = temp();
      const script = release(join(dir, 'release'));
      const root = join(dir, 'root');
      const elsewhere = join(dir, 'elsewhere');
      mkdirSync(elsewhere, { mode: 0o755 });
      chmodSync(elsewhere, 0o755);
      mkdirSync(join(root, '/var/lib'), { recursive: true });
      symlinkSync(elsewhere, join(root, STATE));

      const r = run(script, ['--user', OWNER], root);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /\/var\/lib\/keeper-rotate is a symbolic link; the scripts refuse it \(STATE_DIR_UNAVAILABLE\)/);
      assert.equal(r.stdout, '');
      assertNothingInstalled(root);
      assert.ok(lstatSync(join(root, STATE)).isSymbolicLink());
      assert.equal(mode(elsewhere), 0o755);
      assert.equal(lstatSync(elsewhere).uid, ME);
    });

    test('a state folder others can reach (not 0700), left as it is', () => {
      const dir = temp();
      const script = release(join(dir, 'release'));
      const root = join(dir, 'root');
      mkdirSync(join(root, STATE), { recursive: true });
      chmodSync(join(root, STATE), 0o750);
      chownSync(join(root, STATE), OWNER_UID, -1);

      const r = run(script, ['--user', OWNER], root);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /has mode drwxr-x---; the scripts take only a folder private to the gateway's user, drwx------ \(else STATE_DIR_UNAVAILABLE\)/);
      assert.match(r.stderr, /chmod 700 '.*\/var\/lib\/keeper-rotate'/);
      assertNothingInstalled(root);
      assert.equal(mode(join(root, STATE)), 0o750);
    });

    test('a state folder that belongs to someone other than --user, left as it is', () => {
      const dir = temp();
      const script = release(join(dir, 'release'));
      const root = join(dir, 'root');
      mkdirSync(join(root, STATE), { recursive: true, mode: 0o700 });
      assert.notEqual(ME, OTHER_UID);

      const r = run(script, ['--user', OTHER_USER], root);
      assert.equal(r.code, 1);
      assert.match(r.stderr, new RegExp(`belongs to uid ${ME}, not to ${OTHER_USER} \\(uid ${OTHER_UID}\\); the scripts would refuse it \\(STATE_DIR_UNAVAILABLE\\)`));
      assertNothingInstalled(root);
      assert.equal(lstatSync(join(root, STATE)).uid, ME);
      assert.equal(mode(join(root, STATE)), 0o700);
    });

    test('a --user that does not exist', () => {
      const dir = temp();
      const script = release(join(dir, 'release'));
      const root = join(dir, 'root');
      const r = run(script, ['--user', 'keeper-rotate-no-such-user'], root);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /no user 'keeper-rotate-no-such-user' on this host/);
      assert.equal(existsSync(root), false);
    });

    test('an install folder others can write (they could swap the binary)', () => {
      const dir = temp();
      const script = release(join(dir, 'release'));
      const root = join(dir, 'root');
      mkdirSync(join(root, '/opt/keeper-rotate/bin'), { recursive: true });
      chmodSync(join(root, '/opt/keeper-rotate/bin'), 0o777);
      const r = run(script, ['--user', OWNER], root);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /bin has mode drwxrwxrwx: others could replace what is installed in it; .*chmod go-w/);
      assert.equal(existsSync(join(root, BIN)), false);
      assert.equal(existsSync(join(root, STATE)), false);
    });

    test('a binary or wrapper path that is a link or a folder (a rename would not replace it)', () => {
      const dir = temp();
      const script = release(join(dir, 'release'));
      const root = join(dir, 'root');
      mkdirSync(join(root, '/opt/keeper-rotate/bin'), { recursive: true });
      symlinkSync(join(dir, 'release', 'keeper-rotate'), join(root, BIN));
      const link = run(script, ['--user', OWNER], root);
      assert.equal(link.code, 1);
      assert.match(link.stderr, /bin\/keeper-rotate exists and is not a plain file \(a link or a folder\)/);
      assert.ok(lstatSync(join(root, BIN)).isSymbolicLink());

      rmSync(join(root, BIN));
      mkdirSync(join(root, WRAPPERS, 'azure-app-secret.sh'), { recursive: true });
      const folder = run(script, ['--user', OWNER], root);
      assert.equal(folder.code, 1);
      assert.match(folder.stderr, /wrappers\/azure-app-secret\.sh exists and is not a plain file/);
      assert.equal(existsSync(join(root, BIN)), false, 'checked before the binary was installed');
      assert.equal(existsSync(join(root, STATE)), false);
    });

    test('without root and without DESTDIR', () => {
      const dir = temp();
      chmodSync(dir, 0o755);
      const script = release(join(dir, 'release'));
      // As root, the run drops to nobody; otherwise this user is already not root.
      const drop = ME === 0 ? ['setpriv', `--reuid=${OTHER_UID}`, `--regid=${OTHER_UID}`, '--clear-groups'] : [];
      const r = run(script, ['--user', OWNER], undefined, drop);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /^keeper-rotate install: run it as root \(sudo sh install\.sh \.\.\.\)/);
      assert.equal(r.stdout, '');
    });

    test('an unknown argument (exit 2, with the usage)', () => {
      const r = run(INSTALL_SH, ['--user', OWNER, '--frobnicate'], temp());
      assert.equal(r.code, 2);
      assert.match(r.stderr, /unknown argument: --frobnicate\nusage: sh install\.sh/);
    });
  });
});

describe('packaging/Dockerfile', () => {
  // Docker cannot run here: the file is read, and its one build step is run the way the builder would run it,
  // with its build context (what Dockerfile.dockerignore admits) mounted where the step expects it.
  const lines = readFileSync(join(ROOT, 'packaging', 'Dockerfile'), 'utf8')
    .split('\n')
    .filter((l) => !/^\s*#/.test(l))
    .join('\n')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .filter((l) => l.trim() !== '');
  const instructions = lines.map((l) => {
    const [keyword, ...rest] = l.trim().split(/\s+/);
    return { keyword: keyword!.toUpperCase(), args: rest.join(' ') };
  });

  test('derives from Keeper\'s gateway image and keeps its user, entrypoint and command', () => {
    const arg = instructions.find((i) => i.keyword === 'ARG');
    assert.match(arg?.args ?? '', /^GATEWAY_IMAGE=keeper\/gateway:\S+$/);
    assert.deepEqual(
      instructions.filter((i) => i.keyword === 'FROM').map((i) => i.args),
      ['${GATEWAY_IMAGE}'],
    );
    assert.deepEqual(instructions.filter((i) => ['USER', 'ENTRYPOINT', 'CMD'].includes(i.keyword)), []);
  });

  test('its build step runs install.sh from the build context and makes the folder it declares a VOLUME', () => {
    const runs = instructions.filter((i) => i.keyword === 'RUN');
    assert.equal(runs.length, 2);
    // The second step runs what the first installed, so a base image lacking its libraries fails the build.
    assert.equal(runs[1]!.args, `${BIN} --version`);
    const m = /^--mount=type=bind,target=(\S+)\s+(.*)$/.exec(runs[0]!.args);
    assert.ok(m, `RUN mounts the build context: ${runs[0]!.args}`);
    const [, target, command] = m as unknown as [string, string, string];
    assert.match(command, new RegExp(`^sh ${target}/packaging/install\\.sh --binary ${target}/${BUILT_BINARY} --user keeper-gw$`));

    // The build context: `*` first, then the paths it lets through.
    const ignore = readFileSync(join(ROOT, 'packaging', 'Dockerfile.dockerignore'), 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '' && !l.startsWith('#'));
    assert.equal(ignore[0], '*');
    const admitted = ignore.slice(1).map((l) => {
      assert.match(l, /^![\w./-]+$/, `a pattern this test can follow: ${l}`);
      return l.slice(1);
    });
    assert.ok(admitted.includes(BUILT_BINARY), 'the binary is in the build context');

    const dir = temp();
    const context = join(dir, 'context');
    for (const path of admitted) {
      // The binary is built, not committed: a stand-in takes its place.
      if (path === BUILT_BINARY) {
        mkdirSync(join(context, 'dist'), { recursive: true });
        writeFileSync(join(context, path), standIn('image'));
      } else {
        assert.ok(existsSync(join(ROOT, path)), `${path} is in the repository`);
        cpSync(join(ROOT, path), join(context, path), { recursive: true });
      }
    }
    const root = join(dir, 'image');
    const step = command.replaceAll(target, context).replace('--user keeper-gw', `--user ${OWNER}`);
    const r = spawnSync('sh', ['-c', step], { env: { PATH: process.env.PATH, DESTDIR: root }, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(readFileSync(join(root, BIN), 'utf8'), standIn('image'));
    const wrappers = existsSync(join(ROOT, 'packaging', 'wrappers')) ? readdirSync(join(ROOT, 'packaging', 'wrappers')).filter((f) => f.endsWith('.sh')) : [];
    assert.deepEqual(existsSync(join(root, WRAPPERS)) ? readdirSync(join(root, WRAPPERS)).sort() : [], wrappers.sort());

    const volumes = instructions.filter((i) => i.keyword === 'VOLUME').map((i) => i.args);
    assert.deepEqual(volumes, [`["${STATE}"]`]);
    const state = lstatSync(join(root, STATE));
    assert.ok(state.isDirectory());
    assert.equal(state.mode & 0o7777, 0o700);
    assert.equal(state.uid, OWNER_UID);
    // VOLUME comes after the step that fills the folder: Docker discards what a later step writes to a volume.
    assert.ok(instructions.findIndex((i) => i.keyword === 'VOLUME') > instructions.indexOf(runs[0]!));
  });
});
