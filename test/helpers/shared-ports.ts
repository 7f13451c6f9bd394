/**
 * Fixtures of the transport tests: a relay with its shared HTTP and HTTPS ports on, and a
 * client started against it, with the 'connected' event's transport details.
 */
import type { Test } from 'tap'
import type { Client, Relay } from '../../src/index.js'
import { cert, key, startRelay } from './tunnel.js'
import { withTimeout } from './wait.js'

/** What 'connected' says about the way to the relay. */
export interface Connected { transport: string, trust: string, fingerprint: string, proxy?: string }

/** A relay with both shared ports on (the control certificate doubles as the HTTPS one); closed in teardown. */
export async function relayWithSharedPorts (t: Test): Promise<Relay> {
  const relay = await startRelay({ httpPort: 0, httpsPort: 0, httpsCert: cert, httpsKey: key, domain: 'mport.test' })
  t.teardown(() => relay.close(100))
  return relay
}

/** The relay's shared ports, as the client's `relayPorts` option takes them. */
export function sharedPorts (relay: Relay): { http: number, https: number } {
  return { http: relay.httpAddress!.port, https: relay.httpsAddress!.port }
}

/** Starts the client (closed in teardown); resolves with its first tunnel's public port and the 'connected' info. */
export async function startClient (t: Test, client: Client): Promise<{ port: number, info: Connected }> {
  t.teardown(() => client.close())
  let info: Connected | undefined
  client.once('connected', (i: Connected) => { info = i })
  const [tunnel] = await withTimeout(client.start(), { what: 'the tunnel to open', timeoutMs: 60_000 })
  return { port: tunnel!.remotePort!, info: info! }
}
