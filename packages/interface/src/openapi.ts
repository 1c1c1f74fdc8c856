/**
 * The OpenAPI 3.1 document, generated from the contract's zod schemas.
 *
 * @packageDocumentation
 */
import { z } from 'zod';
import { ErrorCodes } from '@forgeone/common';
import { API, isRaw, openApiPath, type Contract } from './api.js';
import { SCHEMA_ID_PREFIX } from './schemas.js';

type Json = Record<string, unknown>;

/** Options of {@link buildOpenApiDocument}. */
export interface OpenApiOptions {
  /** The routes (default {@link API}). */
  readonly routes?: Readonly<Record<string, Contract>>;
  /** `info.version` (default the package version given by the server). */
  readonly version?: string;
  /** A server URL to list. */
  readonly serverUrl?: string;
}

function rewriteRefs(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(rewriteRefs);
  if (typeof value !== 'object' || value === null) return value;
  const out: Json = {};
  for (const [k, v] of Object.entries(value)) {
    if (k === '$ref' && typeof v === 'string' && v.startsWith('#/$defs/')) {
      out[k] = `#/components/schemas/${componentName(v.slice('#/$defs/'.length))}`;
    } else {
      out[k] = rewriteRefs(v);
    }
  }
  return out;
}

function componentName(id: string): string {
  return id.startsWith(SCHEMA_ID_PREFIX) ? id.slice(SCHEMA_ID_PREFIX.length) : id.replace(/[^A-Za-z0-9._-]/g, '_');
}

/**
 * Convert one schema to JSON Schema 2020-12, hoisting named sub-schemas into `components`.
 * @param schema - the zod schema
 * @param io - `input` for requests (before transforms), `output` for responses
 * @param components - where named schemas go
 * @returns the schema object
 */
function convert(schema: z.ZodType, io: 'input' | 'output', components: Json): Json {
  const raw = z.toJSONSchema(schema, { io, unrepresentable: 'any', target: 'draft-2020-12' }) as Json;
  const { $schema: _ignored, $defs, ...rest } = raw;
  if (typeof $defs === 'object' && $defs !== null) {
    for (const [id, def] of Object.entries($defs as Json)) {
      const name = componentName(id);
      const converted = rewriteRefs(def);
      const existing = components[name];
      if (existing !== undefined && JSON.stringify(existing) !== JSON.stringify(converted)) {
        // The same named schema in input and output form differs (defaults, transforms): keep both.
        components[`${name}.${io}`] = converted;
      } else {
        components[name] = converted;
      }
    }
  }
  return rewriteRefs(rest) as Json;
}

function parameters(schema: z.ZodType | undefined, where: 'path' | 'query', components: Json): Json[] {
  if (schema === undefined) return [];
  const json = convert(schema, 'input', components);
  const props = (json.properties ?? {}) as Record<string, Json>;
  const required = new Set((json.required ?? []) as string[]);
  return Object.entries(props).map(([name, s]) => {
    const { description, ...rest } = s;
    return {
      name,
      in: where,
      required: where === 'path' || required.has(name),
      schema: rest,
      ...(typeof description === 'string' ? { description } : {}),
    };
  });
}

const ERROR_REF = { $ref: '#/components/schemas/Error' };

function errorResponse(statuses: number[]): Json {
  const out: Json = {};
  for (const status of statuses) {
    const codes = Object.entries(ErrorCodes)
      .filter(([, info]) => info.status === status)
      .map(([code]) => code);
    out[String(status)] = {
      description: `error: ${codes.slice(0, 12).join(', ')}${codes.length > 12 ? ', …' : ''}`,
      content: { 'application/json': { schema: ERROR_REF } },
    };
  }
  return out;
}

/**
 * Build the OpenAPI 3.1 document of the API from its contract: every route, its parameters, bodies, responses,
 * error responses and who may call it (`security` plus `x-forgeone-roles`).
 * @param options - routes, version, server URL
 * @returns the document (a plain JSON object)
 */
export function buildOpenApiDocument(options: OpenApiOptions = {}): Record<string, unknown> {
  const routes = options.routes ?? API;
  const components: Json = {};
  const paths: Record<string, Record<string, Json>> = {};
  const tags = new Set<string>();
  for (const [operationId, c] of Object.entries(routes)) {
    tags.add(c.tag);
    const path = openApiPath(c.path);
    const statuses = [400, 500];
    if (c.access !== 'public') statuses.push(401, 403, 429);
    if (c.params !== undefined) statuses.push(404);
    if (c.body !== undefined) statuses.push(413, 415);
    statuses.sort((a, b) => a - b);
    const success = c.status ?? 200;
    const op: Json = {
      operationId,
      summary: c.summary,
      tags: [c.tag],
      security: c.access === 'public' ? [] : [{ bearerAuth: [] }],
      'x-forgeone-roles': c.access === 'public' ? [] : [...c.access],
      'x-forgeone-audited': c.audit === true,
      parameters: [...parameters(c.params, 'path', components), ...parameters(c.query, 'query', components)],
      responses: {
        [String(success)]: {
          description: isRaw(c.response) ? c.response.description : 'success',
          content: isRaw(c.response)
            ? { [c.response.contentType.split(';')[0]!]: { schema: { type: 'string', contentMediaType: c.response.contentType } } }
            : { 'application/json': { schema: convert(c.response, 'output', components) } },
        },
        ...errorResponse(statuses),
      },
    };
    const body = c.body;
    if (body !== undefined) {
      op.requestBody = isRaw(body)
        ? { required: true, description: body.description, content: { [body.contentType]: { schema: { type: 'string', contentMediaType: body.contentType } } } }
        : { required: !body.safeParse({}).success, content: { 'application/json': { schema: convert(body, 'input', components) } } };
    }
    (paths[path] ??= {})[c.method.toLowerCase()] = op;
  }
  if (components.Error === undefined) components.Error = { type: 'object' };
  return {
    openapi: '3.1.0',
    info: {
      title: 'ForgeOne API',
      version: options.version ?? '0.0.0',
      description:
        'The HTTP API of a ForgeOne kernel. Every route but /v1/health needs a bearer token: an EdDSA JWT issued by `forgeone token issue`, ' +
        'whose role (admin, operator, auditor, reader) must be among the route\'s x-forgeone-roles. Errors are `{ "error": { "code", "message", "retryable", "details"? } }` ' +
        'with a stable code. Requests marked x-forgeone-audited are written to the audit log (kind api.action) with the caller.',
    },
    ...(options.serverUrl === undefined ? {} : { servers: [{ url: options.serverUrl }] }),
    tags: [...tags].map((name) => ({ name })),
    paths,
    components: { securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } }, schemas: components },
  };
}
