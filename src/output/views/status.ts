import {describeReader} from '../../etcd/etcd-reader.js'
import type {SnapshotScanResult} from '../../usecases/scan/snapshot-scan.js'
import type {StatusResult} from '../../usecases/status/status.js'
import {formatFields, formatTable} from '../render.js'

const counts = (map: Record<string, number>) =>
  Object.entries(map)
    .map(([k, n]) => `${k}=${n}`)
    .join(' ') || '-'

const short = (hash?: string) => (hash ? (hash.length > 19 ? `${hash.slice(0, 19)}…` : hash) : '-')

/** KMS health and, per v2 provider, the key ID hash the apiserver reports: `ok node-kms=sha256:1a2b3c4d…`. */
function kmsCell(n: StatusResult['nodes'][number], wide: boolean): string {
  if (n.kms.length === 0 && n.kmsKeys.length === 0) return '-'
  const health = n.kms.length === 0 ? '?' : n.kms.every((k) => k.ok) ? 'ok' : 'failing'
  const keys = n.kmsKeys.map((k) => `${k.provider}=${wide ? k.keyIdHash : `${k.keyIdHash.slice(0, 15)}…`}`)
  return [health, ...keys].join(' ')
}

/** `status` as text: the nodes, whether they agree, the resources, the scan, rotation and lock, problems. */
export function statusView(result: StatusResult, wide: boolean): string {
  const sections: string[] = [`Context: ${result.context} (${result.server})`]
  sections.push(
    formatTable(
      wide
        ? ['node', 'apiserver', 'encryption', 'reload', 'config hash', 'source', 'kms', 'config path', 'endpoint']
        : ['node', 'apiserver', 'encryption', 'reload', 'config hash', 'source', 'kms'],
      result.nodes.map((n) => {
        const row = [
          n.node,
          n.apiserver.pod ? (n.apiserver.ready ? 'ready' : 'not ready') : 'missing',
          n.encryption.enabled ? 'on' : 'off',
          n.encryption.enabled ? (n.encryption.automaticReload ? 'on' : 'off') : '-',
          wide ? (n.config.hash ?? '-') : short(n.config.hash),
          n.config.source ?? '-',
          kmsCell(n, wide),
        ]
        return wide ? [...row, n.encryption.configPath ?? '-', n.apiserver.endpoint ?? '-'] : row
      }),
    ),
  )
  const groups = Object.entries(result.agreement.hashes)
  sections.push(
    result.agreement.agree
      ? `Nodes agree: yes${groups.length === 1 ? ` (${groups[0][0]})` : ''}`
      : `Nodes agree: NO\n${groups.map(([hash, nodes]) => `  ${hash}: ${nodes.join(', ')}`).join('\n')}`,
  )
  if (result.resources.length > 0) {
    sections.push(
      formatTable(
        ['resource', 'write', 'read-only', 'identity fallback'],
        result.resources.map((r) => [
          r.resource,
          r.write,
          r.readOnly.join(', ') || '-',
          r.identityFallback ? 'yes' : 'no',
        ]),
      ),
    )
  }
  if (result.scan) {
    sections.push(
      `Scan of etcd through ${describeReader(result.scan.etcd)}: ${result.scan.keys} values\n` +
        formatTable(
          ['resource', 'total', 'stored as', 'plaintext', 'stale', 'undecryptable', 'orphans'],
          result.scan.resources.map((r) => [
            r.resource,
            r.total,
            Object.entries(r.byProvider)
              .map(([p, n]) => `${p}=${n}`)
              .join(' ') || '-',
            r.plaintext,
            r.stale,
            r.undecryptable,
            r.orphans,
          ]),
        ),
    )
    const kmsRows = result.scan.resources.flatMap((r) =>
      (r.kmsKeys ?? []).map((k) => [
        r.resource,
        k.provider,
        wide ? k.keyIdHash : `${k.keyIdHash.slice(0, 15)}…`,
        k.count,
        k.current === undefined ? '?' : k.current ? 'yes' : 'no (stale)',
      ]),
    )
    if (kmsRows.length > 0)
      sections.push(
        `KMS v2 values per key ID (from etcd; the KMS was not called):\n${formatTable(['resource', 'kms provider', 'key id hash', 'values', 'current'], kmsRows)}`,
      )
  }
  const r = result.rotation
  const l = result.lock
  if (r || l) {
    sections.push(
      formatFields([
        ['Key rotation', r && `${r.oldKey.provider}/${r.oldKey.name} -> ${r.provider}/${r.newKey}: ${r.status}`],
        ['Stage', r && `${r.stage} (done: ${r.completedStages.join(', ') || 'none'})`],
        ['Error', r?.error],
        ['Next', r?.next],
        [
          'Lock',
          l &&
            `held by ${l.holder} for ${l.operation} since ${l.since}${l.stale ? ` (stale: not renewed since ${l.renewedAt}; the next run takes it over)` : ''}`,
        ],
      ]),
    )
  }
  if (result.warnings.length > 0) sections.push(`Warnings:\n${result.warnings.map((w) => `  - ${w}`).join('\n')}`)
  sections.push(
    result.problems.length > 0
      ? `Problems:\n${result.problems.map((p) => `  - ${p}`).join('\n')}`
      : 'No problems found.',
  )
  return sections.join('\n\n') + '\n'
}

/** `status --scan --snapshot` as text: what the snapshot needs, and whether --config opens it. */
export function snapshotView(result: SnapshotScanResult, wide: boolean): string {
  const s = result.snapshot
  const c = result.config
  const sections = [
    formatFields([
      ['Snapshot', s.file],
      ['Revision', s.revision],
      ['etcd version', s.etcdVersion],
      [
        'Integrity',
        s.integrityChecked ? 'sha256 checked' : 'not checked (no sha256 appended: a copied member/snap/db?)',
      ],
      ['Values', result.values],
      ['Keys needed', result.keysNeeded.join(', ') || 'none (every value is plaintext)'],
    ]).trimEnd(),
  ]
  if (result.needs.length > 0) {
    sections.push(
      formatTable(
        c ? ['stored as', 'values', 'unreadable'] : ['stored as', 'values'],
        result.needs.map((n) => (c ? [n.storedAs, n.values, n.unreadable ?? 0] : [n.storedAs, n.values])),
      ).trimEnd(),
    )
  }
  if (wide && result.resources.length > 0) {
    sections.push(
      formatTable(
        ['resource', 'values', 'stored as'],
        result.resources.map((r) => [r.resource, r.values, counts(r.storedAs)]),
      ).trimEnd(),
    )
  }
  if (c) {
    const rows = c.resources.filter((r) => r.unreadable > 0)
    if (rows.length > 0) {
      sections.push(
        formatTable(
          ['resource', 'values', 'unreadable', 'unreadable stored as', 'errors'],
          rows.map((r) => [
            r.resource,
            r.values,
            r.unreadable,
            counts(r.unreadableAs),
            Object.keys(r.errors).join('; ') || '-',
          ]),
        ).trimEnd(),
      )
    }
    if (c.examples.length > 0) sections.push(`Examples:\n${c.examples.map((k) => `  ${k}`).join('\n')}`)
    const missing = result.needs.filter((n) => (n.unreadable ?? 0) > 0).map((n) => n.storedAs)
    sections.push(
      c.readable
        ? `${c.file} (${c.hash.slice(0, 19)}…) opens every value of ${s.file}.`
        : `${c.file} (${c.hash.slice(0, 19)}…) does NOT open ${c.unreadable} of ${c.values} values of ${s.file}: it cannot read the values stored as ${missing.join(', ')}.`,
    )
  }
  return sections.join('\n\n') + '\n'
}
