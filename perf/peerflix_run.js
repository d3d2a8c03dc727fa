// peerflix (its library, as its CLI uses it) on loopback only: DHT and trackers off,
// the seeder connected as a peer. Usage: node peerflix_run.js TORRENT PORT PEER PATH
const fs = require('fs')
const peerflix = require('peerflix')
const [torrent, port, peer, path] = process.argv.slice(2)
const engine = peerflix(fs.readFileSync(torrent), {
  dht: false, tracker: false, port: Number(port), hostname: '127.0.0.1', path: path,
  connections: 100
})
engine.connect(peer)
engine.server.on('listening', () => console.log('listening'))
process.on('SIGTERM', () => { engine.destroy(() => process.exit(0)) })
