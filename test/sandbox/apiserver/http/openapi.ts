/**
 * A minimal OpenAPI v2 document in the protobuf form kubectl asks for
 * (application/com.github.proto-openapi.spec.v2@v1.0+protobuf, gnostic openapi_v2.Document:
 * 1 swagger, 2 info{1 title, 2 version}, 8 paths). It has no definitions, so kubectl's client-side
 * validation finds no schema for a kind and skips it, as for a resource the server does not
 * describe; kubectl's query-param verifier then also sends fieldValidation, which the stand-in accepts.
 */
import {ProtoWriter} from '../proto/wire.js'

export function openApiV2Document(gitVersion: string): Buffer {
  const info = new ProtoWriter()
  info.stringField(1, 'Kubernetes')
  info.stringField(2, gitVersion)
  const doc = new ProtoWriter()
  doc.stringField(1, '2.0')
  doc.bytesField(2, info.finish())
  doc.bytesField(8, Buffer.alloc(0))
  return doc.finish()
}
