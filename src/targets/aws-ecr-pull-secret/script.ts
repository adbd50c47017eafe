// The gateway script this target makes: what src/entrypoints/aws-ecr-pull-secret.ts runs alone and the
// keeper-rotate executable runs as `keeper-rotate aws-ecr-pull-secret`.
import { rotationScript } from '../../pipeline/rotate.js';
import { awsEcrPullSecret } from './index.js';

// As for the IAM script: the pinned SDK supports Node 20, so its warning about later versions is noise here.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

export const script = rotationScript(awsEcrPullSecret);
