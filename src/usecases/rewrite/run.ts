/**
 * `kubectl encryption rewrite` around its two engines. Before the first write (planRewrite): what to
 * rewrite (--resource, or the resources of the cluster's EncryptionConfiguration, through
 * discovery), which values are stale (--only-stale and --verify: an etcd scan judged by the write
 * key, KMS key IDs from the apiservers), the checkpoint's scope, and the admission webhooks every
 * write goes through. Then (runRewrite) the client engine or the storage-version migrator, and
 * with --verify a second scan.
 */
import type {ControlPlaneNode} from '../../controlplane/control-plane.js'
import {configFromNodes} from '../../controlplane/cluster-config.js'
import {checkConfigBytes} from '../../encryption/config/load.js'
import type {EtcdReader} from '../../etcd/etcd-reader.js'
import {preconditionError, usageError} from '../../errors.js'
import {ResourceIndex} from '../../kube/resource-index.js'
import type {ApiResource, KubeCluster} from '../../kube/types.js'
import type {RemoteFiles} from '../../ssh/remote-files.js'
import {agreedKey, apiserverKmsKeys} from '../status/kms-keys.js'
import {type ResourceStatus, resourceStatuses} from '../status/status.js'
import {type CheckpointStore, checkpointPath, defaultStateDir, FileCheckpointStore} from './checkpoint.js'
import {storedBytesPerObject} from './estimate.js'
import {resourceName, rewrite, type RewriteEvent, type RewriteResult} from './rewrite.js'
import {EtcdStaleIndex} from './stale-index.js'
import {findUpdateWebhooks, type UpdateWebhook, webhooksListWarning, webhookWarning} from './webhooks.js'

export interface RewriteCommandResult extends RewriteResult {
  /** Where the encryption config came from: a node over SSH, --config, or unknown. */
  config: {source: 'ssh' | 'file' | 'unknown'; node?: string; path?: string}
  /** Admission webhooks whose rules match UPDATE of the rewritten resources (warned about before the run). */
  webhooks: UpdateWebhook[]
  /** Why the webhook configurations could not be listed (e.g. RBAC); the run went on. */
  webhooksListError?: string
  /** --verify: values still not under the current write key after the run, per resource. */
  verify?: {
    resources: Array<{resource: string; write: string; scanned: number; stillStale: number; examples: string[]}>
  }
}

/** What the flags ask for. */
export interface RewriteRunOptions {
  engine: 'client' | 'svm'
  /** --resource as typed; undefined: the config's resources (secrets when it cannot be read). */
  resources?: string[]
  /** -n (undefined: the context namespace); ignored with allNamespaces. */
  namespaces?: string[]
  allNamespaces: boolean
  labelSelector?: string
  concurrency: number
  qps: number
  /** Built-in resources in protobuf (RewriteOptions.protobuf). */
  protobuf?: boolean
  pageSize: number
  dryRun: boolean
  resume: boolean
  onlyStale: boolean
  verify: boolean
  /** --config: the file as read (it is validated here). */
  localConfig?: {path: string; bytes: Buffer}
  /** --state-file; else one file per cluster and scope in the state dir. */
  stateFile?: CheckpointStore
}

export interface RewriteRunDeps {
  cluster: Pick<KubeCluster, 'context' | 'objects' | 'discovery' | 'probe'>
  controlPlane(): Promise<ControlPlaneNode[]>
  /** A node's files over SSH; undefined with --no-ssh. */
  nodeFiles?: (node: ControlPlaneNode) => RemoteFiles
  openEtcd(): Promise<EtcdReader>
  warn(message: string): void
  /** With --verbose: why the config could not be read from the nodes. */
  log?(line: string): void
}

/** Everything decided before the first write. */
export interface RewritePlan {
  config?: {resources: ResourceStatus[]; source: RewriteCommandResult['config']}
  resources: ApiResource[]
  /** undefined: every namespace. */
  namespaces?: string[]
  clusterIdentity: string
  store: CheckpointStore
  /** With --only-stale or --verify: the etcd scan, and its reader (the caller closes it). */
  staleIndex?: EtcdStaleIndex
  reader?: EtcdReader
  webhookCheck: {webhooks: UpdateWebhook[]; listError?: string}
}

export async function planRewrite(options: RewriteRunOptions, deps: RewriteRunDeps): Promise<RewritePlan> {
  const {cluster} = deps
  const svm = options.engine === 'svm'
  const needsEtcd = options.onlyStale || options.verify
  const config =
    options.resources && !needsEtcd && !options.localConfig
      ? undefined
      : await encryptionConfig(options.localConfig, deps)
  if (!config && !options.resources)
    deps.warn('the encryption config could not be read (pass --config FILE or fix SSH access); rewriting secrets only')
  if (!config && needsEtcd)
    throw preconditionError(
      'CONFIG_UNKNOWN',
      `--${options.onlyStale ? 'only-stale' : 'verify'} needs the cluster's encryption config to know the current write key`,
      {
        hint: "Pass --config FILE (a copy of the apiserver's --encryption-provider-config), or let the plugin read it over SSH (--ssh-config, --ssh-user, ...).",
      },
    )
  const resources = await resolveResources(
    cluster.discovery,
    options.resources ?? config?.resources.map((r) => r.resource) ?? ['secrets'],
    !options.resources && Boolean(config),
    deps.warn,
  )
  const plan: Partial<RewritePlan> = {config, resources}
  try {
    if (needsEtcd) {
      const rules = config!.resources
      plan.reader = await deps.openEtcd()
      plan.staleIndex = new EtcdStaleIndex(
        plan.reader,
        (r) => writeProviderFor(rules, r),
        undefined,
        undefined,
        await kmsCurrentKeys(rules, resources, deps),
      )
    }
    if (svm && !options.allNamespaces && resources.some((r) => r.namespaced))
      throw usageError(
        'USAGE',
        '--engine svm rewrites every namespace: pass -A (or use --engine client for one namespace)',
      )
    const namespaces = options.allNamespaces
      ? undefined
      : options.namespaces?.length
        ? [...new Set(options.namespaces)]
        : [cluster.context.namespace]
    const clusterIdentity = `${cluster.context.server}|${cluster.context.contextName}|${cluster.context.user}`
    const scopeForFile = JSON.stringify([
      clusterIdentity,
      resources.map((r) => `${r.group}/${r.resource}`),
      namespaces ?? '*',
      options.labelSelector ?? '',
      // The client engine's files keep their old names; svm runs get their own.
      ...(svm ? ['svm'] : []),
    ])
    // --engine svm on a server without the API: exit 3 now, before warnings about a run that cannot happen.
    if (svm) await (await import('./svm-engine.js')).findMigrationApi(cluster.discovery)
    // Before anything is written: the webhooks every no-op write will go through.
    const webhookCheck = await findUpdateWebhooks(cluster.objects, resources)
    for (const w of webhookCheck.webhooks) deps.warn(webhookWarning(w))
    if (webhookCheck.listError) deps.warn(webhooksListWarning(webhookCheck.listError))
    return {
      ...plan,
      resources,
      namespaces,
      clusterIdentity,
      store: options.stateFile ?? new FileCheckpointStore(checkpointPath(defaultStateDir(), scopeForFile)),
      webhookCheck,
    }
  } catch (error) {
    await plan.reader?.close().catch(() => undefined)
    throw error
  }
}

/** The engine the options name, over the plan; then what the run left to do, and the --verify scan. */
export async function runRewrite(
  plan: RewritePlan,
  options: RewriteRunOptions,
  run: {signal: AbortSignal; onEvent: (event: RewriteEvent) => void; onVerify: () => void},
  deps: RewriteRunDeps,
): Promise<RewriteCommandResult> {
  const {cluster} = deps
  const {resources, namespaces, clusterIdentity, store, staleIndex, config} = plan
  const result =
    options.engine === 'svm'
      ? await (await import('./svm-engine.js')).rewriteWithMigrator(
          {
            resources,
            dryRun: options.dryRun,
            resume: options.resume,
            clusterIdentity,
            signal: run.signal,
            onEvent: run.onEvent,
          },
          {client: cluster.objects, discovery: cluster.discovery, checkpoints: store},
        )
      : await rewrite(
          {
            resources,
            namespaces,
            labelSelector: options.labelSelector,
            concurrency: options.concurrency,
            qps: options.qps,
            protobuf: options.protobuf,
            pageSize: options.pageSize,
            dryRun: options.dryRun,
            resume: options.resume,
            clusterIdentity,
            signal: run.signal,
            onlyStale: options.onlyStale,
            onEvent: run.onEvent,
          },
          {
            client: cluster.objects,
            checkpoints: store,
            staleIndex,
            bytesPerObject: () => storedBytesPerObject(cluster.probe),
          },
        )
  const next = whatNext(result)
  if (next) deps.warn(next)
  let verify: RewriteCommandResult['verify']
  if (options.verify && staleIndex && !result.interrupted) {
    run.onVerify()
    verify = {resources: []}
    for (const r of resources) {
      const before = staleIndex.scanned
      const stale = []
      for (const ns of r.namespaced && namespaces ? namespaces : [undefined])
        stale.push(...(await staleIndex.staleObjects(r, ns)))
      verify.resources.push({
        resource: resourceName(r),
        write: writeProviderFor(config!.resources, r),
        scanned: staleIndex.scanned - before,
        stillStale: stale.length,
        examples: stale.slice(0, 10).map((ref) => (ref.namespace ? `${ref.namespace}/${ref.name}` : ref.name)),
      })
    }
  }
  return {
    ...result,
    config: config ? config.source : {source: 'unknown'},
    webhooks: plan.webhookCheck.webhooks,
    webhooksListError: plan.webhookCheck.listError,
    verify,
  }
}

/** A run that kept its checkpoint: how to go on. */
function whatNext(result: RewriteResult): string | undefined {
  if (result.engine === 'svm' && result.interrupted)
    return `interrupted; the migrations go on in the cluster and the run is saved in ${result.checkpoint}. Run the same command with --resume to follow them.`
  if (result.engine === 'svm' && result.checkpoint)
    return `a migration failed; the run is saved in ${result.checkpoint}. Fix the cause and run the same command with --resume to create it anew.`
  if (result.interrupted)
    return `interrupted; progress saved in ${result.checkpoint}. Run the same command with --resume to continue.`
  if (result.checkpoint)
    return `some listings failed; progress saved in ${result.checkpoint}. Fix the cause and run the same command with --resume.`
  const failed = result.failures.length + result.failuresTruncated
  if (failed > 0) {
    const unavailable = result.failures.filter((f) => f.reason === 'Unavailable').length
    return `${failed} object(s) could not be rewritten${unavailable > 0 ? ` (${unavailable} Unavailable: the API server could not store them; for KMS, see 'kubectl encryption status')` : ''}. Fix the cause and run the same command again${result.onlyStale ? '' : ' (add --only-stale to write only the values still stale)'}.`
  }
  return undefined
}

/** The write provider for a resource: the config rule that matches it (docs/kubernetes-behaviour.md §8.3: exact, then *.group, then *.*). */
export function writeProviderFor(rules: ResourceStatus[], resource: ApiResource): string {
  const exact = resource.group ? `${resource.resource}.${resource.group}` : resource.resource
  const rule =
    rules.find((r) => r.resource === exact) ??
    rules.find((r) => r.resource === `*.${resource.group}`) ??
    rules.find((r) => r.resource === '*.*')
  return rule?.write ?? 'identity'
}

/**
 * Per KMS write provider, the key ID hash every apiserver reports as current: values under another
 * key ID are stale. Apiservers that disagree (a KEK rotation not yet picked up everywhere) stop the
 * run: a rewrite now could store values under the old key again.
 */
async function kmsCurrentKeys(
  rules: ResourceStatus[],
  resources: ApiResource[],
  deps: Pick<RewriteRunDeps, 'controlPlane' | 'cluster' | 'warn'>,
): Promise<Record<string, string>> {
  const names = [
    ...new Set(
      resources
        .map((r) => writeProviderFor(rules, r))
        .filter((w) => w.startsWith('kms:'))
        .map((w) => w.slice(4)),
    ),
  ]
  if (names.length === 0) return {}
  const reports = await apiserverKmsKeys(await deps.controlPlane(), deps.cluster.probe)
  const current: Record<string, string> = {}
  for (const name of names) {
    const agreed = agreedKey(reports, name)
    const parts = Object.entries(agreed.reportedBy).map(([hash, nodes]) => `${nodes.join(', ')}: ${hash}`)
    if (parts.length > 1) {
      throw preconditionError(
        'KMS_KEY_ID_DRIFT',
        `the apiservers report different current key IDs for KMS provider ${name} (${parts.join('; ')})`,
        {
          hint: "Wait until 'kubectl encryption status' shows one key ID on every node (the apiservers poll the plugin about once a minute), then run again.",
        },
      )
    }
    if (agreed.keyIdHash) current[name] = agreed.keyIdHash
    else
      deps.warn(
        `no apiserver reports a current key ID for KMS provider ${name}; its values are judged by provider name only`,
      )
  }
  return current
}

/** The cluster's EncryptionConfiguration rules (resource -> write provider): --config, or a node over SSH. */
async function encryptionConfig(
  localConfig: {path: string; bytes: Buffer} | undefined,
  deps: Pick<RewriteRunDeps, 'controlPlane' | 'nodeFiles' | 'log'>,
): Promise<RewritePlan['config']> {
  if (localConfig) {
    const check = checkConfigBytes(localConfig.bytes, localConfig.path)
    if (!check.config || check.errors.length > 0)
      throw usageError(
        'CONFIG_INVALID',
        `--config ${localConfig.path} is not a valid EncryptionConfiguration: ${check.message}`,
      )
    return {resources: resourceStatuses(check.config), source: {source: 'file', path: localConfig.path}}
  }
  if (!deps.nodeFiles) return undefined
  // One node's file is enough to know what to rewrite; `status` is where nodes are compared.
  try {
    const {found, reason} = await configFromNodes(await deps.controlPlane(), deps.nodeFiles)
    if (!found) {
      if (reason) deps.log?.(`reading the encryption config from the nodes: ${reason}`)
      return undefined
    }
    const resources = resourceStatuses(found.config)
    if (resources.length === 0) return undefined
    return {resources, source: {source: 'ssh', node: found.node, path: found.path}}
  } catch (error) {
    deps.log?.(`reading the encryption config from the nodes failed: ${(error as Error).message}`)
    return undefined
  }
}

/**
 * Resources by name (as kubectl accepts them) or config wildcard, through discovery. Names the user
 * typed must exist and support list+update; names from the config that the server does not serve,
 * or that cannot be updated, are skipped with a warning.
 */
async function resolveResources(
  discovery: {resources(): Promise<ApiResource[]>},
  names: string[],
  fromConfig: boolean,
  warn: (message: string) => void,
): Promise<ApiResource[]> {
  const index = new ResourceIndex(await discovery.resources())
  const found = new Map<string, ApiResource>()
  const updatable = (r: ApiResource) => !r.verbs || (r.verbs.includes('list') && r.verbs.includes('update'))
  for (const name of names) {
    const wildcard = name.startsWith('*.')
    const matches = wildcard
      ? index.expand(name).filter(updatable)
      : [index.resolve(name)].filter((r): r is ApiResource => r !== undefined)
    if (matches.length === 0 && !wildcard) {
      if (fromConfig) {
        warn(`the encryption config lists ${name}, which the server does not serve; skipped`)
        continue
      }
      throw usageError('RESOURCE_UNKNOWN', `the server does not serve a resource named ${JSON.stringify(name)}`, {
        hint: "Check the name with 'kubectl api-resources'; custom resources are written <plural>.<group>.",
      })
    }
    for (const r of matches) {
      if (!updatable(r)) {
        if (fromConfig) continue
        throw preconditionError('RESOURCE_NOT_UPDATABLE', `${name} cannot be listed and updated through the API`, {
          hint: 'Rewrite only resources that support list and update.',
        })
      }
      found.set(`${r.group}/${r.resource}`, r)
    }
  }
  return [...found.values()]
}
