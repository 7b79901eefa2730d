-- 0004: single-use TOTP codes (auth.md, Two-factor authentication; data-model.md users.totp_last_step).
--
-- The step number (Unix time ÷ 30, rounded down) of the last code accepted for the user at
-- POST /auth/totp/verify, POST /auth/sign-in-totp or POST /auth/totp/disable. A code is accepted only for a
-- later step, compared and stored by one conditional UPDATE (sql/users.sql: enable-totp, accept-totp-step,
-- disable-totp), so of concurrent requests carrying the same code at most one succeeds. Cleared when a new
-- secret is set up or 2FA is disabled. Nullable without a default: adding it rewrites no row.

ALTER TABLE users ADD COLUMN totp_last_step bigint;
