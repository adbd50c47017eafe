// Runs a target's rotation in this process, through the same entry every built script and the keeper-rotate
// executable run (src/cli/main.ts runScript with the target's ScriptDefinition, from src/cli/targets.ts): the
// gateway's base64 line on a stdin stream, the environment given, output captured. What it leaves out is only
// the process around it (bundling, the hard stop of entrypoints/entry.ts), so it suits many rotations in a row
// where spawning a process per rotation would be too slow.
import { Readable } from 'node:stream';
import { runScript } from '../../src/cli/main.js';
import { TARGETS } from '../../src/cli/targets.js';
import { encodeGatewayInput } from '../../src/gateway/input.js';

export interface InProcessRun {
  code: number;
  stdout: string;
  stderr: string;
}

export async function rotateInProcess(target: string, params: Record<string, unknown>, env: NodeJS.ProcessEnv): Promise<InProcessRun> {
  const entry = TARGETS[target];
  if (!entry) throw new Error(`no target ${target}`);
  const script = await entry.load();
  let stdout = '';
  let stderr = '';
  const code = await runScript(script, {
    argv: [],
    stdin: Readable.from([encodeGatewayInput(params) + '\n']),
    stdout: { write: (c: string) => ((stdout += c), true) },
    stderr: { write: (c: string) => ((stderr += c), true) },
    env,
    platform: process.platform,
  });
  return { code, stdout, stderr };
}

/** The gateway's parameters for a PAM User record and its PAM configuration, as the gateway sends them. */
export function gatewayParams(configUid: string, recordUid: string, title: string, login: string): Record<string, unknown> {
  return {
    providerRecordUid: configUid,
    resourceRecordUid: '',
    userRecordUid: recordUid,
    user: login,
    newPassword: 'not-used-by-this-script',
    oldPassword: 'not-used-by-this-script',
    records: [
      { uid: configUid, title: 'PAM configuration' },
      { uid: recordUid, title, login, NOOP: 'True' },
    ],
  };
}
