/**
 * The base of every mport error: a stable string `code` listed in PROTOCOL.md's error table,
 * and the layer the class belongs to (the table's Layer column). The classes themselves live one
 * file per layer beside this one; `mport/errors` (src/errors.ts) re-exports them all.
 */

/** Every stable error code, in the order PROTOCOL.md lists them (grouped by layer). */
export const ErrorCodes = [
  // mux: framing and session
  'MPORT_ERR_INVALID_VERSION',
  'MPORT_ERR_INVALID_FRAME_TYPE',
  'MPORT_ERR_FRAME_TOO_LARGE',
  'MPORT_ERR_INVALID_STREAM_ID',
  'MPORT_ERR_DUPLICATE_STREAM',
  'MPORT_ERR_RECV_WINDOW_EXCEEDED',
  'MPORT_ERR_WINDOW_OVERFLOW',
  'MPORT_ERR_PING_FLOOD',
  'MPORT_ERR_CONTROL_BACKLOG',
  'MPORT_ERR_REMOTE_GOAWAY',
  'MPORT_ERR_KEEPALIVE_TIMEOUT',
  'MPORT_ERR_SESSION_CLOSED',
  'MPORT_ERR_TRANSPORT',
  'MPORT_ERR_STREAM_RESET',
  'MPORT_ERR_STREAM_LIMIT',
  'MPORT_ERR_INVALID_CONFIG',
  // tunnel: control protocol, connecting to the relay, tunnels and their names, plan limits
  'MPORT_ERR_HANDSHAKE_TIMEOUT',
  'MPORT_ERR_VERSION_MISMATCH',
  'MPORT_ERR_INVALID_MESSAGE',
  'MPORT_ERR_MESSAGE_TOO_LARGE',
  'MPORT_ERR_AUTH_FAILED',
  'MPORT_ERR_RATE_LIMITED',
  'MPORT_ERR_VISITOR_FILTERED',
  'MPORT_ERR_PORT_NOT_ALLOWED',
  'MPORT_ERR_PORT_IN_USE',
  'MPORT_ERR_DUPLICATE_TUNNEL',
  'MPORT_ERR_TUNNEL_LIMIT',
  'MPORT_ERR_RELAY_UNREACHABLE',
  'MPORT_ERR_CERT_MISMATCH',
  'MPORT_ERR_CERT_UNTRUSTED',
  'MPORT_ERR_LOCAL_UNREACHABLE',
  'MPORT_ERR_NAME_TAKEN',
  'MPORT_ERR_QUOTA_EXCEEDED',
  'MPORT_ERR_PROXY_AUTH_FAILED',
  'MPORT_ERR_PROXY_REFUSED',
  'MPORT_ERR_GROUP_KEY',
  'MPORT_ERR_GROUP_MISMATCH',
  // http: the HTTP and TLS front's parsers and names
  'MPORT_ERR_BAD_REQUEST',
  'MPORT_ERR_HEADERS_TOO_LARGE',
  'MPORT_ERR_INVALID_CLIENT_HELLO',
  'MPORT_ERR_INVALID_HOSTNAME',
  'MPORT_ERR_NAME_RESERVED',
  // http: the HTTPS front's ACME certificates
  'MPORT_ERR_ACME_NAME_REFUSED',
  'MPORT_ERR_ACME_RATE_LIMITED',
  'MPORT_ERR_ACME_ORDER_FAILED',
  'MPORT_ERR_ACME_DNS_HOOK_FAILED',
  // store: the relay's database
  'MPORT_ERR_DATABASE',
  'MPORT_ERR_SCHEMA_TOO_NEW',
  'MPORT_ERR_INVALID_INPUT',
  'MPORT_ERR_NOT_FOUND',
  'MPORT_ERR_USER_EXISTS',
  'MPORT_ERR_RESERVATION_TAKEN',
  // api: the relay's REST API
  'MPORT_ERR_UNAUTHENTICATED',
  'MPORT_ERR_FORBIDDEN',
  'MPORT_ERR_UNAVAILABLE',
  'MPORT_ERR_DOWNLOAD_MISSING',
  'MPORT_ERR_INTERNAL',
  // api: the client's inspector (mport-connect)
  'MPORT_ERR_INVALID_REPLAY',
  'MPORT_ERR_REPLAY_UNAVAILABLE',
] as const

/** One of the stable `MPORT_ERR_*` codes in {@link ErrorCodes}; compare `err.code` against it rather than matching messages. */
export type ErrorCode = typeof ErrorCodes[number]

/** The layers that define error classes, bottom to top (PROTOCOL.md's Layer column). */
export const ErrorLayers = ['mux', 'tunnel', 'http', 'store', 'api'] as const

/** The layer an error class belongs to, as PROTOCOL.md's error table names it. */
export type ErrorLayer = typeof ErrorLayers[number]

/**
 * The base class of every error mport raises on purpose. Check errors with `instanceof` or
 * by `code`, which stays stable across releases; `name` is the concrete class's name.
 */
export class MportError extends Error {
  /**
   * The layer this class belongs to, set once by each layer's base class (MuxError, TunnelError,
   * HttpLayerError, StoreError, ApiError); undefined only on MportError itself.
   */
  static readonly layer: ErrorLayer | undefined = undefined

/** The stable code, listed with its meaning in PROTOCOL.md's error table. */
  readonly code: ErrorCode
  constructor (code: ErrorCode, message: string, options?: ErrorOptions) {
    super(message, options)
    this.code = code
    this.name = new.target.name
  }
}
