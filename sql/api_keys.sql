-- name: get-api-key-for-auth^
-- The key row by its public prefix, with the creator's current role (auth.md, API keys, Verification).
SELECT k.id, k.tenant_id, k.created_by_user_id, k.key_hash, k.scopes, k.expires_at, k.revoked_at,
       k.last_used_at, u.role::text AS creator_role, u.email AS creator_email,
       COALESCE(s.rate_limit_per_minute, 60) AS rate_limit_per_minute, s.updated_at AS settings_updated_at
FROM api_keys AS k
JOIN users AS u ON u.id = k.created_by_user_id
LEFT JOIN tenant_settings AS s ON s.tenant_id = k.tenant_id
WHERE k.prefix = :prefix;

-- name: insert-api-key^
-- Store a new key (prefix + SHA-256 only); no row when the prefix (or hash) is already taken.
INSERT INTO api_keys (id, tenant_id, created_by_user_id, name, prefix, key_hash, scopes, expires_at)
VALUES (:id, :tenant_id, :created_by_user_id, :name, :prefix, :key_hash, :scopes::text[],
        now() + make_interval(days => :expires_in_days::int))
ON CONFLICT DO NOTHING
RETURNING id, name, prefix, scopes, created_by_user_id, created_at, expires_at, revoked_at, last_used_at;

-- name: list-api-keys
-- Every key of the tenant, revoked and expired ones included, newest first (never the hash).
SELECT id, name, prefix, scopes, created_by_user_id, created_at, expires_at, revoked_at, last_used_at
FROM api_keys
WHERE tenant_id = :tenant_id
ORDER BY created_at DESC, id DESC;

-- name: revoke-api-key^
-- Soft-revoke an active key of the tenant; no row when it is unknown, foreign or already revoked.
UPDATE api_keys
SET revoked_at = now(), updated_at = now()
WHERE id = :id AND tenant_id = :tenant_id AND revoked_at IS NULL
RETURNING id, prefix;

-- name: api-key-exists$
-- Whether the tenant has a key with this id (an already-revoked key is a no-op, not a 404).
SELECT EXISTS (SELECT 1 FROM api_keys WHERE id = :id AND tenant_id = :tenant_id);

-- name: touch-api-key-last-used!
-- Record use at most once a minute per key, whichever worker gets there first.
UPDATE api_keys
SET last_used_at = now()
WHERE id = :id AND (last_used_at IS NULL OR last_used_at < now() - interval '60 seconds');
