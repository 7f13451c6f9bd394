/**
 * `mport/access`: who may reach a tunnel: IP allow/deny lists and HTTP basic auth.
 *
 * @packageDocumentation
 */
export { IpFilter, parseCidr, parseIp, normalizeIp, riskyPortHint, type IpFilterOptions, type IpGrant } from './access/cidr.js'
export { BasicAuthChecker, hashPassword, verifyBasicAuth, parseBasicAuthValue } from './access/basic-auth.js'
