/**
 * `mport-connect forget <relay>`: removes a relay from the trust-on-first-use store
 * (known_relays.json), after its operator changed its certificate on purpose; the next
 * connection trusts the certificate it sees and remembers it again. (Parsed with the account
 * commands in account-commands.ts.)
 */
import { KnownRelays, relayAddress } from 'mport/client'
import { InvalidConfigError } from 'mport/errors'
import { UsageError } from 'mport/cli'

/** What `forget` did: the human line and the JSON answer. */
export interface ForgetResult {
  /** The line for a terminal. */
  human: string
  /** The JSON answer (--json). */
  data: { relay: string, forgotten: boolean, fingerprint: string | null, file: string }
}

/**
 * Forgets the remembered certificate of `relay` (any `host[:port]` form) in `store` (default:
 * the user's known_relays.json). A relay that is not there is not an error. Throws UsageError
 * for an address that does not parse.
 */
export async function forgetRelay (relay: string, store: KnownRelays = KnownRelays.default()): Promise<ForgetResult> {
  let key: string
  try {
    key = relayAddress(relay)
  } catch (err) {
    if (err instanceof InvalidConfigError) throw new UsageError(`relay ${JSON.stringify(relay)}: ${err.message.replace(/^invalid config "[^"]*": /, '')}`)
    throw err
  }
  const known = (await store.list())[key]
  if (known !== undefined) await store.forget(key)
  return {
    human: known !== undefined
      ? `forgot the certificate of ${key} (${known.fingerprint}, first seen ${known.firstSeen || 'at an unknown time'}) from ${store.path}; the next connection trusts the certificate it is shown, or pin it with --fingerprint`
      : `${key} is not in ${store.path}: nothing to forget`,
    data: { relay: key, forgotten: known !== undefined, fingerprint: known?.fingerprint ?? null, file: store.path },
  }
}
