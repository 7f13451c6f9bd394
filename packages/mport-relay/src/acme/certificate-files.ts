/**
 * Certificates from the CA in the data dir: `<data>/certs/<name>/{cert,key}.pem` (directories
 * 0700, files 0600, written through a temporary file and renamed), so a restart serves them at
 * once and renews them when due. A wildcard `*.<domain>` lives in `_wildcard.<domain>`: `_`
 * cannot start a tunnel's host name, so the two never collide.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto'
import { mkdir, readdir, readFile } from 'node:fs/promises'
import path from 'node:path'
import { writeAtomic } from 'mport/transport'

/** A certificate chain and its key, with what the relay needs to know about it. */
export interface StoredPair {
  /** The name it was ordered for (`app.example.org`, `*.example.org`). */
  name: string
  cert: string
  key: string
  notBefore: number // ms since the epoch
  notAfter: number
  serial: string
}

export class CertificateFiles {
  readonly #dir: string

  /** `dir`: the data dir's `certs` folder. */
  constructor (dir: string) {
    this.#dir = dir
  }

  /** Every stored pair that parses and whose key matches; others are skipped (they are ordered again) and named in `skipped`. */
  async loadAll (): Promise<{ pairs: StoredPair[], skipped: string[] }> {
    let entries: string[]
    try {
      entries = await readdir(this.#dir)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { pairs: [], skipped: [] }
      throw err
    }
    const pairs: StoredPair[] = []
    const skipped: string[] = []
    for (const entry of entries) {
      const name = entry.startsWith('_wildcard.') ? `*.${entry.slice('_wildcard.'.length)}` : entry
      try {
        const [cert, key] = await Promise.all(['cert.pem', 'key.pem'].map(f => readFile(path.join(this.#dir, entry, f), 'utf8')))
        pairs.push(describe(name, cert!, key!))
      } catch (err) {
        skipped.push(`${entry}: ${(err as Error).message}`)
      }
    }
    return { pairs, skipped }
  }

  /** Stores a pair (key first: a crash in between leaves a mismatch that loadAll skips, never a certificate without its key). */
  async save (name: string, cert: string, key: string): Promise<StoredPair> {
    const pair = describe(name, cert, key)
    const dir = path.join(this.#dir, name.startsWith('*.') ? `_wildcard.${name.slice(2)}` : name)
    await mkdir(dir, { recursive: true, mode: 0o700 })
    await writeAtomic(path.join(dir, 'key.pem'), key, 0o600)
    await writeAtomic(path.join(dir, 'cert.pem'), cert, 0o600)
    return pair
  }
}

function describe (name: string, cert: string, key: string): StoredPair {
  const x509 = new X509Certificate(cert)
  if (!x509.checkPrivateKey(createPrivateKey(key))) throw new Error('the key does not belong to the certificate')
  return { name, cert, key, notBefore: Date.parse(x509.validFrom), notAfter: Date.parse(x509.validTo), serial: x509.serialNumber }
}
