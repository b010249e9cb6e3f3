/**
 * Validates bodies against the OpenAPI document's own schemas with Ajv (JSON Schema 2020-12, the
 * dialect of OpenAPI 3.1). The whole document is added as one schema, so `$ref`s to
 * `#/components/schemas/*` resolve against it; a body is checked against the schema at a JSON
 * pointer into the document (a route's response or request body).
 */
import Ajv2020 from 'ajv/dist/2020.js';

type Json = Record<string, any>;
const DOC_ID = 'urn:proxmox-agent:openapi';

const pointer = (segments: string[]) => segments.map((s) => encodeURIComponent(s.replace(/~/g, '~0').replace(/\//g, '~1'))).join('/');

export function createOpenApiValidator(doc: Json) {
  // OpenAPI keywords (example, discriminator…) are not JSON Schema: not strict. Formats are
  // documentation here (zod checks them on the way in).
  const ajv = new Ajv2020.default({ strict: false, allErrors: true, validateFormats: false });
  ajv.addSchema({ ...doc, $id: DOC_ID });

  /** The declared response of `METHOD path` for `status`, or undefined. */
  function response(method: string, path: string, status: number | string): Json | undefined {
    return doc.paths?.[path]?.[method.toLowerCase()]?.responses?.[String(status)];
  }

  function check(segments: string[], value: unknown): string[] {
    const validate = ajv.getSchema(`${DOC_ID}#/${pointer(segments)}`) ?? ajv.compile({ $ref: `${DOC_ID}#/${pointer(segments)}` });
    return validate(value) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath || '(root)'} ${e.message} ${JSON.stringify(e.params)}`);
  }

  return {
    response,
    /** Errors of `body` against the schema declared for `METHOD path` → `status` in `contentType` ([] when it conforms). */
    checkResponse(method: string, path: string, status: number, contentType: string, body: unknown): string[] {
      const declared = response(method, path, status);
      if (!declared) return [`${method} ${path} does not declare status ${status}`];
      const media = contentType.split(';')[0]!.trim();
      if (!declared.content?.[media]) return [`${method} ${path} ${status} does not declare ${media} (declares ${Object.keys(declared.content ?? {}).join(', ') || 'no body'})`];
      const at = ['paths', path, method.toLowerCase(), 'responses', String(status), 'content', media, 'schema'];
      // An event stream's schema describes one event: check each event of the stream.
      if (media === 'text/event-stream') return sseEvents(String(body)).flatMap((e) => check(at, e));
      return check(at, body);
    },
    checkRequest(method: string, path: string, body: unknown): string[] {
      return check(['paths', path, method.toLowerCase(), 'requestBody', 'content', 'application/json', 'schema'], body);
    },
    checkAt(segments: string[], value: unknown): string[] {
      return check(segments, value);
    },
  };
}

export type OpenApiValidator = ReturnType<typeof createOpenApiValidator>;

/** The events of a text/event-stream body as field objects (blocks without data, and comments, skipped). */
export function sseEvents(text: string): Record<string, string | number>[] {
  return text
    .split(/\r?\n\r?\n/)
    .map((block) => {
      const e: Record<string, string | number> = {};
      for (const line of block.split(/\r?\n/)) {
        if (line === '' || line.startsWith(':')) continue;
        const i = line.indexOf(':');
        const field = i < 0 ? line : line.slice(0, i);
        const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
        e[field] = field === 'retry' ? Number(value) : field === 'data' && typeof e.data === 'string' ? `${e.data}\n${value}` : value;
      }
      return e;
    })
    .filter((e) => 'data' in e);
}
