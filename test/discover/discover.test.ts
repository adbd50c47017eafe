// discover against the sandbox with the real SDKs (KSM, IAM, Graph, Wiz over HTTPS): each target lists a tenant
// larger than one page, emits CSV rows in the template format or creates records through KSM, skips what already
// has a record (a second call creates nothing), keeps out what the allow-list keeps out, and writes no secret.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { readText } from '../../src/keeper/record.js';
import { type DiscoverRun, discoverInProcess } from '../helpers/discover-in-process.js';
import { type LargeTenant, seedLargeTenant } from '../../src/sandbox/large-tenant.js';
import { type Sandbox, startSandbox } from '../../src/sandbox/sandbox.js';
import { parseCommanderCsv, toRecordData } from '../../src/templates/csv.js';
import { scriptsFor } from '../../src/targets/record-shape.js';

/** More than one page of every list: IAM's and Graph's default page is 100, discover asks Wiz for 100. */
const N = 130;

let dir: string;
let sb: Sandbox;
let fleet: LargeTenant;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'keeper-rotate-discover-'));
  sb = await startSandbox({ dir });
  fleet = seedLargeTenant(sb, { awsUsers: N, azureApps: N, wizAccounts: N });
});

after(async () => {
  await sb.close();
  rmSync(dir, { recursive: true, force: true });
});

type Run = DiscoverRun;

const discover = (args: string[], env: Record<string, string> = {}): Promise<Run> => discoverInProcess(args, { ...sb.env, ...env });

/** Every secret the sandbox ever handed out: none may appear in discover's output or its records. */
function assertNoSecret(run: Run): void {
  const secrets = [...sb.aws.issued, ...sb.wiz.issued];
  for (const app of sb.azure.directory.listApps(fleet.azureApps.length ? sb.azure.directory.getApp(fleet.azureApps[0]!.objectId)!.tenantId : '')) for (const s of app.secrets) secrets.push(s.secretText);
  for (const s of secrets) {
    assert.ok(!run.stdout.includes(s), 'a secret reached stdout');
    assert.ok(!run.stderr.includes(s), 'a secret reached stderr');
  }
}

const requests = (service: string, operation: string) => sb.log.entries({ service, operation }).length;
const recordsIn = (folderUid: string) => sb.ksm.listRecords().filter((r) => r.folderUid === folderUid);

describe('discover aws', () => {
  test('CSV rows in the template format for every user on the path, past the first page of ListUsers, with key IDs and no secret', async () => {
    const before = requests('iam', 'ListUsers');
    const run = await discover(['aws', '--config', fleet.pamConfigurations.aws!, '--path-prefix', fleet.path]);
    assert.equal(run.exitCode, 0, run.stderr);
    assert.equal(requests('iam', 'ListUsers') - before, 2, 'two pages of ListUsers for 130 users');
    const rows = parseCommanderCsv(run.stdout);
    assert.equal(rows.length, N);
    assert.deepEqual(new Set(rows.map((r) => r.login)), new Set(fleet.awsUsers));
    for (const row of rows) {
      const data = toRecordData(row);
      assert.equal(data.type, 'pamUser');
      assert.deepEqual([...scriptsFor(data).keys()], ['aws-iam-access-key']);
      const keys = sb.aws.listKeys(row.login);
      const current = readText(data, 'aws_access_key_id');
      // One key: named as CURRENT, so the first rotation keeps it as LAST. Otherwise the template's placeholder.
      assert.equal(current, keys.length === 1 ? keys[0]!.accessKeyId : 'set-by-rotation');
      assert.equal(readText(data, 'aws_secret_access_key'), 'set-by-rotation');
      for (const k of keys) assert.match(row.notes, new RegExp(k.accessKeyId));
    }
    assert.match(run.stderr, /has two access keys/);
    assertNoSecret(run);
  });

  test('the allow-list keeps users out, and --name narrows the list', async () => {
    const run = await discover(['aws', '--config', fleet.pamConfigurations.aws!, '--path-prefix', fleet.path, '--name', 'fleet-svc-0000*'], {
      KEEPER_ROTATE_ALLOW_AWS_USERS: 'fleet-svc-00001,fleet-svc-00003',
    });
    assert.equal(run.exitCode, 0, run.stderr);
    const rows = parseCommanderCsv(run.stdout);
    assert.deepEqual(rows.map((r) => r.login).sort(), ['fleet-svc-00001', 'fleet-svc-00003']);
    assert.match(run.stderr, /8 outside the allow-list/);
  });
});

describe('discover --create-in', () => {
  test('wiz: creates a record per account through KSM, paging serviceAccounts; a second call creates nothing', async () => {
    const folder = fleet.folderUid;
    const first = await discover(['wiz', '--config', fleet.pamConfigurations.wiz!, '--create-in', folder]);
    assert.equal(first.exitCode, 0, first.stderr);
    assert.equal(first.created.length, N);
    // Keeper's budget (100 at once, then 10 a second) throttles the creates once: every worker pauses together
    // for the quiet period, so only the creates already on their way (at most --concurrency, 4) are refused, and
    // each record is created once. Retrying on each request's own back-off refused many more and paused again.
    const throttled = sb.log.entries({ service: 'ksm', operation: 'create_secret' }).filter((e) => e.status === 429).length;
    assert.ok(throttled >= 1 && throttled <= 4, `${throttled} throttled creates`);
    assert.equal(first.stderr.match(/Keeper throttled the creates; pausing 11 s/g)?.length, 1, first.stderr);
    assert.equal(sb.log.entries({ service: 'ksm', operation: 'create_secret' }).filter((e) => e.status === 200).length, N);
    const made = recordsIn(folder);
    assert.equal(made.length, N);
    assert.deepEqual(new Set(made.map((r) => readText(r.data, 'login'))), new Set(fleet.wizClientIds));
    for (const r of made) assert.equal(readText(r.data, 'client_secret'), 'set-by-rotation');
    assertNoSecret(first);
    const second = await discover(['wiz', '--config', fleet.pamConfigurations.wiz!, '--create-in', folder]);
    assert.equal(second.exitCode, 0, second.stderr);
    assert.equal(second.created.length, 0);
    assert.equal(recordsIn(folder).length, N);
    // The demo vault's own Wiz record counts too.
    assert.match(second.stderr, new RegExp(`0 to bring under records.*${N + 1} already with a record`));
    assert.match(second.stderr, new RegExp(`skipped ${fleet.wizClientIds[0]}: already has a record`));
  });

  test('azure: the apps the admin app owns, over more than one page of ownedObjects; --dry-run creates nothing', async () => {
    const folder = sb.ksm.createFolder('azure fleet');
    // The sandbox's gateway app sees every folder; a new one is shared with it too.
    const before = requests('azure', 'listOwnedObjects');
    const dry = await discover(['azure', '--config', fleet.pamConfigurations.azure, '--create-in', folder, '--dry-run']);
    assert.equal(dry.exitCode, 0, dry.stderr);
    assert.equal(requests('azure', 'listOwnedObjects') - before, 2);
    // The demo's target app is owned too, and already has a record.
    assert.equal(dry.stdout.split('\n').filter((l) => l.startsWith('would create:')).length, N);
    assert.equal(recordsIn(folder).length, 0);
    const run = await discover(['azure', '--config', fleet.pamConfigurations.azure, '--create-in', folder]);
    assert.equal(run.exitCode, 0, run.stderr);
    assert.deepEqual(new Set(recordsIn(folder).map((r) => readText(r.data, 'application_object_id'))), new Set(fleet.azureApps.map((a) => a.objectId)));
    assert.match(run.stderr, /1 already with a record/);
  });

  test('a folder the application cannot see is refused before anything is created', async () => {
    const run = await discover(['wiz', '--config', fleet.pamConfigurations.wiz!, '--create-in', 'AAAAAAAAAAAAAAAAAAAAAA']);
    assert.equal(run.exitCode, 3);
    assert.match(run.stderr, /KEEPER_ACCESS_DENIED: folder AAAAAAAAAAAAAAAAAAAAAA is not a shared folder/);
    assert.equal(run.created.length, 0);
  });
});

describe('usage', () => {
  test('no target, an unknown one, or a flag for another target is a USAGE error (exit 2)', async () => {
    for (const args of [[], ['gcp'], ['wiz', '--all'], ['azure', '--path-prefix', '/x/']]) {
      const run = await discover(args);
      assert.equal(run.exitCode, 2, args.join(' '));
      assert.match(run.stderr, /USAGE/);
    }
  });
});
