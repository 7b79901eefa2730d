-- name: insert-refresh-token$
-- A new refresh token (only its SHA-256 digest is stored), in a new or an existing family.
INSERT INTO auth_refresh_tokens (id, user_id, family_id, token_hash, expires_at, user_agent, ip)
VALUES (:id, :user_id, :family_id, :token_hash, :expires_at, :user_agent, :ip)
RETURNING id;

-- name: get-refresh-token-by-hash^
-- POST /auth/refresh: the token by digest with its user's current tenant, role and e-mail.
SELECT r.id, r.user_id, r.family_id, r.expires_at, r.revoked_at, r.revoke_reason,
       u.tenant_id, u.email, u.role::text AS role
FROM auth_refresh_tokens AS r
JOIN users AS u ON u.id = r.user_id
JOIN tenants AS t ON t.id = u.tenant_id
WHERE r.token_hash = :token_hash;

-- name: revoke-refresh-token-rotated$
-- Rotation: revoke the presented token unless another request revoked it first (then no row: reuse).
UPDATE auth_refresh_tokens
SET revoked_at = now(), revoke_reason = 'rotated', updated_at = now()
WHERE id = :id AND revoked_at IS NULL
RETURNING id;

-- name: revoke-refresh-family!
-- Reuse of a rotated token: revoke every still-active token of its family.
UPDATE auth_refresh_tokens
SET revoked_at = now(), revoke_reason = 'reuse_detected', updated_at = now()
WHERE family_id = :family_id AND revoked_at IS NULL
RETURNING id;

-- name: revoke-refresh-token-signed-out!
-- POST /auth/sign-out: revoke the given token if it exists and is still active.
UPDATE auth_refresh_tokens
SET revoked_at = now(), revoke_reason = 'signed_out', updated_at = now()
WHERE token_hash = :token_hash AND revoked_at IS NULL
RETURNING id;

-- name: revoke-user-refresh-tokens!
-- POST /auth/reset-password: revoke every active (unrevoked, unexpired) token of the user.
UPDATE auth_refresh_tokens
SET revoked_at = now(), revoke_reason = 'password_reset', updated_at = now()
WHERE user_id = :user_id AND expires_at > now() AND revoked_at IS NULL
RETURNING id;
