/**
 * Certificates for the relay: a generated self-signed EC P-256 certificate kept in the data
 * directory, and SHA-256 fingerprints (the value clients pin with --fingerprint).
 */
import { createHash, createPrivateKey, randomBytes, X509Certificate } from 'node:crypto'
import { chmodSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { chmod, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import net from 'node:net'
import path from 'node:path'
import { Worker } from 'node:worker_threads'
import { InvalidConfigError } from '../errors.js'

/** Names every generated certificate covers, so loopback tests and local relays verify. */
const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '::1']
const VALIDITY_YEARS = 10
/** notBefore is backdated this much so a client whose clock is a little behind still accepts. */
const CLOCK_SKEW = 24 * 60 * 60 * 1000 // ms

/** File name of the relay's certificate in its data directory. */
export const CERT_FILE = 'cert.pem'
/** File name of the relay's private key in its data directory (mode 0600). */
export const KEY_FILE = 'key.pem'

/** A PEM certificate and its private key, as a TLS listener takes them. */
export interface CertificatePair {
  /** PEM certificate. */
  cert: string
  /** PEM private key (PKCS#8). */
  key: string
}

/** The relay's certificate as loaded from, or generated into, its data directory. */
export interface StoredCertificate extends CertificatePair {
  /** `sha256:` + 64 lowercase hex digits. */
  fingerprint: string
  /** True when this call generated the pair, false when it was loaded. */
  created: boolean
}

/**
 * A self-signed EC P-256 / SHA-256 server certificate valid for ten years, with a SAN for
 * every hostname or IP in `hostnames` plus localhost, 127.0.0.1 and ::1.
 */
export async function generateSelfSigned (hostnames: string[]): Promise<CertificatePair> {
  const names: string[] = []
  for (const raw of [...hostnames, ...LOOPBACK_NAMES]) {
    const name = normalizeName(raw)
    if (!names.includes(name)) names.push(name)
  }
  const altNames = names.map(name => net.isIP(name) !== 0 ? { type: 7 as const, ip: name } : { type: 2 as const, value: name })
  const notBeforeDate = new Date(Date.now() - CLOCK_SKEW)
  const notAfterDate = new Date(notBeforeDate)
  notAfterDate.setUTCFullYear(notAfterDate.getUTCFullYear() + VALIDITY_YEARS)
  const pems = await generateInWorker([{ name: 'commonName', value: names[0] ?? 'localhost' }, { name: 'organizationName', value: 'mport relay' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate,
    notAfterDate,
    extensions: [
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames },
    ],
  })
  return pems
}

type GenerateArgs = Parameters<typeof import('selfsigned').generate>

/**
 * Runs selfsigned's generate() in a worker thread. The X.509 library behind it is large, and the
 * relay needs it once, on first start; loaded in a worker, it goes away with the worker's heap
 * instead of staying resident for the relay's whole life.
 */
function generateInWorker (attrs: GenerateArgs[0], options: GenerateArgs[1]): Promise<CertificatePair> {
  const code = `
    const { parentPort, workerData } = require('node:worker_threads')
    import(workerData.url)
      .then(m => m.generate(workerData.attrs, workerData.options))
      .then(p => parentPort.postMessage({ cert: p.cert, key: p.private }), e => parentPort.postMessage({ error: String(e && e.stack || e) }))
  `
  return new Promise((resolve, reject) => {
    const worker = new Worker(code, { eval: true, workerData: { url: import.meta.resolve('selfsigned'), attrs, options } })
    let settled = false
    worker.once('message', (m: { cert: string, key: string } | { error: string }) => {
      settled = true
      if ('error' in m) reject(new Error(`certificate generation failed: ${m.error}`))
      else resolve(m)
      void worker.terminate()
    })
    worker.once('error', err => { if (!settled) { settled = true; reject(err) } })
    worker.once('exit', code => { if (!settled) { settled = true; reject(new Error(`certificate generation stopped (worker exit code ${code})`)) } })
  })
}

/**
 * Loads `cert.pem` and `key.pem` from `dataDir`, or generates them on first use (directory
 * mode 0700, key mode 0600). An existing pair is kept as is, even if `hostnames` changed,
 * so the fingerprint clients pinned stays valid; delete both files to get a new one.
 */
export async function loadOrCreateCertificate (dataDir: string, hostnames: string[]): Promise<StoredCertificate> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 })
  const certPath = path.join(dataDir, CERT_FILE)
  const keyPath = path.join(dataDir, KEY_FILE)
  const [cert, key] = await Promise.all([readIfExists(certPath), readIfExists(keyPath)])
  if (cert !== undefined && key !== undefined) {
    checkPair(cert, key, certPath, keyPath)
    return { cert, key, fingerprint: fingerprint(cert), created: false }
  }
  if (cert !== undefined || key !== undefined) {
    const [present, missing] = cert !== undefined ? [certPath, keyPath] : [keyPath, certPath]
    throw new InvalidConfigError('dataDir', `${present} exists but ${missing} does not; restore it, or delete both to generate a new certificate (clients that pinned the old fingerprint will refuse the new one)`)
  }
  const pair = await generateSelfSigned(hostnames)
  // Key first, so a crash in between never leaves a certificate without its key.
  await writeAtomic(keyPath, pair.key, 0o600)
  await writeAtomic(certPath, pair.cert, 0o644)
  return { ...pair, fingerprint: fingerprint(pair.cert), created: true }
}

/**
 * `sha256:` + the lowercase hex SHA-256 of the certificate's DER encoding: the value
 * `openssl x509 -noout -fingerprint -sha256` prints, without colons. PEM input uses the first
 * certificate in it; a Buffer may hold PEM or DER.
 */
export function fingerprint (certPemOrDer: string | Buffer): string {
  let der: Buffer
  try {
    der = new X509Certificate(certPemOrDer).raw
  } catch (err) {
    throw new InvalidConfigError('certificate', `not a PEM or DER X.509 certificate (${(err as Error).message})`)
  }
  return fingerprintDer(der)
}

/** Fingerprint of DER bytes already known to be a certificate (for example `getPeerCertificate().raw`). */
export function fingerprintDer (der: Buffer): string {
  return 'sha256:' + createHash('sha256').update(der).digest('hex')
}

/**
 * Normalizes a user-supplied fingerprint to `sha256:<64 lowercase hex>`. Accepts an optional
 * `sha256:` prefix (or OpenSSL's `SHA256 Fingerprint=`), colons between bytes, any case.
 */
export function parseFingerprint (input: string): string {
  let s = String(input).trim()
  const prefix = /^(?:sha-?256\s+fingerprint=|sha-?256:)/i.exec(s)
  if (prefix !== null) {
    s = s.slice(prefix[0].length)
  } else {
    const head = s.split(':')[0] ?? ''
    if (s.includes(':') && /^[a-z][a-z0-9-]*$/i.test(head) && !/^[0-9a-f]{2}$/i.test(head)) {
      throw new InvalidConfigError('fingerprint', `unsupported digest "${truncate(head)}" (only sha256 fingerprints are accepted)`)
    }
  }
  const hex = s.replace(/:/g, '').toLowerCase()
  if (!/^[0-9a-f]{64}$/.test(hex)) {
    throw new InvalidConfigError('fingerprint', `expected "sha256:" followed by 64 hex digits (colons allowed), got "${truncate(String(input))}"`)
  }
  return 'sha256:' + hex
}

function normalizeName (raw: string): string {
  const name = String(raw).trim().replace(/^\[(.*)\]$/, '$1').toLowerCase()
  if (net.isIP(name) !== 0) return name
  if (!/^(?:\*\.)?[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*\.?$/.test(name) || name.length > 253) {
    throw new InvalidConfigError('hostname', `"${truncate(raw)}" is not a valid hostname or IP address`)
  }
  return name.replace(/\.$/, '')
}

function checkPair (cert: string, key: string, certPath: string, keyPath: string): void {
  let x509: X509Certificate
  try {
    x509 = new X509Certificate(cert)
  } catch (err) {
    throw new InvalidConfigError('dataDir', `${certPath} is not a PEM certificate (${(err as Error).message})`)
  }
  let matches: boolean
  try {
    matches = x509.checkPrivateKey(createPrivateKey(key))
  } catch (err) {
    throw new InvalidConfigError('dataDir', `${keyPath} is not a usable private key (${(err as Error).message})`)
  }
  if (!matches) throw new InvalidConfigError('dataDir', `${keyPath} does not belong to the certificate in ${certPath}`)
}

async function readIfExists (file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new InvalidConfigError('dataDir', `cannot read ${file}: ${(err as Error).message}`)
  }
}

/** A temporary name beside `file`, for writing it whole before a rename puts it in place. */
function tempBeside (file: string): string {
  return `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`
}

/** Writes through a temporary file in the same directory and renames it into place. */
export async function writeAtomic (file: string, data: string, mode: number): Promise<void> {
  const tmp = tempBeside(file)
  try {
    await writeFile(tmp, data, { mode, flag: 'wx' })
    await chmod(tmp, mode) // the umask may have narrowed or (for 0644) kept the mode; make it exact
    await rename(tmp, file)
  } catch (err) {
    await rm(tmp, { force: true })
    throw err
  }
}

/** {@link writeAtomic}, done before it returns: for a file that must be on disk before the caller goes on. */
export function writeAtomicSync (file: string, data: string, mode: number): void {
  const tmp = tempBeside(file)
  try {
    writeFileSync(tmp, data, { mode, flag: 'wx' })
    chmodSync(tmp, mode)
    renameSync(tmp, file)
  } catch (err) {
    rmSync(tmp, { force: true })
    throw err
  }
}

function truncate (s: string, max = 80): string {
  return s.length > max ? s.slice(0, max) + '…' : s
}
