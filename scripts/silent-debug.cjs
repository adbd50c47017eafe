// The `debug` package as the built scripts see it (scripts/build.ts aliases it here): silent, whatever DEBUG says.
// Its only users in the bundles are https-proxy-agent and http-proxy-agent, and DEBUG=http-proxy-agent would
// print each request's head, an Authorization header included (a SigV4 signature, a bearer token), on stderr,
// past every scrubbing of ours. Also ~10 KiB less per script.
'use strict';
function createDebug(namespace) {
  const debug = () => undefined;
  debug.namespace = namespace;
  debug.enabled = false;
  debug.log = () => undefined;
  debug.destroy = () => true;
  debug.extend = (sub, delimiter = ':') => createDebug(`${namespace}${delimiter}${sub}`);
  return debug;
}
createDebug.enable = () => undefined;
createDebug.disable = () => '';
createDebug.enabled = () => false;
createDebug.coerce = (value) => value;
createDebug.formatters = {};
module.exports = createDebug;
module.exports.default = createDebug;
