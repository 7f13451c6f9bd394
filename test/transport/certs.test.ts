// Certificates and fingerprints: generated certificates (EC P-256, SANs, ten years), the
// fingerprint cross-checked against `openssl x509 -fingerprint -sha256`, fingerprint parsing,
// the data-directory pair created once and reloaded after, and the trust-on-first-use store.
import { execFileSync } from 'node:child_process'
import { X509Certificate, createPrivateKey } from 'node:crypto'
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import t, { type Test } from 'tap'
import {
  CERT_FILE, KEY_FILE, fingerprint, generateSelfSigned, loadOrCreateCertificate, parseFingerprint,
} from '../../src/transport/certs.js'
import { KnownRelays } from '../../src/transport/known-relays.js'

async function tempDir (t: Test): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mport-certs-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

const mode = async (file: string): Promise<number> => (await stat(file)).mode & 0o777

t.test('generateSelfSigned: EC P-256, SANs for every name plus loopback, ten years', async t => {
  const { cert, key } = await generateSelfSigned(['relay.example.com', '192.0.2.7', 'LOCALHOST'])
  const x = new X509Certificate(cert)
  const sans = (x.subjectAltName ?? '').split(', ').sort()
  t.same(sans, [
    'DNS:localhost', 'DNS:relay.example.com', 'IP Address:0:0:0:0:0:0:0:1', 'IP Address:127.0.0.1', 'IP Address:192.0.2.7',
  ].sort(), 'each name once, loopback included')
  t.equal(x.publicKey.asymmetricKeyType, 'ec')
  t.equal(x.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1')
  t.ok(x.checkPrivateKey(createPrivateKey(key)), 'key belongs to the certificate')
  t.equal(x.ca, false)
  const years = (Date.parse(x.validTo) - Date.now()) / (365.25 * 24 * 3600 * 1000)
  t.ok(years > 9.9 && years < 10.1, `valid for ten years (${years.toFixed(2)})`)
  t.ok(Date.parse(x.validFrom) < Date.now(), 'already valid')
  t.ok(x.checkHost('relay.example.com'))
  t.ok(x.checkIP('192.0.2.7'))
  t.match(key, /^-----BEGIN PRIVATE KEY-----/)
})

t.test('generateSelfSigned: two calls give two keys', async t => {
  const [a, b] = await Promise.all([generateSelfSigned([]), generateSelfSigned([])])
  t.not(fingerprint(a.cert), fingerprint(b.cert))
  t.not(a.key, b.key)
})

t.test('generateSelfSigned rejects what is not a hostname', async t => {
  for (const bad of ['', 'has space', 'a..b', 'x'.repeat(64) + '.com', 'bad/slash']) {
    await t.rejects(generateSelfSigned([bad]), { code: 'MPORT_ERR_INVALID_CONFIG', key: 'hostname' }, JSON.stringify(bad))
  }
  const ok = await generateSelfSigned(['*.tunnels.example.com', '[::1]', 'relay.example.com.'])
  t.match(new X509Certificate(ok.cert).subjectAltName, /DNS:\*\.tunnels\.example\.com/)
})

t.test('fingerprint equals openssl x509 -fingerprint -sha256, lowercased without colons', async t => {
  const dir = await tempDir(t)
  const { cert } = await generateSelfSigned(['relay.test'])
  const file = path.join(dir, 'cert.pem')
  await writeFile(file, cert)
  const out = execFileSync('openssl', ['x509', '-noout', '-fingerprint', '-sha256', '-in', file], { encoding: 'utf8' })
  const hex = out.trim().split('=')[1]?.replace(/:/g, '').toLowerCase()
  t.match(hex, /^[0-9a-f]{64}$/, `openssl printed a digest: ${out.trim()}`)
  const fp = fingerprint(cert)
  t.equal(fp, `sha256:${hex}`)
  t.equal(fingerprint(new X509Certificate(cert).raw), fp, 'DER buffer')
  t.equal(fingerprint(Buffer.from(cert)), fp, 'PEM buffer')
  t.equal(fp, 'sha256:' + new X509Certificate(cert).fingerprint256.replace(/:/g, '').toLowerCase())
  t.throws(() => fingerprint('not a certificate'), { code: 'MPORT_ERR_INVALID_CONFIG', key: 'certificate' })
})

t.test('parseFingerprint normalizes every accepted spelling', async t => {
  const hex = 'ab'.repeat(32)
  const want = `sha256:${hex}`
  const colons = hex.match(/../g)!.join(':')
  for (const input of [want, hex, hex.toUpperCase(), colons, colons.toUpperCase(), `SHA256:${colons}`, `  ${want}\n`, `sha256 Fingerprint=${colons.toUpperCase()}`]) {
    t.equal(parseFingerprint(input), want, JSON.stringify(input))
  }
  for (const bad of ['', 'sha256:', hex.slice(2), hex + 'ab', 'zz'.repeat(32), `sha1:${hex}`, `md5:${colons}`]) {
    t.throws(() => parseFingerprint(bad), { code: 'MPORT_ERR_INVALID_CONFIG', key: 'fingerprint' }, JSON.stringify(bad))
  }
  t.throws(() => parseFingerprint(`sha1:${'ab'.repeat(20)}`), { message: /only sha256/ })
})

t.test('loadOrCreateCertificate creates once, then reloads the same pair', async t => {
  const base = await tempDir(t)
  const dir = path.join(base, 'nested', 'data')
  const first = await loadOrCreateCertificate(dir, ['relay.test'])
  t.equal(first.created, true)
  t.equal(first.fingerprint, fingerprint(first.cert))
  t.equal(await mode(dir), 0o700, 'data dir 0700')
  t.equal(await mode(path.join(dir, KEY_FILE)), 0o600, 'key file 0600')
  t.equal(await readFile(path.join(dir, CERT_FILE), 'utf8'), first.cert)
  t.same((await readdir(dir)).sort(), [CERT_FILE, KEY_FILE], 'no temporary files left')

  const second = await loadOrCreateCertificate(dir, ['other.test'])
  t.equal(second.created, false)
  t.equal(second.fingerprint, first.fingerprint, 'same fingerprint, even with other hostnames')
  t.equal(second.key, first.key)
})

t.test('loadOrCreateCertificate refuses half a pair or a foreign key', async t => {
  const dir = await tempDir(t)
  const pair = await loadOrCreateCertificate(dir, [])
  await rm(path.join(dir, KEY_FILE))
  await t.rejects(loadOrCreateCertificate(dir, []), { code: 'MPORT_ERR_INVALID_CONFIG', message: /key\.pem does not/ })
  t.equal(await readFile(path.join(dir, CERT_FILE), 'utf8'), pair.cert, 'the certificate is not replaced')

  const other = await generateSelfSigned([])
  await writeFile(path.join(dir, KEY_FILE), other.key, { mode: 0o600 })
  await t.rejects(loadOrCreateCertificate(dir, []), { code: 'MPORT_ERR_INVALID_CONFIG', message: /does not belong/ })
})

t.test('KnownRelays remembers atomically with mode 0600', async t => {
  const dir = await tempDir(t)
  const file = path.join(dir, 'sub', 'known_relays.json')
  const store = new KnownRelays(file)
  const fp = `sha256:${'cd'.repeat(32)}`
  t.equal(await store.get('relay.test:7835'), undefined)
  await Promise.all([
    store.remember('Relay.Test:7835', fp.toUpperCase()),
    store.remember('[::1]:7835', fp),
  ])
  t.equal(await store.get('relay.test:7835'), fp, 'key and fingerprint normalized')
  t.equal(await store.get('[::1]:7835'), fp, 'concurrent remembers both kept')
  t.equal(await mode(file), 0o600)
  t.same((await readdir(path.dirname(file))), ['known_relays.json'], 'no temporary files left')
  t.match(JSON.parse(await readFile(file, 'utf8')), { relays: { 'relay.test:7835': { fingerprint: fp, firstSeen: String } } })

  const again = new KnownRelays(file)
  t.equal(await again.get('relay.test:7835'), fp, 'read back by another instance')
  await again.forget('relay.test:7835')
  t.equal(await store.get('relay.test:7835'), undefined)
  t.equal(await store.get('toString'), undefined, 'no prototype keys')
  await t.rejects(store.remember('x:1', 'nope'), { code: 'MPORT_ERR_INVALID_CONFIG' })
})

t.test('KnownRelays refuses a damaged file instead of resetting it', async t => {
  const dir = await tempDir(t)
  const file = path.join(dir, 'known_relays.json')
  await writeFile(file, '{"relays": {"a:1": {"fingerprint": "sha256:12"}}}')
  await t.rejects(new KnownRelays(file).get('a:1'), { code: 'MPORT_ERR_INVALID_CONFIG', message: /damaged/ })
  await writeFile(file, '{ not json')
  await t.rejects(new KnownRelays(file).remember('a:1', `sha256:${'00'.repeat(32)}`), { message: /damaged/ })
  t.equal(await readFile(file, 'utf8'), '{ not json', 'left as it was')
})

t.test('KnownRelays.default follows XDG_CONFIG_HOME, else ~/.config', async t => {
  const saved = process.env.XDG_CONFIG_HOME
  t.teardown(() => { if (saved === undefined) delete process.env.XDG_CONFIG_HOME; else process.env.XDG_CONFIG_HOME = saved })
  process.env.XDG_CONFIG_HOME = '/xdg/conf'
  t.equal(KnownRelays.default().path, path.join('/xdg/conf', 'mport', 'known_relays.json'))
  delete process.env.XDG_CONFIG_HOME
  t.equal(KnownRelays.default().path, path.join(os.homedir(), '.config', 'mport', 'known_relays.json'))
})
