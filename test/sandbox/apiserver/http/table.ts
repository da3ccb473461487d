/** meta.k8s.io/v1 Table responses for `kubectl get` (server-side printing), a few columns per kind. */
import type {ResourceInfo} from '../registry.js'

type Json = Record<string, any>

export function wantsTable(accept: string | undefined): boolean {
  return Boolean(accept && /as=Table/.test(accept))
}

function age(ts: string | undefined): string {
  if (!ts) return '<unknown>'
  const s = Math.max(0, Math.floor((Date.now() - Date.parse(ts)) / 1000))
  if (s < 120) return `${s}s`
  const m = Math.floor(s / 60)
  if (m < 180) return `${m}m`
  const h = Math.floor(m / 60)
  if (h < 48) return `${h}h`
  return `${Math.floor(h / 24)}d`
}

const col = (name: string, type = 'string', format = '') => ({name, type, format, description: name, priority: 0})

function columns(info: ResourceInfo): {defs: Json[]; cells: (o: Json) => unknown[]} {
  const name = (o: Json) => o.metadata?.name
  const created = (o: Json) => age(o.metadata?.creationTimestamp)
  switch (info.resource) {
    case 'secrets':
      return {
        defs: [col('Name', 'string', 'name'), col('Type'), col('Data', 'string'), col('Age')],
        cells: (o) => [name(o), o.type ?? '', Object.keys(o.data ?? {}).length, created(o)],
      }
    case 'configmaps':
      return {
        defs: [col('Name', 'string', 'name'), col('Data', 'string'), col('Age')],
        cells: (o) => [name(o), Object.keys(o.data ?? {}).length + Object.keys(o.binaryData ?? {}).length, created(o)],
      }
    case 'namespaces':
      return {defs: [col('Name', 'string', 'name'), col('Status'), col('Age')], cells: (o) => [name(o), o.status?.phase ?? '', created(o)]}
    case 'nodes':
      return {
        defs: [col('Name', 'string', 'name'), col('Status'), col('Roles'), col('Age'), col('Version')],
        cells: (o) => {
          const ready = (o.status?.conditions ?? []).find((c: Json) => c.type === 'Ready')
          const roles = Object.keys(o.metadata?.labels ?? {})
            .filter((l) => l.startsWith('node-role.kubernetes.io/'))
            .map((l) => l.slice('node-role.kubernetes.io/'.length))
          return [name(o), ready?.status === 'True' ? 'Ready' : 'NotReady', roles.join(',') || '<none>', created(o), o.status?.nodeInfo?.kubeletVersion ?? '']
        },
      }
    case 'pods':
      return {
        defs: [col('Name', 'string', 'name'), col('Ready'), col('Status'), col('Restarts', 'string'), col('Age')],
        cells: (o) => {
          const statuses: Json[] = o.status?.containerStatuses ?? []
          const total = (o.spec?.containers ?? []).length
          const ready = statuses.filter((s) => s.ready).length
          const restarts = statuses.reduce((n, s) => n + (s.restartCount ?? 0), 0)
          return [name(o), `${ready}/${total}`, o.status?.phase ?? '', restarts, created(o)]
        },
      }
    default:
      return {defs: [col('Name', 'string', 'name'), col('Age')], cells: (o) => [name(o), created(o)]}
  }
}

export function tableFor(info: ResourceInfo, items: Json[], metadata: Json): Json {
  const {defs, cells} = columns(info)
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata,
    columnDefinitions: defs,
    rows: items.map((o) => ({
      cells: cells(o),
      object: {kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: o.metadata},
    })),
  }
}
