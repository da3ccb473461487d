import {formatGroupResource} from '../../encryption/config/resource-match.js'
import type {InspectResult} from '../../usecases/inspect.js'
import {formatFields} from '../render.js'

/** `inspect` as text: where the value came from, how it is stored, whether and how it reads; the object and bytes when asked. */
export function inspectView(r: InspectResult): string {
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
    if (c.kmsV1.encryptedDEKLength !== undefined) fields.push(['Encrypted DEK', `${c.kmsV1.encryptedDEKLength} bytes`])
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
