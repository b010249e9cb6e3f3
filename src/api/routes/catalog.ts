import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import { toJSONSchema } from 'zod';
import { ACTIONS } from '../../domain/actions/catalog.js';
import { RISKS } from '../../domain/risk.js';
import type { AppEnv } from '../http/context.js';
import { problemResponses } from '../http/problems.js';

const catalogActionSchema = z
  .object({
    name: z.string().openapi({ example: 'vm.snapshot.create' }),
    kind: z.enum(['qemu', 'lxc']).describe('qemu: a VM (vm.*); lxc: a container (ct.*)'),
    summary: z.string(),
    description: z.string().describe('What it does, when it is a no-op, what Proxmox refuses'),
    params: z.record(z.string(), z.unknown()).describe('JSON Schema (draft 2020-12) of the action\'s params; unknown params are refused'),
    proxmox: z.object({ method: z.enum(['POST', 'PUT', 'DELETE']), path: z.string() }).describe('The one Proxmox call the action makes'),
    baseRisk: z.object({ nonprod: z.enum(RISKS), prod: z.enum(RISKS) }).describe('Before policy rules, which can only raise it'),
    destructive: z.boolean(),
    reversible: z.boolean(),
  })
  .openapi('CatalogAction');

export const catalogSchema = z.object({ actions: z.array(catalogActionSchema) }).openapi('Catalog');

const catalogRoute = createRoute({
  method: 'get',
  path: '/v1/catalog',
  tags: ['catalog'],
  summary: 'The actions an agent may request, with their parameters as JSON Schema',
  description: 'Every action of the catalog (docs/action-taxonomy.md): what it does, its parameters, the Proxmox call, base risk per environment tier.',
  security: [{ bearer: [] }],
  responses: {
    200: { description: 'The catalog', content: { 'application/json': { schema: catalogSchema } } },
    ...problemResponses('unauthenticated', 'forbidden'),
  },
});

// The catalog is fixed at build time: render it once.
let rendered: z.infer<typeof catalogSchema> | undefined;
function render(): z.infer<typeof catalogSchema> {
  rendered ??= {
    actions: ACTIONS.map((a) => ({
      name: a.name,
      kind: a.kind,
      summary: a.summary,
      description: a.description,
      // What the agent sends: defaults are optional, refinements beyond JSON Schema are checked at plan time.
      params: toJSONSchema(a.params, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>,
      proxmox: { method: a.proxmox.method, path: a.proxmox.path },
      baseRisk: { ...a.baseRisk },
      destructive: a.destructive,
      reversible: a.reversible,
    })),
  };
  return rendered;
}

export function registerCatalogRoutes(app: OpenAPIHono<AppEnv>): void {
  app.openapi(catalogRoute, (c) => {
    return c.json(render(), 200);
  });
}
