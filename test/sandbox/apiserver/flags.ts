/** kube-apiserver's command line: `--name=value` or `--name value`; unknown flags are accepted and ignored. */
export interface ApiServerFlags {
  etcdServers: string[]
  etcdCafile?: string
  etcdCertfile?: string
  etcdKeyfile?: string
  tlsCertFile?: string
  tlsPrivateKeyFile?: string
  clientCaFile?: string
  tokenAuthFile?: string
  advertiseAddress?: string
  bindAddress?: string
  securePort: number
  encryptionProviderConfig?: string
  automaticReload: boolean
  etcdPrefix: string
  storageMediaType: string
  featureGates: Record<string, boolean>
}

const BOOLEAN = new Set(['encryption-provider-config-automatic-reload', 'allow-privileged', 'enable-bootstrap-token-auth'])

export function parseFlags(argv: string[]): ApiServerFlags {
  const values = new Map<string, string>()
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (!arg.startsWith('--')) continue
    const eq = arg.indexOf('=')
    if (eq !== -1) values.set(arg.slice(2, eq), arg.slice(eq + 1))
    else if (BOOLEAN.has(arg.slice(2)) || i + 1 >= argv.length || argv[i + 1].startsWith('--')) values.set(arg.slice(2), 'true')
    else values.set(arg.slice(2), argv[++i])
  }
  const get = (name: string) => values.get(name)
  const reload = get('encryption-provider-config-automatic-reload')
  if (reload !== undefined && !['true', 'false', '1', '0', 't', 'f', 'TRUE', 'FALSE', 'True', 'False'].includes(reload))
    throw new Error(`invalid argument "${reload}" for "--encryption-provider-config-automatic-reload" flag: strconv.ParseBool: parsing "${reload}": invalid syntax`)
  return {
    etcdServers: (get('etcd-servers') ?? 'http://127.0.0.1:2379').split(',').filter(Boolean),
    etcdCafile: get('etcd-cafile'),
    etcdCertfile: get('etcd-certfile'),
    etcdKeyfile: get('etcd-keyfile'),
    tlsCertFile: get('tls-cert-file'),
    tlsPrivateKeyFile: get('tls-private-key-file'),
    clientCaFile: get('client-ca-file'),
    tokenAuthFile: get('token-auth-file'),
    advertiseAddress: get('advertise-address'),
    bindAddress: get('bind-address'),
    securePort: Number(get('secure-port') ?? 6443),
    encryptionProviderConfig: get('encryption-provider-config'),
    automaticReload: ['true', '1', 't', 'TRUE', 'True'].includes(reload ?? 'false'),
    etcdPrefix: get('etcd-prefix') ?? '/registry',
    storageMediaType: get('storage-media-type') ?? 'application/vnd.kubernetes.protobuf',
    featureGates: Object.fromEntries(
      (get('feature-gates') ?? '')
        .split(',')
        .filter((g) => g.includes('='))
        .map((g) => {
          const [name, value] = g.split('=')
          return [name.trim(), value.trim().toLowerCase() === 'true']
        }),
    ),
  }
}
