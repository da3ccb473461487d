import type {KubeHttp} from './http.js'
import type {EndpointProbe, RawResponse} from './types.js'

/**
 * Raw GETs of `/readyz?verbose`, `/livez`, `/metrics` with the kubeconfig's credentials and CA,
 * through the kubeconfig's server or against one apiserver (`host:port`) for per-node checks.
 */
export class HttpEndpointProbe implements EndpointProbe {
  constructor(private readonly http: KubeHttp) {}

  async get(path: string, options: {endpoint?: string; timeoutMs?: number} = {}): Promise<RawResponse> {
    const response = await this.http.send({
      method: 'GET',
      path,
      endpoint: options.endpoint,
      timeoutMs: options.timeoutMs,
      accept: 'text/plain, */*',
      what: {verb: 'get', resource: path},
    })
    return {status: response.status, body: response.body.toString('utf8')}
  }
}
