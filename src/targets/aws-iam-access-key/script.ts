// The gateway script this target makes: what src/entrypoints/aws-iam-access-key.ts runs alone and the
// keeper-rotate executable runs as `keeper-rotate aws-iam-access-key`.
import { rotationScript } from '../../pipeline/rotate.js';
import { awsIamAccessKey } from './index.js';

// The SDK warns on every run under Node 20 that its versions from 2027 on need Node 22. The version in this
// bundle is pinned and supports Node 20, so the warning is noise in the gateway's log (the README says so).
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

export const script = rotationScript(awsIamAccessKey);
