// What an embedder can reach on a Session and a MuxStream: the documented API and nothing of
// how frames reach them (the decoder's callbacks, the writer's queue, the receive path).
import t from 'tap'
import { Session } from '../../src/mux/session.js'
import { duplexPair } from '../helpers/duplex-pair.js'

const internalNames = [
  'onFrame', 'onDataHeader', 'onDataPayload', 'onDataEnd', 'queued', 'emitFrame', 'receiveData', 'reserveRecv',
  'endOfData', 'receiveFlags', 'addSendCredit', 'abort', 'gatherDue',
]

t.test('no decoder callback or writer bookkeeping is reachable by name', async t => {
  const [a, b] = duplexPair()
  const client = new Session(a, { client: true, keepAliveInterval: 0 })
  const server = new Session(b, { client: false, keepAliveInterval: 0 })
  t.teardown(() => { client.destroy(); server.destroy() })
  const stream = client.open()
  for (const name of internalNames) {
    t.notOk(name in client, `Session has no ${name}`)
    t.notOk(name in stream, `MuxStream has no ${name}`)
  }
  t.equal(typeof stream.writeCallbackFor, 'function', 'the chunk-written contract is public')
  t.equal(stream.writeCallbackFor(Buffer.alloc(8)), undefined, 'a chunk not from the pool gets no callback')
  stream.destroy()
})
