// peerflix (its library, as its CLI uses it) on loopback only, DHT off.
// Usage: node peerflix_run.js SOURCE PORT PEER PATH
//   SOURCE: a .torrent file or a magnet link; PEER: host:port connected as a peer, or "-"
//   to find peers only through the trackers the torrent or magnet names (never any other).
const fs = require('fs')
const peerflix = require('peerflix')
const [source, port, peer, path] = process.argv.slice(2)
const torrent = source.startsWith('magnet:') ? source : fs.readFileSync(source)
const engine = peerflix(torrent, {
  // tmp: its metadata cache (by default shared by every run in the OS temp dir) is the
  // run's own, so every start is cold.
  dht: false, tracker: peer === '-', port: Number(port), hostname: '127.0.0.1', path: path, tmp: path,
  connections: 100
})
if (peer !== '-') engine.connect(peer)
engine.server.on('listening', () => console.log('listening'))
process.on('SIGTERM', () => { engine.destroy(() => process.exit(0)) })
