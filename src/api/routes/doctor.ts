import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import { ENVIRONMENT_NAME_RE } from '../../domain/request.js';
import { mayActIn, requireEnvironment } from '../access/auth.js';
import type { ApiDeps, AppEnv } from '../http/context.js';
import { ApiError, problemResponses } from '../http/problems.js';

/**
 * The connection doctor (src/doctor, docs/doctor.md): per environment, whether this service can do
 * what its policy allows there — Proxmox reachable, the TLS certificate and its pin, the release, the
 * token's effective privileges against what the allowed actions need — with the pveum commands
 * that fix what is missing. Read scope; it asks Proxmox now, nothing is cached or recorded.
 */
export const doctorCheckSchema = z
  .object({
    id: z.string().describe('reach, tls, version, permissions, privsep, privileges:<acl path>, least-privilege, policy-nodes, backup-storage'),
    ok: z.boolean(),
    severity: z.enum(['blocker', 'warning', 'info']).describe('blocker: an allowed action (or every preflight) cannot work; warning: works, not as it should; info: a fact'),
    detail: z.string(),
    fix: z.array(z.string()).optional().describe('Exact commands: pveum on a cluster node, or the config change'),
  })
  .openapi('DoctorCheck');

export const doctorReportSchema = z
  .object({
    environments: z.array(
      z.object({
        environment: z.string(),
        ok: z.boolean().describe('No failing blocker'),
        pve: z.object({ version: z.string(), release: z.string(), major: z.number().int() }).optional(),
        privsep: z.enum(['on', 'off-or-same', 'unknown']).describe("The token's privilege separation, as far as its permissions tell"),
        checks: z.array(doctorCheckSchema),
      }),
    ),
    blockers: z.number().int().describe('Failing blockers over all environments shown'),
  })
  .openapi('DoctorReport');

const doctorRoute = createRoute({
  method: 'get',
  path: '/v1/doctor',
  tags: ['operations'],
  summary: 'Connection doctor: can this service do, in each environment, what its policy allows there?',
  description:
    "For each of the token's environments (or `environment`): reaches Proxmox, shows the TLS certificate's SHA-256 fingerprint and whether it is pinned, reads the release and the API token's effective permissions (GET /access/permissions), compares them with what the actions the policy allows there need (PVE 8 and 9 privilege names), tells privilege separation, and checks the nodes the policy names. Each failing check carries the exact pveum commands that fix it (docs/doctor.md).",
  security: [{ bearer: [] }],
  request: {
    query: z.object({
      environment: z
        .string()
        .regex(ENVIRONMENT_NAME_RE, 'must be lowercase letters, digits and "-", starting with a letter')
        .optional()
        .openapi({ param: { name: 'environment', in: 'query' }, example: 'lab' }),
    }),
  },
  responses: {
    200: { description: 'The checks per environment (200 also when some fail: see `blockers`)', content: { 'application/json': { schema: doctorReportSchema } } },
    ...problemResponses('validation-failed', 'unauthenticated', 'forbidden', 'not-found'),
  },
});

export function registerDoctorRoutes(app: OpenAPIHono<AppEnv>, deps: ApiDeps): void {
  app.openapi(doctorRoute, async (c) => {
    const caller = c.get('caller');
    const { environment } = c.req.valid('query');
    if (environment !== undefined) requireEnvironment(caller, environment);
    if (!deps.doctor) throw new ApiError('not-found', 'this service runs no connection doctor');
    if (environment !== undefined && !deps.environments.has(environment)) throw new ApiError('not-found', `no environment '${environment}'`);
    const names = environment !== undefined ? [environment] : [...deps.environments].filter((e) => mayActIn(caller, e));
    const reports = (await Promise.all(names.map((e) => deps.doctor!.run(e)))).flat();
    const blockers = reports.reduce((n, r) => n + r.checks.filter((x) => !x.ok && x.severity === 'blocker').length, 0);
    return c.json({ environments: reports, blockers }, 200);
  });
}
