-- name: expire-tenant-invites!
-- Lazy sweep: the tenant's pending invites past their expiry become expired (auth.md, Invites).
UPDATE invites
SET status = 'expired', updated_at = now()
WHERE tenant_id = :tenant_id AND status = 'pending' AND expires_at <= now();

-- name: expire-invite-by-id!
-- Lazy sweep of one invite of the tenant (revoke).
UPDATE invites
SET status = 'expired', updated_at = now()
WHERE id = :id AND tenant_id = :tenant_id AND status = 'pending' AND expires_at <= now();

-- name: expire-invite-by-token!
-- Lazy sweep of the invite a token names (lookup, accept).
UPDATE invites
SET status = 'expired', updated_at = now()
WHERE token_hash = :token_hash AND status = 'pending' AND expires_at <= now();

-- name: pending-invite-exists$
-- Whether the tenant already has a pending invite for this e-mail (409 invite_already_exists).
SELECT EXISTS (SELECT 1 FROM invites WHERE tenant_id = :tenant_id AND email = :email AND status = 'pending');

-- name: insert-invite^
-- Store a new pending invite (only the token's SHA-256); a concurrent duplicate returns no row.
INSERT INTO invites (id, tenant_id, invited_by_user_id, email, role, token_hash, status, expires_at)
VALUES (:id, :tenant_id, :invited_by_user_id, :email, :role::user_role, :token_hash, 'pending',
        now() + make_interval(days => :ttl_days::int))
ON CONFLICT (tenant_id, email) WHERE status = 'pending' DO NOTHING
RETURNING id, tenant_id, email, role::text AS role, status::text AS status, expires_at, created_at, accepted_at,
          revoked_at, invited_by_user_id;

-- name: get-invite-mail-context^
-- What the invite e-mail names: the tenant and the inviter.
SELECT t.display_name AS tenant_name, u.display_name AS inviter_name, u.email AS inviter_email
FROM tenants AS t
JOIN users AS u ON u.id = :inviter_id AND u.tenant_id = t.id
WHERE t.id = :tenant_id;

-- name: list-invites
-- The tenant's invites, optionally of one status, newest first.
SELECT id, tenant_id, email, role::text AS role, status::text AS status, expires_at, created_at, accepted_at,
       revoked_at, invited_by_user_id
FROM invites
WHERE tenant_id = :tenant_id AND (:status::invite_status IS NULL OR status = :status::invite_status)
ORDER BY created_at DESC, id DESC;

-- name: revoke-pending-invite^
-- Revoke one pending invite of the tenant; no row when it is not pending (or not the tenant's).
UPDATE invites
SET status = 'revoked', revoked_at = now(), updated_at = now()
WHERE id = :id AND tenant_id = :tenant_id AND status = 'pending'
RETURNING id, tenant_id, email, role::text AS role, status::text AS status, expires_at, created_at, accepted_at,
          revoked_at, invited_by_user_id;

-- name: invite-exists$
-- Whether the tenant has an invite with this id (404 invite_not_found vs 409 invite_not_pending).
SELECT EXISTS (SELECT 1 FROM invites WHERE id = :id AND tenant_id = :tenant_id);

-- name: get-invite-by-token^
-- The invite a token names, with the safe metadata lookup shows (tenant name, inviter e-mail).
SELECT i.id, i.tenant_id, i.email, i.role::text AS role, i.status::text AS status, i.expires_at,
       i.expires_at <= now() AS is_past_expiry, t.display_name AS tenant_name, u.email AS inviter_email
FROM invites AS i
JOIN tenants AS t ON t.id = i.tenant_id
JOIN users AS u ON u.id = i.invited_by_user_id
WHERE i.token_hash = :token_hash;

-- name: lock-invite-by-token^
-- The invite a token names, locked for the accepting transaction (one accept wins).
SELECT id, tenant_id, email, role::text AS role, status::text AS status, expires_at <= now() AS is_past_expiry
FROM invites
WHERE token_hash = :token_hash
FOR UPDATE;

-- name: mark-invite-accepted!
-- The invite's single use.
UPDATE invites
SET status = 'accepted', accepted_at = now(), updated_at = now()
WHERE id = :id AND status = 'pending';
