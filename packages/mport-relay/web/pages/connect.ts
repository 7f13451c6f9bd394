/**
 * Connect a machine: creates a token (shown once), and prints the exact command that downloads
 * the client from this relay and runs it. The token goes in MPORT_TOKEN, not in the client's
 * arguments, so other users of that machine do not see it in the process list.
 */
import { ApiError, call, get, type Token } from '../api.js'
import { expirySelect, field, fill, h, notice, tokenBody } from '../dom.js'
import { copyButton } from '../tunnel-view.js'
import type { Page } from '../main.js'

interface ConnectInfo {
  relay: string
  fingerprint: string
  pinFingerprint: boolean
  downloads: Array<{ name: string, url: string, size: number, sha256: string }>
  sha256sums: string
  /** The Linux x64 executable, when this relay offers it (made on first request). */
  executable?: { name: string, url: string, ready: boolean }
}

const BUNDLE = 'mport-connect.mjs'

/** The command line for a port and token; `info` undefined when this relay serves no download (then npx). */
export function connectCommand (info: ConnectInfo | undefined, relay: string, port: number, token: string): string {
  const pin = info !== undefined && info.pinFingerprint ? ` --fingerprint ${info.fingerprint}` : ''
  const args = `${port} --relay ${relay}${pin}`
  const bundle = info?.downloads.find(d => d.name === BUNDLE)
  if (bundle === undefined) return `MPORT_TOKEN=${token} npx mport-connect ${args}`
  return `curl -fsSLO ${bundle.url} && MPORT_TOKEN=${token} node ${BUNDLE} ${args}`
}

/** The same for the Linux x64 executable (no Node needed on the machine). */
export function executableCommand (info: ConnectInfo, port: number, token: string): string | undefined {
  const exe = info.executable
  if (exe === undefined) return undefined
  const pin = info.pinFingerprint ? ` --fingerprint ${info.fingerprint}` : ''
  return `curl -fsSLO ${exe.url} && chmod +x ${exe.name} && MPORT_TOKEN=${token} ./${exe.name} ${port} --relay ${info.relay}${pin}`
}

export const connectPage: Page = main => {
  const name = h('input', { name: 'name', required: true, maxlength: 64, value: `machine-${new Date().toISOString().slice(0, 10)}` })
  const port = h('input', { name: 'port', type: 'number', min: 1, max: 65535, value: 5555, required: true })
  const expires = expirySelect()
  const out = h('div', { id: 'connect-result' })
  const status = h('div')
  const create = async (): Promise<void> => {
    fill(status)
    let info: ConnectInfo | undefined
    let relay: string
    try {
      info = await get<ConnectInfo>(`/v1/connect-info?port=${Number(port.value)}`)
      relay = info.relay
    } catch (err) {
      if (!(err instanceof ApiError) || (err.status !== 404 && err.status !== 503)) throw err
      relay = (await get<{ relay?: string }>('/v1/health')).relay ?? location.hostname
    }
    const made = await call<{ token: string, info: Token }>('POST', '/v1/tokens', tokenBody(name.value, expires.value))
    const command = connectCommand(info, relay, Number(port.value), made.token)
    fill(out,
      notice(`Token "${made.info.name}" created. It is shown only now: copy the command before leaving this page.`, 'ok'),
      h('h2', {}, 'Run this on the machine'),
      h('pre', { class: 'command', id: 'command', tabindex: 0 }, command), copyButton(command, 'Copy command'),
      ...exeBlock(info === undefined ? undefined : executableCommand(info, Number(port.value), made.token)),
      info !== undefined
        ? h('p', { class: 'hint' }, `Relay ${info.relay}, certificate ${info.fingerprint}. Check the download: `, h('code', {}, `curl -fsSLO ${info.sha256sums} && sha256sum -c --ignore-missing SHA256SUMS`))
        : h('p', { class: 'hint' }, 'This relay offers no client download: the command installs mport-connect from npm.'),
      h('p', { class: 'hint' }, 'The token is passed in MPORT_TOKEN so it stays out of the process list. For a service, put it in a file and use token_file in a config file instead.'))
  }
  const exeBlock = (cmd: string | undefined): Node[] => cmd === undefined
    ? []
    : [h('h2', {}, 'Or, on Linux x64 without Node'), h('pre', { class: 'command', id: 'executable-command', tabindex: 0 }, cmd), copyButton(cmd, 'Copy executable command'),
        h('p', { class: 'hint' }, 'The relay makes the executable on its first download, which takes a moment.')]
  fill(main,
    h('h1', {}, 'Connect a machine'),
    h('p', {}, 'Creates a token for the machine behind NAT and shows the command that downloads the client from this relay and exposes a local port.'),
    h('form', { id: 'connect', class: 'card', onsubmit: (e: Event) => { e.preventDefault(); create().catch((err: unknown) => fill(status, notice((err as Error).message))) } },
      field('Token name', name), field('Token expires', expires), field('Local port', port), h('button', { type: 'submit' }, 'Create token and show command')),
    status, out)
}
