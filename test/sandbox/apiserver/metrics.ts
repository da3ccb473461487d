/** The Prometheus series of spec §11 that the plugin reads, in the text exposition format. */
type Labels = Record<string, string>

class Family {
  private readonly samples = new Map<string, {labels: Labels; value: number}>()

  constructor(
    readonly name: string,
    readonly type: 'counter' | 'gauge',
    readonly help: string,
  ) {}

  private key(labels: Labels): string {
    return JSON.stringify(Object.keys(labels).sort().map((k) => [k, labels[k]]))
  }

  inc(labels: Labels, by = 1): void {
    const k = this.key(labels)
    const s = this.samples.get(k) ?? {labels, value: 0}
    s.value += by
    this.samples.set(k, s)
  }

  set(labels: Labels, value: number): void {
    this.samples.set(this.key(labels), {labels, value})
  }

  clear(): void {
    this.samples.clear()
  }

  get(labels: Labels): number | undefined {
    return this.samples.get(this.key(labels))?.value
  }

  render(): string {
    if (this.samples.size === 0) return ''
    const esc = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')
    const lines = [`# HELP ${this.name} [ALPHA] ${this.help}`, `# TYPE ${this.name} ${this.type}`]
    const rows = [...this.samples.values()].map(({labels, value}) => {
      const text = Object.keys(labels)
        .sort()
        .map((k) => `${k}="${esc(labels[k])}"`)
        .join(',')
      return `${this.name}{${text}} ${Number.isInteger(value) ? value : value.toPrecision(10).replace(/\.?0+$/, '')}`
    })
    return [...lines, ...rows.sort()].join('\n') + '\n'
  }
}

export class Metrics {
  readonly transformations = new Family(
    'apiserver_storage_transformation_operations_total',
    'counter',
    'Total number of transformations. Successful transformation will have a status \'OK\' and a varied status string when the transformation fails. The status, resource, and transformation_type fields can be used for alerting purposes. For example, you can monitor for encryption/decryption failures using the transformation_type (e.g., from_storage for decryption and to_storage for encryption). Additionally, these fields can be used to ensure that the correct transformers are applied to each resource.',
  )
  readonly reloads = new Family(
    'apiserver_encryption_config_controller_automatic_reloads_total',
    'counter',
    'Total number of reload successes and failures of encryption configuration split by apiserver identity.',
  )
  readonly reloadLast = new Family(
    'apiserver_encryption_config_controller_automatic_reload_last_timestamp_seconds',
    'gauge',
    'Timestamp of the last successful or failed automatic reload of encryption configuration split by apiserver identity.',
  )
  readonly configInfo = new Family(
    'apiserver_encryption_config_controller_last_config_info',
    'gauge',
    'Information about the last applied encryption configuration with hash as label, split by apiserver identity.',
  )

  constructor(readonly apiserverIdHash: string) {}

  /** spec §11.1: one sample per transformation (and one more for the key level, by the caller). */
  transformation(resource: string, type: 'from_storage' | 'to_storage', prefix: string, status = 'OK'): void {
    this.transformations.inc({resource, transformation_type: type, transformer_prefix: prefix, status})
  }

  reloaded(status: 'success' | 'failure', atSeconds: number): void {
    this.reloads.inc({status, apiserver_id_hash: this.apiserverIdHash})
    this.reloadLast.set({status, apiserver_id_hash: this.apiserverIdHash}, atSeconds)
  }

  configApplied(hash: string): void {
    this.configInfo.clear()
    this.configInfo.set({apiserver_id_hash: this.apiserverIdHash, hash}, 1)
  }

  render(): string {
    return [this.reloadLast, this.reloads, this.configInfo, this.transformations].map((f) => f.render()).join('')
  }
}
