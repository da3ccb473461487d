import {Flags} from '@oclif/core'

import {BaseCommand} from '../base-command.js'
import {confirmation} from '../cli/confirmation.js'
import {discoverControlPlane} from '../controlplane/control-plane.js'
import type {EncryptionConfiguration} from '../encryption/config/model.js'
import {describeReader} from '../etcd/etcd-reader.js'
import {EXIT, preconditionError, usageError} from '../errors.js'
import {readConfigFlag} from '../flags/config-file.js'
import {etcdFlags, etcdOptionsFromFlags} from '../flags/etcd.js'
import {kubeFlags, kubeOptionsFromFlags, namespaceFlags} from '../flags/kube.js'
import {sshFlags, sshOptionsFromFlags} from '../flags/ssh.js'
import {connectCluster} from '../kube/connect.js'
import {toPluginError} from '../kube/errors.js'
import {type ClusterConfig, configFromBytes, configFromNodes} from '../controlplane/cluster-config.js'
import {openEtcdReader} from '../etcd/etcd-access.js'
import {type RecoverResult, recoverUndecryptable, UNSAFE_DELETE_VERB} from '../usecases/recover.js'
import {formatFields, formatTable} from '../output/render.js'
import {OpenSshConnector} from '../ssh/open-ssh-session.js'
import {ShellRemoteFiles} from '../ssh/shell-remote-files.js'

type Result = RecoverResult & {context: string}

/** With encryption off the apiserver reads every value as identity: encrypted ones are the unreadable. */
const IDENTITY_ONLY: EncryptionConfiguration = {
  apiVersion: 'apiserver.config.k8s.io/v1',
  kind: 'EncryptionConfiguration',
  resources: [{resources: ['*.*'], providers: [{identity: {}}]}],
}

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
    const kube = kubeOptionsFromFlags(flags)
    const etcdOptions = etcdOptionsFromFlags(flags)
    const connector = new OpenSshConnector(sshOptionsFromFlags(flags))
    const local = await readConfigFlag(flags.config)
    const localConfig = local && configFromBytes(local.bytes, local.path)
    const progress = await this.progress('Connecting to the cluster')
    const cluster = await connectCluster(kube).catch((error: unknown) => {
      progress.stop()
      throw toPluginError(error)
    })
    const stop = new AbortController()
    const onSignal = () => stop.abort()
    process.on('SIGINT', onSignal)
    process.on('SIGTERM', onSignal)
    let controlPlane: ReturnType<typeof discoverControlPlane> | undefined
    const discover = () => (controlPlane ??= discoverControlPlane(cluster.objects))
    const context = cluster.context.contextName
    try {
      let resources = flags.resource
      let config: ClusterConfig | undefined = localConfig
      if (!config) {
        progress.update('Reading the encryption config from a control-plane node')
        const nodes = await discover()
        const fromNodes = await configFromNodes(
          nodes,
          (node) => new ShellRemoteFiles(connector.open({name: node.name, internalIP: node.internalIP})),
        )
        if (fromNodes.found) config = fromNodes.found
        else if (!nodes.some((n) => n.apiservers.some((a) => a.encryption.configPath))) {
          config = {config: IDENTITY_ONLY, source: 'none (encryption is off: values are read as identity)'}
          resources ??= ['secrets']
        } else {
          throw preconditionError(
            'CONFIG_UNAVAILABLE',
            `cannot tell which values are unreadable: ${fromNodes.reason}; nothing was deleted.`,
            {
              hint: 'Fix SSH to the control-plane nodes (--ssh-* flags), or pass the config the apiservers run with --config FILE.',
            },
          )
        }
      }
      const reader = await openEtcdReader(etcdOptions, {controlPlane: discover, exec: cluster.exec, ssh: connector})
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
            signal: stop.signal,
          },
          context,
        )
        return {context, ...result}
      } finally {
        await reader.close()
      }
    } catch (error) {
      throw withContext(toPluginError(error), context)
    } finally {
      process.off('SIGINT', onSignal)
      process.off('SIGTERM', onSignal)
      progress.stop()
      cluster.close()
    }
  }

  protected override exitCodeFor(result: Result): number {
    return result.totals.failed > 0 ? EXIT.partial : EXIT.ok
  }

  protected renderTable(result: Result, wide: boolean): string {
    const sections = [
      formatFields([
        ['Context', result.context],
        ['Config', result.config],
        ['etcd', `${describeReader(result.etcd)}: ${result.scanned} values`],
        [
          'Scope',
          `${result.scope.resources.join(', ') || '-'} ${result.scope.namespace === undefined ? 'in all namespaces' : `in namespace ${result.scope.namespace}`}`,
        ],
        [
          'Unsafe delete',
          result.feature
            ? `${result.feature.served ? 'served' : 'NOT served'} (${result.feature.evidence})`
            : undefined,
        ],
        [
          'RBAC',
          result.access.length > 0
            ? result.access.every((a) => a.allowed)
              ? `granted (delete, ${UNSAFE_DELETE_VERB})`
              : `MISSING: ${result.access
                  .filter((a) => !a.allowed)
                  .map((a) => `${a.verb} ${a.resource}${a.namespace ? ` -n ${a.namespace}` : ''}`)
                  .join(', ')}`
            : undefined,
        ],
        [
          'Backup',
          result.backupFile ? `${result.backupFile} (0600: etcd key and raw value of each object)` : undefined,
        ],
      ]),
    ]
    if (result.objects.length === 0) {
      sections.push('Nothing to recover: every value in scope is readable with the config.')
    } else {
      const headers = wide
        ? ['resource', 'namespace', 'name', 'stored as', 'found by', 'status', 'etcd key', 'detail']
        : ['resource', 'namespace', 'name', 'stored as', 'status', 'detail']
      sections.push(
        formatTable(
          headers,
          result.objects.map((o) => {
            const detail = o.message ?? (o.status === 'listed' ? o.error : '')
            return wide
              ? [o.resource, o.namespace ?? '-', o.name, o.storedAs, o.foundBy.join('+'), o.status, o.etcdKey, detail]
              : [o.resource, o.namespace ?? '-', o.name, o.storedAs, o.status, detail]
          }),
        ),
      )
      const t = result.totals
      sections.push(
        result.dryRun
          ? `Dry run: nothing was changed. ${t.found} object${t.found === 1 ? '' : 's'} would be deleted.`
          : `${t.deleted} deleted, ${t.gone} already gone, ${t.readable} readable again (kept), ${t.failed} failed, of ${t.found}.`,
      )
    }
    if (result.backupFile)
      sections.push(
        `To put a value back if its key turns up, see 'etcdctl put' in the README; the backup holds each value exactly as etcd stored it.`,
      )
    if (result.warnings.length > 0) sections.push(`Warnings:\n${result.warnings.map((w) => `  - ${w}`).join('\n')}`)
    return sections.join('\n\n') + '\n'
  }
}

/** A refusal or failure keeps the list found so far, with the context. */
function withContext(error: unknown, context: string): unknown {
  const partial = (error as {partialResult?: object} | undefined)?.partialResult
  if (partial && !('context' in partial)) (error as {partialResult?: object}).partialResult = {context, ...partial}
  return error
}
