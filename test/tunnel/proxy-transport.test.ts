/**
 * Reaching the relay through real proxies on loopback: tinyproxy as an HTTP CONNECT proxy
 * (with and without Basic auth, and as a "firewall" that lets CONNECT reach only the relay's
 * shared HTTPS port, standing in for 443), squid forwarding only plain HTTP requests (ws as an
 * absolute-form upgrade, no CONNECT), dante as a SOCKS5 proxy (no auth, username/password
 * against a throwaway system user, a rule that refuses the control port), and the environment
 * variables as curl reads them, NO_PROXY included.
 */
import t, { type Test } from 'tap'
import { parseProxyUrl, type ClientOptions } from '../../src/index.js'
import { startDigestSink, sendChecksummed } from '../helpers/digest-sink.js'
import { closedPort } from '../helpers/ports.js'
import { addSystemUser, proxyTestOptions, startDante, startSquid, startTinyproxy, type RunningProxy } from '../helpers/proxies.js'
import { connectTo, makeClient, roundTrip, startEcho, tcpSpec } from '../helpers/tunnel.js'
import { withTimeout } from '../helpers/wait.js'
import { relayWithSharedPorts, sharedPorts, startClient } from '../helpers/shared-ports.js'

t.setTimeout(420_000)

async function echoes (t: Test, port: number, text: string): Promise<void> {
  t.equal((await roundTrip(await connectTo(port), Buffer.from(text))).toString(), text, `"${text}" echoed through the tunnel`)
}

async function proxy (t: Test, started: Promise<RunningProxy>): Promise<RunningProxy> {
  const p = await started
  t.teardown(() => p.stop())
  return p
}

t.test('tinyproxy (HTTP CONNECT)', proxyTestOptions('tinyproxy'), async t => {
  const relay = await relayWithSharedPorts(t)
  const echo = await startEcho()
  t.teardown(() => echo.close())

  t.test('every transport through it, without credentials', async t => {
    const tp = await proxy(t, startTinyproxy())
    for (const transport of ['tls', 'wss'] as const) {
      const { port, info } = await startClient(t, makeClient(relay, [tcpSpec(echo.port)], { transport, relayPorts: sharedPorts(relay), proxy: parseProxyUrl(`http://127.0.0.1:${tp.port}`) }))
      t.same([info.transport, info.proxy, info.trust], [transport, `http://127.0.0.1:${tp.port}`, 'pinned'])
      await echoes(t, port, `tls through CONNECT (${transport})`)
    }
    t.match(await tp.log(), new RegExp(`CONNECT.*127\\.0\\.0\\.1:${relay.address.port}`), 'tinyproxy logged the CONNECT to the control port')
  })

  t.test('Basic auth: right credentials pass, wrong ones are ProxyAuthFailedError without the password in the message', async t => {
    const tp = await proxy(t, startTinyproxy({ basicAuth: { user: 'alice', password: 's3cret-pw' } }))
    const right = await startClient(t, makeClient(relay, [tcpSpec(echo.port)], { proxy: parseProxyUrl(`http://alice:s3cret-pw@127.0.0.1:${tp.port}`) }))
    t.equal(right.info.proxy, `http://alice:***@127.0.0.1:${tp.port}`, 'the proxy is named without its password')
    await echoes(t, right.port, 'authenticated')

    const wrong = makeClient(relay, [tcpSpec(echo.port)], { proxy: parseProxyUrl(`http://alice:wrong-pw@127.0.0.1:${tp.port}`), retryInitial: true })
    t.teardown(() => wrong.close())
    const err = await withTimeout(wrong.start().then(() => undefined, (e: Error) => e), { what: 'the wrong credentials to be refused', timeoutMs: 60_000 })
    t.match(err, { code: 'MPORT_ERR_PROXY_AUTH_FAILED', message: /^proxy http:\/\/alice:\*\*\*@127\.0\.0\.1:\d+ refused the credentials: HTTP 40[17]/ }, 'not retried: a fatal error even with retryInitial')
    t.notMatch(err?.message ?? '', /wrong-pw/)

    const none = makeClient(relay, [tcpSpec(echo.port)], { proxy: parseProxyUrl(`http://127.0.0.1:${tp.port}`) })
    t.teardown(() => none.close())
    await t.rejects(none.start(), { code: 'MPORT_ERR_PROXY_AUTH_FAILED', message: /asks for credentials \(40[17]\)/ })
  })

  t.test('a firewall that lets CONNECT reach only the shared HTTPS port: auto falls back to wss, 100 MiB checksummed', async t => {
    const firewall = await proxy(t, startTinyproxy({ connectPorts: [relay.httpsAddress!.port] }))
    const direct = makeClient(relay, [tcpSpec(echo.port)], { transport: 'tls', proxy: parseProxyUrl(`http://127.0.0.1:${firewall.port}`) })
    t.teardown(() => direct.close())
    await t.rejects(direct.start(), { code: 'MPORT_ERR_PROXY_REFUSED', detail: { status: 403 } }, 'the direct port is refused by the proxy')

    const sink = await startDigestSink()
    t.teardown(() => sink.close())
    const { port, info } = await startClient(t, makeClient(relay, [tcpSpec(sink.port)], { transport: 'auto', relayPorts: sharedPorts(relay), proxy: parseProxyUrl(`http://127.0.0.1:${firewall.port}`) }))
    t.equal(info.transport, 'wss', 'auto went on to wss')
    const { sent, received } = await sendChecksummed(port, 100)
    t.equal(received, sent, '100 MiB arrived intact')
  })
})

t.test('squid forwarding plain HTTP only: ws as an absolute-form upgrade, no CONNECT', proxyTestOptions('squid'), async t => {
  const relay = await relayWithSharedPorts(t)
  const echo = await startEcho()
  t.teardown(() => echo.close())
  const squid = await proxy(t, startSquid())
  const viaSquid = parseProxyUrl(`http://127.0.0.1:${squid.port}`)
  const direct = makeClient(relay, [tcpSpec(echo.port)], { transport: 'wss', relayPorts: sharedPorts(relay), proxy: viaSquid })
  t.teardown(() => direct.close())
  await t.rejects(direct.start(), { code: 'MPORT_ERR_PROXY_REFUSED', detail: { status: 403 } }, 'squid refuses CONNECT')
  const { port, info } = await startClient(t, makeClient(relay, [tcpSpec(echo.port)], { transport: 'auto', relayPorts: sharedPorts(relay), proxy: viaSquid }))
  t.equal(info.transport, 'ws', 'auto ends up on ws through squid')
  await echoes(t, port, 'a WebSocket through a plain HTTP proxy')
})

t.test('dante (SOCKS5)', proxyTestOptions('danted'), async t => {
  const relay = await relayWithSharedPorts(t)
  const echo = await startEcho()
  t.teardown(() => echo.close())

  t.test('no authentication: socks5 and socks5h, every transport', async t => {
    const dante = await proxy(t, startDante())
    for (const scheme of ['socks5', 'socks5h']) {
      const { port, info } = await startClient(t, makeClient(relay, [tcpSpec(echo.port)], { relay: `localhost:${relay.address.port}`, proxy: parseProxyUrl(`${scheme}://127.0.0.1:${dante.port}`) }))
      t.equal(info.proxy, `${scheme}://127.0.0.1:${dante.port}`)
      await echoes(t, port, `through ${scheme}`)
    }
    for (const transport of ['wss', 'ws'] as const) {
      const { port, info } = await startClient(t, makeClient(relay, [tcpSpec(echo.port)], { transport, relayPorts: sharedPorts(relay), proxy: parseProxyUrl(`socks5h://127.0.0.1:${dante.port}`) }))
      t.same([info.transport, info.proxy], [transport, `socks5h://127.0.0.1:${dante.port}`])
      await echoes(t, port, `${transport} through SOCKS5`)
    }
  })

  t.test('username/password (RFC 1929) against a throwaway system user', { skip: process.getuid?.() === 0 ? false : 'needs root to create a system user' }, async t => {
    const account = await addSystemUser()
    t.teardown(() => account.remove())
    const dante = await proxy(t, startDante({ auth: { user: account.user, password: account.password } }))
    const { port } = await startClient(t, makeClient(relay, [tcpSpec(echo.port)], { proxy: parseProxyUrl(`socks5://${account.user}:${account.password}@127.0.0.1:${dante.port}`) }))
    await echoes(t, port, 'socks5 with a password')
    const wrong = makeClient(relay, [tcpSpec(echo.port)], { proxy: parseProxyUrl(`socks5://${account.user}:not-it@127.0.0.1:${dante.port}`) })
    t.teardown(() => wrong.close())
    await t.rejects(wrong.start(), { code: 'MPORT_ERR_PROXY_AUTH_FAILED', message: /username\/password rejected/ })
    const none = makeClient(relay, [tcpSpec(echo.port)], { proxy: parseProxyUrl(`socks5://127.0.0.1:${dante.port}`) })
    t.teardown(() => none.close())
    await t.rejects(none.start(), { code: 'MPORT_ERR_PROXY_AUTH_FAILED', message: /wants authentication/ })
  })

  t.test('a rule refusing the control port: reply 2, and auto goes on to wss through the same proxy', async t => {
    const dante = await proxy(t, startDante({ blockPorts: [relay.address.port] }))
    const socks = parseProxyUrl(`socks5://127.0.0.1:${dante.port}`)
    const direct = makeClient(relay, [tcpSpec(echo.port)], { proxy: socks })
    t.teardown(() => direct.close())
    await t.rejects(direct.start(), { code: 'MPORT_ERR_PROXY_REFUSED', detail: { reply: 2 }, message: /SOCKS5 reply 2 \(connection not allowed by ruleset\)/ })
    const { port, info } = await startClient(t, makeClient(relay, [tcpSpec(echo.port)], { transport: 'auto', relayPorts: sharedPorts(relay), proxy: socks }))
    t.equal(info.transport, 'wss')
    await echoes(t, port, 'auto through SOCKS5')
  })
})

t.test('the environment: HTTPS_PROXY / ALL_PROXY used, NO_PROXY respected', proxyTestOptions('tinyproxy'), async t => {
  const relay = await relayWithSharedPorts(t)
  const echo = await startEcho()
  t.teardown(() => echo.close())
  const tp = await proxy(t, startTinyproxy())
  const dead = await closedPort()
  const withEnv = (env: NodeJS.ProcessEnv): Partial<ClientOptions> => ({ proxy: 'env', env })

  const viaEnv = await startClient(t, makeClient(relay, [tcpSpec(echo.port)], withEnv({ HTTPS_PROXY: `http://127.0.0.1:${tp.port}` })))
  t.equal(viaEnv.info.proxy, `http://127.0.0.1:${tp.port}`, 'HTTPS_PROXY is used for the TLS connection')
  await echoes(t, viaEnv.port, 'via HTTPS_PROXY')

  const all = await startClient(t, makeClient(relay, [tcpSpec(echo.port)], withEnv({ ALL_PROXY: `http://127.0.0.1:${tp.port}` })))
  t.equal(all.info.proxy, `http://127.0.0.1:${tp.port}`, 'ALL_PROXY when no HTTPS_PROXY')

  const bypassed = await startClient(t, makeClient(relay, [tcpSpec(echo.port)], withEnv({ HTTPS_PROXY: `http://127.0.0.1:${dead}`, NO_PROXY: 'example.org, 127.0.0.0/8' })))
  t.equal(bypassed.info.proxy, undefined, 'NO_PROXY (a CIDR) sends it straight to the relay, past a dead proxy')
  await echoes(t, bypassed.port, 'past the proxy')

  const notBypassed = makeClient(relay, [tcpSpec(echo.port)], withEnv({ HTTPS_PROXY: `http://127.0.0.1:${dead}`, NO_PROXY: 'example.org' }))
  t.teardown(() => notBypassed.close())
  await t.rejects(notBypassed.start(), { code: 'MPORT_ERR_RELAY_UNREACHABLE', message: new RegExp(`proxy http://127\\.0\\.0\\.1:${dead} unreachable: connection refused`) }, 'a NO_PROXY that does not match leaves the proxy in use')
})
