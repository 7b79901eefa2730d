-- name: get-api-key-for-auth^
-- The key row by its public prefix, with the creator's current role (auth.md, API keys, Verification).
SELECT k.id, k.tenant_id, k.created_by_user_id, k.key_hash, k.scopes, k.expires_at, k.revoked_at,
       u.role::text AS creator_role, u.email AS creator_email,
       COALESCE(s.rate_limit_per_minute, 60) AS rate_limit_per_minute
FROM api_keys AS k
JOIN users AS u ON u.id = k.created_by_user_id
LEFT JOIN tenant_settings AS s ON s.tenant_id = k.tenant_id
WHERE k.prefix = :prefix;
