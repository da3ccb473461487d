/**
 * `kubectl encryption recover`: deletes the objects whose stored value no configured key can read,
 * through the API's unsafe delete (KEP-3926, DeleteOptions.ignoreStoreReadErrorWithClusterBreakingPotential),
 * after saving every raw value to a 0600 backup file.
 *
 * Found twice over: the etcd scan (`scan.ts`, each value read as the apiserver would with its
 * config) and the API's own word (a list answers 500 StorageReadError with one cause per value it
 * could not read, its etcd key in `field`; at most 100 per list). Nothing is deleted unless the
 * server serves the option (AllowUnsafeMalformedObjectDeletion), a SelfSubjectAccessReview grants
 * `delete` and `unsafe-delete-ignore-read-errors` for every resource and namespace involved, the
 * user confirmed, and the backup is on disk. The server itself refuses (409) to delete an object it
 * can read, so a key that came back in between costs nothing.
 */
import {mkdir} from 'node:fs/promises'
import {join} from 'node:path'

import type {ClusterConfig} from '../controlplane/cluster-config.js'
import type {ControlPlaneNode} from '../controlplane/control-plane.js'
import {parsePrometheusText} from '../controlplane/metrics.js'
import type {EncryptionConfiguration, GroupResource} from '../encryption/config/model.js'
import {etcdPrefixFor, groupResourceForKey} from '../encryption/storage/etcd-key.js'
import {formatGroupResource} from '../encryption/config/resource-match.js'
import {classifyValue} from '../encryption/storage/value-classifier.js'
import {type EtcdReader, type EtcdReaderInfo, SCAN_PAGE_BYTES} from '../etcd/etcd-reader.js'
import {interruptedError, isPluginError, PluginError, preconditionError, withPartialResult} from '../errors.js'
import {ResourceIndex} from '../kube/resource-index.js'
import {
  type AccessReviewer,
  type ApiResource,
  type EndpointProbe,
  KubeApiError,
  type ObjectClient,
  type ResourceDiscovery,
} from '../kube/types.js'
import {classifyApiError, errorMessage} from './rewrite/api-errors.js'
import {writePrivateFile} from '../state/private-file.js'
import {type UndecryptableValue, scanValues} from './scan/scan-engine.js'
import {scanPrefixes, scanTargets} from './status/scan-targets.js'

export const UNSAFE_DELETE_VERB = 'unsafe-delete-ignore-read-errors'
export const FEATURE_GATE = 'AllowUnsafeMalformedObjectDeletion'
/** The one metric the feature check reads. */
const FEATURE_ENABLED_METRIC: ReadonlySet<string> = new Set(['kubernetes_feature_enabled'])
const ROLE_NAME = 'kubectl-encryption-recover'
const LIST_PAGE = 500

export interface RecoverOptions {
  /** --resource values; default: what the config covers. */
  resources?: string[]
  /** -n; undefined with -A (every namespace). */
  namespace?: string
  dryRun: boolean
  /** Where the run's backup file goes (created 0700 if missing). */
  backupDir: string
  pageSize?: number
  etcdPrefix?: string
}

export interface RecoverDeps {
  reader: EtcdReader
  /** The configuration the apiservers run (identity only when encryption is off). */
  config: EncryptionConfiguration
  /** Where the config came from, for the result: `cp-1:/etc/kubernetes/enc/enc.yaml`, a local file. */
  configSource: string
  objects: ObjectClient
  discovery: ResourceDiscovery
  access: AccessReviewer
  /** /metrics (feature gates) and /version. */
  probe: EndpointProbe
  /** Asked once, after the list and the checks, before the backup; false aborts. Undefined: --yes. */
  confirm?(question: string): Promise<boolean>
  /** Writes the backup; default a new 0600 file (never replaces one). */
  writeBackup?(path: string, data: string): Promise<void>
  now?(): Date
  onProgress?(text: string): void
  /** Ctrl-C: stop before the next delete. */
  signal?: AbortSignal
}

export type RecoverStatus = 'listed' | 'deleted' | 'gone' | 'readable' | 'failed'

export interface RecoverObject {
  /** As in configuration files: `secrets`, `deployments.apps`. */
  resource: string
  namespace?: string
  name: string
  etcdKey: string
  /** How the value is stored: `aescbc:key1`, `identity`, `kms:<name>`. */
  storedAs: string
  /** Why it cannot be read (the apiserver's text). */
  error: string
  /** Who found it: the etcd scan, the API's StorageReadError causes, or both. */
  foundBy: Array<'etcd' | 'api'>
  /**
   * listed (dry run, or not reached), deleted, gone (already deleted by someone else), readable
   * (the server can read it now and refused the unsafe delete: nothing to recover), failed.
   */
  status: RecoverStatus
  message?: string
}

export interface AccessCheckResult {
  verb: string
  resource: string
  namespace?: string
  allowed: boolean
}

export interface RecoverResult {
  dryRun: boolean
  etcd: EtcdReaderInfo
  config: string
  scope: {resources: string[]; namespace?: string}
  /** Values the scan read. */
  scanned: number
  /** Whether the server honours ignoreStoreReadErrorWithClusterBreakingPotential, and how we know. */
  feature?: {served: boolean; evidence: string}
  access: AccessCheckResult[]
  /** The run's backup file (absent in a dry run or when nothing was found). */
  backupFile?: string
  objects: RecoverObject[]
  totals: {found: number; deleted: number; gone: number; readable: number; failed: number}
  warnings: string[]
}

interface Target {
  api: ApiResource
  id: string
}

interface Found extends RecoverObject {
  value: Buffer
  modRevision: number
  target: Target
}

/** The backup file: everything `etcdctl put` needs to put a value back, per object. */
export interface RecoverBackup {
  kind: 'KubectlEncryptionRecoverBackup'
  version: 1
  createdAt: string
  context?: string
  objects: Array<{
    etcdKey: string
    resource: string
    namespace?: string
    name: string
    storedAs: string
    modRevision: number
    valueBase64: string
  }>
}

export async function recoverUndecryptable(
  options: RecoverOptions,
  deps: RecoverDeps,
  context?: string,
): Promise<RecoverResult> {
  const targets = await resolveTargets(options, deps)
  const found = new Map<string, Found>()
  const warnings: string[] = []
  const result: RecoverResult = {
    dryRun: options.dryRun,
    etcd: deps.reader.describe(),
    config: deps.configSource,
    scope: {resources: targets.map((t) => t.id), namespace: options.namespace},
    scanned: 0,
    access: [],
    objects: [],
    totals: {found: 0, deleted: 0, gone: 0, readable: 0, failed: 0},
    warnings,
  }
  const byKey = new Map(targets.map((t) => [etcdPrefixFor(t.api, {prefix: options.etcdPrefix}), t]))
  const targetFor = (key: string) => {
    for (const [prefix, target] of byKey) if (key.startsWith(prefix)) return target
    return undefined
  }
  const add = (v: UndecryptableValue, by: 'etcd' | 'api') => {
    const target = targetFor(v.key)
    if (!target) return
    if (options.namespace !== undefined && target.api.namespaced && v.namespace !== options.namespace) return
    const seen = found.get(v.key)
    if (seen) {
      if (!seen.foundBy.includes(by)) seen.foundBy.push(by)
      return
    }
    found.set(v.key, {
      resource: target.id,
      ...(v.namespace === undefined ? {} : {namespace: v.namespace}),
      name: v.name,
      etcdKey: v.key,
      storedAs: v.storedAs,
      error: v.error,
      foundBy: [by],
      status: 'listed',
      value: v.value,
      modRevision: v.modRevision,
      target,
    })
  }

  // 1. etcd: every value under the targets' prefixes (one namespace's keys only, with -n).
  const prefixes = scanPrefixes(
    targets.map((t) => t.api),
    options.etcdPrefix,
  ).map((p) => {
    const target = targetFor(p)
    return options.namespace !== undefined && target?.api.namespaced ? `${p}${options.namespace}/` : p
  })
  const reader = deps.reader
  async function* pages() {
    for (const prefix of prefixes) yield* reader.range(prefix, {pageSize: options.pageSize, pageBytes: SCAN_PAGE_BYTES})
  }
  const scan = await scanValues({
    pages: pages(),
    config: deps.config,
    etcdPrefix: options.etcdPrefix,
    onProgress: (e) => deps.onProgress?.(`Scanning etcd through ${reader.describe().transport}: ${e.scanned} values`),
    onUndecryptable: (v) => add(v, 'etcd'),
    signal: deps.signal,
  })
  result.scanned = scan.keys

  // 2. The API: what it says it cannot read. The reason StorageReadError exists only with the feature on.
  let evidence: RecoverResult['feature']
  for (const target of targets) {
    deps.onProgress?.(`Listing ${target.id} through the API`)
    const answer = await apiUnreadable(deps.objects, target.api, options.namespace)
    if (answer.kind === 'storageReadError') {
      evidence ??= {served: true, evidence: `the API's list of ${target.id} answered StorageReadError`}
      if (answer.truncated)
        warnings.push(
          `the API's list of ${target.id} named only the first ${answer.keys.length} unreadable values; the etcd scan finds the rest`,
        )
      for (const {key, message} of answer.keys) {
        const seen = found.get(key)
        if (seen) {
          if (!seen.foundBy.includes('api')) seen.foundBy.push('api')
          continue
        }
        const kv = await reader.get(key)
        if (!kv) continue // deleted since
        const parsed = groupResourceForKey(key, {prefix: options.etcdPrefix})
        if (parsed.name === undefined) continue
        const c = classifyValue(kv.value)
        const storedAs =
          c.kmsName !== undefined
            ? `${c.provider}:${c.kmsName}`
            : c.keyName !== undefined
              ? `${c.provider}:${c.keyName}`
              : c.provider
        add(
          {
            key,
            value: kv.value,
            modRevision: kv.modRevision,
            resource: target.id,
            group: parsed.group,
            namespace: parsed.namespace,
            name: parsed.name,
            storedAs,
            error: message,
          },
          'api',
        )
      }
    } else if (answer.kind === 'internalError') {
      evidence ??= {
        served: false,
        evidence: `the API's list of ${target.id} answered a plain 500 for unreadable values, not StorageReadError (${FEATURE_GATE} is off)`,
      }
    } else if (answer.kind === 'error') {
      warnings.push(`could not list ${target.id} through the API (${answer.message}); only the etcd scan was used`)
    }
  }

  const list = [...found.values()].sort((a, b) => a.etcdKey.localeCompare(b.etcdKey))
  result.objects = list.map(publicView)
  result.totals.found = list.length
  if (list.length === 0) return result

  // 3. The checks, before any question: a run that would be refused asks nothing.
  const fail = (error: PluginError) => withPartialResult(error, result)
  deps.onProgress?.('Checking that the server serves the unsafe delete')
  result.feature = evidence ?? (await featureFromServer(deps.probe))
  if (!result.feature.served) {
    throw fail(
      preconditionError(
        'UNSAFE_DELETE_NOT_SERVED',
        `the server does not serve ignoreStoreReadErrorWithClusterBreakingPotential (${result.feature.evidence}); nothing was deleted.`,
        {
          hint: `Kubernetes 1.37+ serves it by default; on 1.32–1.36 start every kube-apiserver with --feature-gates=${FEATURE_GATE}=true.`,
        },
      ),
    )
  }
  deps.onProgress?.('Checking RBAC (SelfSubjectAccessReview)')
  const pairs = new Map<string, {target: Target; namespace?: string}>()
  for (const o of list)
    pairs.set(`${o.target.id}\u0000${o.namespace ?? ''}`, {
      target: o.target,
      namespace: o.target.api.namespaced ? o.namespace : undefined,
    })
  for (const {target, namespace} of pairs.values()) {
    for (const verb of ['delete', UNSAFE_DELETE_VERB]) {
      const review = await deps.access.canI({verb, group: target.api.group, resource: target.api.resource, namespace})
      result.access.push({
        verb,
        resource: target.id,
        ...(namespace === undefined ? {} : {namespace}),
        allowed: review.allowed,
      })
    }
  }
  const denied = result.access.filter((a) => !a.allowed)
  if (denied.length > 0) {
    const user = await deps.access.whoAmI()
    throw fail(
      preconditionError(
        'UNSAFE_DELETE_FORBIDDEN',
        `not allowed to ${denied.map((d) => `${d.verb} ${d.resource}${d.namespace ? ` in namespace ${d.namespace}` : ''}`).join(', ')} (SelfSubjectAccessReview); nothing was deleted.`,
        {hint: rbacHint(denied, targets, user)},
      ),
    )
  }
  if (options.dryRun) return result

  // 4. The user's word, then the backup, then the deletes.
  if (deps.confirm) {
    const shown = list
      .slice(0, 20)
      .map((o) => `  ${o.resource} ${o.namespace ? `${o.namespace}/` : ''}${o.name} (${o.storedAs})`)
    if (list.length > shown.length) shown.push(`  … and ${list.length - shown.length} more (see --dry-run)`)
    const question = `${shown.join('\n')}\nDelete these ${list.length} objects that no configured key can read? They are removed from etcd without finalizers or admission (each raw value is saved to a 0600 file in ${options.backupDir} first).`
    if (!(await deps.confirm(question)))
      throw new PluginError('precondition', 'ABORTED', 'Aborted: nothing was changed.')
  }
  const now = deps.now?.() ?? new Date()
  const path = join(options.backupDir, `recover-${now.toISOString().replace(/[:.]/g, '-')}.json`)
  const backup: RecoverBackup = {
    kind: 'KubectlEncryptionRecoverBackup',
    version: 1,
    createdAt: now.toISOString(),
    ...(context ? {context} : {}),
    objects: list.map((o) => ({
      etcdKey: o.etcdKey,
      resource: o.resource,
      ...(o.namespace === undefined ? {} : {namespace: o.namespace}),
      name: o.name,
      storedAs: o.storedAs,
      modRevision: o.modRevision,
      valueBase64: o.value.toString('base64'),
    })),
  }
  try {
    await mkdir(options.backupDir, {recursive: true, mode: 0o700})
    await (deps.writeBackup ?? writePrivateFile)(path, JSON.stringify(backup, null, 2) + '\n')
  } catch (error) {
    const reason = isPluginError(error)
      ? error.message.replace(/;? ?nothing was written\.?$/, '')
      : ((error as NodeJS.ErrnoException).code ?? (error as Error).message)
    throw fail(
      preconditionError('BACKUP_FAILED', `cannot write the backup ${path} (${reason}); nothing was deleted.`, {
        hint: 'Pass --backup-dir with a local directory you can write to.',
      }),
    )
  }
  result.backupFile = path

  for (const [i, o] of list.entries()) {
    if (deps.signal?.aborted) {
      result.objects = list.map(publicView)
      throw withPartialResult(
        interruptedError(
          `object ${i + 1} of ${list.length} (the rest are listed, not deleted; the backup holds them all)`,
        ),
        result,
      )
    }
    deps.onProgress?.(
      `Deleting ${i + 1}/${list.length}: ${o.resource} ${o.namespace ? `${o.namespace}/` : ''}${o.name}`,
    )
    await deleteOne(deps.objects, o)
  }
  result.objects = list.map(publicView)
  for (const o of result.objects) if (o.status !== 'listed') result.totals[o.status]++
  return result
}

function publicView(o: Found): RecoverObject {
  const {value: _value, modRevision: _rev, target: _target, ...rest} = o
  return {...rest, foundBy: [...rest.foundBy]}
}

async function resolveTargets(options: RecoverOptions, deps: RecoverDeps): Promise<Target[]> {
  const grs: GroupResource[] = await scanTargets({
    config: deps.config,
    discovery: deps.discovery,
    resources: options.resources,
  })
  const index = new ResourceIndex(await deps.discovery.resources())
  const targets: Target[] = []
  for (const gr of grs) {
    const api = index.get(gr.group, gr.resource)
    // a config entry for a resource this server does not serve has nothing stored to recover
    if (!api || targets.some((t) => t.api === api)) continue
    targets.push({api, id: formatGroupResource(gr)})
  }
  return targets
}

type ApiAnswer =
  | {kind: 'clean'}
  | {kind: 'storageReadError'; keys: Array<{key: string; message: string}>; truncated: boolean}
  | {kind: 'internalError'}
  | {kind: 'error'; message: string}

/** Lists the resource (pages of 500) and returns what a StorageReadError names. */
async function apiUnreadable(objects: ObjectClient, api: ApiResource, namespace?: string): Promise<ApiAnswer> {
  let continueToken: string | undefined
  try {
    do {
      const page = await objects.list(api, {
        namespace: api.namespaced ? namespace : undefined,
        limit: LIST_PAGE,
        continueToken,
      })
      continueToken = page.continueToken
    } while (continueToken)
    return {kind: 'clean'}
  } catch (error) {
    if (error instanceof KubeApiError && error.status === 500 && error.reason === 'StorageReadError') {
      const causes = error.details?.causes ?? []
      const keys = causes
        .filter((c) => c.field?.startsWith('/'))
        .map((c) => ({key: c.field!, message: c.message ?? error.message}))
      return {kind: 'storageReadError', keys, truncated: causes.some((c) => c.reason === 'TooMany')}
    }
    if (error instanceof KubeApiError && error.status === 500 && classifyApiError(error).kind === 'fail')
      return {kind: 'internalError'}
    return {kind: 'error', message: errorMessage(error)}
  }
}

/** /metrics' kubernetes_feature_enabled; else the version: on by default from 1.37. */
async function featureFromServer(probe: EndpointProbe): Promise<{served: boolean; evidence: string}> {
  const metrics = await probe.get('/metrics').catch(() => undefined)
  if (metrics?.status === 200) {
    const sample = parsePrometheusText(metrics.body, FEATURE_ENABLED_METRIC).find(
      (s) => s.name === 'kubernetes_feature_enabled' && s.labels.name === FEATURE_GATE,
    )
    if (sample)
      return {
        served: sample.value === 1,
        evidence: `/metrics: kubernetes_feature_enabled{name="${FEATURE_GATE}"} ${sample.value}`,
      }
  }
  const version = await probe.get('/version').catch(() => undefined)
  if (version?.status === 200) {
    try {
      const {major, minor, gitVersion} = JSON.parse(version.body) as {
        major?: string
        minor?: string
        gitVersion?: string
      }
      const m = Number.parseInt(minor ?? '', 10)
      if (major === '1' && m >= 37)
        return {served: true, evidence: `${gitVersion ?? `1.${m}`}: ${FEATURE_GATE} is on by default`}
      if (major === '1' && m < 32)
        return {served: false, evidence: `${gitVersion ?? `1.${m}`} predates the option (added in 1.32)`}
      return {
        served: false,
        evidence: `${gitVersion ?? `1.${m}`}: ${FEATURE_GATE} is off by default and /metrics could not be read to tell`,
      }
    } catch {
      // fall through
    }
  }
  return {served: false, evidence: 'neither /metrics nor /version answered'}
}

function rbacHint(denied: AccessCheckResult[], targets: Target[], user: string | undefined): string {
  const resources = [...new Set(denied.map((d) => d.resource))]
  const groups = [...new Set(resources.map((r) => targets.find((t) => t.id === r)?.api.group ?? ''))]
  const namespaces = [...new Set(denied.map((d) => d.namespace))]
  const subject = `--user=${user ?? '<your user>'}`
  const verbs = `--verb=delete,${UNSAFE_DELETE_VERB}`
  const rule = `rules: [{apiGroups: [${groups.map((g) => JSON.stringify(g)).join(', ')}], resources: [${resources.map((r) => JSON.stringify(r.split('.')[0])).join(', ')}], verbs: ["delete", "${UNSAFE_DELETE_VERB}"]}]`
  const lines = [`Add this rule to a ClusterRole (or a Role in the namespace) bound to you: ${rule}`, 'For example:']
  if (namespaces.length === 1 && namespaces[0] !== undefined) {
    const ns = namespaces[0]
    lines.push(
      `  kubectl create role ${ROLE_NAME} -n ${ns} ${verbs} --resource=${resources.join(',')}`,
      `  kubectl create rolebinding ${ROLE_NAME} -n ${ns} --role=${ROLE_NAME} ${subject}`,
    )
  } else {
    lines.push(
      `  kubectl create clusterrole ${ROLE_NAME} ${verbs} --resource=${resources.join(',')}`,
      `  kubectl create clusterrolebinding ${ROLE_NAME} --clusterrole=${ROLE_NAME} ${subject}`,
    )
  }
  lines.push(
    `(kubectl warns that ${UNSAFE_DELETE_VERB} is not a standard verb; the apiserver checks it for this delete option.)`,
  )
  return lines.join('\n')
}

async function deleteOne(objects: ObjectClient, o: Found): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await objects.delete(o.target.api, o.name, o.target.api.namespaced ? o.namespace : undefined, {
        ignoreStoreReadErrorWithClusterBreakingPotential: true,
      })
      o.status = 'deleted'
      return
    } catch (error) {
      const disposition = classifyApiError(error)
      if (disposition.kind === 'notFound') {
        o.status = 'gone'
        return
      }
      // the server read the value after all, so it refused: 409 from 1.37 (ExpectTransformOrDecodeError),
      // 422 "is exclusively used to delete corrupt object(s)" from 1.32–1.36
      if (
        disposition.kind === 'conflict' ||
        (error instanceof KubeApiError &&
          error.status === 422 &&
          /exclusively used to delete corrupt object/.test(error.message))
      ) {
        o.status = 'readable'
        o.message = 'the server can read it now and did not delete it'
        return
      }
      if (disposition.kind === 'transient' && attempt < 3) {
        await new Promise((resolve) => setTimeout(resolve, disposition.retryAfterMs ?? 500 * attempt))
        continue
      }
      o.status = 'failed'
      o.message = errorMessage(error)
      return
    }
  }
}

/** With encryption off the apiserver reads every value as identity: encrypted ones are the unreadable. */
const IDENTITY_ONLY: EncryptionConfiguration = {
  apiVersion: 'apiserver.config.k8s.io/v1',
  kind: 'EncryptionConfiguration',
  resources: [{resources: ['*.*'], providers: [{identity: {}}]}],
}

/**
 * The config to judge values with when no --config is given: the one read from a node; with
 * encryption off on every node, identity for everything (and secrets unless --resource says
 * otherwise). When a node has a config that could not be read, nothing can be judged (exit 3).
 */
export function recoverConfig(
  fromNodes: {found?: ClusterConfig; reason?: string} | undefined,
  nodes: ControlPlaneNode[],
): {config: ClusterConfig; resources?: string[]} {
  if (fromNodes?.found) return {config: fromNodes.found}
  if (!nodes.some((n) => n.apiservers.some((a) => a.encryption.configPath)))
    return {
      config: {config: IDENTITY_ONLY, source: 'none (encryption is off: values are read as identity)'},
      resources: ['secrets'],
    }
  throw preconditionError(
    'CONFIG_UNAVAILABLE',
    `cannot tell which values are unreadable: ${fromNodes?.reason}; nothing was deleted.`,
    {
      hint: 'Fix SSH to the control-plane nodes (--ssh-* flags), or pass the config the apiservers run with --config FILE.',
    },
  )
}
