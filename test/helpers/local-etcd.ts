import {type ChildProcess, execFile, spawn} from 'node:child_process'
import {mkdtempSync, rmSync} from 'node:fs'
import {createServer} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {ensureKubeBinaries} from '../sandbox/kube-binaries.js'
import type {TlsFixture} from './tls.js'

const run = promisify(execFile)

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const {port} = server.address() as {port: number}
      server.close(() => resolve(port))
    })
  })
}

export interface LocalEtcd {
  endpoint: string
  /** etcdctl's flags for this server (endpoint and certificates). */
  flags: string[]
  put(key: string, value: string | Buffer): Promise<void>
  stop(): Promise<void>
}

/** The sandbox's etcd (built from source) on a random loopback port in a temp dir; mutual TLS when `tls` is given. */
export async function startEtcd(tls?: TlsFixture): Promise<LocalEtcd> {
  const dir = mkdtempSync(join(tmpdir(), 'local-etcd-'))
  const [clientPort, peerPort] = [await freePort(), await freePort()]
  const scheme = tls ? 'https' : 'http'
  const endpoint = `${scheme}://127.0.0.1:${clientPort}`
  const peer = `http://127.0.0.1:${peerPort}`
  const args = [
    '--name=test',
    `--data-dir=${join(dir, 'data')}`,
    `--listen-client-urls=${endpoint}`,
    `--advertise-client-urls=${endpoint}`,
    `--listen-peer-urls=${peer}`,
    `--initial-advertise-peer-urls=${peer}`,
    `--initial-cluster=test=${peer}`,
    '--log-level=error',
  ]
  if (tls)
    args.push(
      `--cert-file=${tls.serverCert}`,
      `--key-file=${tls.serverKey}`,
      `--trusted-ca-file=${tls.caCert}`,
      '--client-cert-auth',
    )
  // The etcd and etcdctl the sandbox builds from source (the release kubeadm pins), not whatever is on PATH.
  const bin = await ensureKubeBinaries()
  const child: ChildProcess = spawn(bin.etcd, args, {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: {...process.env, ETCD_UNSUPPORTED_ARCH: process.arch === 'arm64' ? 'arm64' : ''},
  })
  let stderr = ''
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const flags = [
    `--endpoints=${endpoint}`,
    ...(tls ? [`--cacert=${tls.caCert}`, `--cert=${tls.clientCert}`, `--key=${tls.clientKey}`] : []),
  ]
  const etcdctl = (...rest: string[]) =>
    run(bin.etcdctl, [...flags, '--dial-timeout=1s', '--command-timeout=2s', ...rest])
  const deadline = Date.now() + 15_000
  for (;;) {
    try {
      await etcdctl('endpoint', 'health')
      break
    } catch (error) {
      if (child.exitCode !== null || Date.now() > deadline) {
        child.kill('SIGKILL')
        throw new Error(`etcd did not start: ${stderr || (error as Error).message}`)
      }
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }
  const {Etcd3} = await import('etcd3')
  const writer = new Etcd3({
    hosts: endpoint,
    credentials: tls
      ? {
          rootCertificate: tls.read(tls.caCert),
          certChain: tls.read(tls.clientCert),
          privateKey: tls.read(tls.clientKey),
        }
      : undefined,
  })
  return {
    endpoint,
    flags,
    async put(key, value) {
      // Binary values (NUL bytes) cannot travel in argv; write them with a gRPC client.
      await writer.put(key).value(value)
    },
    async stop() {
      writer.close()
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve))
        child.kill('SIGTERM')
        await exited
      }
      rmSync(dir, {recursive: true, force: true})
    },
  }
}
