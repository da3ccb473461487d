/**
 * `kubectl encryption status`: the truth about encryption at rest on every control-plane node and,
 * with a scan, in etcd. No oclif here; the command injects the cluster, SSH and etcd access.
 */
import {basename} from 'node:path'

import type {ControlPlaneNode} from '../../controlplane/control-plane.js'
import type {HealthCheck} from '../../controlplane/health.js'
import {type CurrentKmsKey, currentKmsKeys, encryptionMetricsOf} from '../../controlplane/metrics.js'
import type {EncryptionConfiguration, ProviderSpec} from '../../encryption/config/model.js'
import {type ConfigCheck, checkConfigBytes} from '../../encryption/config/load.js'
import {buildResourceMap, formatGroupResource, parseResourceString} from '../../encryption/config/resource-match.js'
import {isPluginError} from '../../errors.js'
import {toPluginError} from '../../kube/errors.js'
import type {EndpointProbe} from '../../kube/types.js'
import type {RemoteFiles} from '../../ssh/remote-files.js'
import {kmsUnhealthyProblem, readyzWithKms} from './kms-keys.js'
import type {RotationStatus} from '../rotate.js'
import type {ScanSummary} from './scan-targets.js'
import type {LeaseStatus} from '../../state/operation-lease.js'
import {type Settled, settle} from '../../settle.js'

export const MANIFESTS_DIR = '/etc/kubernetes/manifests'
/** The static pods kubeadm writes; any other non-dot file there is run by the kubelet too. */
const KUBEADM_MANIFESTS = new Set([
  'kube-apiserver.yaml',
  'kube-controller-manager.yaml',
  'kube-scheduler.yaml',
  'etcd.yaml',
])

export interface NodeStatus {
  node: string
  internalIP?: string
  nodeReady: boolean
  apiserver: {
    pod?: string
    endpoint?: string
    /** `/readyz` answered 200 on this node's endpoint. */
    ready: boolean
    readyz?: string
    /** Names of the /readyz checks that failed. */
    failingChecks?: string[]
    /** More than one kube-apiserver mirror pod on the node (a stray manifest copy). */
    extraPods: string[]
  }
  encryption: {
    enabled: boolean
    configPath?: string
    automaticReload: boolean
    configPathMounted?: boolean
  }
  config: {
    /** `sha256:` of the config file (docs/kubernetes-behaviour.md §5.6). */
    hash?: string
    /** Where the hash came from: the file over SSH, or `last_config_info` on /metrics. */
    source?: 'ssh' | 'metrics'
    valid?: boolean
    errors: string[]
    /** The hash the apiserver reports as loaded (1.34+), for comparison with the file. */
    loadedHash?: string
  }
  /** The apiserver's KMS health checks; a failing one carries what /readyz/<check> says. */
  kms: HealthCheck[]
  /** Per KMS v2 provider, the current key ID hash this apiserver reports (its metrics). */
  kmsKeys: CurrentKmsKey[]
  reloads?: {success: number; failure: number}
  /** Non-dot files in the manifests dir that the kubelet would also run (e.g. kube-apiserver.yaml.bak). */
  strayManifests: string[]
  /** Why SSH or metrics could not be read; the status is then partial for this node. */
  notes: string[]
  /** SSH to the node failed: its manifest and config file were not checked. */
  sshFailed?: boolean
}

export interface ResourceStatus {
  /** The resource string as the config names it: `secrets`, `*.apps`, `*.*`. */
  resource: string
  /** `aescbc:key1`, `identity`, `kms:name`. */
  write: string
  /** Other providers/keys that can still read: `aescbc:key0`, `identity`. */
  readOnly: string[]
  /** identity appears after the first provider: plaintext values stay readable. */
  identityFallback: boolean
}

export interface StatusResult {
  context: string
  server: string
  nodes: NodeStatus[]
  /** All nodes run the same config (by hash), or all have encryption off. */
  agreement: {agree: boolean; hashes: Record<string, string[]>}
  config?: {node?: string; path: string; hash?: string; source: 'ssh' | 'file'; warnings: string[]; errors: string[]}
  resources: ResourceStatus[]
  scan?: ScanSummary
  /** The key rotation recorded in kube-system/kubectl-encryption-state, if any. */
  rotation?: RotationStatus
  /** A mutating run (enable, rotate, decrypt-all) holding the cluster's lock, if any. */
  lock?: LeaseStatus
  /** Everything wrong, one sentence each; non-empty means exit 5. */
  problems: string[]
  warnings: string[]
}

export interface StatusDeps {
  context: {contextName: string; server: string}
  controlPlane: () => Promise<ControlPlaneNode[]>
  probe: EndpointProbe
  /** Remote files on a node over SSH; undefined when SSH is off (--no-ssh). */
  files?: (node: ControlPlaneNode) => RemoteFiles
  /** A local config file given with --config, instead of reading it from a node. */
  localConfig?: {path: string; bytes: Buffer}
  /**
   * Runs the scan with the config that status settled on (only with --scan), and per KMS v2
   * provider the key ID hash every apiserver reports as current (providers with drift left out).
   */
  scan?: (
    config: EncryptionConfiguration | undefined,
    kmsCurrentKeyIdHashes: Record<string, string>,
  ) => Promise<ScanSummary>
  probeTimeoutMs?: number
  onProgress?: (text: string) => void
  /** The recorded key rotation (kube-system/kubectl-encryption-state, key `rotate`). */
  rotation?: () => Promise<RotationStatus | undefined>
  /** The cluster's lock (data.lock of the same ConfigMap), if held. */
  lock?: () => Promise<LeaseStatus | undefined>
}

function providerLabel(provider: ProviderSpec): string[] {
  if (provider.identity !== undefined) return ['identity']
  if (provider.kms) return [`kms:${provider.kms.name}`]
  for (const type of ['aescbc', 'aesgcm', 'secretbox'] as const) {
    const spec = provider[type]
    if (spec) return spec.keys.map((k) => `${type}:${k.name}`)
  }
  return ['unknown']
}

/** Per resource string of the config: how writes are stored and what else can still read (docs/kubernetes-behaviour.md §2, §8). */
export function resourceStatuses(config: EncryptionConfiguration): ResourceStatus[] {
  const map = buildResourceMap(config)
  const seen = new Set<string>()
  const statuses: ResourceStatus[] = []
  for (const entry of config.resources ?? []) {
    for (const text of entry.resources ?? []) {
      const gr = parseResourceString(text)
      const name = formatGroupResource(gr)
      if (seen.has(name)) continue
      seen.add(name)
      const providers = map.get(`${gr.group}\u0000${gr.resource}`)?.providers ?? entry.providers
      const labels = providers.flatMap(providerLabel)
      statuses.push({
        resource: name,
        write: labels[0] ?? 'identity',
        readOnly: labels.slice(1),
        identityFallback: providers.slice(1).some((p) => p.identity !== undefined),
      })
    }
  }
  return statuses
}

function kmsV2Names(config: EncryptionConfiguration): Set<string> {
  return new Set(
    (config.resources ?? []).flatMap((r) =>
      (r.providers ?? []).flatMap((p) => (p.kms && p.kms.apiVersion === 'v2' ? [p.kms.name] : [])),
    ),
  )
}

/** Per KMS v2 provider, the key ID hash that every apiserver reporting it agrees on. */
export function agreedKmsKeys(nodes: NodeStatus[]): Record<string, string> {
  const drift = kmsKeyDrift(nodes)
  const agreed: Record<string, string> = {}
  for (const n of nodes) for (const k of n.kmsKeys) if (!drift.has(k.provider)) agreed[k.provider] = k.keyIdHash
  return agreed
}

/** Providers whose apiservers report different current key IDs: provider -> key ID hash -> nodes. */
export function kmsKeyDrift(nodes: NodeStatus[]): Map<string, Map<string, string[]>> {
  const byProvider = new Map<string, Map<string, string[]>>()
  for (const n of nodes) {
    for (const k of n.kmsKeys) {
      const hashes = byProvider.get(k.provider) ?? new Map<string, string[]>()
      byProvider.set(k.provider, hashes)
      hashes.set(k.keyIdHash, [...(hashes.get(k.keyIdHash) ?? []), n.node])
    }
  }
  return new Map([...byProvider].filter(([, hashes]) => hashes.size > 1))
}

function message(error: unknown): string {
  const translated = toPluginError(error)
  return isPluginError(translated) ? translated.message : (translated as Error).message
}

async function nodeStatus(
  node: ControlPlaneNode,
  deps: StatusDeps,
): Promise<{status: NodeStatus; check?: ConfigCheck}> {
  const [pod, ...extra] = node.apiservers
  const status: NodeStatus = {
    node: node.name,
    internalIP: node.internalIP,
    nodeReady: node.ready,
    apiserver: {pod: pod?.name, endpoint: pod?.endpoint, ready: false, extraPods: extra.map((p) => p.name)},
    encryption: {
      enabled: Boolean(pod?.encryption.configPath),
      configPath: pod?.encryption.configPath,
      automaticReload: pod?.encryption.automaticReload ?? false,
      configPathMounted: pod?.encryption.configPathMounted,
    },
    config: {errors: []},
    kms: [],
    kmsKeys: [],
    strayManifests: [],
    notes: [],
  }
  const timeoutMs = deps.probeTimeoutMs ?? 5000
  let check: ConfigCheck | undefined

  const probes = (async () => {
    if (!pod?.endpoint) {
      status.notes.push('no apiserver endpoint known for this node (no kube-apiserver mirror pod or advertise address)')
      return
    }
    // /metrics does not depend on the readiness answer: both round trips at once.
    const metricsRead = settle(deps.probe.get('/metrics', {endpoint: pod.endpoint, timeoutMs}))
    try {
      const {report, kms, httpStatus} = await readyzWithKms(deps.probe, pod.endpoint, timeoutMs)
      status.kms = kms
      status.apiserver.ready = report.ok
      const failing = report.checks.filter((c) => !c.ok)
      if (failing.length > 0) status.apiserver.failingChecks = failing.map((c) => c.name)
      status.apiserver.readyz = report.ok
        ? 'ok'
        : failing
            .map((c) => `${c.name}: ${status.kms.find((k) => k.name === c.name)?.message ?? c.message}`)
            .join('; ') || `HTTP ${httpStatus}`
    } catch (error) {
      status.apiserver.readyz = message(error)
      return
    }
    // An apiserver that is not ready only because of its KMS plugin still serves /metrics.
    const read = await metricsRead
    try {
      if ('error' in read) throw read.error
      const metrics = read.value
      if (metrics.status === 200) {
        const parsed = encryptionMetricsOf(metrics.body)
        status.kmsKeys = currentKmsKeys(parsed.kmsKeyIds)
        status.config.loadedHash = parsed.lastConfigHash
        if (status.encryption.automaticReload) status.reloads = parsed.reloads
      } else {
        status.notes.push(`/metrics answered HTTP ${metrics.status}`)
      }
    } catch (error) {
      status.notes.push(`cannot read /metrics: ${message(error)}`)
    }
  })()

  const files = (async () => {
    if (!deps.files) return
    const remote = deps.files(node)
    try {
      const entries = (await remote.list(MANIFESTS_DIR)) ?? []
      status.strayManifests = entries
        .filter((e) => e.type !== 'directory' && !e.name.startsWith('.') && !KUBEADM_MANIFESTS.has(e.name))
        .map((e) => `${MANIFESTS_DIR}/${e.name}`)
        .sort()
      if (status.encryption.configPath) {
        const bytes = await remote.read(status.encryption.configPath)
        if (bytes === undefined) {
          status.config.errors.push(`${status.encryption.configPath} does not exist on ${node.name}`)
        } else {
          check = checkConfigBytes(bytes, status.encryption.configPath, {
            automaticReload: status.encryption.automaticReload,
          })
          status.config.hash = check.hash
          status.config.source = 'ssh'
          status.config.valid = check.errors.length === 0
          if (check.errors.length > 0) status.config.errors.push(check.message)
        }
      }
    } catch (error) {
      status.notes.push(`SSH: ${message(error)}`)
      status.sshFailed = true
    }
  })()

  await Promise.all([probes, files])
  // Metrics keep key IDs of providers an earlier config had; only this config's v2 providers count.
  const kmsNames = check?.config && kmsV2Names(check.config)
  if (kmsNames) status.kmsKeys = status.kmsKeys.filter((k) => kmsNames.has(k.provider))
  if (!status.config.hash && status.config.loadedHash) {
    status.config.hash = status.config.loadedHash
    status.config.source = 'metrics'
  }
  return {status, check}
}

function problemsFor(result: StatusResult, nodes: NodeStatus[]): string[] {
  const problems: string[] = []
  // A node whose files could not be read was not checked: a cron job must not read that as success.
  const unchecked = nodes.filter((n) => n.sshFailed)
  if (unchecked.length > 0) {
    const reason = unchecked[0]!.notes.find((x) => x.startsWith('SSH: '))?.slice(5) ?? 'SSH failed'
    const who = unchecked.length === nodes.length ? 'no node' : unchecked.map((n) => n.node).join(', ')
    problems.push(`${who}: manifest and encryption config not checked, SSH failed (${reason})`)
  }
  for (const n of nodes) {
    const failingKms = n.kms.filter((c) => !c.ok)
    const onlyKmsFailing =
      failingKms.length > 0 &&
      (n.apiserver.failingChecks ?? []).every((name) => failingKms.some((c) => c.name === name))
    if (!n.apiserver.pod) problems.push(`${n.node}: no kube-apiserver mirror pod`)
    else if (!n.apiserver.ready && !onlyKmsFailing)
      problems.push(`${n.node}: apiserver ${n.apiserver.pod} is not ready (${n.apiserver.readyz ?? 'no answer'})`)
    if (n.apiserver.extraPods.length > 0)
      problems.push(
        `${n.node}: more than one kube-apiserver mirror pod (${n.apiserver.extraPods.join(', ')}); a copy of the manifest is being run`,
      )
    for (const file of n.strayManifests)
      problems.push(
        `${n.node}: ${file} is in the manifests dir; the kubelet runs every non-dot file there; move it out of ${MANIFESTS_DIR}`,
      )
    if (n.encryption.configPath && n.encryption.configPathMounted === false)
      problems.push(
        `${n.node}: ${n.encryption.configPath} is not inside any volumeMount of the apiserver container; the apiserver cannot read it`,
      )
    for (const e of n.config.errors) problems.push(`${n.node}: ${e}`)
    for (const k of failingKms) problems.push(kmsUnhealthyProblem(n.node, k, n.apiserver.ready))
    if (n.config.hash && n.config.loadedHash && n.config.source === 'ssh' && n.config.hash !== n.config.loadedHash) {
      problems.push(
        `${n.node}: the apiserver runs config ${n.config.loadedHash}, the file on disk is ${n.config.hash}${n.encryption.automaticReload ? ' (not reloaded yet, or the reload failed)' : ' (restart needed)'}`,
      )
    }
    if (n.reloads && n.reloads.failure > 0)
      problems.push(`${n.node}: ${n.reloads.failure} automatic reload(s) of the config failed`)
  }
  for (const [provider, hashes] of kmsKeyDrift(nodes)) {
    const parts = [...hashes].map(
      ([hash, names]) => `${names.join(', ')} ${names.length === 1 ? 'reports' : 'report'} ${hash}`,
    )
    problems.push(
      `KMS key ID drift for provider ${provider}: ${parts.join('; ')}; every apiserver must report the same key ID before a rewrite`,
    )
  }
  const enabled = nodes.filter((n) => n.encryption.enabled)
  if (enabled.length === 0 && nodes.length > 0)
    problems.push('encryption at rest is off: no apiserver has --encryption-provider-config')
  else if (enabled.length < nodes.length) {
    problems.push(
      `encryption is on for ${enabled.map((n) => n.node).join(', ')} but off for ${nodes
        .filter((n) => !n.encryption.enabled)
        .map((n) => n.node)
        .join(', ')}`,
    )
  }
  if (!result.agreement.agree) {
    const parts = Object.entries(result.agreement.hashes).map(([hash, names]) => `${names.join(', ')}: ${hash}`)
    problems.push(
      `the nodes run different encryption configs (${parts.join('; ')}); every apiserver must be able to read what any other writes`,
    )
  }
  for (const r of result.resources) {
    if (r.write === 'identity')
      problems.push(`${r.resource}: new writes are stored unencrypted (identity is the first provider)`)
  }
  if (result.scan) {
    for (const r of result.scan.resources) {
      const encryptedByConfig = r.writes !== undefined && r.writes !== 'identity'
      if (r.plaintext > 0 && encryptedByConfig)
        problems.push(`${r.resource}: ${r.plaintext} value(s) stored in plaintext`)
      // The current key ID may have no value under it yet: take it from the apiservers, not the scan.
      const currentKeyId = r.writes?.startsWith('kms:') ? agreedKmsKeys(nodes)[r.writes.slice(4)] : undefined
      const under = currentKeyId ? `${r.writes} key ID ${currentKeyId}` : (r.writes ?? '')
      if (r.stale > 0)
        problems.push(
          `${r.resource}: ${r.stale} value(s) not under the current write key ${under} (run 'kubectl encryption rewrite')`.replace(
            ' )',
            ')',
          ),
        )
      if (r.undecryptable > 0)
        problems.push(`${r.resource}: ${r.undecryptable} value(s) that no configured key can decrypt`)
    }
  }
  return problems
}

export async function encryptionStatus(deps: StatusDeps): Promise<StatusResult> {
  // The rotation state and the lock are independent reads: they go while the nodes are checked.
  const rotationRead = deps.rotation && settle(deps.rotation())
  const lockRead = deps.lock && settle(deps.lock())
  // With --config, the scan needs nothing from the nodes unless a KMS provider is configured (the
  // current key IDs come from the apiservers): it then runs while the nodes are checked.
  const localCheck = deps.localConfig && checkConfigBytes(deps.localConfig.bytes, deps.localConfig.path)
  const earlyScan =
    deps.scan && localCheck?.config && !hasKmsProvider(localCheck.config)
      ? settle(deps.scan(localCheck.config, {}))
      : undefined
  try {
    return await statusOfNodesAndScan(deps, {localCheck, earlyScan, rotationRead, lockRead})
  } finally {
    // On an error before the scan was awaited, let it end (it closes its etcd reader) before the session closes.
    await earlyScan
  }
}

function hasKmsProvider(config: EncryptionConfiguration): boolean {
  return config.resources.some((r) => r.providers.some((p) => p.kms !== undefined))
}

async function statusOfNodesAndScan(
  deps: StatusDeps,
  started: {
    localCheck?: ConfigCheck
    earlyScan?: Promise<Settled<ScanSummary>>
    rotationRead?: Promise<Settled<RotationStatus | undefined>>
    lockRead?: Promise<Settled<LeaseStatus | undefined>>
  },
): Promise<StatusResult> {
  const {localCheck, earlyScan, rotationRead, lockRead} = started
  deps.onProgress?.('Discovering control-plane nodes')
  const controlPlane = await deps.controlPlane()
  deps.onProgress?.(`Checking ${controlPlane.length} control-plane node(s)`)
  const checked = await Promise.all(controlPlane.map((node) => nodeStatus(node, deps)))
  const nodes = checked.map((c) => c.status)

  const hashes: Record<string, string[]> = {}
  for (const n of nodes) {
    const key = n.encryption.enabled ? (n.config.hash ?? 'unknown') : 'off'
    ;(hashes[key] ??= []).push(n.node)
  }
  const known = Object.keys(hashes).filter((h) => h !== 'unknown')
  const agreement = {agree: known.length <= 1, hashes}

  const result: StatusResult = {
    context: deps.context.contextName,
    server: deps.context.server,
    nodes,
    agreement,
    resources: [],
    problems: [],
    warnings: [],
  }

  let configCheck: ConfigCheck | undefined
  if (deps.localConfig && localCheck) {
    configCheck = localCheck
    result.config = {
      path: deps.localConfig.path,
      hash: configCheck.hash,
      source: 'file',
      warnings: configCheck.warnings,
      errors: configCheck.errors.length > 0 ? [configCheck.message] : [],
    }
  } else {
    const first = checked.find((c) => c.check?.config)
    if (first?.check) {
      configCheck = first.check
      result.config = {
        node: first.status.node,
        path: first.check.path,
        hash: first.check.hash,
        source: 'ssh',
        warnings: first.check.warnings,
        errors: first.check.errors.length > 0 ? [first.check.message] : [],
      }
    } else if (nodes.some((n) => n.encryption.enabled)) {
      result.warnings.push(
        'the encryption config could not be read over SSH; per-resource providers are unknown (pass --config FILE, or fix SSH access)',
      )
    }
  }
  if (configCheck?.config) {
    result.resources = resourceStatuses(configCheck.config)
    result.warnings.push(...configCheck.warnings)
  }
  for (const n of nodes) for (const note of n.notes) result.warnings.push(`${n.node}: ${note}`)
  const rotation = await rotationRead
  if (rotation) {
    if ('value' in rotation) result.rotation = rotation.value
    else
      result.warnings.push(
        `cannot read the rotation state (kube-system/kubectl-encryption-state): ${message(rotation.error)}`,
      )
    const r = result.rotation
    // A finished rotation whose key the config no longer has belongs to an earlier enable cycle
    // (decrypt-all, then enable again): not this config's history.
    const key = r && `${r.provider}:${r.newKey}`
    if (
      r?.status === 'done' &&
      result.resources.length > 0 &&
      !result.resources.some((x) => x.write === key || x.readOnly.includes(key!))
    )
      result.rotation = undefined
    else if (r && r.status !== 'done') {
      result.warnings.push(
        `a key rotation ${r.oldKey.provider}/${r.oldKey.name} -> ${r.provider}/${r.newKey} is ${r.status === 'failed' ? 'stopped' : 'in progress'} at stage ${r.stage}; continue it with '${r.next}'`,
      )
    }
  }
  const lock = await lockRead
  if (lock) {
    if ('value' in lock) result.lock = lock.value
    else
      result.warnings.push(
        `cannot read the cluster's lock (kube-system/kubectl-encryption-state): ${message(lock.error)}`,
      )
  }

  if (deps.scan) {
    let scanned: ScanSummary
    if (earlyScan) {
      const early = await earlyScan
      if ('error' in early) throw early.error
      scanned = early.value
    } else {
      deps.onProgress?.('Scanning etcd')
      scanned = await deps.scan(configCheck?.config, agreedKmsKeys(nodes))
    }
    result.scan = scanned
    if (Object.keys(agreedKmsKeys(nodes)).length === 0 && result.scan.resources.some((r) => r.kmsKeys?.length)) {
      result.warnings.push(
        'no current KMS key ID that every apiserver agrees on: KMS values are counted per key ID but not judged stale by key ID',
      )
    }
    for (const r of result.scan.resources)
      if (r.orphans > 0)
        result.warnings.push(`${r.resource}: ${r.orphans} object(s) in namespaces that no longer exist (orphans)`)
  }
  result.problems = problemsFor(result, nodes)
  return result
}

/** A short name for a manifest path, for tables. */
export function shortPath(path: string): string {
  return basename(path)
}
