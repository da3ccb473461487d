import {discoverControlPlane} from '../controlplane/control-plane.js'
import type {EncryptionConfiguration} from '../encryption/config/model.js'
import {configHash} from '../encryption/fingerprint.js'
import {type StageConfig, stageConfig} from '../encryption/config/load.js'
import type {EtcdAccessOptions} from '../flags/etcd.js'
import {ResourceIndex} from '../kube/resource-index.js'
import type {ApiResource, KubeCluster} from '../kube/types.js'
import type {SshConnector} from '../ssh/ssh-session.js'
import {SCAN_PAGE_BYTES} from '../etcd/etcd-reader.js'
import {checkConfigAgainstEtcd, type ConfigCheckResult} from './scan/config-check.js'
import {openEtcdReader} from '../etcd/etcd-access.js'
import {type RewriteResult, rewrite} from './rewrite/rewrite.js'
import {apiserverKmsKeys, type NodeKmsKeys} from './status/kms-keys.js'
import {formatEstimate, type RewriteEstimate, storedBytesPerObject} from './rewrite/estimate.js'
import {findUpdateWebhooks, type UpdateWebhook, webhooksListWarning, webhookWarning} from './rewrite/webhooks.js'
import {scanForStatus} from './status/scan-targets.js'
import type {ScanSummary} from './status/scan-targets.js'
import {expectedWrite, verifyEncryption} from './verify.js'

/**
 * What enable, rotate and decrypt-all do after the nodes run a new config: prove new writes are
 * stored as configured (verify), rewrite what the config covers, and scan etcd for what is left.
 * Each takes the config text the nodes now run; none ever returns key material.
 */
export interface VerifySummary {
  resource: string
  ok: boolean
  /** How the test object was stored: `aescbc:key1`, `identity` (plaintext). */
  stored?: string
  /** What the config says new writes use. */
  expected?: string
  problems: string[]
}

export interface RewriteSummary {
  resources: string[]
  rewritten: number
  alreadyCurrent: number
  failed: number
  /** Resources whose listing failed or did not finish (run again). */
  incomplete: string[]
  /** Up to 10 failures as `resource ns/name: reason`. */
  failures: string[]
  /** What the rewrite counted before its first write. */
  estimate?: RewriteEstimate
  /** Admission webhooks matching UPDATE of those resources (warned about before the first write). */
  webhooks?: UpdateWebhook[]
  /** Why they could not be listed; the rewrite went on. */
  webhooksListError?: string
}

/** A rewrite's result as a workflow reports it (counts, up to 10 failures as one line each). */
export function rewriteSummary(
  r: Pick<RewriteResult, 'resources' | 'totals' | 'failures' | 'estimate'>,
  webhooks: UpdateWebhook[] | undefined,
  webhooksListError: string | undefined,
): RewriteSummary {
  return {
    resources: r.resources.map((x) => x.resource),
    rewritten: r.totals.rewritten,
    alreadyCurrent: r.totals.alreadyCurrent,
    failed: r.totals.failed,
    incomplete: r.resources.filter((x) => !x.complete).map((x) => x.resource),
    failures: r.failures
      .slice(0, 10)
      .map((f) => `${f.resource} ${f.namespace ? `${f.namespace}/` : ''}${f.name ?? '(list)'}: ${f.reason}`),
    estimate: r.estimate,
    webhooks,
    webhooksListError,
  }
}

export interface EncryptedLeft {
  /** Values not stored in plaintext, per resource (only resources with some). */
  byResource: Record<string, number>
  total: number
  /** Values the scan read. */
  scanned: number
  /** Up to 5 etcd keys of values still encrypted. */
  examples: string[]
}

export interface ClusterFollowUps {
  verify(config: StageConfig): Promise<VerifySummary | undefined>
  /** Stops between objects once `signal` fires (what is left shows as incomplete). */
  rewrite(config: StageConfig, signal?: AbortSignal): Promise<RewriteSummary>
  /** With `kmsCurrent` (KMS v2 provider -> key ID hash), values under another key ID count as stale. */
  scan(config: StageConfig, kmsCurrent?: Record<string, string>): Promise<ScanSummary>
  /** Per apiserver, the KMS v2 key ID hashes its metrics report as current (with when it last saw them). */
  kmsKeys(): Promise<NodeKmsKeys[]>
  /** Values anywhere under /registry/ still stored as `k8s:enc:<provider>:v1:<key>:` (rotate's remove-old precondition). */
  countUnderKey(provider: string, key: string): Promise<number>
  /** `config check` of a config about to be applied: could apiservers running it read every value in etcd? */
  checkConfig(config: StageConfig): Promise<ConfigCheckResult>
}

export function parseConfigText(configText: string): EncryptionConfiguration {
  return stageConfig(configText).config
}

const SECRETS: ApiResource = {group: '', version: 'v1', resource: 'secrets', kind: 'Secret', namespaced: true}
const CONFIGMAPS: ApiResource = {group: '', version: 'v1', resource: 'configmaps', kind: 'ConfigMap', namespaced: true}

/** The resources a config covers, as the server serves them (wildcards expanded; unknown names skipped). */
export function resourcesCoveredBy(config: EncryptionConfiguration, index: ResourceIndex): ApiResource[] {
  const updatable = (r: ApiResource) => !r.verbs || (r.verbs.includes('list') && r.verbs.includes('update'))
  const found = new Map<string, ApiResource>()
  for (const entry of config.resources ?? []) {
    // An identity-only entry (e.g. events opted out) is still "covered": decrypt-all must rewrite it too.
    for (const text of entry.resources ?? [])
      for (const r of index.expand(text).filter(updatable)) found.set(`${r.group}/${r.resource}`, r)
  }
  return [...found.values()]
}

/** Values under the scanned resources that are not plaintext (what decrypt-all must leave at zero). */
export function encryptedLeft(scan: ScanSummary): EncryptedLeft {
  const byResource: Record<string, number> = {}
  const examples: string[] = []
  for (const r of scan.resources) {
    const encrypted = r.total - r.plaintext
    if (encrypted > 0) byResource[r.resource] = encrypted
    for (const category of ['stale', 'undecryptable', 'unverified'] as const)
      examples.push(...(r.samples[category] ?? []))
  }
  const total = Object.values(byResource).reduce((a, b) => a + b, 0)
  return {byResource, total, scanned: scan.keys, examples: [...new Set(examples)].slice(0, 5)}
}

/** The real follow-ups over the cluster's API and etcd (exec, ssh or direct, as --etcd-* say). */
export interface FollowUpAccess {
  etcd: EtcdAccessOptions
  ssh: SshConnector
  onProgress?: (text: string) => void
  /** A warning line on stderr (the caller adds `Warning: `): webhooks the rewrite will meet. */
  onWarning?: (message: string) => void
  /** A line of information on stderr: the rewrite's estimate. */
  onNotice?: (line: string) => void
}

export function clusterFollowUps(cluster: KubeCluster, access: FollowUpAccess): ClusterFollowUps {
  let controlPlane: ReturnType<typeof discoverControlPlane> | undefined
  const discover = () => (controlPlane ??= discoverControlPlane(cluster.objects))
  const openEtcd = () => openEtcdReader(access.etcd, {controlPlane: discover, exec: cluster.exec, ssh: access.ssh})
  let index: Promise<ResourceIndex> | undefined
  const resourceIndex = () => (index ??= cluster.discovery.resources().then((r) => new ResourceIndex(r)))
  return {
    async verify({config}) {
      const resource = [SECRETS, CONFIGMAPS].find((r) => expectedWrite(config, r) !== 'identity')
      if (!resource) return undefined
      access.onProgress?.(`verify: round trip of a test ${resource.kind}`)
      const result = await verifyEncryption(
        {resource, namespace: cluster.context.namespace},
        {
          objects: cluster.objects,
          openEtcd,
          config: {config, source: 'the config written to the nodes'},
          onProgress: access.onProgress,
        },
      )
      const stored = result.stored
        ? result.stored.encrypted
          ? [result.stored.provider, result.stored.kmsName ?? result.stored.keyName].filter(Boolean).join(':')
          : 'identity'
        : undefined
      return {resource: result.resource, ok: result.ok, stored, expected: result.expected, problems: result.problems}
    },
    async rewrite({config}, signal) {
      const resources = resourcesCoveredBy(config, await resourceIndex())
      // As `kubectl encryption rewrite` does: the webhooks first, then the estimate, then the writes.
      const check = await findUpdateWebhooks(cluster.objects, resources)
      for (const w of check.webhooks) access.onWarning?.(webhookWarning(w))
      if (check.listError) access.onWarning?.(webhooksListWarning(check.listError))
      const r = await rewrite(
        {
          resources,
          signal,
          onEvent: (e) => {
            if (e.type === 'progress')
              access.onProgress?.(`rewrite: ${e.done}${e.total === undefined ? '' : `/${e.total}`} objects`)
            else if (e.type === 'estimate') access.onNotice?.(formatEstimate(e.estimate, false))
          },
        },
        {client: cluster.objects, bytesPerObject: () => storedBytesPerObject(cluster.probe)},
      )
      return rewriteSummary(r, check.webhooks, check.listError)
    },
    async kmsKeys() {
      return apiserverKmsKeys(await discover(), cluster.probe)
    },
    async scan({config}, kmsCurrent) {
      const reader = await openEtcd()
      try {
        return await scanForStatus({
          reader,
          config,
          objects: cluster.objects,
          discovery: cluster.discovery,
          kmsCurrentKeyIdHashes: kmsCurrent,
          onProgress: (n) => access.onProgress?.(`scan: ${n} values`),
        })
      } finally {
        await reader.close()
      }
    },
    async countUnderKey(provider, key) {
      const prefix = Buffer.from(`k8s:enc:${provider}:v1:${key}:`)
      access.onProgress?.(`scan: values under ${provider}/${key}`)
      const reader = await openEtcd()
      let count = 0
      try {
        for await (const page of reader.range('/registry/', {pageBytes: SCAN_PAGE_BYTES}))
          for (const kv of page) if (kv.value.subarray(0, prefix.length).equals(prefix)) count++
      } finally {
        await reader.close()
      }
      return count
    },
    async checkConfig({text, config}) {
      const reader = await openEtcd()
      try {
        return await checkConfigAgainstEtcd({
          file: 'the config to apply',
          hash: configHash(text),
          config,
          reader,
          onProgress: (n) => access.onProgress?.(`read check: ${n} values`),
        })
      } finally {
        await reader.close()
      }
    },
  }
}
