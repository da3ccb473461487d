import {BaseCommand} from '../base-command.js'
import {clusterOptions, withCluster} from '../cli/cluster-session.js'
import {TransformerBuildError} from '../encryption/transform/resource-transformer.js'
import {describeReader} from '../etcd/etcd-reader.js'
import {EXIT, preconditionError, usageError} from '../errors.js'
import {
  checkEtcdKey,
  inspectArgs,
  inspectFlags,
  loadConfig,
  objectEtcdKey,
  readKmsDek,
  refuseOldKeyFlag,
  valueFileInput,
} from '../flags/inspect.js'
import {inspectView} from '../output/views/inspect.js'
import {type InspectInput, type InspectResult, inspectValue} from '../usecases/inspect.js'

export default class Inspect extends BaseCommand<InspectResult, typeof Inspect> {
  static override summary =
    'Show what a raw etcd value is: provider, key, KMS envelope, format, and whether it decrypts.'
  static override description =
    `Classifies one stored value (spec: provider prefix, key name, KMS v2 key ID and its sha256 hash, plaintext format with apiVersion/kind) and, with --config, reads it exactly as kube-apiserver would for its etcd key: which provider and key open it, whether the next update would rewrite it (stale), or the apiserver's error when nothing can. --decrypt adds the decoded object (Secret data included); --hexdump adds the bytes as \`hexdump -C\` prints them. Exits 5 when a read was attempted and failed.

Key material is never accepted on the command line: --kms-dek names a file (mode 0600) holding the base64 DEK or seed a KMS plugin would return.`

  static override examples = [
    'etcdctl get /registry/secrets/default/s1 -w json > s1.json\nkubectl encryption inspect --value-file s1.json --config /etc/kubernetes/enc/enc.yaml',
    'kubectl encryption inspect --value-file s1.bin --key-path /registry/secrets/default/s1 --hexdump',
    'kubectl encryption inspect --value-file s1.bin --key-path /registry/secrets/default/s1 --config enc.yaml --decrypt -o json',
    'kubectl encryption inspect --value-file s1.bin --key-path /registry/secrets/default/s1 --kms-dek dek.b64',
    'kubectl encryption inspect --value-file unknown.bin --config enc.yaml --any-key',
    'kubectl encryption inspect secret/secret1 -n default --hexdump',
    'kubectl encryption inspect /registry/secrets/default/secret1 --decrypt',
  ]

  static override args = inspectArgs
  static override flags = inspectFlags

  async execute(): Promise<InspectResult> {
    const flags = this.flags
    refuseOldKeyFlag(flags['etcd-key'], flags['etcd-prefix'])
    const valueFile = flags['value-file']
    if (!valueFile) {
      if (this.args.object) return this.inspectFromCluster(this.args.object)
      throw usageError(
        'INSPECT_SOURCE',
        'nothing to inspect: name an object (TYPE/NAME, e.g. secret/db-pass, or an etcd key /registry/...) or pass --value-file FILE',
        {
          hint: "e.g. 'kubectl encryption inspect secret/db-pass -n team-a'; see 'kubectl encryption inspect --help'.",
        },
      )
    }
    if (this.args.object) throw usageError('INSPECT_SOURCE', 'give either an object or --value-file, not both')
    const {input, note} = await valueFileInput(valueFile, flags, (m) => this.warn(m))
    const result = this.inspect(input, `Check the file with 'kubectl encryption config validate ${flags.config}'.`)
    if (note) result.notes.push(note)
    return result
  }

  /** `inspect secret/name -n ns` or `inspect /registry/...`: the value read from etcd (docs/kubernetes-behaviour.md §12). */
  private async inspectFromCluster(object: string): Promise<InspectResult> {
    const flags = this.flags
    const options = clusterOptions(flags)
    if (flags['key-path'])
      throw usageError(
        'INSPECT_ETCD_KEY',
        'give the etcd key as the argument (inspect /registry/...), not with --key-path (that is for --value-file)',
      )
    if (object.startsWith('/')) checkEtcdKey(object, flags['etcd-prefix'], 'the etcd key')
    const localConfig = flags.config ? await loadConfig(flags.config) : undefined
    const kmsDek = flags['kms-dek'] ? await readKmsDek(flags['kms-dek'], (m) => this.warn(m)) : undefined
    const progress = await this.progress('Connecting to the cluster')
    return withCluster(options, progress, async ({cluster, openEtcd, configFromNodes}) => {
      const etcdKey = object.startsWith('/')
        ? object
        : await objectEtcdKey(object, cluster, flags.namespace, flags['etcd-prefix'])
      let config = localConfig
      const notes: string[] = []
      if (!config) {
        const fromNodes = await configFromNodes()
        config = fromNodes?.found?.config
        if (fromNodes?.found) notes.push(`config read from ${fromNodes.found.source}`)
        else if (fromNodes?.reason) notes.push(`no config: ${fromNodes.reason}`)
      }
      progress.update(`Reading ${etcdKey} from etcd`)
      const reader = await openEtcd()
      let kv: Awaited<ReturnType<typeof reader.get>>
      try {
        kv = await reader.get(etcdKey)
      } finally {
        await reader.close()
      }
      const etcd = describeReader(reader.describe())
      if (!kv) {
        throw preconditionError(
          'ETCD_KEY_NOT_FOUND',
          `there is no value at ${etcdKey} in etcd (read through ${etcd})`,
          {
            hint: "Check the name and namespace (-n), or the apiserver's --etcd-prefix (--etcd-prefix).",
          },
        )
      }
      const result = this.inspect({value: kv.value, source: `etcd:${etcd}`, etcdKey, config, kmsDek})
      result.notes.push(...notes)
      return result
    })
  }

  /**
   * inspectValue with what the flags say about every source (prefix, --decrypt, --hexdump,
   * --any-key); a config whose transformers cannot be built is exit 3, as the apiserver refuses it.
   */
  private inspect(
    input: Omit<InspectInput, 'etcdPrefix' | 'decrypt' | 'hexdump' | 'anyKey'>,
    hint?: string,
  ): InspectResult {
    const flags = this.flags
    try {
      return inspectValue({
        ...input,
        etcdPrefix: flags['etcd-prefix'],
        decrypt: flags.decrypt,
        hexdump: flags.hexdump,
        anyKey: flags['any-key'],
      })
    } catch (error) {
      if (!(error instanceof TransformerBuildError)) throw error
      throw preconditionError(
        'CONFIG_INVALID',
        `error while building transformers: ${error.message}`,
        hint ? {hint} : undefined,
      )
    }
  }

  protected override exitCodeFor(result: InspectResult): number {
    return result.decryption.status === 'failed' ? EXIT.checkFailed : EXIT.ok
  }

  protected renderTable(result: InspectResult): string {
    return inspectView(result)
  }
}
