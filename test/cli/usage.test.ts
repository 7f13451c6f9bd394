/**
 * The bins' usage and listen-failure lines (src/cli/usage.ts): a "did you mean" for an
 * unknown flag, what was typed instead of NaN, and Node's listen errors (EADDRINUSE, EACCES,
 * EADDRNOTAVAIL) naming the flag. EACCES is checked here on a synthetic error: the test
 * machine runs as root, where a low port never fails.
 */
import t from 'tap'
import { explainListenError, explainUsage, rawFlagValue, shownNumber } from '../../src/cli/usage.js'

const FLAGS = ['relay', 'token', 'lease-grace', 'port', 'help', 'leaseGrace']

t.test('explainUsage', async t => {
  t.equal(explainUsage('Unknown argument: relya', FLAGS), 'Unknown argument: relya; did you mean --relay?')
  t.equal(explainUsage('Unknown arguments: lease-grase, leaseGrase', FLAGS), 'Unknown argument: lease-grase; did you mean --lease-grace?', 'the camelCase twin is dropped')
  t.equal(explainUsage('Unknown arguments: relya, tokn', FLAGS), 'Unknown arguments: relya, tokn; --relya: did you mean --relay?; --tokn: did you mean --token?')
  t.equal(explainUsage('Unknown argument: bogus', FLAGS), 'Unknown argument: bogus', 'nothing close: no suggestion')
  t.equal(explainUsage('Invalid values:\n  Argument: proxy-protocol, Given: NaN, Choices: 1, 2', FLAGS, ['--proxy-protocol', 'x']), 'Invalid values: Argument: proxy-protocol, Given: "x", Choices: 1, 2')
  t.equal(rawFlagValue(['--port', '1', '--port=abc'], 'port'), 'abc', 'the last value, in either form')
  t.equal(shownNumber(['--port', 'abc'], 'port', NaN), '"abc"')
  t.equal(shownNumber([], 'port', 70000), '70000')
})

t.test('explainListenError', async t => {
  const listenErr = (code: string, port: number, address = '127.0.0.1'): Error => Object.assign(new Error(`listen ${code}: … ${address}:${port}`), { code, syscall: 'listen', address, port })
  const flags = [{ flag: '--port', port: 7835, hostFlag: '--host', host: '10.9.9.9' }, { flag: '--http-port', port: 80 }]
  t.equal(explainListenError(listenErr('EADDRINUSE', 7835), flags),
    'port 7835 (--port) is already in use on 127.0.0.1: stop the program using it (ss -ltnp \'sport = :7835\' shows it) or choose another port with --port [EADDRINUSE]')
  t.equal(explainListenError(listenErr('EACCES', 80, '0.0.0.0'), flags),
    'port 80 (--http-port) needs privileges: ports below 1024 need root or CAP_NET_BIND_SERVICE (sudo setcap cap_net_bind_service=+ep "$(command -v node)"); or choose a port of 1024 or more with --http-port [EACCES]')
  t.equal(explainListenError(listenErr('EADDRNOTAVAIL', 7835, '10.9.9.9'), flags), 'address 10.9.9.9 is not an address of this machine (--host): use one of its addresses, or 0.0.0.0 for all [EADDRNOTAVAIL]')
  t.equal(explainListenError(listenErr('EADDRINUSE', 9999), flags), 'address 127.0.0.1:9999 is already in use: stop the program using it or choose another port [EADDRINUSE]', 'a port no flag chose')
  t.equal(explainListenError(new Error('other'), flags), undefined, 'other errors are left alone')
  t.equal(explainListenError(Object.assign(new Error('x'), { code: 'ECONNRESET', syscall: 'read' }), flags), undefined)
})
