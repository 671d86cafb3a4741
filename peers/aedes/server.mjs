// aedes 1.2.0 on one loopback TCP port: `node server.mjs PORT [REDIS_PORT]`, with AEDES_HOME the
// directory whose node_modules holds aedes (the peers cache; an ES module resolves bare names
// from its own location, so it is loaded by path). aedes 1.x is an ES module and createBroker
// is async. With REDIS_PORT, it is one node of a cluster: every node keeps its sessions,
// retained messages and wills in aedes-persistence-redis and passes messages to the others
// through mqemitter-redis, both on the redis-server at 127.0.0.1:REDIS_PORT.
import net from 'node:net'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'

const port = Number(process.argv[2])
const redisPort = process.argv[3] === undefined ? undefined : Number(process.argv[3])
const home = process.env.AEDES_HOME
if (!Number.isInteger(port) || (redisPort !== undefined && !Number.isInteger(redisPort)) || !home) {
  console.error('usage: AEDES_HOME=DIR node server.mjs PORT [REDIS_PORT]')
  process.exit(2)
}
const require = createRequire(join(home, 'package.json'))
const { Aedes } = await import(pathToFileURL(require.resolve('aedes')).href)

const options = {}
if (redisPort !== undefined) {
  const redis = { host: '127.0.0.1', port: redisPort, family: 4 }
  options.persistence = require('aedes-persistence-redis')(redis)
  options.mq = require('mqemitter-redis')(redis)
  // A node that stops sending heartbeats for 3 intervals is dead, and another node publishes
  // the wills of its clients at its next check (every 4 intervals). aedes' default (60 s)
  // would leave a killed node's wills unpublished for 4-7 minutes; 1 s makes it 3-8 s.
  options.heartbeatInterval = 1000
}
const aedes = await Aedes.createBroker(options)
const server = net.createServer(aedes.handle)
server.listen(port, '127.0.0.1', () => console.log(`aedes listening on 127.0.0.1:${port}`))
aedes.on('clientError', (client, err) => console.error('clientError', client && client.id, err.message))
aedes.on('connectionError', (client, err) => console.error('connectionError', client && client.id, err.message))
const stop = () => aedes.close(() => server.close(() => process.exit(0)))
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
