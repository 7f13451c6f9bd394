/**
 * Constants both sides of a tunnel share: the control port, the control protocol's version and
 * the agents the two sides name themselves with. A leaf module, so a client that needs one of
 * them loads no relay code.
 */

/** The relay's control port, used when a relay address names none. */
export const DEFAULT_CONTROL_PORT = 7835

/** The control protocol version sent in hello and challenge; a mismatch ends the handshake. */
export const CONTROL_VERSION = 1

/** How the relay names itself in the welcome message. */
export const RELAY_AGENT = 'mport-relay/0.1.0'

/** How the client names itself in the hello message. */
export const CLIENT_AGENT = 'mport-connect/0.1.0'
