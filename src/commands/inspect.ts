import {readFile, stat} from 'node:fs/promises'

import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../base-command.js'
import type {EncryptionConfiguration} from '../encryption/config/model.js'
import {decodeGoBase64} from '../encryption/gocompat/base64.js'
import {formatGroupResource} from '../encryption/config/resource-match.js'
import {TransformerBuildError} from '../encryption/transform/resource-transformer.js'
import {EXIT, preconditionError, usageError} from '../errors.js'
import {
  EtcdctlJsonShapeError,
  type InspectInput,
  type InspectResult,
  inspectValue,
  parseEtcdctlJson,
  parseEtcdctlSimple,
} from '../usecases/inspect.js'
import {formatFields} from '../output/render.js'
import {discoverControlPlane} from '../controlplane/control-plane.js'
import {etcdKeyFor, etcdKeyProblem} from '../encryption/storage/etcd-key.js'
import {describeReader} from '../etcd/etcd-reader.js'
import {etcdFlags, etcdOptionsFromFlags} from '../flags/etcd.js'
import {kubeFlags, kubeOptionsFromFlags, parseNamespace} from '../flags/kube.js'
import {sshFlags, sshOptionsFromFlags} from '../flags/ssh.js'
import {connectCluster} from '../kube/connect.js'
import {toPluginError} from '../kube/errors.js'
import {ResourceIndex} from '../kube/resource-index.js'
import {configFromNodes} from '../controlplane/cluster-config.js'
import {openEtcdReader} from '../etcd/etcd-access.js'
import {OpenSshConnector} from '../ssh/open-ssh-session.js'
import {ShellRemoteFiles} from '../ssh/shell-remote-files.js'

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

  static override args = {
    object: Args.string({
      description:
        'An object as TYPE/NAME, or a raw etcd key (/registry/...), read from etcd; or use --value-file for a saved value.',
      required: false,
    }),
  }

  static override flags = {
    'value-file': Flags.string({
      description:
        'File holding the raw etcd value, or the output of `etcdctl get KEY -w json` (which carries the key too).',
    }),
    'key-path': Flags.string({
      description:
        'The full etcd key of the value in --value-file, e.g. /registry/secrets/default/s1 (selects the providers; AAD of aesgcm and KMS).',
    }),
    'etcd-prefix': Flags.string({description: "The apiserver's --etcd-prefix.", default: '/registry'}),
    config: Flags.string({description: 'EncryptionConfiguration file to read the value with, as the apiserver would.'}),
    decrypt: Flags.boolean({description: 'Show the decoded object, including Secret data.', default: false}),
    hexdump: Flags.boolean({description: 'Add the stored bytes as `hexdump -C` prints them.', default: false}),
    'kms-dek': Flags.string({
      description:
        'File (mode 0600) with the plaintext DEK or seed of a KMS value: the 32 bytes the KMS plugin returns from Decrypt, as standard base64 (for KMS v2 seed-type values, the seed).',
    }),
    'any-key': Flags.boolean({
      description:
        'With --config: try every provider and key in the file, whatever resource it is for (the etcd key is then optional; without it aesgcm and KMS values cannot be authenticated).',
      default: false,
    }),
    // Reading TYPE/NAME or an etcd key from the cluster:
    ...kubeFlags,
    namespace: Flags.string({
      char: 'n',
      description: 'Namespace of TYPE/NAME (default: the context namespace).',
      helpGroup: 'KUBE',
      parse: parseNamespace,
    }),
    ...sshFlags,
    'etcd-via': etcdFlags['etcd-via'],
    'etcd-endpoints': etcdFlags['etcd-endpoints'],
    'etcd-cacert': etcdFlags['etcd-cacert'],
    'etcd-cert': etcdFlags['etcd-cert'],
    'etcd-key': etcdFlags['etcd-key'],
    'etcd-node': etcdFlags['etcd-node'],
    ssh: Flags.boolean({
      description: 'Read the config from a control-plane node over SSH when --config is not given.',
      default: true,
      allowNo: true,
    }),
  }

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
    const raw = await readValueFile(valueFile)
    const dump = parseValueFile(raw, valueFile, flags['etcd-prefix'])
    if (dump && flags['key-path'] && flags['key-path'] !== dump.key) {
      throw usageError(
        'INSPECT_ETCD_KEY',
        `--key-path ${flags['key-path']} differs from the key in the etcdctl output (${dump.key})`,
      )
    }
    const etcdKey = dump?.key ?? flags['key-path']
    if (etcdKey !== undefined)
      checkEtcdKey(etcdKey, flags['etcd-prefix'], dump ? `the key in ${valueFile}` : '--key-path')
    if (flags['any-key'] && !flags.config) {
      throw usageError('INSPECT_ANY_KEY', '--any-key needs --config: it tries the keys of that file', {
        hint: 'Add --config FILE.',
      })
    }
    if ((flags.config || flags['kms-dek']) && !etcdKey && !flags['any-key']) {
      throw usageError('INSPECT_ETCD_KEY', '--key-path is required with --config or --kms-dek', {
        hint: 'The etcd key selects the providers for the resource and is the authenticated data of aesgcm and KMS values. Without it, --any-key tries every key in the file.',
      })
    }
    const config = flags.config ? await loadConfig(flags.config) : undefined
    const kmsDek = flags['kms-dek'] ? await this.readKmsDek(flags['kms-dek']) : undefined
    try {
      const result = this.inspect({
        value: dump?.value ?? raw,
        source: `file:${valueFile}${dump ? ` (${dump.format})` : ''}`,
        etcdKey,
        trailingNewlineMayBeArtifact: !dump,
        config,
        kmsDek,
      })
      if (dump?.format === 'etcdctl get')
        result.notes.push(
          'the file is `etcdctl get` output: the key is its first line, the value what follows, without the newline etcdctl adds',
        )
      return result
    } catch (error) {
      if (error instanceof TransformerBuildError) {
        throw preconditionError('CONFIG_INVALID', `error while building transformers: ${error.message}`, {
          hint: `Check the file with 'kubectl encryption config validate ${flags.config}'.`,
        })
      }
      throw error
    }
  }

  /** `inspect secret/name -n ns` or `inspect /registry/...`: the value read from etcd (docs/kubernetes-behaviour.md §12). */
  private async inspectFromCluster(object: string): Promise<InspectResult> {
    const flags = this.flags
    const etcdOptions = etcdOptionsFromFlags(flags)
    if (flags['key-path'])
      throw usageError(
        'INSPECT_ETCD_KEY',
        'give the etcd key as the argument (inspect /registry/...), not with --key-path (that is for --value-file)',
      )
    if (object.startsWith('/')) checkEtcdKey(object, flags['etcd-prefix'], 'the etcd key')
    const localConfig = flags.config ? await loadConfig(flags.config) : undefined
    const kmsDek = flags['kms-dek'] ? await this.readKmsDek(flags['kms-dek']) : undefined
    // SSH for etcdctl (--etcd-via ssh) is always available; --no-ssh only stops reading files on the nodes.
    const connector = new OpenSshConnector(sshOptionsFromFlags(flags))
    const ssh = flags.ssh ? connector : undefined
    const progress = await this.progress('Connecting to the cluster')
    let cluster: Awaited<ReturnType<typeof connectCluster>> | undefined
    try {
      cluster = await connectCluster(kubeOptionsFromFlags(flags))
      const c = cluster
      let etcdKey: string
      if (object.startsWith('/')) {
        etcdKey = object
      } else {
        const slash = object.indexOf('/')
        if (slash <= 0 || slash === object.length - 1)
          throw usageError('USAGE', `${JSON.stringify(object)} is neither TYPE/NAME nor an etcd key starting with /`)
        const resource = new ResourceIndex(await c.discovery.resources()).resolve(object.slice(0, slash))
        if (!resource)
          throw usageError('RESOURCE_UNKNOWN', `the server has no resource ${JSON.stringify(object.slice(0, slash))}`, {
            hint: "See 'kubectl api-resources'.",
          })
        const namespace = resource.namespaced ? (flags.namespace ?? c.context.namespace) : undefined
        etcdKey = etcdKeyFor(
          {group: resource.group, resource: resource.resource, namespace, name: object.slice(slash + 1)},
          {prefix: flags['etcd-prefix']},
        )
      }
      let controlPlane: ReturnType<typeof discoverControlPlane> | undefined
      const discover = () => (controlPlane ??= discoverControlPlane(c.objects))
      let config = localConfig
      const notes: string[] = []
      if (!config && ssh) {
        progress.update('Reading the encryption config from a control-plane node')
        const fromNodes = await configFromNodes(
          await discover(),
          (node) => new ShellRemoteFiles(ssh.open({name: node.name, internalIP: node.internalIP})),
        )
        config = fromNodes.found?.config
        if (fromNodes.found) notes.push(`config read from ${fromNodes.found.source}`)
        else if (fromNodes.reason) notes.push(`no config: ${fromNodes.reason}`)
      }
      progress.update(`Reading ${etcdKey} from etcd`)
      const reader = await openEtcdReader(etcdOptions, {controlPlane: discover, exec: c.exec, ssh: connector})
      let kv: Awaited<ReturnType<typeof reader.get>>
      try {
        kv = await reader.get(etcdKey)
      } finally {
        await reader.close()
      }
      if (!kv) {
        throw preconditionError(
          'ETCD_KEY_NOT_FOUND',
          `there is no value at ${etcdKey} in etcd (read through ${describeReader(reader.describe())})`,
          {
            hint: "Check the name and namespace (-n), or the apiserver's --etcd-prefix (--etcd-prefix).",
          },
        )
      }
      const result = this.inspect({
        value: kv.value,
        source: `etcd:${describeReader(reader.describe())}`,
        etcdKey,
        config,
        kmsDek,
      })
      result.notes.push(...notes)
      return result
    } catch (error) {
      if (error instanceof TransformerBuildError)
        throw preconditionError('CONFIG_INVALID', `error while building transformers: ${error.message}`)
      throw toPluginError(error)
    } finally {
      progress.stop()
      cluster?.close()
    }
  }

  /** inspectValue with what the flags say about every source (prefix, --decrypt, --hexdump, --any-key). */
  private inspect(input: Omit<InspectInput, 'etcdPrefix' | 'decrypt' | 'hexdump' | 'anyKey'>): InspectResult {
    const flags = this.flags
    return inspectValue({
      ...input,
      etcdPrefix: flags['etcd-prefix'],
      decrypt: flags.decrypt,
      hexdump: flags.hexdump,
      anyKey: flags['any-key'],
    })
  }

  protected override exitCodeFor(result: InspectResult): number {
    return result.decryption.status === 'failed' ? EXIT.checkFailed : EXIT.ok
  }

  private async readKmsDek(path: string): Promise<Buffer> {
    let text: string
    try {
      const info = await stat(path)
      if ((info.mode & 0o077) !== 0)
        this.warn(
          `${path} is readable by group or others (mode ${(info.mode & 0o777).toString(8)}); keep DEK files at 0600`,
        )
      text = await readFile(path, 'utf8')
    } catch (error) {
      throw preconditionError(
        'KMS_DEK_UNREADABLE',
        `cannot read the --kms-dek file ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
      )
    }
    const dek = decodeGoBase64(text.trim())
    if (!dek || dek.length === 0) {
      throw preconditionError('KMS_DEK_INVALID', `the --kms-dek file ${path} does not hold standard base64`, {
        hint: 'Write the plaintext DEK or seed (32 bytes) as one line of padded standard base64, e.g. `base64 -w0`.',
      })
    }
    // The apiserver makes every KMS v1 DEK and KMS v2 DEK or seed 32 bytes long (docs/kubernetes-behaviour.md §3.5, §3.6).
    if (dek.length !== KMS_DEK_BYTES) {
      dek.fill(0)
      throw preconditionError(
        'KMS_DEK_INVALID',
        `the --kms-dek file ${path} holds ${dek.length} bytes; a KMS DEK or seed is ${KMS_DEK_BYTES} bytes`,
        {
          hint: 'Write the 32 bytes the KMS plugin returns from Decrypt(encryptedDEKSource) as padded standard base64 (not hex).',
        },
      )
    }
    return dek
  }

  protected renderTable(r: InspectResult): string {
    const c = r.classification
    const fields: Array<[string, string | number | undefined]> = [
      ['Source', `${r.source} (${r.length} bytes)`],
      ['etcd key', r.etcdKey],
    ]
    if (r.resource) {
      const where = [
        r.resource.namespace && `namespace ${r.resource.namespace}`,
        r.resource.name && `name ${r.resource.name}`,
      ]
        .filter(Boolean)
        .join(', ')
      fields.push(['Resource', `${formatGroupResource(r.resource) || '(none)'}${where ? ` (${where})` : ''}`])
    }
    fields.push(['Stored as', storedAs(r)])
    if (c.prefix) fields.push(['Prefix', c.prefix])
    if (c.kmsV2) {
      const k = c.kmsV2
      fields.push(['KMS key ID', k.keyID], ['Key ID hash', k.keyIDHash])
      if (k.encryptedDEKSourceType !== undefined)
        fields.push([
          'DEK source',
          `${k.encryptedDEKSourceTypeName ?? 'unknown'} (${k.encryptedDEKSourceType}), ${k.encryptedDEKSourceLength} bytes encrypted`,
        ])
      for (const [key, value] of Object.entries(k.annotations ?? {}))
        fields.push(['Annotation', `${key}=${printable(value)}`])
      if (k.error) fields.push(['Envelope error', k.error])
    }
    if (c.kmsV1) {
      if (c.kmsV1.encryptedDEKLength !== undefined)
        fields.push(['Encrypted DEK', `${c.kmsV1.encryptedDEKLength} bytes`])
      if (c.kmsV1.error) fields.push(['Envelope error', c.kmsV1.error])
    }
    if (c.plaintext) fields.push(['Format', formatPlaintext(c.plaintext)])
    const d = r.decryption
    if (d.status === 'ok') {
      const how =
        d.provider === 'identity'
          ? 'identity (not encrypted)'
          : d.kmsName
            ? `kms ${JSON.stringify(d.kmsName)}`
            : `${d.provider} key ${JSON.stringify(d.keyName)}`
      fields.push([
        'Read',
        `ok with ${how}${d.rule ? ` (rule ${d.rule})` : d.covered === false ? ' (resource not covered by the config)' : ''}`,
      ])
      if (d.stale !== undefined)
        fields.push(['Stale', d.stale ? 'yes: the next update rewrites it with the first provider' : 'no'])
      if (d.plaintext && c.encrypted)
        fields.push(['Plaintext', `${formatPlaintext(d.plaintext)}, ${d.plaintextLength} bytes`])
      for (const warning of d.warnings ?? []) fields.push(['Warning', warning])
    } else if (d.status === 'failed') {
      fields.push(['Read', `FAILED: ${d.error}`])
      fields.push([
        'Providers',
        d.rule
          ? `rule ${d.rule}`
          : d.covered === false
            ? 'resource not covered by the config (identity check)'
            : undefined,
      ])
    } else fields.push(['Read', `not attempted: ${d.error}`])
    const sections = [formatFields(fields)]
    for (const note of r.notes) sections.push(`Note: ${note}`)
    if (r.object) sections.push('', renderObject(r.object))
    if (r.hexdump !== undefined) sections.push('', r.hexdump.trimEnd())
    return sections.join('\n')
  }
}

function storedAs(r: InspectResult): string {
  const c = r.classification
  switch (c.provider) {
    case 'identity':
      return 'plaintext (identity)'
    case 'kms':
      return `kms ${c.kmsApiVersion}${c.kmsName !== undefined ? `, name ${JSON.stringify(c.kmsName)}` : ''}`
    case 'unknown-encrypted':
      return 'encrypted by an unknown provider (the apiserver refuses it)'
    default:
      return `${c.provider}${c.keyName !== undefined ? `, key ${JSON.stringify(c.keyName)}` : ''}`
  }
}

function formatPlaintext(p: {format: string; apiVersion?: string; kind?: string; problem?: string}): string {
  const type = p.apiVersion || p.kind ? ` ${p.apiVersion ?? '?'}/${p.kind ?? '?'}` : ''
  return `${p.format}${type}${p.problem ? ` (${p.problem})` : ''}`
}

function printable(base64: string): string {
  const text = Buffer.from(base64, 'base64').toString('utf8')
  return /^[\x20-\x7e]*$/.test(text) ? text : `base64:${base64}`
}

function renderObject(o: NonNullable<InspectResult['object']>): string {
  if (o.json !== undefined) return JSON.stringify(o.json, null, 2)
  if (o.text !== undefined) return o.text.trimEnd()
  const fields: Array<[string, string | number | undefined]> = [
    ['apiVersion', o.apiVersion],
    ['kind', o.kind],
    ['name', o.metadata?.name],
    ['namespace', o.metadata?.namespace],
    ['uid', o.metadata?.uid],
    ['created', o.metadata?.creationTimestamp],
    ['type', o.type],
  ]
  for (const [k, v] of Object.entries(o.metadata?.labels ?? {})) fields.push([`label ${k}`, v])
  for (const [k, v] of Object.entries(o.data ?? {})) fields.push([`data ${k}`, v])
  for (const k of Object.keys(o.binaryData ?? {})) fields.push([`binaryData ${k}`, '(binary)'])
  if (o.problem) fields.push(['problem', o.problem])
  return formatFields(fields)
}

const KMS_DEK_BYTES = 32

/** A value saved with its key by etcdctl. */
type EtcdctlValue = {key: string; value: Buffer; format: 'etcdctl -w json' | 'etcdctl get'}

/** The value file as `etcdctl get` output, `-w json` or simple (key included), or undefined for a raw value. */
function parseValueFile(raw: Buffer, path: string, etcdPrefix: string): EtcdctlValue | undefined {
  const found = parseEtcdctlOutput(raw, path, etcdPrefix)
  if (found?.value.length === 0) {
    throw preconditionError('VALUE_FILE_EMPTY', `the value of ${found.key} in ${path} is empty`, {
      hint: 'An API object is never stored empty; check the key with `etcdctl get KEY --keys-only`.',
    })
  }
  return found
}

function parseEtcdctlOutput(raw: Buffer, path: string, etcdPrefix: string): EtcdctlValue | undefined {
  const simple = parseEtcdctlSimple(raw, etcdPrefix)
  if (simple) return {...simple, format: 'etcdctl get'}
  let dump: ReturnType<typeof parseEtcdctlJson>
  try {
    dump = parseEtcdctlJson(raw)
  } catch (error) {
    if (!(error instanceof EtcdctlJsonShapeError)) throw error
    throw preconditionError(
      'VALUE_FILE_FORMAT',
      `${path} looks like \`etcdctl get -w json\` output, but ${error.message}`,
      {
        hint: 'Save one value with `etcdctl get KEY -w json > FILE`, or the raw bytes with `etcdctl get KEY --print-value-only > FILE`.',
      },
    )
  }
  if (dump === null) {
    throw preconditionError(
      'VALUE_FILE_NO_KEY',
      `the etcdctl output in ${path} holds no key/value pair (the key does not exist)`,
      {
        hint: 'Check the key with `etcdctl get KEY --keys-only`.',
      },
    )
  }
  return dump ? {...dump, format: 'etcdctl -w json'} : undefined
}

/** Refuses a key that cannot be an API object's etcd key (docs/kubernetes-behaviour.md §12.1) with exit 2, before anything is read. */
function checkEtcdKey(key: string, etcdPrefix: string, what: string): void {
  const problem = etcdKeyProblem(key, {prefix: etcdPrefix})
  if (problem) {
    throw usageError('INSPECT_ETCD_KEY', `${what} ${JSON.stringify(key)} is not an object's etcd key: ${problem}`, {
      hint: "Give the full key as etcd stores it, e.g. /registry/secrets/default/s1; pass --etcd-prefix if the apiserver's --etcd-prefix is not /registry.",
    })
  }
}

async function readValueFile(path: string): Promise<Buffer> {
  let value: Buffer
  try {
    value = await readFile(path)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    const why =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EISDIR'
          ? 'it is a directory'
          : code === 'EACCES'
            ? 'permission denied'
            : (code ?? (error as Error).message)
    throw preconditionError('VALUE_FILE_UNREADABLE', `cannot read the value file ${path}: ${why}`, {
      hint: 'Save a value with `etcdctl get KEY -w json > FILE`.',
    })
  }
  if (value.length === 0) {
    throw preconditionError('VALUE_FILE_EMPTY', `the value file ${path} is empty`, {
      hint: 'etcdctl prints nothing for a key that does not exist; check the key with `etcdctl get KEY --keys-only`.',
    })
  }
  return value
}

/**
 * The configuration file, decoded and validated as the apiserver would (exit 3 when invalid). The
 * KMSv1 gate is taken as on: inspecting legacy KMS v1 data is what an old config is for here.
 */
async function loadConfig(path: string): Promise<EncryptionConfiguration> {
  const {loadEncryptionConfig} = await import('../encryption/config/load.js')
  return (await loadEncryptionConfig(path, {featureGates: {KMSv1: true}})).config
}

/**
 * `--etcd-key` is the etcd client key file in every command; inspect once used it for the value's
 * etcd key. An old command line (a key under the etcd prefix) is refused, not read as a key file.
 */
function refuseOldKeyFlag(etcdKeyFlag: string | undefined, etcdPrefix: string): void {
  if (etcdKeyFlag === undefined || !etcdKeyFlag.startsWith(`${etcdPrefix.replace(/\/+$/, '')}/`)) return
  throw usageError(
    'INSPECT_KEY_PATH_FLAG',
    `--etcd-key ${etcdKeyFlag} looks like a value's etcd key: --etcd-key is the etcd client key file (as etcdctl --key)`,
    {
      hint: `Name the value's etcd key with --key-path ${etcdKeyFlag} (or give it as the argument to read it from etcd).`,
    },
  )
}
