/** The user's words: tunnel specs and relay addresses. */
import t from 'tap'
import { parseHostPort, parseTunnelSpec, parsePortRange } from '../../src/index.js'

t.test('tunnel specs', async t => {
  t.same(parseTunnelSpec('5555'), { name: '5555', localHost: '127.0.0.1', localPort: 5555, remotePort: 0 })
  t.same(parseTunnelSpec('web=8080'), { name: 'web', localHost: '127.0.0.1', localPort: 8080, remotePort: 0 })
  t.same(parseTunnelSpec('5555:45555'), { name: '5555', localHost: '127.0.0.1', localPort: 5555, remotePort: 45555 })
  t.same(parseTunnelSpec('192.168.1.20:5555'), { name: '5555', localHost: '192.168.1.20', localPort: 5555, remotePort: 0 })
  t.same(parseTunnelSpec('nas=nas.lan:22:40022'), { name: 'nas', localHost: 'nas.lan', localPort: 22, remotePort: 40022 })
  t.same(parseTunnelSpec('[::1]:22'), { name: '22', localHost: '::1', localPort: 22, remotePort: 0 })
  for (const bad of ['', 'abc', '0', '70000', '5555:', ':5555', '1:2:3', 'bad name=80', 'x=', 'host:port']) {
    t.throws(() => parseTunnelSpec(bad), { code: 'MPORT_ERR_INVALID_CONFIG' }, JSON.stringify(bad))
  }
})

t.test('relay addresses', async t => {
  t.same(parseHostPort('relay.example.com', 7835), { host: 'relay.example.com', port: 7835 })
  t.same(parseHostPort('relay.example.com:443', 7835), { host: 'relay.example.com', port: 443 })
  t.same(parseHostPort('[::1]:9000', 7835), { host: '::1', port: 9000 })
  t.same(parseHostPort('tls://10.0.0.1:7000', 7835), { host: '10.0.0.1', port: 7000 })
  t.throws(() => parseHostPort('', 7835), { code: 'MPORT_ERR_INVALID_CONFIG' })
  t.throws(() => parseHostPort('host:99999', 7835), { code: 'MPORT_ERR_INVALID_CONFIG' })
})

t.test('port ranges', async t => {
  t.same(parsePortRange('20000-29999'), { min: 20000, max: 29999 })
  t.same(parsePortRange('5555:5555'), { min: 5555, max: 5555 })
  for (const bad of ['', '2-1', '0-10', '1-70000', 'a-b']) t.throws(() => parsePortRange(bad), RangeError, bad)
})
