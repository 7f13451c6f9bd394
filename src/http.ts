/**
 * `mport/http`: the relay's HTTP and TLS front: request-head and ClientHello parsers, the
 * exchange meter behind recent requests, names and routes, PROXY protocol headers, and the
 * pages visitors see.
 *
 * @packageDocumentation
 */
export { errorResponse, type ErrorStatus } from './http/pages.js'
export { encodeProxyHeader, encodeProxyV1, encodeProxyV2, type ProxyInfo } from './http/proxy-protocol.js'
export { randomName, validateSubdomain, validateHostname, routeHost, type Route } from './http/names.js'
export { HttpRequestStream, type HttpRequestStreamOptions } from './http/request-stream.js'
export { RequestHeadParser, parseRequestHead, rewriteHead, type RequestHead } from './http/request-head.js'
export { ClientHelloParser, parseClientHello } from './http/sni.js'
export { ExchangeMeter, type ExchangeRecord } from './http/exchange-meter.js'
export { ACME_CHALLENGE_PATH, acmeChallengeToken, acmeChallengeResponse, chainCertificates, type CertificateSource, type AcmeChallengeResponder } from './http/certificates.js'
