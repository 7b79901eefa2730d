-- name: get-user-by-email^
-- The user with this lowercased e-mail, with its tenant's name (sign-in, sign-in-totp, password reset).
SELECT u.id, u.tenant_id, u.email, u.display_name, u.role::text AS role, u.password_hash, u.email_verified,
       u.totp_secret, u.totp_enabled, u.created_at, t.display_name AS tenant_name
FROM users AS u
JOIN tenants AS t ON t.id = u.tenant_id
WHERE u.email = :email;

-- name: get-user-by-id^
-- One user with its tenant's name (GET /auth/me, the TOTP token form, verification mails).
SELECT u.id, u.tenant_id, u.email, u.display_name, u.role::text AS role, u.password_hash, u.email_verified,
       u.totp_secret, u.totp_enabled, u.created_at, t.display_name AS tenant_name
FROM users AS u
JOIN tenants AS t ON t.id = u.tenant_id
WHERE u.id = :id;

-- name: lock-user-by-id^
-- One user with its tenant's name, row-locked for a read-check-write in the caller's transaction.
SELECT u.id, u.tenant_id, u.email, u.display_name, u.role::text AS role, u.password_hash, u.email_verified,
       u.totp_secret, u.totp_enabled, u.created_at, t.display_name AS tenant_name
FROM users AS u
JOIN tenants AS t ON t.id = u.tenant_id
WHERE u.id = :id
FOR UPDATE OF u;

-- name: email-is-registered$
-- Whether any user (any tenant) has this lowercased e-mail (409 email_already_registered).
SELECT EXISTS (SELECT 1 FROM users WHERE email = :email);

-- name: insert-user^
-- Create a user (sign-up: the tenant's first agency_admin); the password is an Argon2id PHC string.
INSERT INTO users (id, tenant_id, email, display_name, role, password_hash, email_verified)
VALUES (:id, :tenant_id, :email, :display_name, :role::user_role, :password_hash, :email_verified)
RETURNING id, tenant_id, email, display_name, role::text AS role, email_verified, totp_enabled, created_at;

-- name: record-sign-in!
-- A successful sign-in: last_login_at = now, and the upgraded hash when the Argon2 parameters changed.
UPDATE users
SET last_login_at = now(), password_hash = COALESCE(:upgraded_password_hash, password_hash)
WHERE id = :id
RETURNING id;

-- name: update-profile^
-- PATCH /auth/profile: new display name and e-mail (a changed e-mail is unverified again).
UPDATE users
SET display_name = :display_name, email = :email, email_verified = :email_verified, updated_at = now()
WHERE id = :id
RETURNING id, email, display_name, email_verified;

-- name: mark-email-verified$
-- POST /auth/verify-email: verify the user only while the e-mail is still the one the token was minted for.
UPDATE users
SET email_verified = true, updated_at = now()
WHERE id = :id AND email = :email
RETURNING id;

-- name: set-password-hash$
-- POST /auth/reset-password: store the new Argon2id hash; returns the tenant for the audit event.
UPDATE users
SET password_hash = :password_hash, updated_at = now()
WHERE id = :id
RETURNING tenant_id;

-- name: set-totp-secret!
-- POST /auth/totp/setup: a fresh, unconfirmed secret (replaces an unconfirmed one; 2FA stays off, no step yet).
UPDATE users
SET totp_secret = :totp_secret, totp_enabled = false, totp_last_step = NULL, updated_at = now()
WHERE id = :id AND NOT totp_enabled
RETURNING id;

-- name: enable-totp$
-- POST /auth/totp/verify: switch 2FA on and store the code's step, only if that step is later than the last
-- accepted one (no row: a replayed code); the secret must still be the one the code was checked against.
UPDATE users
SET totp_enabled = true, totp_last_step = :step, updated_at = now()
WHERE id = :id AND totp_secret = :totp_secret AND (totp_last_step IS NULL OR totp_last_step < :step)
RETURNING id;

-- name: accept-totp-step$
-- POST /auth/sign-in-totp: store the code's step only if it is later than the last accepted one (no row: a
-- replayed code, or 2FA switched off or re-keyed meanwhile). Of concurrent requests with one code, one wins.
UPDATE users
SET totp_last_step = :step
WHERE id = :id AND totp_enabled AND totp_secret = :totp_secret
  AND (totp_last_step IS NULL OR totp_last_step < :step)
RETURNING id;

-- name: disable-totp$
-- POST /auth/totp/disable: switch 2FA off and erase the secret and step, only if the code's step is later than
-- the last accepted one (no row: a replayed code).
UPDATE users
SET totp_enabled = false, totp_secret = NULL, totp_last_step = NULL, updated_at = now()
WHERE id = :id AND totp_enabled AND totp_secret = :totp_secret
  AND (totp_last_step IS NULL OR totp_last_step < :step)
RETURNING id;
