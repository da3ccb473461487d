// The one real etcd shared by all sandbox nodes (the release kubeadm pins, built from source by
// kube-binaries.ts), with mutual TLS.
// It listens on the etcd address (.10) and on every node IP, as each node's stacked member would.
import {mkdirSync} from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import type {CertAuthority} from './pki.js'
import type {SandboxLayout} from './layout.js'
import {spawnLogged, type Supervised} from './processes.js'

export function startEtcd(
  layout: SandboxLayout,
  etcdBinary: string,
  etcdCa: CertAuthority,
  server: {cert: string; key: string},
): Supervised {
  mkdirSync(layout.etcdDataDir, {recursive: true, mode: 0o700})
  const client = [layout.etcdIp, ...layout.nodes.map((n) => n.ip)].map((ip) => `https://${ip}:${layout.etcdPort}`)
  const peer = `https://${layout.etcdIp}:2380`
  const args = [
    '--name=sandbox',
    `--data-dir=${layout.etcdDataDir}`,
    `--listen-client-urls=${client.join(',')}`,
    `--advertise-client-urls=${client.join(',')}`,
    `--listen-peer-urls=${peer}`,
    `--initial-advertise-peer-urls=${peer}`,
    `--initial-cluster=sandbox=${peer}`,
    '--initial-cluster-state=new',
    `--listen-metrics-urls=http://${layout.etcdIp}:2381`,
    `--cert-file=${server.cert}`,
    `--key-file=${server.key}`,
    '--client-cert-auth=true',
    `--trusted-ca-file=${etcdCa.cert}`,
    `--peer-cert-file=${server.cert}`,
    `--peer-key-file=${server.key}`,
    '--peer-client-cert-auth=true',
    `--peer-trusted-ca-file=${etcdCa.cert}`,
    '--snapshot-count=10000',
    '--logger=zap',
    '--log-level=warn',
  ]
  return spawnLogged('etcd', etcdBinary, args, path.join(layout.logDir, 'etcd.log'), {
    env: {...process.env, ETCD_UNSUPPORTED_ARCH: ''},
  })
}

export function etcdHealthy(layout: SandboxLayout): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({host: layout.etcdIp, port: 2381, path: '/health', timeout: 1000}, (res) => {
      let body = ''
      res.on('data', (c) => (body += c))
      res.on('end', () => resolve(res.statusCode === 200 && body.includes('"true"')))
    })
    req.on('error', () => resolve(false))
    req.on('timeout', () => req.destroy())
  })
}
