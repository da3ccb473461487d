import {BaseCommand} from '../base-command.js'
import {clusterOptions, withCluster} from '../cli/cluster-session.js'
import {EXIT} from '../errors.js'
import {readConfigFlag} from '../flags/config-file.js'
import {checkRewriteFlags, rewriteFlags, stateFileFlag} from '../flags/rewrite.js'
import {RewriteProgress} from '../output/rewrite-progress.js'
import {rewriteView} from '../output/views/rewrite.js'
import {planRewrite, type RewriteCommandResult, type RewriteRunOptions, runRewrite} from '../usecases/rewrite/run.js'

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

  static override flags = rewriteFlags

  private abort = new AbortController()

  async execute(): Promise<RewriteCommandResult> {
    const flags = this.flags
    checkRewriteFlags(flags)
    // --no-ssh turns off all SSH here: the config is not read from a node, etcdctl does not run on one.
    const connection = clusterOptions(flags, 'all')
    const options: RewriteRunOptions = {
      engine: flags.engine === 'svm' ? 'svm' : 'client',
      resources: flags.resource,
      namespaces: flags.namespace,
      allNamespaces: flags['all-namespaces'],
      labelSelector: flags.selector,
      concurrency: flags.concurrency,
      qps: flags.qps,
      protobuf: flags.wire !== 'json',
      pageSize: flags['chunk-size'],
      dryRun: flags['dry-run'],
      resume: flags.resume,
      onlyStale: flags['only-stale'],
      verify: flags.verify,
      stateFile: await stateFileFlag(flags['state-file']),
      localConfig: await readConfigFlag(flags.config),
    }
    const log = this.verbose ? (line: string) => process.stderr.write(line + '\n') : undefined
    return withCluster(connection, undefined, async ({cluster, controlPlane, nodeFiles, openEtcd}) => {
      const deps = {cluster, controlPlane, nodeFiles, openEtcd, warn: (m: string) => this.warn(m), log}
      const plan = await planRewrite(options, deps)
      try {
        const progress = await this.progress('rewrite: listing…')
        const reporter = new RewriteProgress(
          (text) => progress.update(text),
          (message) => this.warn(message),
          (line) => {
            const resume = progress.pause()
            process.stderr.write(line + '\n')
            resume()
          },
          log,
        )
        const onSignal = () => this.abort.abort()
        process.once('SIGINT', onSignal)
        process.once('SIGTERM', onSignal)
        try {
          const result = await runRewrite(
            plan,
            options,
            {
              signal: this.abort.signal,
              onEvent: (event) => reporter.on(event),
              onVerify: () => progress.update('verify: scanning etcd'),
            },
            deps,
          )
          progress.stop()
          return result
        } catch (error) {
          progress.fail()
          throw error
        } finally {
          process.off('SIGINT', onSignal)
          process.off('SIGTERM', onSignal)
        }
      } finally {
        await plan.reader?.close().catch(() => undefined)
      }
    })
  }

  protected override exitCodeFor(result: RewriteCommandResult): number {
    if (result.failures.length > 0 || result.totals.failed > 0 || result.interrupted || result.failuresTruncated > 0)
      return EXIT.partial
    return result.verify?.resources.some((r) => r.stillStale > 0) ? EXIT.checkFailed : EXIT.ok
  }

  protected renderTable(result: RewriteCommandResult, wide: boolean): string {
    return rewriteView(result, wide)
  }
}
