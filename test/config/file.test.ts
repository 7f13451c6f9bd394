// Config files and secrets: JSON and YAML load into plain objects, every failure names the
// file (and the line for syntax errors), unknown keys are refused with a suggestion, and a
// Secret never prints its value.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import util from 'node:util'
import t, { type Test } from 'tap'
import { InvalidConfigError } from '../../src/errors.js'
import { checkKnownKeys, closest, loadConfigFile } from '../../src/config/file.js'
import { Secret } from '../../src/config/secret.js'

async function fixture (t: Test, name: string, text: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mport-config-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const file = path.join(dir, name)
  await writeFile(file, text)
  return file
}

const expected = { relay: 'relay.example.com:7835', token: 's3cret', tunnels: [{ local: 3000, remote: 8080 }], insecure: false }

t.test('JSON, YAML and YML load to the same object', async t => {
  const json = await fixture(t, 'mport.json', JSON.stringify(expected, null, 2))
  const yaml = await fixture(t, 'mport.yaml', [
    '# the relay to use',
    'relay: relay.example.com:7835',
    'token: s3cret',
    'tunnels:',
    '  - local: 3000',
    '    remote: 8080',
    'insecure: false',
    '',
  ].join('\n'))
  const yml = await fixture(t, 'MPORT.YML', '{ relay: "relay.example.com:7835", token: s3cret, tunnels: [{ local: 3000, remote: 8080 }], insecure: false }\n')
  t.same(await loadConfigFile(json), expected)
  t.same(await loadConfigFile(yaml), expected)
  t.same(await loadConfigFile(yml), expected)
  t.same(await loadConfigFile(await fixture(t, 'empty.yaml', '# nothing set\n')), {}, 'an empty YAML file is {}')
  t.same(await loadConfigFile(await fixture(t, 'bom.json', '\ufeff{"a": 1}')), { a: 1 }, 'a BOM is ignored')
})

t.test('syntax errors name the file and the line', async t => {
  const json = await fixture(t, 'broken.json', '{\n  "relay": "x",\n  "token": }\n')
  const err = await loadConfigFile(json).catch((e: unknown) => e)
  t.ok(err instanceof InvalidConfigError)
  t.match(err, { code: 'MPORT_ERR_INVALID_CONFIG', key: json })
  t.equal((err as Error).message, `invalid config "${json}": JSON syntax error at line 3, column 12: unexpected "}"`)

  const cases: Array<[string, string, RegExp]> = [
    ['unterminated.json', '{"a": 1,\n"b": 2', /JSON syntax error at line 2, column 7: expected "," or "}", found end of file/],
    ['trailing.json', '{"a": 1,}', /line 1, column 9: expected a quoted key, found "}"/],
    ['two.json', '{}\n{}', /line 2, column 1: unexpected "\{" after the end of the document/],
    ['bad-list.yaml', 'relay: x\ntunnels: [1, 2\ntoken: y\n', /YAML syntax error: .* at line 3, column 1$/],
    ['dup.yml', 'token: a\ntoken: b\n', /YAML syntax error: Map keys must be unique at line 2, column 1$/],
  ]
  for (const [name, text, message] of cases) {
    const file = await fixture(t, name, text)
    const e = await loadConfigFile(file).catch((x: unknown) => x)
    t.match(e, { code: 'MPORT_ERR_INVALID_CONFIG', key: file }, name)
    t.match((e as Error).message, message, name)
    t.notMatch((e as Error).message, /\n/, `${name}: one line`)
  }
})

t.test('unreadable files and wrong shapes are config errors naming the file', async t => {
  const dir = path.dirname(await fixture(t, 'x.json', '{}'))
  const missing = path.join(dir, 'missing.yaml')
  await t.rejects(loadConfigFile(missing), { code: 'MPORT_ERR_INVALID_CONFIG', key: missing, message: /cannot read config file: no such file/ })
  await t.rejects(loadConfigFile(path.join(dir, 'mport.toml')), { message: /unsupported config file type "\.toml"/ })
  const dirAsFile = path.join(dir, 'dir.json')
  await mkdir(dirAsFile)
  await t.rejects(loadConfigFile(dirAsFile), { message: /is a directory/ })
  await t.rejects(loadConfigFile(await fixture(t, 'list.json', '[1, 2]')), { message: /top level must be an object of settings, not a list/ })
  await t.rejects(loadConfigFile(await fixture(t, 'scalar.yaml', 'just text\n')), { message: /not string/ })
  await t.rejects(loadConfigFile(await fixture(t, 'alias.yaml', 'a: *nowhere\n')), { message: /YAML error: .*alias/i })
})

t.test('checkKnownKeys names the first unknown key and suggests the closest', async t => {
  const allowed = ['relay', 'token', 'tunnels', 'fingerprint', 'insecure'] as const
  t.doesNotThrow(() => checkKnownKeys({ relay: 'x', token: 'y' }, allowed, 'mport.json'))
  const err = (() => { try { checkKnownKeys({ relay: 'x', tokn: 'y', other: 1 }, allowed, 'mport.json') } catch (e) { return e } })()
  t.ok(err instanceof InvalidConfigError)
  t.match(err, { key: 'tokn', code: 'MPORT_ERR_INVALID_CONFIG' })
  t.equal((err as Error).message, 'invalid config "tokn": unknown key "tokn" in mport.json; did you mean "token"?')
  t.throws(() => checkKnownKeys({ fingerprnit: 'x' }, allowed, 'mport.yaml'), { message: /did you mean "fingerprint"\?/ }, 'transposition')
  t.throws(() => checkKnownKeys({ Relay: 'x' }, allowed, 'mport.yaml'), { message: /did you mean "relay"\?/ }, 'case')
  t.throws(() => checkKnownKeys({ color: 'x' }, allowed, 'mport.yaml'), {
    message: 'invalid config "color": unknown key "color" in mport.yaml (known keys: relay, token, tunnels, fingerprint, insecure)',
  }, 'no close match lists the keys')
  const proto = JSON.parse('{"__proto__": {"x": 1}}') as Record<string, unknown>
  t.throws(() => checkKnownKeys(proto, allowed, 'mport.json'), { code: 'MPORT_ERR_INVALID_CONFIG', key: '__proto__' }, '__proto__ is just an unknown key')
  t.equal(closest('prot', ['port', 'host']), 'port')
  t.equal(closest('x', ['port', 'host']), undefined)
})

t.test('a Secret never prints its value', async t => {
  const s = new Secret('hunter2')
  t.equal(s.reveal(), 'hunter2')
  t.equal(util.inspect(s), '***')
  t.equal(util.inspect({ token: s }), '{ token: *** }')
  t.equal(util.format('%s %o %O %j', s, s, { s }, { s }), '*** *** { s: *** } {"s":"***"}')
  t.equal(JSON.stringify({ token: s }), '{"token":"***"}')
  t.equal(`${s}`, '***')
  t.equal(String(s), '***')
  t.equal('token=' + s, 'token=***')
  t.same(Object.keys(s), [], 'no enumerable field holds it')
  t.notMatch(util.inspect(s, { showHidden: true, depth: 5 }), /hunter2/)
  t.ok(s.equals('hunter2'))
  t.ok(s.equals(new Secret('hunter2')))
  t.notOk(s.equals('hunter3'))
  t.equal(new Secret('').isEmpty, true)
  t.throws(() => new Secret(42 as unknown as string), TypeError)
})
