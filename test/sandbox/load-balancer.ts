// The control-plane endpoint: a TCP load balancer (as kubeadm's HA guide sets up with haproxy) that
// forwards round-robin to the API servers whose /readyz answers 200, checked every 500 ms without
// verifying TLS (haproxy `check-ssl verify none`). With no ready backend it tries them all in turn.
import net from 'node:net'
import {probeHttp} from './api-client.js'

export interface Backend {
  host: string
  port: number
}

export class TcpLoadBalancer {
  private server?: net.Server
  private readonly healthy = new Set<string>()
  private timer?: NodeJS.Timeout
  private next = 0
  private readonly sockets = new Set<net.Socket>()

  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly backends: Backend[],
  ) {}

  async start(): Promise<void> {
    this.server = net.createServer((socket) => this.forward(socket))
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject)
      this.server!.listen(this.port, this.host, () => resolve())
    })
    const check = async () => {
      await Promise.all(
        this.backends.map(async (b) => {
          const r = await probeHttp(`https://${b.host}:${b.port}/readyz`, 1000)
          if (r.ok) this.healthy.add(key(b))
          else this.healthy.delete(key(b))
        }),
      )
      if (this.server?.listening) this.timer = setTimeout(check, 500)
    }
    void check()
  }

  readyBackends(): string[] {
    return [...this.healthy].sort()
  }

  private order(): Backend[] {
    const ready = this.backends.filter((b) => this.healthy.has(key(b)))
    const pool = ready.length > 0 ? ready : this.backends
    const start = this.next++ % pool.length
    return [...pool.slice(start), ...pool.slice(0, start)]
  }

  private forward(client: net.Socket): void {
    this.sockets.add(client)
    client.once('close', () => this.sockets.delete(client))
    client.pause()
    const candidates = this.order()
    const attempt = (i: number) => {
      const b = candidates[i]
      if (!b) return client.destroy()
      const upstream = net.connect(b.port, b.host)
      let connected = false
      upstream.on('error', () => {
        if (connected) client.destroy()
        else attempt(i + 1)
      })
      upstream.once('connect', () => {
        connected = true
        this.sockets.add(upstream)
        upstream.once('close', () => this.sockets.delete(upstream))
        client.pipe(upstream).pipe(client)
        client.resume()
        client.once('error', () => upstream.destroy())
        client.once('close', () => upstream.destroy())
        upstream.once('close', () => client.destroy())
      })
    }
    client.once('error', () => undefined)
    attempt(0)
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer)
    for (const s of this.sockets) s.destroy()
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()))
  }
}

const key = (b: Backend) => `${b.host}:${b.port}`
