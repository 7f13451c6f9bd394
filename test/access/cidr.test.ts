// IP parsing, CIDR matching and IpFilter: IPv4, IPv6, IPv4-mapped visitors as Node reports
// them on dual-stack sockets (checked against a real socket), deny-wins, typed config errors.
import { once } from 'node:events'
import net from 'node:net'
import t from 'tap'
import {
  IpFilter, cidrContains, formatCidr, formatIp, normalizeIp, parseCidr, parseIp, riskyPortHint,
} from '../../src/access/cidr.js'
import { InvalidConfigError } from '../../src/errors.js'

t.test('parseIp: valid IPv4 and IPv6 forms', async t => {
  const cases: Array<[string, 4 | 6, string]> = [
    ['0.0.0.0', 4, '00000000'],
    ['255.255.255.255', 4, 'ffffffff'],
    ['192.168.1.20', 4, 'c0a80114'],
    ['::', 6, '0'.repeat(32)],
    ['::1', 6, '0'.repeat(31) + '1'],
    ['2001:db8::8a2e:370:7334', 6, '20010db8000000000000' + '8a2e03707334'],
    ['2001:DB8:0:0:0:0:0:1', 6, '20010db8' + '0'.repeat(23) + '1'],
    ['fe80::1%eth0', 6, 'fe80' + '0'.repeat(27) + '1'],
    ['1:2:3:4:5:6:7::', 6, '00010002000300040005000600070000'],
    ['::2:3:4:5:6:7:8', 6, '00000002000300040005000600070008'],
    ['64:ff9b::192.0.2.33', 6, '0064ff9b0000000000000000c0000221'],
    // IPv4-mapped IPv6 folds to IPv4
    ['::ffff:1.2.3.4', 4, '01020304'],
    ['::FFFF:10.0.0.1', 4, '0a000001'],
    ['0:0:0:0:0:ffff:102:304', 4, '01020304'],
  ]
  for (const [text, family, hex] of cases) {
    const ip = parseIp(text)
    t.ok(ip, `${text} parses`)
    t.equal(ip?.family, family, `${text} is IPv${family}`)
    t.equal(Buffer.from(ip?.bytes ?? []).toString('hex'), hex, `${text} bytes`)
  }
})

t.test('parseIp: invalid forms', async t => {
  const bad = [
    '', '1.2.3', '1.2.3.4.5', '256.1.1.1', '01.2.3.4', '1.2.3.04', '1.2.3.-1', ' 1.2.3.4', '1.2.3.4 ',
    'a.b.c.d', '1..2.3', ':', ':::', '1::2::3', '12345::', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7',
    '::ffff:1.2.3', 'g::1', '1:2:3:4:5:6:7::8', 'localhost', '[::1]', '::1/128',
  ]
  for (const b of bad) t.equal(parseIp(b), undefined, `${JSON.stringify(b)} is refused`)
})

t.test('formatIp / normalizeIp: RFC 5952 text', async t => {
  t.equal(normalizeIp('2001:0DB8:0000:0000:0000:0000:0000:0001'), '2001:db8::1')
  t.equal(normalizeIp('2001:db8:0:0:1:0:0:1'), '2001:db8::1:0:0:1', 'first of two equal runs')
  t.equal(normalizeIp('2001:db8:0:1:1:1:1:1'), '2001:db8:0:1:1:1:1:1', 'a single zero group is not compressed')
  t.equal(normalizeIp('0:0:0:0:0:0:0:0'), '::')
  t.equal(normalizeIp('::ffff:203.0.113.9'), '203.0.113.9')
  t.equal(normalizeIp('1:0:0:2:0:0:0:3'), '1:0:0:2::3', 'the longest run wins')
  t.equal(normalizeIp('nope'), undefined)
  t.equal(formatIp({ family: 4, bytes: new Uint8Array([10, 0, 0, 1]) }), '10.0.0.1')
})

t.test('parseCidr and cidrContains', async t => {
  const inside = (cidr: string, ip: string): boolean => cidrContains(parseCidr(cidr), parseIp(ip)!)
  t.ok(inside('10.0.0.0/8', '10.255.1.2'))
  t.notOk(inside('10.0.0.0/8', '11.0.0.0'))
  t.ok(inside('192.168.1.0/24', '192.168.1.255'))
  t.notOk(inside('192.168.1.0/24', '192.168.2.0'))
  t.ok(inside('172.16.0.0/12', '172.31.255.255'), 'non-byte-aligned prefix')
  t.notOk(inside('172.16.0.0/12', '172.32.0.0'))
  t.ok(inside('0.0.0.0/0', '8.8.8.8'))
  t.ok(inside('203.0.113.7', '203.0.113.7'), 'bare address is a /32')
  t.notOk(inside('203.0.113.7', '203.0.113.8'))
  t.ok(inside('10.1.2.3/8', '10.9.9.9'), 'host bits are ignored')
  t.equal(formatCidr(parseCidr('10.1.2.3/8')), '10.0.0.0/8')
  t.ok(inside('2001:db8::/32', '2001:db8:ffff::1'))
  t.notOk(inside('2001:db8::/32', '2001:db9::1'))
  t.ok(inside('2001:db8::/33', '2001:db8:7fff::1'))
  t.notOk(inside('2001:db8::/33', '2001:db8:8000::1'))
  t.ok(inside('::/0', '::1'))
  t.ok(inside('::1', '::1'), 'bare IPv6 is a /128')
  // IPv4-mapped visitors match IPv4 CIDRs, not IPv6 ones
  t.ok(inside('10.0.0.0/8', '::ffff:10.1.1.1'))
  t.notOk(inside('::/0', '::ffff:10.1.1.1'), '::/0 means IPv6 only')
  t.notOk(inside('0.0.0.0/0', '::1'), 'IPv4 CIDR never matches IPv6')
  // An IPv4-mapped CIDR is an IPv4 CIDR
  t.equal(formatCidr(parseCidr('::ffff:10.0.0.0/104')), '10.0.0.0/8')
  t.ok(inside('::ffff:10.0.0.0/104', '10.2.3.4'))
  t.equal(formatCidr(parseCidr(' 192.0.2.0/24 ')), '192.0.2.0/24', 'surrounding spaces are trimmed')
})

t.test('parseCidr: invalid entries throw InvalidConfigError naming the entry', async t => {
  const bad: Array<[string, RegExp]> = [
    ['10.0.0.0/33', /"10\.0\.0\.0\/33".*exceeds 32/],
    ['2001:db8::/129', /exceeds 128/],
    ['10.0.0.0/', /prefix length "" is not a number/],
    ['10.0.0.0/x', /prefix length "x"/],
    ['10.0.0.0/-1', /prefix length "-1"/],
    ['10.0.0.0/8/8', /prefix length "8\/8"/],
    ['300.0.0.0/8', /"300\.0\.0\.0\/8" is not an IPv4\/IPv6 address or CIDR/],
    ['example.com', /"example\.com" is not/],
    ['', /"" is not/],
    ['::ffff:10.0.0.0/64', /at least \/96/],
  ]
  for (const [entry, msg] of bad) {
    t.throws(() => parseCidr(entry, 'allow-ip'), { name: 'InvalidConfigError', code: 'MPORT_ERR_INVALID_CONFIG', key: 'allow-ip', message: msg }, entry)
  }
  t.throws(() => new IpFilter({ deny: ['10.0.0.0/8', 'bogus'] }), { code: 'MPORT_ERR_INVALID_CONFIG', key: 'deny-ip', message: /"bogus"/ })
  t.throws(() => new IpFilter({ allow: ['1.2.3.4/40'] }), InvalidConfigError)
})

t.test('IpFilter: allow lists, deny lists, deny wins', async t => {
  const open = new IpFilter()
  t.ok(open.open)
  t.ok(open.allows('1.2.3.4'))
  t.ok(open.allows(undefined), 'an open filter does not need the address')
  t.equal(open.describe(), 'open to every address')
  t.ok(new IpFilter({ allow: [], deny: [] }).open, 'empty lists are no lists')

  const allow = new IpFilter({ allow: ['10.0.0.0/8', '2001:db8::/32'] })
  t.ok(allow.allows('10.1.2.3'))
  t.ok(allow.allows('::ffff:10.1.2.3'), 'IPv4-mapped visitor')
  t.ok(allow.allows('2001:db8::5'))
  t.notOk(allow.allows('11.0.0.1'))
  t.notOk(allow.allows('::1'))
  t.notOk(allow.allows(undefined), 'unknown address is refused')
  t.notOk(allow.allows('garbage'), 'unparseable address is refused')

  const deny = new IpFilter({ deny: ['192.0.2.0/24'] })
  t.ok(deny.allows('198.51.100.1'), 'deny-only passes everything else')
  t.notOk(deny.allows('192.0.2.9'))
  t.notOk(deny.allows('::ffff:192.0.2.9'))

  const both = new IpFilter({ allow: ['10.0.0.0/8'], deny: ['10.9.0.0/16'] })
  t.ok(both.allows('10.8.0.1'))
  t.notOk(both.allows('10.9.0.1'), 'deny wins over allow')
  t.equal(both.describe(), 'allow 10.0.0.0/8; deny 10.9.0.0/16')
})

t.test('IpFilter against the address a real dual-stack socket reports', async t => {
  const server = net.createServer()
  // '::' is dual-stack on Linux: IPv4 visitors show up as ::ffff:a.b.c.d
  const dual = await new Promise<boolean>(resolve => {
    server.once('error', () => resolve(false))
    server.listen(0, '::', () => resolve(true))
  })
  if (!dual) await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => server.close())
  const port = (server.address() as net.AddressInfo).port
  const seen = once(server, 'connection')
  const client = net.connect(port, '127.0.0.1')
  t.teardown(() => client.destroy())
  const [sock] = await seen as [net.Socket]
  t.teardown(() => sock.destroy())
  const remote = sock.remoteAddress!
  t.match(remote, dual ? /^::ffff:127\.0\.0\.1$/ : /^127\.0\.0\.1$/, `socket reports ${remote}`)
  t.ok(new IpFilter({ allow: ['127.0.0.0/8'] }).allows(remote))
  t.notOk(new IpFilter({ deny: ['127.0.0.1'] }).allows(remote))
  t.ok(new IpFilter({ deny: ['::/0'] }).allows(remote), 'IPv6 deny-all does not catch an IPv4 visitor')
})

t.test('riskyPortHint', async t => {
  for (const p of [22, 23, 445, 3306, 3389, 5432, 5555, 5900, 6379, 27017]) {
    const hint = riskyPortHint(p)
    t.match(hint, new RegExp(`^port ${p} is usually .*--allow-ip`), `${p} warns`)
    t.notMatch(hint ?? '', /\n/, 'one line')
  }
  t.match(riskyPortHint(5555), /ADB/)
  t.match(riskyPortHint(22), /SSH/)
  t.match(riskyPortHint(3389), /RDP/)
  for (const p of [80, 443, 3000, 8080, 0, 65535]) t.equal(riskyPortHint(p), undefined, `${p} is quiet`)
})

t.test('IpFilter grants: widen an allow list until their time, never open a denied address', async t => {
  const f = new IpFilter({ allow: ['10.0.0.0/8'], deny: ['203.0.113.9'] })
  const now = 1_000_000
  t.notOk(f.allows('198.51.100.7', now))
  f.grant('198.51.100.7', now + 60_000, now)
  t.ok(f.allows('198.51.100.7', now), 'granted')
  t.ok(f.allows('198.51.100.7', now + 59_999), 'until just before its time')
  t.notOk(f.allows('198.51.100.7', now + 60_000), 'not at its time')
  t.same(f.grants(now), [{ address: '198.51.100.7', until: now + 60_000 }])
  t.same(f.grants(now + 60_000), [], 'an expired grant is not listed')
  f.grant('198.51.100.7', now + 120_000, now)
  t.equal(f.grants(now).length, 1, 'a second grant for the same address replaces the first')
  f.grant('203.0.113.9', now + 60_000, now)
  t.notOk(f.allows('203.0.113.9', now), 'deny still wins')
  t.ok(f.allows('10.1.2.3', now), 'the allow list is unchanged')
  for (let i = 0; i < 40; i++) f.grant(`192.0.2.${i}`, now + 60_000, now)
  t.equal(f.grants(now).length, 32, 'at most 32 grants')
  t.ok(f.allows('192.0.2.39', now) && !f.allows('192.0.2.0', now), 'the oldest go first')
  t.throws(() => f.grant('not-an-ip', now + 1, now), InvalidConfigError)
})
