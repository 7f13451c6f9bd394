/**
 * The layering, checked on every `npm run lint` (CI fails on a violation). Read top to bottom:
 *
 *   errors                     the error base: imports nothing of ours
 *   mux                        the multiplexer: errors only
 *   transport, config          TLS, certificates, config files: mux and errors
 *   access, limits, http       beside the tunnel core, below it
 *   tunnel                     relay and client cores
 *   cli                        output and prompts the bins share
 *   src/*.ts                   the library's entry points (`mport`, `mport/mux`, …)
 *   packages/mport-relay       store → api → service, over the library's entry points
 *   packages/mport-connect     the client's account commands, over the library's entry points
 *   bin/                       the two bins, over the packages' entry points
 *
 * dependency-cruiser rather than an eslint import rule: it resolves through tsconfig `paths` and
 * the workspace links, so `mport/relay` counts as the file it is; it follows reachability, so a
 * rule can say "nothing the client bin loads leads to relay code"; and it finds cycles.
 */
const lib = '^src/'
const entry = '^src/[^/]+\\.ts$'
const folder = name => `^src/${name}(/|\\.ts$)`
const below = (name, allowed) => ({
  name: `${name}-layer`,
  comment: `src/${name} may import only ${allowed.length === 0 ? 'nothing of ours' : allowed.join(', ')}`,
  severity: 'error',
  from: { path: `^src/${name}/` },
  to: { path: lib, pathNot: [`^src/${name}/`, ...allowed.map(folder)] },
})

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'a cycle means two modules are one concept or a layer runs back up',
      severity: 'error',
      from: { path: '^(src|packages|bin)/' },
      to: { circular: true },
    },
    {
      name: 'errors-layer',
      comment: 'the error base imports nothing of ours',
      severity: 'error',
      from: { path: '^src/errors(/|\\.ts$)' },
      to: { path: lib, pathNot: '^src/errors(/|\\.ts$)' },
    },
    below('mux', ['errors']),
    below('transport', ['errors', 'mux']),
    below('config', ['errors']),
    below('access', ['errors']),
    below('limits', ['errors', 'access']),
    below('http', ['errors', 'access']),
    below('tunnel', ['errors', 'mux', 'transport', 'config', 'access', 'limits', 'http', 'version']),
    below('cli', ['errors', 'tunnel', 'config', 'version']),
    {
      name: 'internals-not-entries',
      comment: 'the entry points sit on top of the library; its modules never import them',
      severity: 'error',
      from: { path: '^src/[^/]+/' },
      to: { path: entry, pathNot: '^src/(errors|version)\\.ts$' },
    },
    {
      name: 'library-not-packages',
      comment: 'the library never imports the relay or client packages, nor the bins',
      severity: 'error',
      from: { path: lib },
      to: { path: '^(packages/mport-(relay|connect)|bin)/' },
    },
    {
      name: 'packages-through-entries',
      comment: 'a package reaches the library through its entry points (mport, mport/…), never by path',
      severity: 'error',
      from: { path: '^(packages|bin)/' },
      to: { path: lib, pathNot: entry },
    },
    {
      name: 'relay-package-apart',
      comment: 'mport-relay never imports mport-connect',
      severity: 'error',
      from: { path: '^packages/mport-relay/' },
      to: { path: '^packages/mport-connect/' },
    },
    {
      name: 'connect-package-apart',
      comment: 'mport-connect never imports mport-relay',
      severity: 'error',
      from: { path: '^packages/mport-connect/' },
      to: { path: '^packages/mport-relay/' },
    },
    {
      name: 'store-below-api',
      comment: 'the store knows nothing of the API or the service',
      severity: 'error',
      from: { path: '^packages/mport-relay/src/store/' },
      to: { path: '^packages/mport-relay/src/(api|service|cli)/' },
    },
    {
      name: 'downloads-below-api',
      comment: 'the client files the API hands out know nothing of the store, the API or the service',
      severity: 'error',
      from: { path: '^packages/mport-relay/src/downloads/' },
      to: { path: '^packages/mport-relay/src/(store|api|service|cli)/' },
    },
    {
      name: 'api-below-service',
      comment: 'the API knows nothing of the service that starts it',
      severity: 'error',
      from: { path: '^packages/mport-relay/src/api/' },
      to: { path: '^packages/mport-relay/src/(service|cli)/' },
    },
    {
      name: 'bins-through-entries',
      comment: 'a bin imports package entry points only',
      severity: 'error',
      from: { path: '^bin/' },
      to: { path: '^packages/[^/]+/src/', pathNot: '^packages/[^/]+/src/index\\.ts$' },
    },
    {
      name: 'client-loads-no-relay',
      // Two modules of http/ are the client's too: proxy-protocol.ts (the client writes PROXY
      // headers towards its local services) and message-parser.ts (the inspector's HTTP parser,
      // which the relay's request metadata also uses).
      comment: 'nothing the client bin or package loads leads to relay-side code',
      severity: 'error',
      from: { path: '^(bin/mport-connect\\.ts|packages/mport-connect/)' },
      to: {
        path: '^(packages/mport-relay/|src/relay\\.ts$|src/tunnel/(relay|lease|routes|http-front|visitor-forwarder|accounts|login)|src/limits|src/http/(?!(proxy-protocol|message-parser)\\.ts$))',
        reachable: true,
      },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^|/)dist/' },
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'types'] },
    moduleSystems: ['es6'],
  },
}
