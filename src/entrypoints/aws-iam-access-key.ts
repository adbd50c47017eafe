import { script } from '../targets/aws-iam-access-key/script.js';
import { startScript } from './entry.js';

startScript(script);
