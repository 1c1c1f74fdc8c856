/**
 * `@forgeone/interface`: the HTTP API of a ForgeOne kernel (`/v1`), its tokens and roles, its OpenAPI
 * document, and the typed client the `forgeone` CLI uses for remote work.
 *
 * - {@link createApiServer}: Fastify over a kernel; bearer tokens, roles, per-token rate limits, size limits,
 *   zod-validated bodies, every mutating request audited, server-sent events, `/metrics`.
 * - {@link issueToken}, {@link createTokenVerifier}: EdDSA JWTs signed with ForgeOne keys.
 * - {@link API}: the contract, one entry per route; {@link buildOpenApiDocument} generates OpenAPI 3.1 from it.
 * - {@link createClient}: the typed client.
 *
 * @packageDocumentation
 */
export { API, openApiPath, isRaw } from './api.js';
export type { Api, Contract, HttpMethod, RawContent, OperationId, InputOf, OutputOf, HandlerResult, DeepReadonly, ParamsIn, QueryIn, BodyIn } from './api.js';
export { API_ROLES, READ, INSPECT, OPERATE, AUDIT, ADMIN, isApiRole, roleAllows } from './roles.js';
export type { ApiRole, RouteAccess } from './roles.js';
export { TOKEN_ISSUER, TOKEN_AUDIENCE, MAX_TOKEN_TTL_SECONDS, API_TOKEN_ROLE, issueToken, createTokenVerifier, tokenKeysFromTrustRoot, ed25519PublicKeyObject } from './tokens.js';
export type { TokenClaims, IssueTokenOptions, TokenVerifierOptions, TokenVerifier } from './tokens.js';
export { createApiServer, API_VERSION, DEFAULT_PORT } from './server.js';
export type { ApiServer, ApiServerOptions, ApiAuthOptions, ApiLimits, ApiAddress, RegisteredRoute } from './server.js';
export { STREAMED } from './handlers.js';
export type { HandlerContext, Handlers, Parsed } from './handlers.js';
export { buildOpenApiDocument } from './openapi.js';
export type { OpenApiOptions } from './openapi.js';
export { createStorePackageStore } from './packages.js';
export type { PackageInfo, PackageStore, StorePackageStoreOptions } from './packages.js';
export { createEventHub } from './events.js';
export type { EventHub, EventHubOptions, HubEvent, StreamOptions } from './events.js';
export { toApiError, errorBody, statusOf, validationError } from './errors.js';
export type { ErrorResponseBody } from './errors.js';
export { createClient } from './client.js';
export type { ClientOptions, ClientEvent, EventsOptions, ForgeClient, Call } from './client.js';
export * as schemas from './schemas.js';
