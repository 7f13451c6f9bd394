/**
 * The inspector's settings: on by default only with an http tunnel, --inspect=false, the
 * address (port 0, IPv6, bad ones), body-limit sizes, and the same keys in the client config
 * file (inspect, inspect_addr, inspect_body_limit) with the file's InvalidConfigError lines.
 */
import t from 'tap'
import { validateClientConfig } from '../../packages/mport-connect/src/config/client-config.js'
import { inspectSettings, parseByteSize } from '../../packages/mport-connect/src/inspect/inspect-settings.js'
import type { TunnelSpec } from '../../src/index.js'

const http: TunnelSpec = { name: 'web', localHost: '127.0.0.1', localPort: 3000, remotePort: 0, kind: 'http' }
const tcp: TunnelSpec = { name: 'ssh', localHost: '127.0.0.1', localPort: 22, remotePort: 0 }
const sources = { env: {}, readFile: () => { throw new Error('no files here') } }

t.test('defaults and flags', async t => {
  t.same(inspectSettings({}, [http]), { enabled: true, host: '127.0.0.1', port: 4040, bodyLimit: 1024 * 1024 }, 'on by default with an http tunnel')
  t.equal(inspectSettings({}, [tcp]).enabled, false, 'off without one')
  t.equal(inspectSettings({ inspect: false }, [http]).enabled, false, '--inspect=false')
  t.equal(inspectSettings({ inspect: true }, [tcp]).enabled, true)
  t.same(inspectSettings({ addr: '127.0.0.1:0' }, [http]).port, 0, 'port 0: any free port')
  t.same(inspectSettings({ addr: '[::1]:4041' }, [http]), { enabled: true, host: '::1', port: 4041, bodyLimit: 1024 * 1024 })
  for (const bad of ['4040', 'localhost', '127.0.0.1:70000', ':4040', '127.0.0.1:x']) {
    t.throws(() => inspectSettings({ addr: bad }, [http]), { code: 'MPORT_ERR_INVALID_CONFIG', message: /is not host:port/ }, `--inspect-addr ${bad}`)
  }
})

t.test('body limit sizes', async t => {
  t.equal(parseByteSize('262144', 'k'), 262_144)
  t.equal(parseByteSize(4096, 'k'), 4096)
  t.equal(parseByteSize('512KiB', 'k'), 512 * 1024)
  t.equal(parseByteSize('4MB', 'k'), 4 * 1024 * 1024)
  t.equal(parseByteSize('1m', 'k'), 1024 * 1024)
  t.equal(parseByteSize('1.5k', 'k'), 1536)
  t.throws(() => parseByteSize('lots', 'inspect-body-limit'), { code: 'MPORT_ERR_INVALID_CONFIG', message: 'invalid config "inspect-body-limit": "lots" is not a size: use bytes or a unit, like 262144, 512KiB or 4MB' })
  t.throws(() => parseByteSize('0', 'k'), { message: /between 1 byte and 256 MiB/ })
  t.throws(() => parseByteSize('1G', 'k'), { message: /between 1 byte and 256 MiB/ })
})

t.test('the same keys in the config file', async t => {
  const ok = validateClientConfig({ inspect: false, inspect_addr: '127.0.0.1:4141', inspect_body_limit: '256KiB' }, 'c.yaml', sources)
  t.same({ inspect: ok.inspect, addr: ok.inspectAddr, limit: ok.inspectBodyLimit }, { inspect: false, addr: '127.0.0.1:4141', limit: '256KiB' })
  t.same(inspectSettings({ inspect: ok.inspect, addr: ok.inspectAddr, bodyLimit: ok.inspectBodyLimit }, [http]), { enabled: false, host: '127.0.0.1', port: 4141, bodyLimit: 256 * 1024 })
  t.throws(() => validateClientConfig({ inspect: 'yes' }, 'c.yaml', sources), { message: 'invalid config "inspect": "inspect" in c.yaml must be true or false, not "yes"' })
  t.throws(() => validateClientConfig({ inspect_addr: 4040 }, 'c.yaml', sources), { message: /"inspect_addr" in c\.yaml must be host:port, not 4040/ })
  t.throws(() => validateClientConfig({ inspect_addr: 'nowhere' }, 'c.yaml', sources), { message: /invalid config "inspect_addr": "nowhere" is not host:port/ })
  t.throws(() => validateClientConfig({ inspect_body_limit: 'huge' }, 'c.yaml', sources), { message: /invalid config "inspect_body_limit": "huge" is not a size/ })
  t.throws(() => validateClientConfig({ inspect_adr: '127.0.0.1:1' }, 'c.yaml', sources), { code: 'MPORT_ERR_INVALID_CONFIG', message: /inspect_addr/ }, 'a misspelt key is refused with the suggestion')
})
