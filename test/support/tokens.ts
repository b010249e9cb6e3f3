import type { ApiTokenConfig } from '../../src/config/schema.js';
import { sha256Hex } from '../../src/domain/hashing.js';

/** An API token config whose secret is `<id>-secret`: read scope in every environment unless `over` says otherwise. */
export const testToken = (id: string, over: Partial<ApiTokenConfig> = {}): ApiTokenConfig => ({
  id,
  principal: `agent:${id}`,
  secretSha256: sha256Hex(`${id}-secret`),
  scopes: ['read'],
  environments: ['*'],
  roles: [],
  ...over,
});

/** The Authorization header of the token `id` made by testToken. */
export const bearer = (id: string) => ({ authorization: `Bearer ${id}-secret` });
