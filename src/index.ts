/**
 * mport: a self-hostable TCP tunnel. The multiplexer (yamux-compatible Session and MuxStream)
 * is usable on its own over any Node Duplex.
 *
 * @packageDocumentation
 */
export * from './errors.js'
export { Session, type SessionOptions, type SessionEvents } from './mux/session.js'
export type { ChunkSource } from './mux/chunk-source.js'
export { MuxStream, StreamState } from './mux/stream.js'
export { defaultMuxConfig, verifyMuxConfig, type MuxConfig } from './mux/config.js'
export {
  FrameType, Flag, GoAwayCode, HEADER_LENGTH, INITIAL_STREAM_WINDOW, YAMUX_VERSION,
  encodeHeader, decodeHeader, writeHeader, formatHeader, formatFlags, type FrameHeader,
} from './mux/frame.js'
export { FrameDecoder, type FrameSink } from './mux/decoder.js'


// Tunnels
export { Relay, DEFAULT_CONTROL_PORT, DEFAULT_PORT_RANGE, type RelayOptions, type RelayEvents, type ClientInfo, type TunnelInfo, type ConnectionInfo } from './tunnel/relay.js'
export { Client, type ClientOptions, type ClientEvents, type TunnelStatus, type VisitorInfo } from './tunnel/client.js'
export { StaticTokens, AnyAuthenticator, FailureLimiter, generateToken, tokenId, tokenKey, authProof, verifyProof, type Authenticator, type Principal, type Credential } from './tunnel/auth.js'
export { parseTunnelSpec, parseHostPort, type TunnelSpec, type HostPort } from './tunnel/spec.js'
export { parsePortRange, formatRange, type PortRange } from './tunnel/ports.js'
export { prepareRelayData, defaultDataDir, type RelayData } from './tunnel/data-dir.js'
export { CONTROL_VERSION, MAX_CONTROL_MESSAGE, MAX_STREAM_HEADER, encodeMessage, encodeStreamHeader, parseClientMessage, parseRelayMessage, parseStreamHeader, type ClientMessage, type RelayMessage, type StreamHeader, type LeaseTicket } from './tunnel/messages.js'
export { proxy, type ProxyResult } from './tunnel/proxy.js'

// Transport, certificates, config files
export { ALPN_PROTOCOL, listenTls, connectTls, exportAuthBinding } from './transport/tls.js'
export { generateSelfSigned, loadOrCreateCertificate, fingerprint, parseFingerprint } from './transport/certs.js'
export { KnownRelays } from './transport/known-relays.js'
export { tuneGcForForwarding, countFreshReadBytes, forwardingGcCollections, FORWARDING_GC_FLAGS, DEFAULT_YOUNG_BUFFER_BUDGET, type ForwardingGcOptions } from './transport/gc-tuning.js'
export { loadConfigFile, checkKnownKeys } from './config/file.js'
export { Secret } from './config/secret.js'

// CLI helpers (used by the bins)
export { createPrinter, oneLine, formatBytes, ExitCode, type Printer } from './cli/output.js'

// HTTP and TLS tunnels, access control
export { IpFilter, parseCidr, parseIp, normalizeIp, riskyPortHint, type IpFilterOptions } from './access/cidr.js'
export { BasicAuthChecker, hashPassword, verifyBasicAuth, parseBasicAuthValue } from './access/basic-auth.js'
export { HttpError, BadRequestError, HeadersTooLargeError, InvalidClientHelloError, InvalidHostnameError, ReservedNameError } from './http/errors.js'
export { NameTakenError } from './tunnel/routes.js'
export { errorResponse, type ErrorStatus } from './http/pages.js'
export { encodeProxyHeader, encodeProxyV1, encodeProxyV2, type ProxyInfo } from './http/proxy-protocol.js'
export { randomName, validateSubdomain, validateHostname, routeHost, type Route } from './http/names.js'
export { HttpRequestStream, type HttpRequestStreamOptions } from './http/request-stream.js'
export { RequestHeadParser, parseRequestHead, rewriteHead, type RequestHead } from './http/request-head.js'
export { ClientHelloParser, parseClientHello } from './http/sni.js'
export type { TunnelKind, OpenRequest } from './tunnel/messages.js'

// Accounts: plans, usage and limits on the relay
export { Account, UNLIMITED, type PlanLimits, type RelayPolicy, type UsageCounts } from './tunnel/accounts.js'
export { startRelayService, type RelayService, type RelayServiceOptions } from './service/relay-service.js'
