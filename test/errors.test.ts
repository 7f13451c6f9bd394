// Error codes: PROTOCOL.md's "Error codes" table, ErrorCodes and the error classes must not drift
// apart in any direction (fastify errors.test.js). The test walks every exported error class of
// 'mport/errors', builds each one, and checks its code, its class name and its layer against the
// table; it also checks that every class is defined in src/errors/ and reachable from 'mport'.
import { readdir, readFile } from 'node:fs/promises'
import t from 'tap'
// The sources of 'mport/errors' and 'mport' (tsconfig `paths`; the package builds them to
// dist/errors.js and dist/index.js). Imported by path because tap's loader resolves package
// names to packages/mport/dist, which is only as fresh as the last build.
import * as errors from '../src/errors.js'
import { ErrorCodes, ErrorLayers, MportError, ProtocolError } from '../src/errors.js'
import { GoAwayCode } from '../src/mux/frame.js'

interface Row { code: string, className: string, layer: string, goAway: string, meaning: string, line: number }

/** Rows of the Markdown table under `## Error codes`, up to the next `## ` heading. */
function parseErrorTable (markdown: string): Row[] {
  const lines = markdown.split('\n')
  const start = lines.findIndex(l => l.trim() === '## Error codes')
  if (start < 0) throw new Error('PROTOCOL.md has no "## Error codes" heading')
  const rows: Row[] = []
  let header: string[] | undefined
  for (let i = start + 1; i < lines.length; i++) {
    const line = lines[i]!.trim()
    if (line.startsWith('## ')) break
    if (!line.startsWith('|')) continue
    const cells = line.replace(/^\|/, '').replace(/\|$/, '').split('|').map(c => c.trim())
    if (header === undefined) {
      header = cells
      continue
    }
    if (cells.every(c => /^:?-+:?$/.test(c))) continue // the separator row
    const [code, className, layer, goAway, meaning] = cells
    rows.push({
      code: /^`([^`]+)`$/.exec(code ?? '')?.[1] ?? `(not a backticked code: ${code})`,
      className: /^`([A-Za-z]+)`$/.exec(className ?? '')?.[1] ?? `(not a backticked class name: ${className})`,
      layer: layer ?? '',
      goAway: goAway ?? '',
      meaning: meaning ?? '',
      line: i + 1,
    })
  }
  if (header === undefined) throw new Error('no table under "## Error codes"')
  if (header.join('|') !== 'Code|Class|Layer|GoAway sent|Meaning') {
    throw new Error(`unexpected columns under "## Error codes": ${header.join(' | ')}`)
  }
  return rows
}

const protocol = await readFile(new URL('../PROTOCOL.md', import.meta.url), 'utf8')
const rows = parseErrorTable(protocol)
const documented = rows.map(r => r.code)
const listed: readonly string[] = ErrorCodes
const layers: readonly string[] = ErrorLayers

/** Every exported class that is MportError or extends it. */
const errorClasses = Object.entries(errors).filter((e): e is [string, typeof MportError] =>
  typeof e[1] === 'function' && (e[1] === MportError || e[1].prototype instanceof MportError))

type Ctor = new (...args: unknown[]) => MportError

/**
 * Representative arguments for every class with a fixed code. A class not listed is built with
 * SENTINEL as its code, which tells a base class (whose code is its first argument) apart; a
 * class that turns out to have a fixed code without being listed here fails the test.
 */
const SENTINEL = 'MPORT_ERR_TEST_SENTINEL'
const sampleArgs: Record<string, unknown[]> = {
  // mux
  InvalidVersionError: [1],
  InvalidFrameTypeError: [4],
  FrameTooLargeError: [17, 16],
  InvalidStreamIdError: [0, 'test'],
  DuplicateStreamError: [3],
  RecvWindowExceededError: [1, 10, 5],
  WindowOverflowError: [1],
  PingFloodError: [1000],
  ControlBacklogError: [65536],
  RemoteGoAwayError: [1],
  KeepAliveTimeoutError: [10_000],
  SessionClosedError: [],
  TransportError: ['connection closed by peer'],
  StreamResetError: [1],
  StreamLimitError: [8],
  InvalidConfigError: ['key', 'test'],
  // tunnel
  HandshakeTimeoutError: [3000, 'hello and authentication'],
  VersionMismatchError: [2, 1],
  InvalidMessageError: ['unknown message type "x"'],
  MessageTooLargeError: [20_000, 16_384],
  AuthFailedError: [],
  RateLimitedError: ['too many failed attempts', 30_000],
  VisitorFilteredError: ['203.0.113.7'],
  PortNotAllowedError: [80, '20000-30000'],
  PortInUseError: [20_001],
  DuplicateTunnelError: ['web'],
  TunnelLimitError: [64],
  RelayUnreachableError: ['relay.example:7835', 'ECONNREFUSED'],
  CertificateMismatchError: ['sha256:aa', 'sha256:bb'],
  CertificateUntrustedError: ['self-signed certificate', 'sha256:aa'],
  LocalUnreachableError: ['localhost:3000', 'ECONNREFUSED'],
  NameTakenError: ['shop.example.com'],
  GroupKeyError: ['web'],
  GroupMismatchError: ['web', 'is on port 20001, not 20002'],
  QuotaExceededError: ['maxTunnels', 3, 'your plan allows 3 tunnels'],
  ProxyAuthFailedError: ['http://user:***@127.0.0.1:3128', 'HTTP 407 Proxy Authentication Required'],
  ProxyRefusedError: ['socks5://127.0.0.1:1080', '127.0.0.1:7835', 'SOCKS5 reply 2 (connection not allowed by ruleset)', { reply: 2 }],
  // http
  BadRequestError: ['the request has no Host header'],
  HeadersTooLargeError: [32_768, 'request head'],
  InvalidClientHelloError: ['truncated record'],
  InvalidHostnameError: ['-shop', 'a label cannot start with "-"'],
  ReservedNameError: ['www'],
  AcmeNameRefusedError: ['stranger.example'],
  AcmeRateLimitedError: ['app.example.org', '10 orders in the last hour'],
  AcmeOrderFailedError: ['app.example.org', 'challenge not validated'],
  AcmeDnsHookError: ['./hook add exited with 1'],
  // store
  DatabaseError: ['cannot open the database'],
  SchemaTooNewError: [9, 3],
  InvalidInputError: ['the password is too short', 'password'],
  NotFoundError: ['user', 'usr_nope'],
  UserExistsError: ['alice'],
  ReservationTakenError: ['subdomain', 'shop'],
  // api
  UnauthenticatedError: [],
  ForbiddenError: [],
  UnavailableError: ['live tunnels'],
  DownloadMissingError: ['mport-connect.mjs', 'run npm run build'],
  InternalError: [],
  InvalidReplayError: ['unknown replay field "colour"'],
  ReplayUnavailableError: ['an Upgrade or CONNECT request cannot be replayed'],
}

/** Instances of every exported error class that has a fixed code, by class name. */
const fixed = new Map<string, MportError>()
const bases: string[] = []
const unlisted: string[] = []
for (const [name, C] of errorClasses) {
  const instance = new (C as unknown as Ctor)(...(sampleArgs[name] ?? [SENTINEL, 'test message']))
  if ((instance.code as string) === SENTINEL) bases.push(name)
  else {
    fixed.set(name, instance)
    if (sampleArgs[name] === undefined) unlisted.push(name)
  }
}
/** The class that raises each code. */
const raisedBy = new Map<string, string[]>()
for (const [name, err] of fixed) raisedBy.set(err.code, [...(raisedBy.get(err.code) ?? []), name])
const classes = new Map(errorClasses)
const layerOf = (name: string): string | undefined => classes.get(name)?.layer

t.test('the checks below see the source and every class', async t => {
  const tsconfig = await readFile(new URL('../tsconfig.json', import.meta.url), 'utf8')
  t.match(tsconfig, /"mport\/errors": \[\s*"\.\/src\/errors\.ts"\s*\]/, "'mport/errors' is src/errors.ts")
  t.match(tsconfig, /"mport": \[\s*"\.\/src\/index\.ts"\s*\]/, "'mport' is src/index.ts")
  const pkg = JSON.parse(await readFile(new URL('../packages/mport/package.json', import.meta.url), 'utf8')) as { exports: Record<string, { import: string }> }
  t.equal(pkg.exports['./errors']?.import, './dist/errors.js', 'the package exports mport/errors as the build of src/errors.ts')
  t.equal(pkg.exports['.']?.import, './dist/index.js', 'and mport as the build of src/index.ts')
  t.same(unlisted, [], `give representative arguments in sampleArgs for: ${unlisted.join(', ') || 'nothing'}`)
  t.same(Object.keys(sampleArgs).filter(n => !fixed.has(n)), [], 'every class in sampleArgs is an exported error class')
  t.ok(fixed.size >= 47, `found ${fixed.size} classes with a fixed code`)
  t.same(bases.sort(), ['ApiError', 'HttpError', 'HttpLayerError', 'MportError', 'MuxError', 'ProtocolError', 'StoreError', 'TunnelError'],
    `base classes take their code: ${bases.join(', ')}`)
})

t.test('ErrorCodes itself is well-formed', async t => {
  t.ok(listed.length > 0)
  t.same(listed.filter((c, i) => listed.indexOf(c) !== i), [], 'no code is listed twice')
  for (const code of listed) t.match(code, /^MPORT_ERR_[A-Z0-9_]+$/, `${code} has the MPORT_ERR_ form`)
})

t.test('every code in ErrorCodes has a row in PROTOCOL.md', async t => {
  const missing = listed.filter(c => !documented.includes(c))
  t.same(missing, [], `add a row to PROTOCOL.md "## Error codes" for: ${missing.join(', ') || 'nothing'}`)
})

t.test('every row in PROTOCOL.md is a code in ErrorCodes', async t => {
  const unknown = rows.filter(r => !listed.includes(r.code)).map(r => `${r.code} (line ${r.line})`)
  t.same(unknown, [], `remove from PROTOCOL.md or add to ErrorCodes: ${unknown.join(', ') || 'nothing'}`)
  t.same(documented.filter((c, i) => documented.indexOf(c) !== i), [], 'no code has two rows')
})

t.test('the table lists the codes in the order of ErrorCodes', async t => {
  t.same(documented.filter(c => listed.includes(c)), listed.filter(c => documented.includes(c)))
})

t.test('every row is filled in', async t => {
  for (const r of rows) {
    t.ok(classes.has(r.className), `${r.code}: Class ${r.className} is an exported error class of mport/errors`)
    t.ok(layers.includes(r.layer), `${r.code}: Layer ${r.layer} is one of ${layers.join(', ')}`)
    t.match(r.goAway, /^(—|[0-2]\b)/, `${r.code}: GoAway sent is a code or —`)
    t.ok(r.meaning.length >= 10, `${r.code}: Meaning`)
  }
})

t.test('every exported error class with a fixed code uses a code in ErrorCodes', async t => {
  for (const [name, err] of fixed) {
    t.ok(listed.includes(err.code), `${name} uses ${err.code}, which is in ErrorCodes`)
    t.equal(err.name, name, `${name}: name is the class name`)
    t.ok(err instanceof Error && err.message.length > 0, `${name}: is an Error with a message`)
    t.notMatch(err.message, /undefined|NaN|\[object /, `${name}: the message reads well (${err.message})`)
  }
})

t.test('every code is raised by exactly one class, and the Class column names it', async t => {
  for (const code of listed) t.same(raisedBy.get(code), [raisedBy.get(code)?.[0] ?? `(no class raises ${code})`], `${code} is raised by one class`)
  for (const r of rows) t.same(raisedBy.get(r.code), [r.className], `${r.code}: raised by ${r.className}, as the table says (line ${r.line})`)
})

t.test('every class knows its layer, and the Layer column agrees', async t => {
  t.equal(MportError.layer, undefined, 'MportError itself belongs to no layer')
  for (const [name, C] of errorClasses) {
    if (C === MportError) continue
    t.ok(layers.includes(C.layer ?? ''), `${name}.layer (${C.layer}) is one of ${layers.join(', ')}`)
  }
  for (const r of rows) t.equal(r.layer, layerOf(r.className), `${r.code}: Layer column says ${r.layer}, ${r.className}.layer is ${layerOf(r.className)} (line ${r.line})`)
  t.same(layers.filter(l => !rows.some(r => r.layer === l)), [], 'every layer has at least one documented code')
  const perLayer = layers.map(l => `${l} ${rows.filter(r => r.layer === l).length}`).join(', ')
  t.pass(`codes per layer: ${perLayer}`)
})

t.test('only the HTTP front\'s visitor errors carry an HTTP status', async t => {
  const withStatus = [...fixed].filter(([, err]) => 'status' in err).map(([name]) => name)
  t.same(withStatus.sort(), ['BadRequestError', 'HeadersTooLargeError'], 'the API maps the rest to statuses (packages/mport-relay/src/api/status.ts)')
  for (const name of withStatus) t.ok(fixed.get(name) instanceof errors.HttpError, `${name} is an HttpError`)
})

t.test('every error class is reachable from the package entry point', async t => {
  // Loaded here, not at the top: the whole library loads with it, and the checks above need only the errors.
  const lib = await import('../src/index.js') as Record<string, unknown>
  for (const [name, C] of errorClasses) t.equal(lib[name], C, `'mport' exports ${name}`)
})

t.test('every error class is defined under src/errors/, its one home', async t => {
  const names = errorClasses.map(([n]) => n).join('|')
  const extendsError = new RegExp(`\\bclass\\s+(\\w+)\\s+extends\\s+(${names})\\b`, 'g')
  const roots = ['../src/', '../packages/mport-relay/src/', '../packages/mport-connect/src/', '../bin/']
  const elsewhere: string[] = []
  let defined = 0
  for (const root of roots) {
    const dir = new URL(root, import.meta.url)
    for (const file of await readdir(dir, { recursive: true })) {
      if (!file.endsWith('.ts')) continue
      const text = await readFile(new URL(file, dir), 'utf8')
      for (const m of text.matchAll(extendsError)) {
        if (root === '../src/' && file.startsWith('errors/')) defined++
        else elsewhere.push(`${root.slice(3)}${file}: ${m[1]} extends ${m[2]}`)
      }
    }
  }
  t.same(elsewhere, [], 'move these to src/errors/<layer>.ts')
  t.equal(defined, errorClasses.length - 1, 'src/errors/ defines every exported error class but MportError by extending another')
})

t.test('ProtocolError subclasses send GoAway 1, as the table says', async t => {
  let count = 0
  for (const [name, err] of fixed) {
    if (!(err instanceof ProtocolError)) continue
    count++
    t.equal(err.goAway, GoAwayCode.ProtocolError, `${name}.goAway === 1`)
    t.equal(errors.goAwayCodeFor(err), GoAwayCode.ProtocolError, `goAwayCodeFor(${name}) === 1`)
    const row = rows.find(r => r.code === err.code)
    t.match(row?.goAway ?? '', /^1\b/, `${err.code}: GoAway sent column says 1`)
  }
  t.ok(count >= 9, `${count} protocol errors checked`)
  for (const r of rows) {
    if (/^1\b/.test(r.goAway)) t.ok(fixed.get(r.className) instanceof ProtocolError, `${r.code}: GoAway 1 means ${r.className} is a ProtocolError`)
  }
  t.equal(errors.goAwayCodeFor(new errors.KeepAliveTimeoutError(1)), GoAwayCode.InternalError, 'keepalive timeout sends 2')
  t.equal(errors.goAwayCodeFor(new Error('x')), GoAwayCode.InternalError, 'anything else sends 2')
})
