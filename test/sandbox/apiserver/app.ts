/**
 * Wires one stand-in: etcd client (TLS from the --etcd-* flags), store, transformers from the
 * encryption config (with automatic reload), HTTPS server with client-cert and token auth.
 */
import {createHash, randomUUID} from 'node:crypto'
import {readFileSync} from 'node:fs'
import {createServer as createHttpServer, type Server} from 'node:http'
import {createServer as createHttpsServer} from 'node:https'
import {hostname} from 'node:os'
import net from 'node:net'
import {ConfigLoadError, configHash, type EncryptionBackend, type LoadedEncryptionConfig, readConfigFile} from './encryption.js'
import type {ApiServerFlags} from './flags.js'
import {loadTokens} from './http/auth.js'
import {attachExec} from './http/exec.js'
import {ApiServerHandler, type HealthCheck} from './http/server.js'
import {Metrics} from './metrics.js'
import {BUILTIN} from './registry.js'
import {Store} from './storage/store.js'
import {identityRegistry, SwappableRegistry} from './storage/transformer.js'
import {ApiError} from './http/status.js'

export interface RunningApiServer {
  port: number
  metrics: Metrics
  close(): Promise<void>
}

export interface AppOptions {
  backend: EncryptionBackend
  env?: NodeJS.ProcessEnv
  log?: (line: string) => void
}

/** Go duration strings as used in the static pod's env: `2s`, `500ms`, `1m`. */
export function parseDuration(text: string): number {
  const m = text.trim().match(/^(\d+(?:\.\d+)?)(ms|s|m|h)$/)
  if (!m) throw new Error(`invalid duration "${text}"`)
  return Number(m[1]) * {ms: 1, s: 1000, m: 60_000, h: 3_600_000}[m[2] as 'ms' | 's' | 'm' | 'h']
}

function kmsCheck(name: string, providers: LoadedEncryptionConfig['kmsProviders'], log: (l: string) => void): HealthCheck {
  const probe = (endpoint: string) =>
    new Promise<void>((resolve, reject) => {
      const path = endpoint.replace(/^unix:\/\//, '')
      const sock = net.connect(path.startsWith('/@') ? '\0' + path.slice(2) : path)
      sock.setTimeout(1000)
      sock.once('connect', () => {
        sock.destroy()
        resolve()
      })
      sock.once('timeout', () => {
        sock.destroy()
        reject(new Error(`dial unix ${path}: i/o timeout`))
      })
      sock.once('error', (err: NodeJS.ErrnoException) => {
        const why = err.code === 'ENOENT' ? 'no such file or directory' : err.code === 'ECONNREFUSED' ? 'connection refused' : err.message
        reject(new Error(`dial unix ${path}: connect: ${why}`))
      })
    })
  const one = async (p: LoadedEncryptionConfig['kmsProviders'][number]) => {
    try {
      await probe(p.endpoint)
    } catch (err) {
      const inner = `rpc error: code = Unavailable desc = connection error: desc = "transport: Error while dialing: ${(err as Error).message}"`
      if (p.apiVersion === 'v2') throw new Error(`kmsv2 Provider ${p.name} is not healthy, error: ${inner}`)
      throw new Error(`failed to perform encrypt section of the healthz check for KMS Provider ${p.name}, error: ${inner}`)
    }
  }
  return {
    name,
    async check() {
      const failures: string[] = []
      for (const [i, p] of providers.entries()) {
        try {
          await one(p)
        } catch (err) {
          failures.push(providers.length > 1 || name === 'kms-providers' ? `kms-provider-${i}: ${(err as Error).message}` : (err as Error).message)
        }
      }
      if (failures.length) {
        log(`kms health check ${name} failed: ${failures.join('; ')}`)
        throw new Error(failures.length === 1 ? failures[0] : `[${failures.join(', ')}]`)
      }
    },
  }
}

/** spec §10: which KMS checks exist for this configuration. */
function kmsChecksFor(config: LoadedEncryptionConfig | undefined, reload: boolean, log: (l: string) => void): HealthCheck[] {
  if (!config) return []
  const providers = config.kmsProviders
  if (reload) return [kmsCheck('kms-providers', providers, log)]
  if (providers.length === 0) return []
  if (providers.some((p) => p.apiVersion !== 'v2')) return providers.map((p, i) => kmsCheck(`kms-provider-${i}`, [p], log))
  return [kmsCheck('kms-providers', providers, log)]
}

export async function startApiServer(flags: ApiServerFlags, options: AppOptions): Promise<RunningApiServer> {
  const env = options.env ?? process.env
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`))
  if (flags.automaticReload && !flags.encryptionProviderConfig)
    throw new ConfigLoadError('--encryption-provider-config-automatic-reload must be set with --encryption-provider-config')

  const host = flags.bindAddress && flags.bindAddress !== '0.0.0.0' ? flags.bindAddress : flags.advertiseAddress ?? '127.0.0.1'
  const identity = `kube-apiserver-${hostname()}-${flags.advertiseAddress ?? host}-${randomUUID()}`
  const metrics = new Metrics(`sha256:${createHash('sha256').update(identity).digest('hex')}`)

  const registry = new SwappableRegistry(identityRegistry)
  let config: LoadedEncryptionConfig | undefined
  if (flags.encryptionProviderConfig) {
    config = await options.backend.load(flags.encryptionProviderConfig, {reload: flags.automaticReload, metrics, featureGates: flags.featureGates})
    registry.swap(config.registry)
    metrics.configApplied(config.hash) // spec §11.3: set at start, even without reload
  }

  const {Etcd3} = await import('etcd3')
  const read = (p?: string) => (p ? readFileSync(p) : undefined)
  const etcd = new Etcd3({
    hosts: flags.etcdServers,
    ...(flags.etcdCafile ? {credentials: {rootCertificate: read(flags.etcdCafile)!, certChain: read(flags.etcdCertfile), privateKey: read(flags.etcdKeyfile)}} : {}),
  })
  const store = new Store(etcd.kv as any, flags.etcdPrefix, registry, flags.storageMediaType, (info, key, err) =>
    log(`failed to decrypt data for ${key} (${info.resource}): ${err.message}`),
  )

  // kube-apiserver's bootstrap controller: the system namespaces always exist
  const namespaces = BUILTIN.find((r) => r.resource === 'namespaces')!
  for (const name of ['default', 'kube-system', 'kube-public', 'kube-node-lease']) {
    try {
      await store.create(namespaces, {metadata: {name}, spec: {finalizers: ['kubernetes']}, status: {phase: 'Active'}}, undefined)
    } catch (err) {
      if (!(err instanceof ApiError && err.code === 409)) {
        etcd.close()
        throw err
      }
    }
  }

  const etcdCheck: HealthCheck = {
    name: 'etcd',
    async check() {
      await Promise.race([
        etcd.kv.range({key: Buffer.from('/registry/health'), limit: 1}),
        new Promise((_, reject) => setTimeout(() => reject(new Error('etcd request timed out')), 2000)),
      ])
    },
  }
  const readyChecks: HealthCheck[] = [etcdCheck, {name: 'etcd-readiness', check: etcdCheck.check}, {name: 'informer-sync', check: async () => {}}]
  if (flags.automaticReload)
    readyChecks.push({name: 'poststarthook/start-encryption-provider-config-automatic-reload', check: async () => {}})
  const handler = new ApiServerHandler({
    store,
    tokens: loadTokens(flags.tokenAuthFile),
    serverAddress: `${flags.advertiseAddress ?? host}:${flags.securePort}`,
    gitVersion: 'v1.34.1',
    metrics: () => metrics.render(),
    kmsChecks: () => kmsChecksFor(config, flags.automaticReload, log),
    readyChecks,
    log,
  })

  let server: Server
  if (flags.tlsCertFile && flags.tlsPrivateKeyFile) {
    server = createHttpsServer(
      {
        cert: readFileSync(flags.tlsCertFile),
        key: readFileSync(flags.tlsPrivateKeyFile),
        ca: flags.clientCaFile ? readFileSync(flags.clientCaFile) : undefined,
        requestCert: Boolean(flags.clientCaFile),
        rejectUnauthorized: false,
      },
      (req, res) => void handler.handle(req, res),
    )
  } else {
    server = createHttpServer((req, res) => void handler.handle(req, res))
  }
  // Go's http.Server keeps idle connections far longer than Node's 5 s default; clients with
  // keep-alive agents (client-node, kubectl) must not meet sockets closed under them
  server.keepAliveTimeout = 90_000
  server.headersTimeout = 91_000
  const execSessions = attachExec(server, handler, store, log)

  // spec §9: poll the file by hash; a broken file keeps the last good config and counts a failure
  let reloadTimer: NodeJS.Timeout | undefined
  if (flags.automaticReload && flags.encryptionProviderConfig && config) {
    const path = flags.encryptionProviderConfig
    const interval = env.SANDBOX_ENCRYPTION_RELOAD_INTERVAL ? parseDuration(env.SANDBOX_ENCRYPTION_RELOAD_INTERVAL) : 60_000
    let applied = config.hash
    let busy = false
    reloadTimer = setInterval(async () => {
      if (busy) return
      busy = true
      try {
        let raw: Buffer | undefined
        try {
          raw = await readConfigFile(path)
        } catch {
          raw = undefined
        }
        if (raw && configHash(raw) === applied) return
        try {
          const next = await options.backend.load(path, {reload: true, metrics, featureGates: flags.featureGates})
          registry.swap(next.registry)
          config = next
          applied = next.hash
          metrics.reloaded('success', Date.now() / 1000)
          metrics.configApplied(next.hash)
          log(`loaded new encryption config from ${path} (${next.hash})`)
        } catch (err) {
          metrics.reloaded('failure', Date.now() / 1000)
          log(`error processing encryption config file ${path}: ${(err as Error).message}`)
        }
      } finally {
        busy = false
      }
    }, interval)
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(flags.securePort, host, () => resolve())
  })
  const port = (server.address() as net.AddressInfo).port
  log(`stand-in kube-apiserver serving on ${host}:${port}`)

  return {
    port,
    metrics,
    async close() {
      if (reloadTimer) clearInterval(reloadTimer)
      execSessions.closeAll()
      server.closeAllConnections?.()
      await new Promise<void>((resolve) => server.close(() => resolve()))
      etcd.close()
    },
  }
}
