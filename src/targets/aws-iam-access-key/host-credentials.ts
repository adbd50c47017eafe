// The gateway host's own AWS identity, through the AWS SDK's own credential chain (@aws-sdk/credential-provider-node,
// the chain the clients use by default): environment variables, the shared config and credentials files (profiles,
// SSO, credential_process), a web identity token, ECS/EKS container credentials, and the EC2 instance role from IMDS.
// Used when the PAM configuration says USE_INSTANCE_ROLE, or, where the gateway's environment allows it
// (KEEPER_ROTATE_AWS_HOST_CREDENTIALS=allow), when no record holds admin keys. Its own module, loaded with
// `await import()` only by such a run: the chain and the SDK clients it carries (STS for web identity and profiles'
// roles, SSO) are about a third of the AWS code, which every other run would compile for nothing.
import { defaultProvider } from '@aws-sdk/credential-provider-node';
import { RotateError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { redact } from '../../secret.js';
import type { CredentialProvider } from './iam.js';

const LOOKED = 'environment (AWS_ACCESS_KEY_ID), AWS_PROFILE and the shared config and credentials files, web identity token, ECS container credentials, EC2 instance metadata (the instance role)';

/**
 * One provider for the whole run, shared by every client: the chain is memoized, so the host is asked once (an
 * instance role: one IMDS token, the role name, its credentials) and again only near the credentials' expiry.
 */
export function hostCredentials(why: string, log: Logger): CredentialProvider {
  // The chain warns on console.warn unless given a logger: through ours, its lines are scrubbed and escaped like
  // every other (a provider's error may quote what a metadata endpoint answered).
  const text = (args: unknown[]) => redact(args.map((a) => (a instanceof Error ? a.message : String(a))).join(' ')).slice(0, 300);
  const chain = defaultProvider({ logger: { debug: () => undefined, info: () => undefined, warn: (...args: unknown[]) => log.warn('admin', `AWS credential chain: ${text(args)}`), error: (...args: unknown[]) => log.warn('admin', `AWS credential chain: ${text(args)}`) } });
  return async () => {
    try {
      return await chain();
    } catch (err) {
      // The chain's last word is "Could not load credentials from any providers"; each link's reason went to its
      // debug log. Nothing reached AWS and nothing changed: the admin credentials are what is missing.
      const detail = redact(err instanceof Error ? err.message : String(err)).split('\n')[0]!.slice(0, 200);
      throw new RotateError('ADMIN_CREDENTIALS_NOT_FOUND', `${why}, but the gateway host's AWS credential chain gave none (${detail}); looked at: ${LOOKED}`);
    }
  };
}
