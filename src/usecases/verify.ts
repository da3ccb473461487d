/**
 * `kubectl encryption verify`: the seed's round trip as one operation. Create an object with a
 * random name and value, read its raw value from etcd, check its prefix against the first provider
 * the config lists for the resource (docs/kubernetes-behaviour.md §2.3, §13.4), read it back through the API, and delete it
 * — always, also on error and on Ctrl-C (the caller aborts `signal`).
 */
import {randomBytes} from 'node:crypto'

import type {EncryptionConfiguration} from '../encryption/config/model.js'
import {etcdKeyFor} from '../encryption/storage/etcd-key.js'
import {hexdump} from '../encryption/storage/hexdump.js'
import {lookupProviders} from '../encryption/config/resource-match.js'
import {classifyValue} from '../encryption/storage/value-classifier.js'
import type {EtcdReader, EtcdReaderInfo} from '../etcd/etcd-reader.js'
import {PluginError} from '../errors.js'
import {toPluginError} from '../kube/errors.js'
import {type ApiResource, KubeApiError, type KubeObject, type ObjectClient} from '../kube/types.js'
import {agreedKey, kmsUnhealthyProblem, type NodeKmsKeys} from './status/kms-keys.js'

export interface VerifyOptions {
  resource: ApiResource
  namespace: string
  /** Leave the object in place for inspection. */
  keep?: boolean
  /** Include `hexdump -C` of the stored value. */
  hexdump?: boolean
  /** For custom resources: the object to create (its name gets a random suffix). */
  manifest?: KubeObject
  /** `--etcd-prefix` of the apiservers; default `/registry`. */
  etcdPrefix?: string
}

export interface VerifyDeps {
  objects: ObjectClient
  openEtcd: () => Promise<EtcdReader>
  /** The configuration the apiservers run, when known (from a node over SSH or --config). */
  config?: {config: EncryptionConfiguration; source: string}
  signal?: AbortSignal
  onProgress?: (text: string) => void
  /** Per apiserver, the KMS v2 key IDs it reports as current (read before the write and after it). */
  kmsKeys?: () => Promise<NodeKmsKeys[]>
}

/** For a KMS v2 value: its key ID vs the one the apiservers report (hashes as in their metrics). */
export interface VerifyKms {
  provider: string
  /** Key IDs are not secret; the stored one as it is in the EncryptedObject. */
  keyId: string
  keyIdHash: string
  /** The key ID hash every apiserver reported, before and after the write; absent when not settled. */
  currentKeyIdHash?: string
  /** What each apiserver reported after the write: key ID hash -> nodes. */
  reportedBy: Record<string, string[]>
}

export interface StoredValue {
  encrypted: boolean
  /** identity, aescbc, aesgcm, secretbox, kms, unknown-encrypted */
  provider: string
  keyName?: string
  kmsName?: string
  /** `k8s:enc:aescbc:v1:key1:`; absent for plaintext. */
  prefix?: string
  length: number
}

export interface VerifyResult {
  resource: string
  namespace?: string
  name: string
  etcdKey: string
  etcd?: EtcdReaderInfo
  stored?: StoredValue
  /** What the config says new writes use (`aescbc:key1`, `identity`); absent when the config is unknown. */
  expected?: string
  configSource?: string
  /** Read back through the API and compared with what was written. */
  roundTrip: 'ok' | 'mismatch' | 'not-checked'
  /** KMS v2 write provider: the stored key ID against the apiservers' current one. */
  kms?: VerifyKms
  hexdump?: string
  /** `deleted`, `kept` (--keep), or `failed` (the object is still there; see problems). */
  cleanup: 'deleted' | 'kept' | 'failed' | 'not-created'
  ok: boolean
  problems: string[]
  notes: string[]
}

const label = (provider: string, name?: string) => (name ? `${provider}:${name}` : provider)

/** The first provider (and its first key) for a resource: what new writes use (docs/kubernetes-behaviour.md §2.3, §8.3). */
export function expectedWrite(config: EncryptionConfiguration, resource: {group: string; resource: string}): string {
  const providers = lookupProviders(config, resource)?.providers
  const first = providers?.[0]
  if (!first || first.identity !== undefined) return 'identity'
  if (first.kms) return label('kms', first.kms.name)
  for (const type of ['aescbc', 'aesgcm', 'secretbox'] as const) {
    const spec = first[type]
    if (spec) return label(type, spec.keys[0]?.name)
  }
  return 'identity'
}

function interrupted(): PluginError {
  return new PluginError('unexpected', 'INTERRUPTED', 'verify was interrupted')
}

/** Resolves with the promise, or rejects as soon as the signal aborts (the step is abandoned). */
function step<T>(promise: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return promise
  if (signal.aborted) return Promise.reject(interrupted())
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(interrupted())
    signal.addEventListener('abort', onAbort, {once: true})
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort)
        resolve(value)
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort)
        reject(error)
      },
    )
  })
}

/** How long an abandoned create may take to answer before cleanup gives up on it. */
const CREATE_SETTLE_MS = 30_000

/**
 * Whether an abandoned create may have stored the object: false only when the server answered with
 * an error in time. No answer within ms counts as created, so cleanup still tries the delete.
 */
async function mayHaveCreated(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(true), ms)
  })
  try {
    return await Promise.race([
      promise.then(
        () => true,
        () => false,
      ),
      timeout,
    ])
  } finally {
    clearTimeout(timer)
  }
}

function testObject(options: VerifyOptions, name: string, payload: string): KubeObject {
  const {resource, namespace} = options
  const metadata = {
    name,
    namespace: resource.namespaced ? namespace : undefined,
    labels: {'app.kubernetes.io/managed-by': 'kubectl-encryption', 'kubectl-encryption/verify': 'true'},
  }
  if (options.manifest) {
    return {
      ...options.manifest,
      metadata: {
        ...options.manifest.metadata,
        ...metadata,
        labels: {...options.manifest.metadata.labels, ...metadata.labels},
      },
    }
  }
  if (resource.group === '' && resource.resource === 'secrets') {
    return {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata,
      type: 'Opaque',
      data: {verify: Buffer.from(payload).toString('base64')},
    }
  }
  if (resource.group === '' && resource.resource === 'configmaps') {
    return {apiVersion: 'v1', kind: 'ConfigMap', metadata, data: {verify: payload}}
  }
  throw new PluginError(
    'usage',
    'VERIFY_NEEDS_MANIFEST',
    `verify cannot make a ${resource.resource}${resource.group ? '.' + resource.group : ''} object on its own`,
    {
      hint: 'Pass --from-file with a manifest of one object of that resource (its name gets a random suffix), or verify secrets/configmaps.',
    },
  )
}

/**
 * A create the apiserver answered 500 while the write provider is KMS: the apiserver could not encrypt
 * (its KMS plugin is down, so its DEK expired, or it never got one). A finding about the cluster (exit 5),
 * said in one line with the apiserver's reason, not an unexpected error.
 */
function kmsWriteFailed(
  error: unknown,
  result: VerifyResult,
  reports: NodeKmsKeys[] | undefined,
): PluginError | undefined {
  if (!(error instanceof KubeApiError) || error.status !== 500 || !result.expected?.startsWith('kms:')) return undefined
  const unhealthy = (reports ?? []).filter((n) => n.kms?.some((c) => !c.ok)).map((n) => n.node)
  return new PluginError(
    'checkFailed',
    'KMS_WRITE_FAILED',
    `the apiserver could not store a ${result.resource} object with ${result.expected}${unhealthy.length > 0 ? ` (KMS provider unhealthy on ${unhealthy.join(', ')})` : ''}: ${error.message}`,
    {
      hint: "See 'kubectl encryption status' for each apiserver's KMS health. Once the plugin answers again the apiservers pick it up within about 10 s (they re-check a failing plugin that often); then run verify again.",
      detail: `HTTP ${error.status} ${error.reason}: ${error.message}`,
      cause: error,
    },
  )
}

function readBackMatches(written: KubeObject, read: KubeObject, options: VerifyOptions): boolean {
  if (options.manifest)
    return (
      JSON.stringify((read as {spec?: unknown}).spec ?? null) ===
      JSON.stringify((written as {spec?: unknown}).spec ?? null)
    )
  return JSON.stringify((read as {data?: unknown}).data) === JSON.stringify((written as {data?: unknown}).data)
}

export async function verifyEncryption(options: VerifyOptions, deps: VerifyDeps): Promise<VerifyResult> {
  const {resource} = options
  const suffix = randomBytes(4).toString('hex')
  const baseName = options.manifest?.metadata.name ?? 'encryption-verify'
  const name = `${baseName}-${suffix}`.slice(0, 253)
  const payload = randomBytes(24).toString('hex')
  const namespace = resource.namespaced ? options.namespace : undefined
  const etcdKey = etcdKeyFor(
    {group: resource.group, resource: resource.resource, namespace, name},
    {prefix: options.etcdPrefix},
  )
  const result: VerifyResult = {
    resource: resource.group ? `${resource.resource}.${resource.group}` : resource.resource,
    namespace,
    name,
    etcdKey,
    roundTrip: 'not-checked',
    cleanup: 'not-created',
    ok: false,
    problems: [],
    notes: [],
    expected: deps.config ? expectedWrite(deps.config.config, resource) : undefined,
    configSource: deps.config?.source,
  }
  const object = testObject(options, name, payload)
  let created = false
  let creating: Promise<KubeObject> | undefined
  let reader: EtcdReader | undefined
  let failure: unknown
  try {
    // Read before the write too: a key ID that changed meanwhile has not settled, and is no verdict.
    const kmsBefore =
      result.expected?.startsWith('kms:') && deps.kmsKeys ? await step(deps.kmsKeys(), deps.signal) : undefined
    // A plugin down on one node: the load balancer sends the write elsewhere, but that apiserver
    // stops storing writes once its cached DEK expires (kmsv2PluginWriteDEKSourceMaxTTL, 3 minutes
    // after its last good Status call, k8s.io/apiserver/pkg/server/options/encryptionconfig/config.go).
    for (const n of kmsBefore ?? [])
      for (const c of n.kms ?? []) if (!c.ok) result.problems.push(kmsUnhealthyProblem(n.node, c, n.ready))
    deps.onProgress?.(`Creating ${result.resource} ${namespace ? namespace + '/' : ''}${name}`)
    creating = deps.objects.create(resource, object)
    const written = await step(creating, deps.signal).catch((error: unknown) => {
      throw kmsWriteFailed(error, result, kmsBefore) ?? error
    })
    created = true
    deps.onProgress?.('Reading the stored value from etcd')
    reader = await step(deps.openEtcd(), deps.signal)
    result.etcd = reader.describe()
    const kv = await step(reader.get(etcdKey), deps.signal)
    if (!kv) {
      result.problems.push(
        `the object is not in etcd at ${etcdKey} (is the apiserver's --etcd-prefix different? is this the cluster's etcd?)`,
      )
    } else {
      const c = classifyValue(kv.value)
      result.stored = {
        encrypted: c.encrypted,
        provider: c.provider,
        keyName: c.keyName,
        kmsName: c.kmsName,
        prefix: c.prefix,
        length: c.length,
      }
      if (options.hexdump) result.hexdump = hexdump(kv.value)
      const stored = label(c.provider, c.kmsName ?? c.keyName)
      if (result.expected === undefined) {
        result.notes.push(
          'the encryption config is unknown (no SSH access and no --config), so only "encrypted or not" is checked',
        )
        if (!c.encrypted) result.problems.push(`${result.resource} are stored in plaintext in etcd (${etcdKey})`)
      } else if (result.expected === 'identity') {
        if (c.encrypted)
          result.problems.push(
            `the config writes ${result.resource} with identity (plaintext), but etcd holds ${stored}: the apiserver runs a different config than ${deps.config?.source}`,
          )
        else
          result.notes.push(
            `${result.resource} are NOT encrypted: the config's first provider is identity, and etcd holds the value in plaintext`,
          )
      } else if (!c.encrypted) {
        result.problems.push(
          `${result.resource} are stored in plaintext, but the config (${deps.config?.source}) says ${result.expected}: the apiserver that served this write does not run that config`,
        )
      } else if (stored !== result.expected) {
        result.problems.push(
          `${result.resource} are stored with ${stored}, but the config (${deps.config?.source}) says new writes use ${result.expected}`,
        )
      } else if (
        c.kmsApiVersion === 'v2' &&
        c.kmsName !== undefined &&
        c.kmsV2?.keyID !== undefined &&
        kmsBefore &&
        deps.kmsKeys
      ) {
        const after = await step(deps.kmsKeys(), deps.signal)
        const before = agreedKey(kmsBefore, c.kmsName)
        const now = agreedKey(after, c.kmsName)
        const kms: VerifyKms = {
          provider: c.kmsName,
          keyId: c.kmsV2.keyID,
          keyIdHash: c.kmsV2.keyIDHash ?? '',
          reportedBy: now.reportedBy,
        }
        result.kms = kms
        if (now.keyIdHash === undefined) {
          const parts = Object.entries(now.reportedBy).map(([hash, nodes]) => `${nodes.join(', ')}: ${hash}`)
          result.notes.push(
            parts.length === 0
              ? `no apiserver reports a current key ID for KMS provider ${c.kmsName}; the stored key ID was not compared`
              : `the apiservers report different current key IDs for KMS provider ${c.kmsName} (${parts.join('; ')}); run verify again once they agree`,
          )
        } else if (before.keyIdHash !== now.keyIdHash) {
          result.notes.push(`the current KMS key ID changed during the check (to ${now.keyIdHash}); run verify again`)
        } else {
          kms.currentKeyIdHash = now.keyIdHash
          if (kms.keyIdHash !== now.keyIdHash) {
            result.problems.push(
              `${result.resource} are stored under KMS key ID ${kms.keyIdHash} (${kms.keyId}), but every apiserver reports ${now.keyIdHash} as current: the apiserver that wrote it did not move to the new key (see its log for a failed DEK rotation)`,
            )
          }
        }
      }
    }
    deps.onProgress?.('Reading the object back through the API')
    const read = await step(deps.objects.get(resource, name, namespace), deps.signal)
    result.roundTrip = readBackMatches(written, read, options) ? 'ok' : 'mismatch'
    if (result.roundTrip === 'mismatch')
      result.problems.push('the object read back through the API differs from what was written')
  } catch (error) {
    failure = toPluginError(error)
  } finally {
    // Ctrl-C while the create was in flight: the server may have stored the object already, so
    // wait for its answer (a delete sent now could reach the server first and miss it).
    if (!created && creating) created = await mayHaveCreated(creating, CREATE_SETTLE_MS)
    if (created && options.keep) {
      result.cleanup = 'kept'
    } else if (created) {
      // Cleanup runs even after an abort: it is not raced against the signal.
      try {
        await deps.objects.delete(resource, name, namespace)
        result.cleanup = 'deleted'
      } catch (error) {
        if (error instanceof KubeApiError && error.status === 404) result.cleanup = 'deleted'
        else {
          result.cleanup = 'failed'
          result.problems.push(
            `could not delete ${result.resource} ${namespace ? namespace + '/' : ''}${name}: ${(error as Error).message}; delete it by hand`,
          )
        }
      }
    }
    await reader?.close().catch(() => undefined)
  }
  if (failure) {
    const where = `${result.resource} ${namespace ? namespace + '/' : ''}${name}`
    const cleanup =
      result.cleanup === 'failed'
        ? `The test object ${where} could NOT be deleted; delete it by hand.`
        : created && !options.keep
          ? `The test object ${where} was deleted.`
          : undefined
    if (failure instanceof PluginError && cleanup) {
      throw new PluginError(failure.kind, failure.code, failure.message, {
        ...failure.options,
        hint: [failure.hint, cleanup].filter(Boolean).join(' '),
      })
    }
    throw failure
  }
  result.ok = result.problems.length === 0
  return result
}
