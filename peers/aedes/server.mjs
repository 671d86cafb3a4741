// aedes 1.2.0 on one loopback TCP port: `node server.mjs PORT`, with AEDES_HOME the directory
// whose node_modules holds aedes (the peers cache; an ES module resolves bare names from its
// own location, so it is loaded by path). aedes 1.x is an ES module and createBroker is async.
import net from 'node:net'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'

const port = Number(process.argv[2])
const home = process.env.AEDES_HOME
if (!Number.isInteger(port) || !home) {
  console.error('usage: AEDES_HOME=DIR node server.mjs PORT')
  process.exit(2)
}
const entry = createRequire(join(home, 'package.json')).resolve('aedes')
const { Aedes } = await import(pathToFileURL(entry).href)

const aedes = await Aedes.createBroker()
const server = net.createServer(aedes.handle)
server.listen(port, '127.0.0.1', () => console.log(`aedes listening on 127.0.0.1:${port}`))
aedes.on('clientError', (client, err) => console.error('clientError', client && client.id, err.message))
aedes.on('connectionError', (client, err) => console.error('connectionError', client && client.id, err.message))
const stop = () => aedes.close(() => server.close(() => process.exit(0)))
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
