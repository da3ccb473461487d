import {readConfigFlag} from '../flags/config-file.js'
import {Flags} from '@oclif/core'

import {BaseCommand} from '../base-command.js'
import {EXIT, preconditionError, usageError} from '../errors.js'
import {etcdFlags, etcdOptionsFromFlags} from '../flags/etcd.js'
import {kubeFlags, kubeOptionsFromFlags, parseNamespace} from '../flags/kube.js'
import {sshFlags, sshOptionsFromFlags} from '../flags/ssh.js'
import {labelSelectorProblem} from '../kube/label-selector.js'
import type {ApiResource} from '../kube/types.js'
import type {EtcdStaleIndex} from '../usecases/rewrite/stale-index.js'
import {checkpointPath, defaultStateDir, FileCheckpointStore} from '../usecases/rewrite/checkpoint.js'
import {
  REWRITE_DEFAULTS,
  resourceName,
  rewrite,
  type RewriteEvent,
  type RewriteResult,
} from '../usecases/rewrite/rewrite.js'
import {formatEstimate, storedBytesPerObject} from '../usecases/rewrite/estimate.js'
import type {UpdateWebhook} from '../usecases/rewrite/webhooks.js'
import type {ResourceStatus} from '../usecases/status/status.js'
import {formatTable} from '../output/render.js'

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

export default class Rewrite extends BaseCommand<RewriteCommandResult, typeof Rewrite> {
  static override summary = 'Re-encrypt existing objects with the current write key (no-op updates).'
  static override description =
    `Writes every object of the chosen resources back unchanged, each with its own resourceVersion. The API server re-encrypts values that are not under the current provider and key and skips the write otherwise, so "rewritten" counts objects whose resourceVersion changed and "already current" those it left alone. A 409 re-reads the object and retries, so a concurrent update is never lost. Lists are paged and streamed; requests are bounded by --concurrency and --qps.

Progress is checkpointed (in $XDG_STATE_HOME/kubectl-encryption/, or --state-file): after an interruption, run the same command with --resume to continue where it stopped.

With --only-stale (etcd access and the cluster's encryption config needed), etcd is scanned first and only objects whose value is not under the current write provider and key are written; --verify scans again afterwards and exits 5 if anything is still not current.

By default the resources are those the cluster's EncryptionConfiguration lists (read from a control-plane node over SSH, or --config FILE), wildcards expanded through discovery; secrets when the config cannot be read.

Before the first write it prints an estimate (objects per resource from one limit=1 list each, "unknown" when the server gives no count; their stored bytes from the apiserver's size and object-count metrics on /metrics, left out when /metrics is forbidden or has no size yet; time at --qps and --concurrency) and warns about every validating or mutating admission webhook whose rules match UPDATE of those resources: each no-op write goes through it (namespaceSelector, objectSelector or matchConditions may leave some out), and with failurePolicy Fail a webhook that is down fails those objects. -o json carries both (estimate, webhooks; webhooksListError when the configurations cannot be listed, which never stops the run).

Objects that cannot be written (admission webhook denial, RBAC, orphans in deleted namespaces, undecryptable values) are listed with the reason; the exit code is then 4.

With --engine svm the cluster does the writing: one StorageVersionMigration per resource (storagemigration.k8s.io/v1 from Kubernetes 1.37, v1beta1 behind the StorageVersionMigrator gate in 1.35–1.36), run by kube-controller-manager's storage-version migrator and followed here until it succeeded or failed. It covers every namespace (-A required; -n, --selector, --only-stale, --concurrency, --qps and --chunk-size do not apply). A Failed migration gives exit 4 with the controller's reason; --resume follows the run's migrations again (the interrupted ones keep running in the cluster) and creates a failed one anew. When the API is not served the exit code is 3.`

  static override examples = [
    {description: 'Rewrite every Secret in every namespace.', command: 'kubectl encryption rewrite -A'},
    {
      description: 'Only two namespaces, Secrets and ConfigMaps, gently.',
      command: 'kubectl encryption rewrite -n team-a -n team-b --resource secrets --resource configmaps --qps 20',
    },
    {description: 'Continue an interrupted run.', command: 'kubectl encryption rewrite -A --resume'},
    {description: 'See what would be written, as JSON.', command: 'kubectl encryption rewrite -A --dry-run -o json'},
    {
      description: 'After a key rotation on a big cluster: scan etcd, write only what is stale, check again.',
      command: 'kubectl encryption rewrite -A --only-stale --verify',
    },
    {
      description: "Let the cluster's storage-version migrator rewrite every Secret, then prove it from etcd.",
      command: 'kubectl encryption rewrite -A --engine svm --verify',
    },
  ]

  static override flags = {
    ...kubeFlags,
    ...sshFlags,
    ...etcdFlags,
    namespace: Flags.string({
      char: 'n',
      description: 'Namespace to rewrite (repeatable). Default: the context namespace.',
      multiple: true,
      helpGroup: 'KUBE',
      parse: parseNamespace,
    }),
    'all-namespaces': Flags.boolean({
      char: 'A',
      description: 'Rewrite objects in all namespaces.',
      default: false,
      helpGroup: 'KUBE',
    }),
    resource: Flags.string({
      description:
        'Resource to rewrite, e.g. secrets, configmaps, pandas.awesome.bears.example, or a wildcard *.apps (repeatable). Default: every resource the encryption config lists; secrets if it cannot be read.',
      multiple: true,
    }),
    selector: Flags.string({
      char: 'l',
      description: 'Label selector, as kubectl (e.g. app=web,tier!=db).',
      async parse(input) {
        const problem = labelSelectorProblem(input)
        if (problem) throw new Error(`invalid label selector ${JSON.stringify(input)}: ${problem}`)
        return input
      },
    }),
    concurrency: Flags.integer({
      description: 'Requests in flight at once.',
      default: REWRITE_DEFAULTS.concurrency,
      min: 1,
      max: 256,
    }),
    qps: Flags.integer({
      description: 'Requests per second over all requests (0 = no limit).',
      default: REWRITE_DEFAULTS.qps,
      min: 0,
    }),
    'chunk-size': Flags.integer({
      description: 'Objects per list page, as kubectl.',
      default: REWRITE_DEFAULTS.pageSize,
      min: 1,
      max: 10_000,
    }),
    resume: Flags.boolean({
      description: 'Continue the interrupted run of the same scope from its checkpoint.',
      default: false,
    }),
    'state-file': Flags.string({
      description: 'Checkpoint file (default: one per cluster and scope under $XDG_STATE_HOME/kubectl-encryption/).',
    }),
    'dry-run': Flags.boolean({description: 'List and count; write nothing.', default: false}),
    'only-stale': Flags.boolean({
      description: 'Scan etcd first and rewrite only values not under the current write key.',
      default: false,
    }),
    verify: Flags.boolean({
      description: 'Scan etcd afterwards and report (exit 5) values still not under the current write key.',
      default: false,
    }),
    config: Flags.string({
      description: "The cluster's EncryptionConfiguration as a local file, instead of reading it from a node over SSH.",
    }),
    ssh: Flags.boolean({
      description: 'Read the encryption config from a control-plane node over SSH (--no-ssh: do not).',
      default: true,
      allowNo: true,
    }),
    engine: Flags.string({
      description:
        "Who writes: client (this plugin, paced by --qps and --concurrency) or svm (the cluster's storage-version migrator in kube-controller-manager, one StorageVersionMigration per resource; needs -A).",
      options: ['client', 'svm'],
      default: 'client',
    }),
  }

  private abort = new AbortController()

  async execute(): Promise<RewriteCommandResult> {
    const flags = this.flags
    const kube = kubeOptionsFromFlags(flags)
    if (flags['all-namespaces'] && flags.namespace?.length)
      throw usageError('USAGE', 'use either -n/--namespace or -A/--all-namespaces, not both', {
        hint: 'Pass -A for every namespace, or one -n per namespace.',
      })

    const svm = flags.engine === 'svm'
    if (svm) checkSvmFlags(flags)

    const etcdOptions = etcdOptionsFromFlags(flags)
    const needsEtcd = flags['only-stale'] || flags.verify
    const stateFile =
      flags['state-file'] === undefined
        ? undefined
        : new FileCheckpointStore(flags['state-file'], {createDir: false, flag: '--state-file'})
    await stateFile?.check()
    const localConfig = await readConfigFlag(flags.config)
    const ssh = flags.ssh
      ? new (await import('../ssh/open-ssh-session.js')).OpenSshConnector(sshOptionsFromFlags(flags))
      : undefined

    const {connectCluster} = await import('../kube/connect.js')
    const cluster = await connectCluster(kube)
    let reader: {close(): Promise<void>} | undefined
    try {
      const {discoverControlPlane} = await import('../controlplane/control-plane.js')
      let controlPlane: ReturnType<typeof discoverControlPlane> | undefined
      const discover = () => (controlPlane ??= discoverControlPlane(cluster.objects))
      const config =
        flags.resource && !needsEtcd && !localConfig
          ? undefined
          : await this.encryptionConfig(discover, ssh, localConfig)
      const configInfo: RewriteCommandResult['config'] = config ? config.source : {source: 'unknown'}
      if (!config && !flags.resource)
        this.warn(
          'the encryption config could not be read (pass --config FILE or fix SSH access); rewriting secrets only',
        )
      if (!config && needsEtcd)
        throw preconditionError(
          'CONFIG_UNKNOWN',
          `--${flags['only-stale'] ? 'only-stale' : 'verify'} needs the cluster's encryption config to know the current write key`,
          {
            hint: "Pass --config FILE (a copy of the apiserver's --encryption-provider-config), or let the plugin read it over SSH (--ssh-config, --ssh-user, ...).",
          },
        )
      const resources = await this.resolveResources(
        cluster.discovery,
        flags.resource ?? config?.resources.map((r) => r.resource) ?? ['secrets'],
        !flags.resource && Boolean(config),
      )
      let staleIndex: EtcdStaleIndex | undefined
      if (needsEtcd) {
        const {openEtcdReader} = await import('../etcd/etcd-access.js')
        const {EtcdStaleIndex} = await import('../usecases/rewrite/stale-index.js')
        const etcd = await openEtcdReader(etcdOptions, {controlPlane: discover, exec: cluster.exec, ssh})
        reader = etcd
        staleIndex = new EtcdStaleIndex(
          etcd,
          (r) => writeProviderFor(config!.resources, r),
          undefined,
          undefined,
          await this.kmsCurrentKeys(config!.resources, resources, discover, cluster.probe),
        )
      }
      if (svm && !flags['all-namespaces'] && resources.some((r) => r.namespaced))
        throw usageError(
          'USAGE',
          '--engine svm rewrites every namespace: pass -A (or use --engine client for one namespace)',
        )
      const namespaces = flags['all-namespaces']
        ? undefined
        : flags.namespace?.length
          ? [...new Set(flags.namespace)]
          : [cluster.context.namespace]
      const clusterIdentity = `${cluster.context.server}|${cluster.context.contextName}|${cluster.context.user}`
      const scopeForFile = JSON.stringify([
        clusterIdentity,
        resources.map((r) => `${r.group}/${r.resource}`),
        namespaces ?? '*',
        flags.selector ?? '',
        // The client engine's files keep their old names; svm runs get their own.
        ...(svm ? ['svm'] : []),
      ])
      const store = stateFile ?? new FileCheckpointStore(checkpointPath(defaultStateDir(), scopeForFile))

      // Before anything is written: the webhooks every no-op write will go through.
      const {findUpdateWebhooks, webhookWarning, webhooksListWarning} = await import('../usecases/rewrite/webhooks.js')
      const webhookCheck = await findUpdateWebhooks(cluster.objects, resources)
      for (const w of webhookCheck.webhooks) this.warn(webhookWarning(w))
      if (webhookCheck.listError) this.warn(webhooksListWarning(webhookCheck.listError))

      const progress = await this.progress('rewrite: listing…')
      const reporter = new ProgressReporter(
        (text) => progress.update(text),
        (message) => this.warn(message),
        (line) => {
          const resume = progress.pause()
          process.stderr.write(line + '\n')
          resume()
        },
        this.verbose ? (line) => process.stderr.write(line + '\n') : undefined,
      )
      const onSignal = () => this.abort.abort()
      process.once('SIGINT', onSignal)
      process.once('SIGTERM', onSignal)
      try {
        const result = svm
          ? await (await import('../usecases/rewrite/svm-engine.js')).rewriteWithMigrator(
              {
                resources,
                dryRun: flags['dry-run'],
                resume: flags.resume,
                clusterIdentity,
                signal: this.abort.signal,
                onEvent: (event) => reporter.on(event),
              },
              {client: cluster.objects, discovery: cluster.discovery, checkpoints: store},
            )
          : await rewrite(
              {
                resources,
                namespaces,
                labelSelector: flags.selector,
                concurrency: flags.concurrency,
                qps: flags.qps,
                pageSize: flags['chunk-size'],
                dryRun: flags['dry-run'],
                resume: flags.resume,
                clusterIdentity,
                signal: this.abort.signal,
                onlyStale: flags['only-stale'],
                onEvent: (event) => reporter.on(event),
              },
              {
                client: cluster.objects,
                checkpoints: store,
                staleIndex,
                bytesPerObject: () => storedBytesPerObject(cluster.probe),
              },
            )
        if (result.engine === 'svm' && result.interrupted)
          this.warn(
            `interrupted; the migrations go on in the cluster and the run is saved in ${result.checkpoint}. Run the same command with --resume to follow them.`,
          )
        else if (result.engine === 'svm' && result.checkpoint)
          this.warn(
            `a migration failed; the run is saved in ${result.checkpoint}. Fix the cause and run the same command with --resume to create it anew.`,
          )
        else if (result.interrupted)
          this.warn(
            `interrupted; progress saved in ${result.checkpoint}. Run the same command with --resume to continue.`,
          )
        else if (result.checkpoint)
          this.warn(
            `some listings failed; progress saved in ${result.checkpoint}. Fix the cause and run the same command with --resume.`,
          )
        let verify: RewriteCommandResult['verify']
        if (flags.verify && staleIndex && !result.interrupted) {
          progress.update('verify: scanning etcd')
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
        progress.stop()
        return {
          ...result,
          config: configInfo,
          webhooks: webhookCheck.webhooks,
          webhooksListError: webhookCheck.listError,
          verify,
        }
      } catch (error) {
        progress.fail()
        throw error
      } finally {
        process.off('SIGINT', onSignal)
        process.off('SIGTERM', onSignal)
      }
    } catch (error) {
      const {toPluginError} = await import('../kube/errors.js')
      throw toPluginError(error)
    } finally {
      await reader?.close().catch(() => undefined)
      cluster.close()
    }
  }

  /**
   * Per KMS write provider, the key ID hash every apiserver reports as current: values under another
   * key ID are stale. Apiservers that disagree (a KEK rotation not yet picked up everywhere) stop the
   * run: a rewrite now could store values under the old key again.
   */
  private async kmsCurrentKeys(
    rules: ResourceStatus[],
    resources: ApiResource[],
    controlPlane: () => Promise<import('../controlplane/control-plane.js').ControlPlaneNode[]>,
    probe: import('../kube/types.js').EndpointProbe,
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
    const {agreedKey, apiserverKmsKeys} = await import('../usecases/status/kms-keys.js')
    const reports = await apiserverKmsKeys(await controlPlane(), probe)
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
        this.warn(
          `no apiserver reports a current key ID for KMS provider ${name}; its values are judged by provider name only`,
        )
    }
    return current
  }

  /** The cluster's EncryptionConfiguration rules (resource -> write provider): --config, or a node over SSH. */
  private async encryptionConfig(
    controlPlane: () => Promise<import('../controlplane/control-plane.js').ControlPlaneNode[]>,
    ssh: import('../ssh/open-ssh-session.js').OpenSshConnector | undefined,
    localConfig: {path: string; bytes: Buffer} | undefined,
  ): Promise<{resources: ResourceStatus[]; source: RewriteCommandResult['config']} | undefined> {
    const {resourceStatuses} = await import('../usecases/status/status.js')
    if (localConfig) {
      const {checkConfigBytes} = await import('../encryption/config/load.js')
      const check = checkConfigBytes(localConfig.bytes, localConfig.path)
      if (!check.config || check.errors.length > 0)
        throw usageError(
          'CONFIG_INVALID',
          `--config ${localConfig.path} is not a valid EncryptionConfiguration: ${check.message}`,
        )
      return {resources: resourceStatuses(check.config), source: {source: 'file', path: localConfig.path}}
    }
    if (!ssh) return undefined
    // One node's file is enough to know what to rewrite; `status` is where nodes are compared.
    const {ShellRemoteFiles} = await import('../ssh/shell-remote-files.js')
    const {configFromNodes} = await import('../controlplane/cluster-config.js')
    try {
      const {found, reason} = await configFromNodes(
        await controlPlane(),
        (node) => new ShellRemoteFiles(ssh.open({name: node.name, internalIP: node.internalIP})),
      )
      if (!found) {
        if (this.verbose && reason) process.stderr.write(`reading the encryption config from the nodes: ${reason}\n`)
        return undefined
      }
      const resources = resourceStatuses(found.config)
      if (resources.length === 0) return undefined
      return {resources, source: {source: 'ssh', node: found.node, path: found.path}}
    } catch (error) {
      if (this.verbose)
        process.stderr.write(`reading the encryption config from the nodes failed: ${(error as Error).message}\n`)
      return undefined
    }
  }

  /**
   * Resources by name (as kubectl accepts them) or config wildcard, through discovery. Names the user
   * typed must exist and support list+update; names from the config that the server does not serve,
   * or that cannot be updated, are skipped with a warning.
   */
  private async resolveResources(
    discovery: {resources(): Promise<ApiResource[]>},
    names: string[],
    fromConfig: boolean,
  ): Promise<ApiResource[]> {
    const {ResourceIndex} = await import('../kube/resource-index.js')
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
          this.warn(`the encryption config lists ${name}, which the server does not serve; skipped`)
          continue
        }
        throw usageError('UNKNOWN_RESOURCE', `the server does not serve a resource named ${JSON.stringify(name)}`, {
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

  protected override exitCodeFor(result: RewriteCommandResult): number {
    if (result.failures.length > 0 || result.totals.failed > 0 || result.interrupted || result.failuresTruncated > 0)
      return EXIT.partial
    return result.verify?.resources.some((r) => r.stillStale > 0) ? EXIT.checkFailed : EXIT.ok
  }

  protected renderTable(result: RewriteCommandResult, wide: boolean): string {
    const headers = [
      'resource',
      'listed',
      result.dryRun ? 'would rewrite' : 'rewritten',
      'already current',
      'conflicts retried',
      'skipped',
      'failed',
    ]
    if (wide) headers.push('complete')
    const row = (name: string, r: RewriteResult['totals'] & {complete?: boolean}) => {
      const cells: Array<string | number> = [
        name,
        r.listed,
        result.dryRun ? r.wouldRewrite : r.rewritten,
        r.alreadyCurrent,
        r.conflictsRetried,
        r.skipped,
        r.failed,
      ]
      if (wide) cells.push(r.complete === undefined ? '' : r.complete ? 'yes' : 'no')
      return cells
    }
    const rows = result.resources.map((r) => row(r.resource, r))
    if (result.resources.length > 1) rows.push(row('TOTAL', result.totals))
    const lines = [formatTable(headers, rows)]
    if (result.failures.length > 0) {
      lines.push(
        '',
        formatTable(
          ['object', 'reason', 'message'],
          result.failures.map((f) => [failureObject(f), f.reason, f.message]),
        ),
      )
      if (result.failuresTruncated > 0) lines.push(`… and ${result.failuresTruncated} more failures`)
    }
    if (result.verify) {
      lines.push(
        '',
        formatTable(
          ['verify: resource', 'write key', 'values scanned', 'still not current', 'examples'],
          result.verify.resources.map((v) => [
            v.resource,
            v.write,
            v.scanned,
            v.stillStale,
            v.examples.slice(0, 3).join(' '),
          ]),
        ),
      )
    }
    const scope =
      result.namespaces === 'all'
        ? 'all namespaces'
        : `namespace${result.namespaces.length > 1 ? 's' : ''} ${result.namespaces.join(', ')}`
    if (result.migrations?.length)
      lines.push(
        '',
        formatTable(
          ['storageversionmigration', 'resource', 'state'],
          result.migrations.map((m) => [m.name, m.resource, m.state]),
        ),
      )
    lines.push(
      '',
      `${result.dryRun ? 'Dry run: nothing written. ' : ''}${scope}${result.resumed ? ', resumed' : ''}${result.interrupted ? ', INTERRUPTED' : ''}: ` +
        `${result.totals.listed} objects in ${(result.elapsedMs / 1000).toFixed(1)}s (${result.objectsPerSecond}/s)`,
    )
    return lines.join('\n')
  }
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

function failureObject(f: RewriteResult['failures'][number]): string {
  if (f.migration) return `storageversionmigration/${f.migration}`
  if (!f.name) return `${f.resource} (list)${f.namespace ? ` -n ${f.namespace}` : ''}`
  return `${f.resource}/${f.name}${f.namespace ? ` -n ${f.namespace}` : ''}`
}

/** Turns operation events into one progress line: done/total, rate, ETA. */
class ProgressReporter {
  private started = performance.now()
  private doneAtStart?: number

  constructor(
    private readonly update: (text: string) => void,
    private readonly warn: (message: string) => void,
    /** A line of information on stderr (the estimate). */
    private readonly note: (line: string) => void,
    /** With --verbose: one line per retry, list restart and failure. */
    private readonly log?: (line: string) => void,
  ) {}

  on(event: RewriteEvent): void {
    switch (event.type) {
      case 'progress': {
        this.doneAtStart ??= event.done
        const seconds = (performance.now() - this.started) / 1000
        const rate = seconds > 0 ? (event.done - this.doneAtStart) / seconds : 0
        const of = event.total === undefined ? '' : `/${event.total}`
        const eta =
          event.total !== undefined && rate > 0 ? ` · ETA ${formatSeconds((event.total - event.done) / rate)}` : ''
        this.update(`rewrite: ${event.done}${of} objects · ${Math.round(rate)}/s${eta} · ${event.totals.failed} failed`)
        break
      }
      case 'start':
        this.doneAtStart = undefined
        this.started = performance.now()
        break
      case 'warning':
        this.warn(event.message)
        break
      case 'estimate':
        this.note(formatEstimate(event.estimate))
        break
      case 'migration':
        if (event.state === 'pending')
          this.update(
            `rewrite: waiting for the storage-version migrator to start ${event.name} · ${formatSeconds((event.waitedMs ?? 0) / 1000)}`,
          )
        else if (event.state === 'running') this.update(`rewrite: ${event.name} running`)
        // pending comes once a poll: only the changes go to the --verbose log
        if (event.state !== 'pending')
          this.log?.(
            `storageversionmigration/${event.name} (${event.resource}): ${event.state}${event.message ? `: ${event.message}` : ''}`,
          )
        break
      case 'retry':
        this.log?.(
          `retry ${event.attempt}: ${event.resource}${event.name ? `/${event.name}` : ' (list)'}${event.namespace ? ` -n ${event.namespace}` : ''} ` +
            `got ${event.status || 'no response'}; waiting ${(event.delayMs / 1000).toFixed(1)}s`,
        )
        break
      case 'listRestarted':
        this.log?.(
          `list of ${event.resource}${event.namespace ? ` -n ${event.namespace}` : ''} expired (410); restarted after ${event.afterKey ?? 'the start'} ` +
            `${event.usedContinueHint ? "with the server's continue hint" : 'by listing again'}`,
        )
        break
      case 'failure':
        this.log?.(
          `failed: ${event.failure.resource}/${event.failure.name ?? '(list)'}: ${event.failure.reason}: ${event.failure.message}`,
        )
        break
      default:
    }
  }
}

function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return '?'
  if (s < 90) return `${Math.ceil(s)}s`
  return `${Math.floor(s / 60)}m${String(Math.ceil(s % 60)).padStart(2, '0')}s`
}

/**
 * --engine svm: one StorageVersionMigration covers every object of a resource in every namespace,
 * at the controller's pace; options that narrow or pace the client's writes cannot be honoured.
 */
function checkSvmFlags(flags: {
  'only-stale': boolean
  namespace?: string[]
  selector?: string
  concurrency: number
  qps: number
  'chunk-size': number
}): void {
  const refused: Array<[boolean, string, string]> = [
    [flags['only-stale'], '--only-stale', 'the migrator writes every object of a resource'],
    [Boolean(flags.namespace?.length), '--namespace', 'a migration covers every namespace; pass -A'],
    [flags.selector !== undefined, '--selector', 'a migration covers every object of a resource'],
    [flags.concurrency !== REWRITE_DEFAULTS.concurrency, '--concurrency', 'the migrator sets its own pace'],
    [flags.qps !== REWRITE_DEFAULTS.qps, '--qps', 'the migrator sets its own pace'],
    [flags['chunk-size'] !== REWRITE_DEFAULTS.pageSize, '--chunk-size', 'the migrator reads from its own cache'],
  ]
  const first = refused.find(([given]) => given)
  if (first) throw usageError('USAGE', `${first[1]} cannot be used with --engine svm: ${first[2]}`)
}
