import { rotationScript } from '../pipeline/rotate.js';
import { awsIamAccessKey } from '../targets/aws-iam-access-key/index.js';
import { startScript } from './entry.js';

// The SDK warns on every run under Node 20 that its versions from 2027 on need Node 22. The version in this
// bundle is pinned and supports Node 20, so the warning is noise in the gateway's log (the README says so).
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
startScript(rotationScript(awsIamAccessKey));
