/**
 * The last line of defence against a secret in a log line: every line either bin writes passes
 * through `SecretScrubber.scrub` after it is rendered, so a token, password or key that some
 * other code put into a message or a field is masked even though nobody listed its field.
 */

/** What a masked secret is replaced with (the same as `mport-relay config print`). */
export const MASK = '***'

/** Field names whose values are secrets wherever they appear (pino `redact` paths are built from them). */
export const SECRET_FIELDS = ['token', 'password', 'newPassword', 'currentPassword', 'secret', 'ticket', 'authorization', 'cookie', 'basicAuth', 'groupKey', 'privateKey'] as const

/**
 * Patterns of secrets by their shape: the relay's tokens (`mpt_…` API and tunnel tokens,
 * `mps_…` API sessions), PEM private keys, passwords in URLs, and HTTP credentials.
 */
const PATTERNS: ReadonlyArray<[RegExp, string]> = [
  [/\b(mp[ts])_[A-Za-z0-9_-]+/g, `$1_${MASK}`],
  // A whole key (newlines raw or JSON-escaped), or from a lone BEGIN marker to the end of the
  // line or of the JSON string (a quote never occurs in a PEM body).
  [/-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----(?:[\s\S]*?-----END \1PRIVATE KEY-----|[^\n"]*)/g, '[private key]'],
  // scheme://user:password@host → scheme://user:***@host (a database URL, a proxy URL).
  [/\b([a-z][a-z0-9+.-]*:\/\/[^\s:/@"'\\]*:)[^\s@/"'\\]+@/gi, `$1${MASK}@`],
  [/\b(Basic|Bearer|Digest)\s+[A-Za-z0-9+/=._~-]{6,}/g, `$1 ${MASK}`],
]

/** Known secret values shorter than this are not masked by value (they would mask ordinary words); their shape still is. */
const MIN_KNOWN_LENGTH = 6

/**
 * Masks secrets in rendered log lines: the values it was told about (the relay's token, a
 * database password, a client's token, basic-auth passwords), and anything shaped like one.
 */
export class SecretScrubber {
  readonly #known = new Set<string>()

  constructor (known: Iterable<string> = []) {
    for (const v of known) this.add(v)
  }

  /** Masks `value` in every later line (as written, and as it appears inside a JSON string). */
  add (value: string | undefined): void {
    if (value === undefined || value.length < MIN_KNOWN_LENGTH) return
    this.#known.add(value)
    const escaped = JSON.stringify(value).slice(1, -1)
    if (escaped !== value) this.#known.add(escaped)
  }

  /** `line` with every known secret and every secret-shaped string masked. */
  scrub (line: string): string {
    let s = line
    for (const v of this.#known) if (s.includes(v)) s = s.replaceAll(v, MASK)
    for (const [re, to] of PATTERNS) s = s.replace(re, to)
    return s
  }
}
