/**
 * Parsing of the user's words: relay addresses (`host[:port]`) and tunnel specs
 * (`[name=][host:]localPort[:remotePort]`, e.g. `5555`, `web=8080`, `5555:45555`,
 * `192.168.1.20:5555`, `[::1]:22`).
 */
import { InvalidConfigError } from '../errors.js'
import { formatHostPort } from '../transport/tcp.js'
import type { HealthCheckSpec } from './client-health.js'
import { DEFAULT_CONTROL_PORT } from './constants.js'
import type { GroupPolicy } from './messages.js'

/**
 * One tunnel a client asks the relay for: which local service, under what name, on which
 * public port or name. parseTunnelSpec fills the first four members; the rest come from options.
 */
export interface TunnelSpec {
  /** Name of the tunnel on the relay (default: the local port). */
  name: string
  /** Local service to expose (host defaults to 127.0.0.1). */
  localHost: string
  /** Local service port (1–65535). */
  localPort: number
  /** Public port to ask for; 0 lets the relay choose. */
  remotePort: number
  /** `tcp` (default): a public port. `http`: routed by Host on the relay's shared ports. `tls`: routed by SNI, passed through. */
  kind?: 'tcp' | 'http' | 'tls'
  /** http/tls: the name under the relay's domain (random when omitted). */
  subdomain?: string
  /** http/tls: a custom host name pointing at the relay. */
  hostname?: string
  /** http: `user:pass` the relay asks visitors for (it keeps only a hash). */
  basicAuth?: string
  /** Visitor addresses or CIDRs allowed, for any kind; with a list, only these pass. */
  allowIp?: string[]
  /** Visitor addresses or CIDRs refused; deny wins over allow. */
  denyIp?: string[]
  /** Send a PROXY protocol header (v1 text or v2 binary) to the local service first. */
  proxyProtocol?: 1 | 2
  /** Join the relay's load-balancing group of this name: visitors are spread over every client in it. */
  group?: string
  /** The group's shared secret, so that other users' clients may join it (never logged). */
  groupKey?: string
  /** How the group picks a client for each visitor (the group's founder decides; default `roundrobin`). */
  groupPolicy?: GroupPolicy
  /** Group tunnels: check the local service and tell the relay, which sends an unhealthy client no visitors. */
  healthCheck?: HealthCheckSpec
}

/** A host (name, IPv4 or unbracketed IPv6) and a port. */
export interface HostPort { host: string, port: number }

function port (s: string, what: string, allowZero = false): number {
  const n = /^\d{1,5}$/.test(s) ? Number(s) : NaN
  if (!(n >= (allowZero ? 0 : 1) && n <= 65535)) throw new InvalidConfigError(what, `"${s}" is not a port number (1-65535)`)
  return n
}

/** `host[:port]`, `[v6]:port`; `defaultPort` when the port is omitted. */
export function parseHostPort (s: string, defaultPort: number, what = 'relay'): HostPort {
  const v = s.trim().replace(/^[a-z]+:\/\//i, '')
  if (v === '') throw new InvalidConfigError(what, 'address is empty')
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(v)
  if (v6 !== null) return { host: v6[1]!, port: v6[2] === undefined ? defaultPort : port(v6[2], what) }
  const parts = v.split(':')
  if (parts.length === 1) return { host: v, port: defaultPort }
  if (parts.length === 2) return { host: parts[0]!, port: port(parts[1]!, what) }
  return { host: v, port: defaultPort } // bare IPv6
}

/**
 * A relay address in the form the client connects to and remembers it by (`host:port`,
 * `[v6]:port`, lower case, the default port 7835 filled in): the key of the known-relays store
 * and of stored logins. Throws InvalidConfigError like parseHostPort.
 */
export function relayAddress (s: string): string {
  const { host, port } = parseHostPort(s, DEFAULT_CONTROL_PORT)
  return formatHostPort(host.toLowerCase(), port)
}

/**
 * Parses `[name=][host:]localPort[:remotePort]` (`5555`, `web=8080`, `5555:45555`,
 * `192.168.1.20:5555`, `[::1]:22:2222`); the name defaults to the local port, the host to
 * 127.0.0.1 and the remote port to 0. Throws InvalidConfigError naming the bad part.
 */
export function parseTunnelSpec (input: string): TunnelSpec {
  const s = input.trim()
  const eq = s.indexOf('=')
  const name = eq >= 0 ? s.slice(0, eq) : undefined
  const rest = eq >= 0 ? s.slice(eq + 1) : s
  if (name !== undefined && !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(name)) {
    throw new InvalidConfigError('tunnel', `"${name}" is not a valid tunnel name (letters, digits, . _ -, at most 64)`)
  }
  let localHost = '127.0.0.1'
  let localPort: number
  let remotePort = 0
  const v6 = /^\[([^\]]+)\]:(\d+)(?::(\d+))?$/.exec(rest)
  if (v6 !== null) {
    localHost = v6[1]!
    localPort = port(v6[2]!, 'tunnel')
    if (v6[3] !== undefined) remotePort = port(v6[3], 'tunnel')
  } else {
    const parts = rest.split(':')
    if (parts.length === 0 || parts.length > 3 || parts.some(p => p === '')) throw new InvalidConfigError('tunnel', `"${input}" is not a tunnel spec like 5555, web=8080, 5555:45555 or 192.168.1.20:5555`)
    if (/^\d+$/.test(parts[0]!)) {
      if (parts.length === 3) throw new InvalidConfigError('tunnel', `"${input}": expected [host:]localPort[:remotePort]`)
      localPort = port(parts[0]!, 'tunnel')
      if (parts.length === 2) remotePort = port(parts[1]!, 'tunnel')
    } else {
      if (parts.length < 2) throw new InvalidConfigError('tunnel', `"${input}": a host needs a port, like ${parts[0]}:80`)
      localHost = parts[0]!
      localPort = port(parts[1]!, 'tunnel')
      if (parts.length === 3) remotePort = port(parts[2]!, 'tunnel')
    }
  }
  return { name: name ?? String(localPort), localHost, localPort, remotePort }
}
