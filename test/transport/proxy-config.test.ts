/**
 * Proxy settings as the user writes them: URLs (credentials kept out of the label), the
 * environment read the way curl reads it, and NO_PROXY matching; and the order `auto` tries
 * transports in.
 */
import t from 'tap'
import { bypassesProxy, parseProxyUrl, proxyFromEnv } from '../../src/index.js'
import { autoOrder, fasterThan } from '../../src/tunnel/client-transport.js'

t.test('parseProxyUrl', async t => {
  t.same(parseProxyUrl('http://alice:p%40ss@proxy.example:3128'), { kind: 'http', host: 'proxy.example', port: 3128, username: 'alice', password: 'p@ss', label: 'http://alice:***@proxy.example:3128' })
  t.same(parseProxyUrl('proxy.example'), { kind: 'http', host: 'proxy.example', port: 1080, label: 'http://proxy.example:1080' }, 'no scheme: HTTP, port 1080 (as curl)')
  t.same(parseProxyUrl('socks5h://[::1]:1081'), { kind: 'socks5h', host: '::1', port: 1081, label: 'socks5h://[::1]:1081' })
  t.match(parseProxyUrl('SOCKS5://127.0.0.1:9'), { kind: 'socks5' }, 'the scheme in any case')
  t.throws(() => parseProxyUrl('https://proxy.example', '--proxy'), { code: 'MPORT_ERR_INVALID_CONFIG', message: /--proxy.*"https" is not supported/ })
  t.throws(() => parseProxyUrl('http://proxy.example/path'), { code: 'MPORT_ERR_INVALID_CONFIG', message: /no path/ })
  const err = t.throws(() => parseProxyUrl('http://alice:secret@[bad', 'HTTPS_PROXY'))
  t.notMatch((err as Error).message, /secret/, 'a bad URL is not echoed with its password')
})

t.test('proxyFromEnv reads the variables the way curl does', async t => {
  const p = (env: NodeJS.ProcessEnv, scheme: 'https' | 'http', host = 'relay.example'): string | undefined => proxyFromEnv(env, scheme, host)?.label
  t.equal(p({ HTTPS_PROXY: 'http://a:1' }, 'https'), 'http://a:1')
  t.equal(p({ https_proxy: 'http://low:1', HTTPS_PROXY: 'http://up:1' }, 'https'), 'http://low:1', 'lowercase first')
  t.equal(p({ ALL_PROXY: 'socks5://s:1' }, 'https'), 'socks5://s:1')
  t.equal(p({ HTTPS_PROXY: 'http://a:1', ALL_PROXY: 'socks5://s:1' }, 'https'), 'http://a:1', 'the scheme\'s own variable before ALL_PROXY')
  t.equal(p({ http_proxy: 'http://h:1' }, 'http'), 'http://h:1')
  t.equal(p({ HTTP_PROXY: 'http://h:1' }, 'http'), undefined, 'uppercase HTTP_PROXY is ignored (as curl does)')
  t.equal(p({ HTTPS_PROXY: 'http://a:1' }, 'http'), undefined, 'HTTPS_PROXY is not for plain HTTP')
  t.equal(p({ HTTPS_PROXY: '' }, 'https'), undefined, 'empty is unset')
  t.equal(p({ HTTPS_PROXY: 'http://a:1', NO_PROXY: '.example' }, 'https'), undefined)
  t.equal(p({ HTTPS_PROXY: 'http://a:1', no_proxy: 'other', NO_PROXY: 'relay.example' }, 'https'), 'http://a:1', 'lowercase no_proxy wins')
  t.throws(() => proxyFromEnv({ HTTPS_PROXY: 'ftp://x' }, 'https', 'relay.example'), { code: 'MPORT_ERR_INVALID_CONFIG', message: /HTTPS_PROXY/ })
})

t.test('NO_PROXY matching', async t => {
  const cases: Array<[string, string, boolean]> = [
    ['*', 'anything.example', true],
    ['relay.example', 'relay.example', true],
    ['relay.example', 'eu.relay.example', true],
    ['.relay.example', 'relay.example', true],
    ['*.relay.example', 'eu.relay.example', true],
    ['relay.example', 'notrelay.example', false],
    ['relay.example:443', 'relay.example', true],
    [' a.example , relay.example ', 'relay.example', true],
    ['RELAY.Example.', 'relay.example', true],
    ['10.0.0.1', '10.0.0.1', true],
    ['10.0.0.1', '10.0.0.2', false],
    ['10.0.0.0/8', '10.2.3.4', true],
    ['10.0.0.0/8', '11.2.3.4', false],
    ['::1', '::1', true],
    ['[::1]:7835', '::1', true],
    ['fd00::/8', 'fd12::5', true],
    ['10.0.0.0/8', 'relay.example', false],
    ['', 'relay.example', false],
  ]
  for (const [list, host, expected] of cases) t.equal(bypassesProxy(list, host), expected, `NO_PROXY=${JSON.stringify(list)} ${expected ? 'bypasses' : 'keeps'} ${host}`)
})

t.test('auto: fastest first, a remembered slower transport first for a while', async t => {
  const MIN = 60_000
  t.same(autoOrder(undefined, 0, 10 * MIN), ['tls', 'wss', 'ws'])
  t.same(autoOrder({ transport: 'ws', at: 0 }, 5 * MIN, 10 * MIN), ['ws', 'tls', 'wss'])
  t.same(autoOrder({ transport: 'wss', at: 0 }, 10 * MIN, 10 * MIN), ['tls', 'wss', 'ws'], 'after retryFasterAfter the faster ones are tried first again')
  t.same(autoOrder({ transport: 'tls', at: 0 }, 1, 10 * MIN), ['tls', 'wss', 'ws'])
  t.same(fasterThan('ws'), ['tls', 'wss'])
  t.same(fasterThan('tls'), [])
})
