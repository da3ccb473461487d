import {Flags} from '@oclif/core'

import {BaseCommand} from '../base-command.js'
import {EXIT, preconditionError, usageError} from '../errors.js'
import {kubeFlags, kubeOptionsFromFlags} from '../flags/kube.js'
import {formatTable} from '../output/render.js'
import {
  checkpointPath,
  defaultStateDir,
  FileCheckpointStore,
} from '../operations/rewrite-checkpoint.js'
import {REWRITE_DEFAULTS, rewrite, type RewriteEvent, type RewriteResult} from '../operations/rewrite.js'
import type {ApiResource} from '../kube/types.js'

export default class Rewrite extends BaseCommand<RewriteResult, typeof Rewrite> {
  static override summary = 'Re-encrypt existing objects with the current write key (no-op updates).'
  static override description = `Writes every object of the chosen resources back unchanged, each with its own resourceVersion. The API server re-encrypts values that are not under the current provider and key and skips the write otherwise, so "rewritten" counts objects whose resourceVersion changed and "already current" those it left alone. A 409 re-reads the object and retries, so a concurrent update is never lost. Lists are paged and streamed; requests are bounded by --concurrency and --qps.

Progress is checkpointed (in $XDG_STATE_HOME/kubectl-encryption/, or --state-file): after an interruption, run the same command with --resume to continue where it stopped.

Objects that cannot be written (admission webhook denial, RBAC, orphans in deleted namespaces, undecryptable values) are listed with the reason; the exit code is then 4.`

  static override examples = [
    {description: 'Rewrite every Secret in every namespace.', command: 'kubectl encryption rewrite -A'},
    {description: 'Only two namespaces, Secrets and ConfigMaps, gently.', command: 'kubectl encryption rewrite -n team-a -n team-b --resource secrets --resource configmaps --qps 20'},
    {description: 'Continue an interrupted run.', command: 'kubectl encryption rewrite -A --resume'},
    {description: 'See what would be written, as JSON.', command: 'kubectl encryption rewrite -A --dry-run -o json'},
  ]

  static override flags = {
    ...kubeFlags,
    namespace: Flags.string({char: 'n', description: 'Namespace to rewrite (repeatable). Default: the context namespace.', multiple: true, helpGroup: 'KUBE'}),
    'all-namespaces': Flags.boolean({char: 'A', description: 'Rewrite objects in all namespaces.', default: false, helpGroup: 'KUBE'}),
    resource: Flags.string({
      description: 'Resource to rewrite, e.g. secrets, configmaps, pandas.awesome.bears.example, or a wildcard *.apps (repeatable). Default: secrets.',
      multiple: true,
    }),
    selector: Flags.string({char: 'l', description: 'Label selector, as kubectl (e.g. app=web,tier!=db).'}),
    concurrency: Flags.integer({description: 'Requests in flight at once.', default: REWRITE_DEFAULTS.concurrency, min: 1, max: 256}),
    qps: Flags.integer({description: 'Requests per second over all requests (0 = no limit).', default: REWRITE_DEFAULTS.qps, min: 0}),
    'chunk-size': Flags.integer({description: 'Objects per list page, as kubectl.', default: REWRITE_DEFAULTS.pageSize, min: 1, max: 10_000}),
    resume: Flags.boolean({description: 'Continue the interrupted run of the same scope from its checkpoint.', default: false}),
    'state-file': Flags.string({description: 'Checkpoint file (default: one per cluster and scope under $XDG_STATE_HOME/kubectl-encryption/).'}),
    'dry-run': Flags.boolean({description: 'List and count; write nothing.', default: false}),
  }

  private abort = new AbortController()

  async execute(): Promise<RewriteResult> {
    const flags = this.flags
    const kube = kubeOptionsFromFlags(flags)
    if (flags['all-namespaces'] && flags.namespace?.length)
      throw usageError('USAGE', 'use either -n/--namespace or -A/--all-namespaces, not both', {hint: 'Pass -A for every namespace, or one -n per namespace.'})

    const {connectCluster} = await import('../kube/connect.js')
    const cluster = await connectCluster(kube)
    try {
      const resources = await this.resolveResources(cluster.discovery, flags.resource ?? ['secrets'])
      const namespaces = flags['all-namespaces'] ? undefined : flags.namespace?.length ? [...new Set(flags.namespace)] : [cluster.context.namespace]
      const clusterIdentity = `${cluster.context.server}|${cluster.context.contextName}|${cluster.context.user}`
      const scopeForFile = JSON.stringify([clusterIdentity, resources.map((r) => `${r.group}/${r.resource}`), namespaces ?? '*', flags.selector ?? ''])
      const store = new FileCheckpointStore(flags['state-file'] ?? checkpointPath(defaultStateDir(), scopeForFile))

      const progress = await this.progress('rewrite: listing…')
      const reporter = new ProgressReporter((text) => progress.update(text), (message) => this.warn(message))
      const onSignal = () => this.abort.abort()
      process.once('SIGINT', onSignal)
      process.once('SIGTERM', onSignal)
      try {
        const result = await rewrite(
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
            onEvent: (event) => reporter.on(event),
          },
          {client: cluster.objects, checkpoints: store},
        )
        progress.stop()
        if (result.interrupted) this.warn(`interrupted; progress saved in ${result.checkpoint}. Run the same command with --resume to continue.`)
        else if (result.checkpoint) this.warn(`some listings failed; progress saved in ${result.checkpoint}. Fix the cause and run the same command with --resume.`)
        return result
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
      cluster.close()
    }
  }

  private async resolveResources(discovery: {resources(): Promise<ApiResource[]>}, names: string[]): Promise<ApiResource[]> {
    const {ResourceIndex} = await import('../kube/resource-index.js')
    const index = new ResourceIndex(await discovery.resources())
    const found = new Map<string, ApiResource>()
    for (const name of names) {
      const matches = name.startsWith('*.') ? index.expand(name) : [index.resolve(name)].filter((r): r is ApiResource => r !== undefined)
      if (matches.length === 0)
        throw usageError('UNKNOWN_RESOURCE', `the server does not serve a resource named ${JSON.stringify(name)}`, {
          hint: "Check the name with 'kubectl api-resources'; custom resources are written <plural>.<group>.",
        })
      for (const r of matches) {
        if (r.verbs && !(r.verbs.includes('list') && r.verbs.includes('update')))
          throw preconditionError('RESOURCE_NOT_UPDATABLE', `${name} cannot be listed and updated through the API`, {
            hint: 'Rewrite only resources that support list and update.',
          })
        found.set(`${r.group}/${r.resource}`, r)
      }
    }
    return [...found.values()]
  }

  protected override exitCodeFor(result: RewriteResult): number {
    return result.failures.length > 0 || result.totals.failed > 0 || result.interrupted || result.failuresTruncated > 0 ? EXIT.partial : EXIT.ok
  }

  protected renderTable(result: RewriteResult, wide: boolean): string {
    const headers = ['resource', 'listed', result.dryRun ? 'would rewrite' : 'rewritten', 'already current', 'conflicts retried', 'skipped', 'failed']
    if (wide) headers.push('complete')
    const row = (name: string, r: RewriteResult['totals'] & {complete?: boolean}) => {
      const cells: Array<string | number> = [name, r.listed, result.dryRun ? r.wouldRewrite : r.rewritten, r.alreadyCurrent, r.conflictsRetried, r.skipped, r.failed]
      if (wide) cells.push(r.complete === undefined ? '' : r.complete ? 'yes' : 'no')
      return cells
    }
    const rows = result.resources.map((r) => row(r.resource, r))
    if (result.resources.length > 1) rows.push(row('TOTAL', result.totals))
    const lines = [formatTable(headers, rows)]
    if (result.failures.length > 0) {
      lines.push('', formatTable(['object', 'reason', 'message'], result.failures.map((f) => [failureObject(f), f.reason, f.message])))
      if (result.failuresTruncated > 0) lines.push(`… and ${result.failuresTruncated} more failures`)
    }
    const scope = result.namespaces === 'all' ? 'all namespaces' : `namespace${result.namespaces.length > 1 ? 's' : ''} ${result.namespaces.join(', ')}`
    lines.push(
      '',
      `${result.dryRun ? 'Dry run: nothing written. ' : ''}${scope}${result.resumed ? ', resumed' : ''}${result.interrupted ? ', INTERRUPTED' : ''}: ` +
        `${result.totals.listed} objects in ${(result.elapsedMs / 1000).toFixed(1)}s (${result.objectsPerSecond}/s)`,
    )
    return lines.join('\n')
  }
}

function failureObject(f: RewriteResult['failures'][number]): string {
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
  ) {}

  on(event: RewriteEvent): void {
    switch (event.type) {
      case 'progress': {
        this.doneAtStart ??= event.done
        const seconds = (performance.now() - this.started) / 1000
        const rate = seconds > 0 ? (event.done - this.doneAtStart) / seconds : 0
        const of = event.total === undefined ? '' : `/${event.total}`
        const eta = event.total !== undefined && rate > 0 ? ` · ETA ${formatSeconds((event.total - event.done) / rate)}` : ''
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
      default:
    }
  }
}

function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return '?'
  if (s < 90) return `${Math.ceil(s)}s`
  return `${Math.floor(s / 60)}m${String(Math.ceil(s % 60)).padStart(2, '0')}s`
}
