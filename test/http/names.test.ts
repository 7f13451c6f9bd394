// Tunnel names: subdomain and custom-hostname validation with typed errors, reserved names,
// random readable names (seeded and real), and Host/SNI → route mapping.
import t from 'tap'
import { InvalidHostnameError, ReservedNameError } from '../../src/errors.js'
import { NAME_WORDS, RESERVED_NAMES, randomName, routeHost, validateHostname, validateSubdomain } from '../../src/http/names.js'
import { mulberry32 } from '../helpers/naive-codec.js'

t.test('validateSubdomain: DNS label rules, lowercased', async t => {
  t.equal(validateSubdomain('MyApp'), 'myapp')
  t.equal(validateSubdomain('  a-1  '), 'a-1')
  t.equal(validateSubdomain('x'.repeat(63)), 'x'.repeat(63))
  t.equal(validateSubdomain('0day'), '0day', 'leading digit is fine (RFC 1123)')
  const bad: Array<[string, RegExp]> = [
    ['', /empty/],
    ['a.b', /one label, without dots/],
    ['x'.repeat(64), /at most 63 characters, this one has 64/],
    ['my_app', /only letters, digits and hyphens/],
    ['café', /only letters/],
    ['-app', /start or end with a hyphen/],
    ['app-', /start or end with a hyphen/],
    ['xn--abc', /IDNA/],
    ['a b', /only letters/],
  ]
  for (const [name, msg] of bad) {
    t.throws(() => validateSubdomain(name), { name: 'InvalidHostnameError', code: 'MPORT_ERR_INVALID_HOSTNAME', hostname: name, message: msg }, JSON.stringify(name))
  }
  t.match(new InvalidHostnameError('a_b', 'x').message, /invalid name "a_b": x/)
})

t.test('reserved names are refused', async t => {
  for (const name of ['www', 'api', 'admin', 'relay', 'mport', 'WWW']) {
    t.throws(() => validateSubdomain(name), { name: 'ReservedNameError', code: 'MPORT_ERR_NAME_RESERVED', message: /reserved on this relay/ }, name)
  }
  t.ok(RESERVED_NAMES.size >= 5)
  for (const r of RESERVED_NAMES) t.throws(() => validateSubdomain(r), ReservedNameError)
})

t.test('validateHostname: custom domains', async t => {
  t.equal(validateHostname('App.Example.ORG.'), 'app.example.org')
  t.equal(validateHostname('a.b.c.example.org'), 'a.b.c.example.org')
  const bad: Array<[string, string | undefined, RegExp]> = [
    ['', undefined, /empty/],
    ['localhost', undefined, /at least two labels/],
    ['1.2.3.4', undefined, /IP address/],
    ['a..example', undefined, /label/],
    ['under_score.example', undefined, /label/],
    [`${'a'.repeat(63)}.`.repeat(4) + 'com', undefined, /at most 253/],
    ['x.tunnels.example.com', 'tunnels.example.com', /use --subdomain/],
    ['tunnels.example.com', 'Tunnels.Example.com.', /use --subdomain/],
  ]
  for (const [name, base, msg] of bad) t.throws(() => validateHostname(name, base), { code: 'MPORT_ERR_INVALID_HOSTNAME', message: msg }, JSON.stringify(name.slice(0, 30)))
  t.equal(validateHostname('notexample.com', 'example.com'), 'notexample.com', 'a suffix that is not a label boundary is fine')
})

t.test('randomName: <adjective>-<noun>-<4 digits>, always a valid unreserved label', async t => {
  t.ok(NAME_WORDS.adjectives.length >= 32 && NAME_WORDS.nouns.length >= 32)
  const rand = mulberry32(99)
  const names = new Set<string>()
  for (let i = 0; i < 2000; i++) {
    const name = randomName(max => Math.floor(rand() * max))
    if (validateSubdomain(name) !== name) t.fail(name)
    names.add(name)
  }
  t.ok(names.size > 1990, `few collisions in 2000 seeded draws (${names.size} distinct)`)
  for (let i = 0; i < 200; i++) {
    const n = randomName()
    if (!/^[a-z]+-[a-z]+-\d{4}$/.test(n)) t.fail(n)
  }
  t.equal(randomName(() => 0), `${NAME_WORDS.adjectives[0]}-${NAME_WORDS.nouns[0]}-0000`, 'digits are zero-padded')
  t.equal(randomName(max => max - 1), `${NAME_WORDS.adjectives.at(-1)}-${NAME_WORDS.nouns.at(-1)}-9999`)
  for (const w of [...NAME_WORDS.adjectives, ...NAME_WORDS.nouns]) if (!/^[a-z]{3,10}$/.test(w)) t.fail(`word ${w}`)
})

t.test('routeHost', async t => {
  const base = 'tunnels.example.com'
  t.same(routeHost('myapp.tunnels.example.com', base), { kind: 'subdomain', label: 'myapp' })
  t.same(routeHost('MyApp.Tunnels.Example.COM.', base), { kind: 'subdomain', label: 'myapp' })
  t.same(routeHost('tunnels.example.com', base), { kind: 'apex' })
  t.same(routeHost('a.b.tunnels.example.com', base), { kind: 'hostname', hostname: 'a.b.tunnels.example.com' }, 'deeper names are not subdomains')
  t.same(routeHost('app.example.org', base), { kind: 'hostname', hostname: 'app.example.org' })
  t.same(routeHost('xtunnels.example.com', base), { kind: 'hostname', hostname: 'xtunnels.example.com' }, 'label boundary respected')
  t.same(routeHost('myapp.tunnels.example.com', undefined), { kind: 'hostname', hostname: 'myapp.tunnels.example.com' }, 'no base domain: everything is a hostname')
  t.same(routeHost('127.0.0.1', base), { kind: 'hostname', hostname: '127.0.0.1' })
})
