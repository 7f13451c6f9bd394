/** The relay's options, and the defaults that fill them in. */
import type { AcmeChallengeResponder, CertificateSource } from '../http/certificates.js'
import type { MuxConfig } from '../mux/config.js'
import type { ClusterHooks } from './cluster-hooks.js'
import type { RelayPolicy } from './accounts.js'
import type { Authenticator } from './auth.js'
import { DEFAULT_CONTROL_PORT } from './constants.js'
import type { PortRange } from './ports.js'
import type { FreshReadMeter } from './proxy.js'

/** Ports tunnels may use unless the relay is given a range. */
export const DEFAULT_PORT_RANGE: PortRange = { min: 20000, max: 29999 }

/** What a Relay is given: its certificate, authenticator, addresses, port range, shared HTTP(S) ports, policy and timeouts. */
export interface RelayOptions {
  /** PEM certificate (with its chain) for the control listener. */
  cert: string | Buffer
  /** PEM private key of `cert`. */
  key: string | Buffer
  /** Resolves token ids to principals (StaticTokens for a single-owner relay). */
  authenticator: Authenticator
  /** Control listener address (default 0.0.0.0, every IPv4 interface). */
  host?: string
  /** Control listener port (default 7835; 0 picks a free one, see the `listening` event). */
  port?: number
  /** Address the public tunnel ports bind to (default 0.0.0.0). */
  bindHost?: string
  /** Host name shown to clients in tunnel addresses (default: the control host, or localhost). */
  publicHost?: string
  /** Ports tunnels may use (default 20000-29999). */
  portRange?: PortRange
  /** How long a disconnected client's ports are held for it (default 120 s). */
  leaseGrace?: number // ms
  /** Budget for TLS + hello + auth of one client (default 10 s). */
  handshakeTimeout?: number // ms
  /** Most tunnels one lease may hold (default 64); more are refused with TunnelLimitError. */
  maxTunnelsPerClient?: number
  /** Failed authentications allowed per source address per window before refusing. */
  authFailureLimit?: { max: number, windowMs: number }
  /** Base domain for http/tls tunnels (`<name>.<domain>`, wildcard DNS pointing here). */
  domain?: string
  /** Shared HTTP port for http tunnels (undefined: off; 0 picks one). */
  httpPort?: number
  /** Shared HTTPS port: SNI routing for tls tunnels, and http tunnels when `httpsCert` is given. */
  httpsPort?: number
  /** PEM certificate (usually a wildcard for `*.<domain>`) to terminate TLS of http tunnels. */
  httpsCert?: string | Buffer
  /** PEM private key of `httpsCert`. */
  httpsKey?: string | Buffer
  /**
   * Certificates by SNI for http tunnels on the HTTPS port (ACME in mport-relay), asked on every
   * handshake before `httpsCert`; custom hostnames it has nothing for get a self-signed one.
   */
  certificates?: CertificateSource
  /** Answers ACME HTTP-01 challenges on the shared HTTP port. */
  acmeChallenges?: AcmeChallengeResponder
  /** A visitor must send its request head or ClientHello within this time (default 10 s). */
  headersTimeout?: number // ms
  /** Per-user limits and usage accounting (the store's, in production); none: unlimited. */
  policy?: RelayPolicy
  /** New connections per minute from one visitor address, per tunnel (default: unlimited). */
  connectionsPerIpPerMinute?: number
  /** How often usage is sampled, quotas enforced and tokens re-checked (default 2 s). */
  accountingInterval?: number // ms
  /** Multiplexer settings for every client connection, over the relay's defaults (keepalive every 15 s, 10 s timeout). */
  mux?: Partial<MuxConfig>
  /** Told the size of every socket read that arrived in a new Buffer (`mport/gc-tuning`'s meter); default: nothing. */
  onFreshRead?: FreshReadMeter
  /** Several relays behind one name (mport-relay's cluster): claims, leases and names shared through its registry; none: this relay alone. */
  cluster?: ClusterHooks
}

/** RelayOptions with the defaults filled in. */
export type ResolvedRelayOptions =
  Required<Omit<RelayOptions, 'mux' | 'publicHost' | 'domain' | 'httpPort' | 'httpsPort' | 'httpsCert' | 'httpsKey' | 'policy' | 'connectionsPerIpPerMinute' | 'onFreshRead' | 'certificates' | 'acmeChallenges' | 'cluster'>> &
  Pick<RelayOptions, 'domain' | 'httpPort' | 'httpsPort' | 'httpsCert' | 'httpsKey' | 'policy' | 'connectionsPerIpPerMinute' | 'certificates' | 'acmeChallenges' | 'cluster'> &
  { mux: Partial<MuxConfig>, publicHost: string, onFreshRead: FreshReadMeter | undefined }

export function resolveRelayOptions (options: RelayOptions): ResolvedRelayOptions {
  const host = options.host ?? '0.0.0.0'
  return {
    host,
    port: options.port ?? DEFAULT_CONTROL_PORT,
    bindHost: options.bindHost ?? '0.0.0.0',
    publicHost: options.publicHost ?? (host === '0.0.0.0' || host === '::' ? 'localhost' : host),
    portRange: options.portRange ?? DEFAULT_PORT_RANGE,
    leaseGrace: options.leaseGrace ?? 120_000,
    handshakeTimeout: options.handshakeTimeout ?? 10_000,
    maxTunnelsPerClient: options.maxTunnelsPerClient ?? 64,
    authFailureLimit: options.authFailureLimit ?? { max: 10, windowMs: 60_000 },
    headersTimeout: options.headersTimeout ?? 10_000,
    accountingInterval: options.accountingInterval ?? 2_000,
    policy: options.policy,
    connectionsPerIpPerMinute: options.connectionsPerIpPerMinute,
    domain: options.domain,
    httpPort: options.httpPort,
    httpsPort: options.httpsPort,
    httpsCert: options.httpsCert,
    httpsKey: options.httpsKey,
    certificates: options.certificates,
    acmeChallenges: options.acmeChallenges,
    cert: options.cert,
    key: options.key,
    authenticator: options.authenticator,
    mux: options.mux ?? {},
    onFreshRead: options.onFreshRead,
    cluster: options.cluster,
  }
}
