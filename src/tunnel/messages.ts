/**
 * Tunnel control protocol: the messages on the control stream, and the header that opens
 * each visitor stream. Both are length-prefixed JSON (PROTOCOL.md, "Tunnel layer").
 */
import { InvalidMessageError, MessageTooLargeError, VersionMismatchError } from '../errors.js'
import { CONTROL_VERSION } from './constants.js'

/** Largest control message body in bytes (after the 4-byte length prefix). */
export const MAX_CONTROL_MESSAGE = 16 * 1024
/** Largest visitor-stream header body in bytes (after the 2-byte length prefix). */
export const MAX_STREAM_HEADER = 1024

export interface LeaseTicket { id: string, secret: string }

export type TunnelKind = 'tcp' | 'http' | 'tls'

/** Largest allow or deny list of one tunnel. */
export const MAX_IP_RULES = 64

/**
 * Ask for a tunnel. `tcp` gets its own public port (`port` 0 lets the relay choose). `http`
 * is routed by Host on the relay's shared HTTP(S) ports (TLS terminated at the relay); `tls` is
 * routed by SNI on the shared HTTPS port and passed through untouched. Both are reached by
 * `subdomain` under the relay's domain (random when omitted) or by a custom `hostname`.
 */
export interface OpenRequest {
  t: 'open'
  id: number
  name: string
  port: number
  kind?: TunnelKind
  subdomain?: string
  hostname?: string
  /** `user:pass` for HTTP basic auth (http only); the relay keeps only a hash. */
  basicAuth?: string
  /** Visitor address filter (CIDRs), any kind. */
  allowIp?: string[]
  denyIp?: string[]
  /**
   * Join (or found) the load-balancing group of this name: visitors of the tunnel are spread
   * over every member. Without `groupKey` only the same user's tunnels may join.
   */
  group?: string
  /** Shared secret that lets other users' tunnels join `group`; the relay keeps only a hash. */
  groupKey?: string
  /** How the group picks a member for each visitor (set by the member that founds it; default `roundrobin`). */
  groupPolicy?: GroupPolicy
}

/** A load-balancing group's selection policy: take turns, or the member with the fewest open connections. */
export type GroupPolicy = 'roundrobin' | 'leastconn'

/** Client → relay. */
export type ClientMessage =
  /** First message: protocol version, software, a lease to reclaim after a reconnect, and whether it understands `refused`. */
  | { t: 'hello', version: number, agent: string, lease?: LeaseTicket, notices?: boolean }
  /** Answer to the challenge: token id and HMAC proof (base64url). */
  | { t: 'auth', tokenId: string, proof: string }
  /** Ask for a tunnel; `id` is the client's handle for it. See OpenRequest. */
  | OpenRequest
  /** Close a tunnel this client opened. */
  | { t: 'close', id: number }
  /** The client is stopping: send no new visitors to its group tunnels; answered with `draining`. */
  | { t: 'drain' }
  /** The local service of group tunnel `id` passed or failed its health check; unhealthy members get no new visitors. */
  | { t: 'health', id: number, healthy: boolean, detail?: string }

/** Relay → client. */
export type RelayMessage =
  /** Reply to hello: a fresh nonce to prove the token against. */
  | { t: 'challenge', version: number, nonce: string }
  /** Authenticated: the lease to present on reconnect, whether an old one was reclaimed, and the relay's id of this connection (`session`, optional: older relays omit it). */
  | { t: 'welcome', lease: LeaseTicket, resumed: boolean, principal: string, agent: string, session?: string }
  /** A tunnel is up at `host:port` (for http/tls tunnels, `url` names it). */
  | { t: 'opened', id: number, port: number, host: string, url?: string }
  /** A tunnel was refused (reply to open) or ended by the relay. */
  | { t: 'closed', id: number, code: string, message: string }
  /** Fatal: the relay ends the connection after sending it. */
  | { t: 'error', code: string, message: string }
  /** Visitors of tunnel `id` were refused (filter, rate, plan): `count` of them with this code since the last such message; only to a hello with `notices`. */
  | { t: 'refused', id: number, code: string, message: string, count: number }
  /** Answer to `drain`: no new visitor stream will be opened to this connection after this message. */
  | { t: 'draining' }
  /** Group tunnel `id`'s group changed: `members` in it, `available` of them taking new visitors. */
  | { t: 'group', id: number, name: string, members: number, available: number }

/** First bytes of every visitor stream the relay opens (sent with the SYN). */
export interface StreamHeader {
  /** The client's tunnel id. */
  id: number
  /** Visitor's address and port as the relay saw them. */
  addr: string
  port: number
  /** The relay address and port the visitor connected to (for PROXY protocol headers). */
  daddr?: string
  dport?: number
}

export function encodeMessage (msg: ClientMessage | RelayMessage): Buffer {
  return lengthPrefixed(msg, 4, MAX_CONTROL_MESSAGE)
}

export function encodeStreamHeader (h: StreamHeader): Buffer {
  return lengthPrefixed(h, 2, MAX_STREAM_HEADER)
}

/** JSON body behind a big-endian length of `prefix` bytes (4 for control messages, 2 for stream headers). */
function lengthPrefixed (value: object, prefix: 2 | 4, limit: number): Buffer {
  const body = Buffer.from(JSON.stringify(value))
  if (body.length > limit) throw new MessageTooLargeError(body.length, limit)
  const out = Buffer.allocUnsafe(prefix + body.length)
  out.writeUIntBE(body.length, 0, prefix)
  body.copy(out, prefix)
  return out
}

type Obj = Record<string, unknown>

function parseJson (body: Buffer): Obj {
  let v: unknown
  try {
    v = JSON.parse(body.toString('utf8'))
  } catch {
    throw new InvalidMessageError('control message is not valid JSON')
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new InvalidMessageError('control message must be a JSON object')
  return v as Obj
}

function str (o: Obj, k: string, max = 256): string {
  const v = o[k]
  if (typeof v !== 'string' || v.length > max) throw new InvalidMessageError(`"${String(o.t)}" message: "${k}" must be a string of at most ${max} characters`)
  return v
}

function int (o: Obj, k: string, min: number, max: number): number {
  const v = o[k]
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new InvalidMessageError(`"${String(o.t)}" message: "${k}" must be an integer from ${min} to ${max}`)
  return v
}

function bool (o: Obj, k: string): boolean {
  const v = o[k]
  if (typeof v !== 'boolean') throw new InvalidMessageError(`"${String(o.t)}" message: "${k}" must be a boolean`)
  return v
}

function lease (o: Obj, k: string): LeaseTicket {
  const v = o[k]
  if (typeof v !== 'object' || v === null) throw new InvalidMessageError(`"${String(o.t)}" message: "${k}" must be an object`)
  return { id: str(v as Obj, 'id', 64), secret: str(v as Obj, 'secret', 128) }
}

/** Parses and validates a client message body; throws InvalidMessageError or VersionMismatchError. */
export function parseClientMessage (body: Buffer): ClientMessage {
  const o = parseJson(body)
  switch (o.t) {
    case 'hello': {
      if (o.version !== CONTROL_VERSION) throw new VersionMismatchError(o.version, CONTROL_VERSION)
      const msg: ClientMessage = { t: 'hello', version: CONTROL_VERSION, agent: str(o, 'agent') }
      if (o.lease !== undefined) msg.lease = lease(o, 'lease')
      if (o.notices !== undefined) msg.notices = bool(o, 'notices')
      return msg
    }
    case 'auth': return { t: 'auth', tokenId: str(o, 'tokenId', 128), proof: str(o, 'proof', 128) }
    case 'open': return parseOpen(o)
    case 'close': return { t: 'close', id: int(o, 'id', 1, 0xffff_ffff) }
    case 'drain': return { t: 'drain' }
    case 'health': {
      const msg: ClientMessage = { t: 'health', id: int(o, 'id', 1, 0xffff_ffff), healthy: bool(o, 'healthy') }
      if (o.detail !== undefined) msg.detail = str(o, 'detail', 256)
      return msg
    }
    default: throw new InvalidMessageError(`unknown client message type ${JSON.stringify(o.t)}`)
  }
}

/** Parses and validates a relay message body. */
export function parseRelayMessage (body: Buffer): RelayMessage {
  const o = parseJson(body)
  switch (o.t) {
    case 'challenge':
      if (o.version !== CONTROL_VERSION) throw new VersionMismatchError(o.version, CONTROL_VERSION)
      return { t: 'challenge', version: CONTROL_VERSION, nonce: str(o, 'nonce', 128) }
    case 'welcome': {
      const msg: RelayMessage = { t: 'welcome', lease: lease(o, 'lease'), resumed: bool(o, 'resumed'), principal: str(o, 'principal'), agent: str(o, 'agent') }
      if (o.session !== undefined) msg.session = str(o, 'session', 64)
      return msg
    }
    case 'opened': {
      const msg: RelayMessage = { t: 'opened', id: int(o, 'id', 1, 0xffff_ffff), port: int(o, 'port', 1, 65535), host: str(o, 'host') }
      if (o.url !== undefined) msg.url = str(o, 'url', 512)
      return msg
    }
    case 'closed': return { t: 'closed', id: int(o, 'id', 1, 0xffff_ffff), code: str(o, 'code', 64), message: str(o, 'message', 1024) }
    case 'error': return { t: 'error', code: str(o, 'code', 64), message: str(o, 'message', 1024) }
    case 'refused': return { t: 'refused', id: int(o, 'id', 1, 0xffff_ffff), code: str(o, 'code', 64), message: str(o, 'message', 1024), count: int(o, 'count', 1, 0xffff_ffff) }
    case 'draining': return { t: 'draining' }
    case 'group': return { t: 'group', id: int(o, 'id', 1, 0xffff_ffff), name: str(o, 'name', 64), members: int(o, 'members', 0, 0xffff_ffff), available: int(o, 'available', 0, 0xffff_ffff) }
    default: throw new InvalidMessageError(`unknown relay message type ${JSON.stringify(o.t)}`)
  }
}

export function parseStreamHeader (body: Buffer): StreamHeader {
  const o = parseJson(body)
  const h: StreamHeader = { id: int(o, 'id', 1, 0xffff_ffff), addr: str(o, 'addr', 64), port: int(o, 'port', 0, 65535) }
  if (o.daddr !== undefined) h.daddr = str(o, 'daddr', 64)
  if (o.dport !== undefined) h.dport = int(o, 'dport', 0, 65535)
  return h
}

function parseOpen (o: Obj): OpenRequest {
  const msg: OpenRequest = { t: 'open', id: int(o, 'id', 1, 0xffff_ffff), name: str(o, 'name', 64), port: int(o, 'port', 0, 65535) }
  if (o.kind !== undefined) {
    if (o.kind !== 'tcp' && o.kind !== 'http' && o.kind !== 'tls') throw new InvalidMessageError('"open" message: "kind" must be "tcp", "http" or "tls"')
    msg.kind = o.kind
  }
  if (o.subdomain !== undefined) msg.subdomain = str(o, 'subdomain', 63)
  if (o.hostname !== undefined) msg.hostname = str(o, 'hostname', 253)
  if (o.basicAuth !== undefined) msg.basicAuth = str(o, 'basicAuth', 512)
  if (o.allowIp !== undefined) msg.allowIp = strList(o, 'allowIp')
  if (o.denyIp !== undefined) msg.denyIp = strList(o, 'denyIp')
  if (o.group !== undefined) msg.group = str(o, 'group', 64)
  if (o.groupKey !== undefined) msg.groupKey = str(o, 'groupKey', 256)
  if (o.groupPolicy !== undefined) {
    if (o.groupPolicy !== 'roundrobin' && o.groupPolicy !== 'leastconn') throw new InvalidMessageError('"open" message: "groupPolicy" must be "roundrobin" or "leastconn"')
    msg.groupPolicy = o.groupPolicy
  }
  return msg
}

function strList (o: Obj, k: string): string[] {
  const v = o[k]
  if (!Array.isArray(v) || v.length > MAX_IP_RULES || v.some(x => typeof x !== 'string' || x.length > 64)) {
    throw new InvalidMessageError(`"${String(o.t)}" message: "${k}" must be a list of at most ${MAX_IP_RULES} strings`)
  }
  return v as string[]
}
