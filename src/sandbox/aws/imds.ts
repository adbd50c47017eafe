// The EC2 instance metadata service (IMDS) of the one EC2 instance the sandbox stands for: where the AWS SDK's
// instance-role provider gets the credentials of the instance profile's role, as a gateway on EC2 does. Plain
// HTTP on loopback (the real one is http://169.254.169.254; AWS_EC2_METADATA_SERVICE_ENDPOINT points the SDK
// here), and IMDSv2 only ("HttpTokens: required"), the default AWS recommends. The wire format, from the EC2
// User Guide:
// - "Use the Instance Metadata Service to access instance metadata" / "How Instance Metadata Service Version 2
//   works": `PUT /latest/api/token` with `X-aws-ec2-metadata-token-ttl-seconds` (1 to 21600) answers a session
//   token as text; every later request carries it in `X-aws-ec2-metadata-token`. Without a valid token IMDSv2
//   answers 401; a PUT without the TTL header 400; a PUT carrying `X-Forwarded-For` (a request that went through a
//   proxy) is refused (403).
// - "Retrieve security credentials from instance metadata": `GET /latest/meta-data/iam/security-credentials/`
//   answers the role's name; `.../security-credentials/<role>` answers JSON with `Code` ("Success"),
//   `LastUpdated`, `Type` ("AWS-HMAC"), `AccessKeyId`, `SecretAccessKey`, `Token` and `Expiration`, and new
//   credentials are there "at least five minutes before the expiration of the old credentials".
import { randomBytes } from 'node:crypto';
import type { Reply, Route, SandboxRequest, SandboxService } from '../service.js';
import type { AwsAccount, TemporaryCredentials } from './account.js';
import { AwsError } from './errors.js';
import { awsDateTime } from './formats.js';

export const IMDS_SERVICE = 'imds';
export const IMDS_OPERATIONS = ['GetToken', 'GetRoleName', 'GetCredentials'] as const;
const CREDENTIALS_PATH = '/latest/meta-data/iam/security-credentials/';
const MAX_TOKEN_TTL_SECONDS = 21_600;
/** EC2 hands out a role's credentials for hours and renews them early; the sandbox keeps them an hour, renews at 15 min left. */
const SESSION_SECONDS = 3600;
const RENEW_BEFORE_MS = 15 * 60_000;

const text = (status: number, body: string, headers: Record<string, string> = {}): Reply => ({ status, headers: { 'content-type': 'text/plain', ...headers }, body });

export class InstanceMetadataService implements SandboxService {
  readonly name = IMDS_SERVICE;
  /** The instance's ID, which names its role sessions (`assumed-role/<role>/<instance id>`). */
  readonly instanceId = `i-${randomBytes(9).toString('hex').slice(0, 17)}`;
  #roleName: string | undefined;
  #tokens = new Map<string, number>();
  #current: { roleName: string; creds: TemporaryCredentials; issuedMs: number } | undefined;

  constructor(private readonly account: AwsAccount) {}

  /** The role of the instance profile attached to the instance, or undefined for none (then no credentials). */
  get roleName(): string | undefined {
    return this.#roleName;
  }

  /** Attaches an instance profile with this role (it must trust ec2.amazonaws.com), or detaches it (undefined). */
  attachRole(roleName: string | undefined): void {
    if (roleName !== undefined) {
      const role = this.account.getRole(roleName);
      if (!role) throw new AwsError(404, 'NoSuchEntity', `The role with name ${roleName} cannot be found.`);
      if (!role.trustedServices.includes('ec2.amazonaws.com')) throw new AwsError(400, 'InvalidParameterValue', `Role ${roleName} does not trust ec2.amazonaws.com, so no instance profile can pass it to EC2`);
      roleName = role.roleName;
    }
    this.#roleName = roleName;
    this.#current = undefined;
  }

  route(req: SandboxRequest): Route | undefined {
    if (req.path === '/latest/api/token') {
      if (req.method !== 'PUT') return { operation: 'GetToken', handle: () => text(405, '') };
      return { operation: 'GetToken', handle: () => this.#token(req) };
    }
    if (!req.path.startsWith(CREDENTIALS_PATH) || req.method !== 'GET') return undefined;
    const role = req.path.slice(CREDENTIALS_PATH.length);
    return { operation: role === '' ? 'GetRoleName' : 'GetCredentials', handle: () => this.#credentials(req, role) };
  }

  throttleReply(): Reply {
    // IMDS limits packets per second per instance and drops the rest; an HTTP answer is the closest loopback can do.
    return text(429, '');
  }

  #token(req: SandboxRequest): Reply {
    if (req.headers['x-forwarded-for'] !== undefined) return text(403, '');
    const ttl = Number(req.headers['x-aws-ec2-metadata-token-ttl-seconds']);
    if (!Number.isInteger(ttl) || ttl < 1 || ttl > MAX_TOKEN_TTL_SECONDS) return text(400, '');
    const token = randomBytes(42).toString('base64');
    this.#tokens.set(token, this.account.now() + ttl * 1000);
    return text(200, token, { 'x-aws-ec2-metadata-token-ttl-seconds': String(ttl) });
  }

  #credentials(req: SandboxRequest, role: string): Reply {
    const token = req.headers['x-aws-ec2-metadata-token'];
    const expires = typeof token === 'string' ? this.#tokens.get(token) : undefined;
    if (expires === undefined || this.account.now() >= expires) return text(401, '');
    if (this.#roleName === undefined) return text(404, '');
    if (role === '') return text(200, this.#roleName);
    if (role !== this.#roleName) return text(404, '');
    const now = this.account.now();
    let current = this.#current;
    if (!current || Date.parse(current.creds.expiration) - now < RENEW_BEFORE_MS) {
      current = { roleName: this.#roleName, creds: this.account.serviceSession('ec2.amazonaws.com', this.#roleName, this.instanceId, SESSION_SECONDS), issuedMs: now };
      this.#current = current;
    }
    const c = current.creds;
    const body = {
      Code: 'Success',
      LastUpdated: awsDateTime(current.issuedMs),
      Type: 'AWS-HMAC',
      AccessKeyId: c.accessKeyId,
      SecretAccessKey: c.secretAccessKey,
      Token: c.sessionToken,
      Expiration: c.expiration,
    };
    return { status: 200, headers: { 'content-type': 'text/plain' }, body: JSON.stringify(body, null, 2) };
  }
}
