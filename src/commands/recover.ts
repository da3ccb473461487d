import {Flags} from '@oclif/core'

import {BaseCommand} from '../base-command.js'
import {clusterOptions, withCluster} from '../cli/cluster-session.js'
import {confirmation} from '../cli/confirmation.js'
import {configFromBytes} from '../controlplane/cluster-config.js'
import {EXIT, usageError} from '../errors.js'
import {readConfigFlag} from '../flags/config-file.js'
import {etcdFlags} from '../flags/etcd.js'
import {kubeFlags, namespaceFlags} from '../flags/kube.js'
import {sshFlags} from '../flags/ssh.js'
import {toPluginError} from '../kube/errors.js'
import {recoverView} from '../output/views/recover.js'
import {type RecoverResult, recoverConfig, recoverUndecryptable, UNSAFE_DELETE_VERB} from '../usecases/recover.js'

type Result = RecoverResult & {context: string}

export default class Recover extends BaseCommand<Result, typeof Recover> {
  static override summary =
    'Delete the objects no configured key can read (after saving each raw value to a 0600 backup file).'
  static override description =
    `Finds the objects whose value in etcd no key of the apiservers' EncryptionConfiguration can decrypt (the etcd scan of 'status --scan', and the StorageReadError causes the API lists), then deletes them through the API with ignoreStoreReadErrorWithClusterBreakingPotential (KEP-3926). Such objects break lists and block namespace deletion.

Before anything is deleted: the server must serve the option (Kubernetes 1.37+, or --feature-gates=AllowUnsafeMalformedObjectDeletion=true on 1.32–1.36) and a SelfSubjectAccessReview must grant delete and ${UNSAFE_DELETE_VERB} on each resource (exit 3 with the RBAC rule to add otherwise); the list is shown and you type the context name (scripts pass --yes); every raw value is saved with its etcd key to one new 0600 file in --backup-dir. The delete skips finalizers and admission: an object others depend on can break them. The server refuses to delete an object it can read again (reported as readable).

--dry-run lists and checks, and changes nothing. Exit 0 when every object was deleted (or nothing was found), 4 when some deletes failed. To put a value back if its key turns up, see the README ('etcdctl put').`
  static override examples = [
    'kubectl encryption recover --dry-run -A',
    'kubectl encryption recover -n team-a --backup-dir ./recover-backups',
    'kubectl encryption recover -A --resource secrets --resource configmaps --yes --backup-dir /var/backups/k8s',
  ]
  static override flags = {
    ...kubeFlags,
    ...namespaceFlags,
    ...sshFlags,
    ...etcdFlags,
    resource: Flags.string({
      description:
        'Recover this resource (e.g. secrets, configmaps); repeatable. Default: what the config covers (secrets when encryption is off).',
      multiple: true,
    }),
    config: Flags.string({
      description: 'Use this local EncryptionConfiguration file instead of reading the one on the nodes.',
    }),
    'backup-dir': Flags.string({
      description: "Directory for the run's backup file (one new 0600 file per run; created 0700 if missing).",
      default: '.',
    }),
    'dry-run': Flags.boolean({
      description: 'List what would be deleted and run the checks; change nothing.',
      default: false,
    }),
    yes: Flags.boolean({char: 'y', description: 'Do not ask for confirmation (for scripts).', default: false}),
    'page-size': Flags.integer({description: 'Keys per etcd page.', default: 500, min: 1, max: 10_000}),
  }

  async execute(): Promise<Result> {
    const flags = this.flags
    if (flags.namespace !== undefined && flags['all-namespaces'])
      throw usageError('USAGE', '--namespace and --all-namespaces cannot be used together')
    const options = clusterOptions(flags)
    const local = await readConfigFlag(flags.config)
    const localConfig = local && configFromBytes(local.bytes, local.path)
    const progress = await this.progress('Connecting to the cluster')
    return withCluster(
      options,
      progress,
      async ({cluster, signal, controlPlane, openEtcd, configFromNodes}) => {
        const context = cluster.context.contextName
        try {
          let resources = flags.resource
          let config = localConfig
          if (!config) {
            const fromNodes = recoverConfig(await configFromNodes(), await controlPlane())
            config = fromNodes.config
            resources ??= fromNodes.resources
          }
          const reader = await openEtcd()
          try {
            const result = await recoverUndecryptable(
              {
                resources,
                namespace: flags['all-namespaces'] ? undefined : (flags.namespace ?? cluster.context.namespace),
                dryRun: flags['dry-run'],
                backupDir: flags['backup-dir'],
                pageSize: flags['page-size'],
              },
              {
                reader,
                config: config.config,
                configSource: config.source,
                objects: cluster.objects,
                discovery: cluster.discovery,
                access: cluster.access,
                probe: cluster.probe,
                confirm: confirmation({
                  yes: flags.yes,
                  typeContext: true,
                  context,
                  refusal: 'Refusing to delete objects without confirmation.',
                  progress,
                }),
                onProgress: (text) => progress.update(text),
                signal,
              },
              context,
            )
            return {context, ...result}
          } finally {
            await reader.close()
          }
        } catch (error) {
          throw withContext(toPluginError(error), context)
        }
      },
      {interruptible: true},
    )
  }

  protected override exitCodeFor(result: Result): number {
    return result.totals.failed > 0 ? EXIT.partial : EXIT.ok
  }

  protected renderTable(result: Result, wide: boolean): string {
    return recoverView(result, wide)
  }
}

/** A refusal or failure keeps the list found so far, with the context. */
function withContext(error: unknown, context: string): unknown {
  const partial = (error as {partialResult?: object} | undefined)?.partialResult
  if (partial && !('context' in partial)) (error as {partialResult?: object}).partialResult = {context, ...partial}
  return error
}
